#include "disk/occupancy.h"

#include <algorithm>
#include <set>

namespace hloop::disk {

LayoutFigures SummarizeLayout(const format::Index& index) {
  const format::Layout& layout = index.layout();
  LayoutFigures f;
  f.image_size = index.image_size();
  f.hot_chunks = layout.hot.size();
  for (const format::HotChunk& h : layout.hot) {
    f.hot_raw_bytes += h.raw_size;
    f.hot_stored_bytes += h.stored_size;
  }
  f.extents = layout.extents.size();
  for (const format::ImageExtent& e : layout.extents) {
    f.mapped_bytes += e.length;
    if (e.zero()) f.zero_extents++;
  }
  return f;
}

Occupancy ComputeOccupancy(const format::Index& index, ByteRanges ranges) {
  // Clip to the image, sort and merge, so each byte counts once.
  const uint64_t size = index.image_size();
  std::sort(ranges.begin(), ranges.end());
  ByteRanges merged;
  for (auto [offset, length] : ranges) {
    if (offset >= size || length == 0) continue;
    const uint64_t end = offset + std::min(length, size - offset);
    if (!merged.empty() && offset <= merged.back().first + merged.back().second) {
      auto& last = merged.back();
      last.second = std::max(last.first + last.second, end) - last.first;
    } else {
      merged.emplace_back(offset, end - offset);
    }
  }
  Occupancy o;
  std::set<format::Hash> files;
  for (auto [offset, length] : merged) {
    o.bytes_read += length;
    for (uint64_t pos = offset, end = offset + length; pos < end;) {
      const format::Segment s = index.Locate(pos);
      const uint64_t n = std::min(s.length, end - pos);
      pos += n;
      if (s.zero) {
        o.zero_bytes += n;
        continue;
      }
      const format::ChunkEntry e = index.entry(s.slot);
      if (!files.insert(e.hash).second) continue;
      o.chunks++;
      if (index.is_hot(s.slot)) o.hot_chunks++;
      o.raw_bytes += index.chunk_length(s.slot);
      o.stored_bytes += e.stored_size;
    }
  }
  return o;
}

}  // namespace hloop::disk
