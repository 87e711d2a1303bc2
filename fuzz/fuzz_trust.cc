// libFuzzer target: the .channel and .idx.sig parsers must reject or accept
// any byte string without crashing, and whatever they accept must encode
// back to the same bytes (no field is lost or invented).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "trust/channel.h"
#include "trust/signature.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto channel = hloop::trust::ParseChannel(bytes, "fuzz");
  if (channel.ok() && hloop::trust::EncodeChannel(*channel) != bytes) __builtin_trap();
  auto sig = hloop::trust::ParseSignature(bytes, "fuzz");
  if (sig.ok() && hloop::trust::EncodeSignature(*sig) != bytes) __builtin_trap();
  return 0;
}
