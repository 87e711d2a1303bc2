// libFuzzer target: the text files a client reads from servers next to the
// index, a boot profile (NAME.profile) and a mirror list (NAME.mirrors),
// never crash the parsers, and what they accept is within bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "disk/profile.h"
#include "fetch/source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  const uint64_t chunk_count = 1000;
  auto profile = hloop::disk::ParseProfile(text, chunk_count, "fuzz.profile");
  if (profile.ok()) {
    for (uint64_t c : *profile) {
      if (c >= chunk_count) std::abort();
    }
  }
  auto mirrors = hloop::fetch::ParseMirrorList(text, "fuzz.mirrors");
  if (mirrors.ok()) {
    for (const auto& m : *mirrors) {
      if (m.base.empty() || m.base.back() != '/' || m.connections > 256) std::abort();
    }
  }
  return 0;
}
