#include "format/layout.h"

#include <cstring>

#include "format/format.h"
#include "util/bytes.h"

namespace hloop::format {

uint64_t MaxLayoutEntries() { return kMaxMetaLength / kExtentEntrySize; }

Status ValidateLayout(const Layout& layout, uint64_t image_size) {
  if (layout.hot.size() >= kExtentZero) return Status::Corruption("too many hot chunks");
  for (size_t k = 0; k < layout.hot.size(); k++) {
    const HotChunk& h = layout.hot[k];
    if (h.raw_size == 0 || h.raw_size > kMaxChunkSize)
      return Status::Corruption("hot chunk " + std::to_string(k) + " has an absurd length");
    if (h.stored_size < kChunkHeaderSize ||
        h.stored_size > kChunkHeaderSize + 2 * uint64_t(kMaxChunkSize))
      return Status::Corruption("hot chunk " + std::to_string(k) + " has an absurd stored size");
  }
  uint64_t prev_end = 0;
  for (size_t x = 0; x < layout.extents.size(); x++) {
    const ImageExtent& e = layout.extents[x];
    auto bad = [&](const std::string& why) {
      return Status::Corruption("extent " + std::to_string(x) + " " + why);
    };
    if (e.length == 0) return bad("is empty");
    if (e.image_offset > image_size || e.length > image_size - e.image_offset)
      return bad("ends past the image");
    if (x > 0 && e.image_offset < prev_end) return bad("overlaps or precedes the one before it");
    prev_end = e.end();
    if (e.zero()) {
      if (e.hot_offset != 0) return bad("is a zero range with an offset");
      continue;
    }
    if (e.hot >= layout.hot.size()) return bad("names a hot chunk that does not exist");
    if (e.hot_offset > layout.hot[e.hot].raw_size ||
        e.length > layout.hot[e.hot].raw_size - e.hot_offset)
      return bad("ends past its hot chunk");
  }
  return Status::Ok();
}

std::string EncodeLayout(const Layout& layout) {
  std::string out(kLayoutHeaderSize + layout.hot.size() * kHotEntrySize +
                      layout.extents.size() * kExtentEntrySize,
                  '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  PutU32(p + kLayHotCount, uint32_t(layout.hot.size()));
  PutU32(p + kLayExtentCount, uint32_t(layout.extents.size()));
  p += kLayoutHeaderSize;
  for (const HotChunk& h : layout.hot) {
    std::memcpy(p + kHotHash, h.hash.data(), kHashSize);
    PutU32(p + kHotStoredSize, h.stored_size);
    PutU32(p + kHotRawSize, h.raw_size);
    p += kHotEntrySize;
  }
  for (const ImageExtent& e : layout.extents) {
    PutU64(p + kExtImageOffset, e.image_offset);
    PutU32(p + kExtLength, e.length);
    PutU32(p + kExtHot, e.hot);
    PutU32(p + kExtHotOffset, e.hot_offset);
    p += kExtentEntrySize;
  }
  return out;
}

Result<Layout> ParseLayout(const uint8_t* p, size_t length, uint64_t image_size) {
  if (length < kLayoutHeaderSize) return Status::Corruption("extents record truncated");
  const uint64_t hot_count = GetU32(p + kLayHotCount);
  const uint64_t extent_count = GetU32(p + kLayExtentCount);
  const uint64_t want =
      kLayoutHeaderSize + hot_count * kHotEntrySize + extent_count * kExtentEntrySize;
  if (want != length)
    return Status::Corruption("extents record is " + std::to_string(length) +
                              " bytes, its counts imply " + std::to_string(want));
  Layout layout;
  layout.hot.resize(hot_count);
  layout.extents.resize(extent_count);
  p += kLayoutHeaderSize;
  for (HotChunk& h : layout.hot) {
    std::memcpy(h.hash.data(), p + kHotHash, kHashSize);
    h.stored_size = GetU32(p + kHotStoredSize);
    h.raw_size = GetU32(p + kHotRawSize);
    p += kHotEntrySize;
  }
  for (ImageExtent& e : layout.extents) {
    e.image_offset = GetU64(p + kExtImageOffset);
    e.length = GetU32(p + kExtLength);
    e.hot = GetU32(p + kExtHot);
    e.hot_offset = GetU32(p + kExtHotOffset);
    p += kExtentEntrySize;
  }
  HLOOP_RETURN_IF_ERROR(ValidateLayout(layout, image_size));
  return layout;
}

}  // namespace hloop::format
