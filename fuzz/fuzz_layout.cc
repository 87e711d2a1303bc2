// libFuzzer target: the EXTENTS record parser (format/layout.h) must reject
// or accept any byte string without crashing; an accepted layout must
// re-encode to the same bytes and every extent must lie inside the image
// and inside its hot chunk.
#include <cstddef>
#include <cstdint>
#include <string>

#include "format/layout.h"
#include "util/bytes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  // The first 8 bytes choose the image size; the rest is the record.
  const uint64_t image_size = hloop::GetU64(data) & ((uint64_t(1) << 52) - 1);
  auto layout = hloop::format::ParseLayout(data + 8, size - 8, image_size);
  if (!layout.ok()) return 0;
  std::string again = hloop::format::EncodeLayout(*layout);
  if (again != std::string(reinterpret_cast<const char*>(data + 8), size - 8)) __builtin_trap();
  uint64_t prev_end = 0;
  for (const auto& e : layout->extents) {
    if (e.image_offset < prev_end || e.end() > image_size || e.length == 0) __builtin_trap();
    prev_end = e.end();
    if (!e.zero() && uint64_t(e.hot_offset) + e.length > layout->hot.at(e.hot).raw_size)
      __builtin_trap();
  }
  return 0;
}
