// The layout of an index: the critical EXTENTS metadata record, which maps
// ranges of the image to "hot" chunk files (or to zeros) instead of the
// table's chunks. A profile-guided relayout (`hloop relayout`) packs the
// blocks a boot reads densely into hot chunks, in the order they were first
// read; the table still describes every byte of the image, and an extent
// says where a reader finds those bytes in fewer files. Byte layout: "EXTENTS
// record" in docs/format.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/hash.h"
#include "util/status.h"

namespace hloop::format {

// A range of image bytes.
struct ByteRange {
  uint64_t offset = 0, length = 0;
  uint64_t end() const { return offset + length; }
  bool operator==(const ByteRange&) const = default;
};

// A hot chunk file: named by the SHA-256 of its raw content like any chunk.
struct HotChunk {
  Hash hash{};
  uint32_t stored_size = 0;  // size of the chunk file
  uint32_t raw_size = 0;     // length of its raw content, 1 .. kMaxChunkSize
  bool operator==(const HotChunk&) const = default;
};

// Image bytes [image_offset, image_offset + length) are bytes
// [hot_offset, hot_offset + length) of hot chunk `hot`, or zeros when `hot`
// is kExtentZero.
inline constexpr uint32_t kExtentZero = 0xFFFFFFFF;
struct ImageExtent {
  uint64_t image_offset = 0;
  uint32_t length = 0;
  uint32_t hot = kExtentZero;
  uint32_t hot_offset = 0;
  bool zero() const { return hot == kExtentZero; }
  uint64_t end() const { return image_offset + length; }
  bool operator==(const ImageExtent&) const = default;
};

struct Layout {
  std::vector<HotChunk> hot;
  std::vector<ImageExtent> extents;  // sorted by image_offset, not overlapping
  bool empty() const { return hot.empty() && extents.empty(); }
  bool operator==(const Layout&) const = default;
};

// The value of an EXTENTS record. REQUIRES: ValidateLayout(layout) is ok.
std::string EncodeLayout(const Layout& layout);
// Parses and checks an EXTENTS record's value for an image of `image_size`
// bytes: Corruption naming the first fault.
Result<Layout> ParseLayout(const uint8_t* value, size_t length, uint64_t image_size);
// The checks ParseLayout makes, on a layout built in memory.
Status ValidateLayout(const Layout& layout, uint64_t image_size);

// The most extents and hot chunks an EXTENTS record can hold (the metadata
// area is at most kMaxMetaLength bytes).
uint64_t MaxLayoutEntries();

}  // namespace hloop::format
