// libFuzzer target: the text files a client reads from servers next to the
// index, a boot profile (NAME.profile) and a mirror list (NAME.mirrors),
// never crash the parsers, and what they accept is within bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include "disk/profile.h"
#include "disk/profile_format.h"
#include "fetch/source.h"
#include "format/index.h"

namespace {

// A small image to replay profiles on: 1000 chunks of 4 KiB, the last one
// short, every third chunk zeros.
const hloop::format::Index& FuzzIndex() {
  static const hloop::format::Index index = [] {
    const uint64_t size = 1000 * 4096 - 100;
    hloop::format::IndexBuilder b(size, 4096, hloop::format::Codec::kNone);
    for (uint64_t i = 0; i < b.chunk_count(); i++) {
      hloop::format::ChunkEntry e;
      if (i % 3 == 0) {
        e.flags = hloop::format::kEntryFlagZero;
      } else {
        e.hash = hloop::format::Sha256(std::to_string(i));
        e.stored_size = 4096;
      }
      b.set_entry(i, e);
    }
    return std::move(hloop::format::Index::Parse(b.Encode(), "fuzz.idx").value());
  }();
  return index;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto profile = hloop::disk::ParseProfile(text, "fuzz.profile");
  if (profile.ok()) {
    for (const auto& e : profile->entries) {
      if (profile->version == 1 && e.length != 1) std::abort();
      if (profile->version == 2 &&
          (e.length == 0 || e.offset % hloop::disk::kProfileBlockSize != 0))
        std::abort();
    }
    // Replayed: ranges inside the image, each byte at most once (so they
    // add up to at most the image), and slots within the index.
    const auto& index = FuzzIndex();
    uint64_t total = 0;
    for (const auto& r : hloop::disk::ProfileByteRanges(*profile, index)) {
      if (r.length == 0 || r.offset + r.length > index.image_size()) std::abort();
      total += r.length;
    }
    if (total > index.image_size()) std::abort();
    for (uint64_t s : hloop::disk::ProfileSlots(*profile, index))
      if (s >= index.slot_count()) std::abort();
  }
  auto mirrors = hloop::fetch::ParseMirrorList(text, "fuzz.mirrors");
  if (mirrors.ok()) {
    for (const auto& m : *mirrors) {
      if (m.base.empty() || m.base.back() != '/' || m.connections > 256) std::abort();
    }
  }
  return 0;
}
