// How an index lays out its image, and how a set of reads (a boot profile)
// falls on its chunk files: the figures `hloop info` prints. A relayout
// (issue 14) aims at few chunk files touched and a high occupancy (the
// share of the bytes fetched that the reads asked for). Pure: no I/O.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "format/index.h"

namespace hloop::disk {

// The EXTENTS record of an index, in numbers. All zero without one.
struct LayoutFigures {
  uint64_t hot_chunks = 0;
  uint64_t hot_raw_bytes = 0;     // sum of the hot chunks' raw lengths
  uint64_t hot_stored_bytes = 0;  // sum of the hot chunk files' sizes
  uint64_t extents = 0;
  uint64_t zero_extents = 0;  // extents that map their range to zeros
  uint64_t mapped_bytes = 0;  // image bytes the extents cover
  uint64_t image_size = 0;
  // mapped_bytes / image_size (0 for an empty image).
  double mapped_share() const { return image_size ? double(mapped_bytes) / image_size : 0; }
};
LayoutFigures SummarizeLayout(const format::Index& index);

// Byte ranges of the image as (offset, length) pairs, in any order; they
// may overlap and may reach past the image's end (the part past it is
// ignored).
using ByteRanges = std::vector<std::pair<uint64_t, uint64_t>>;

// How reads of `ranges` fall on the chunk files of an index.
struct Occupancy {
  uint64_t bytes_read = 0;    // distinct image bytes the ranges cover
  uint64_t zero_bytes = 0;    // of those, bytes that read as zeros (no file)
  uint64_t chunks = 0;        // distinct chunk files touched (by hash)
  uint64_t hot_chunks = 0;    // of those, hot chunks
  uint64_t raw_bytes = 0;     // raw length of the chunk files touched
  uint64_t stored_bytes = 0;  // their stored size: what a cold reader fetches
  // Bytes read from chunk files per raw byte of the files touched (0..1),
  // and per byte fetched (can exceed 1: files are compressed). Zero reads
  // cost no file and are left out of both.
  double occupancy() const { return raw_bytes ? double(bytes_read - zero_bytes) / raw_bytes : 0; }
  double per_fetched_byte() const {
    return stored_bytes ? double(bytes_read - zero_bytes) / stored_bytes : 0;
  }
};
// O(r log r + s log s) for r ranges touching s segments (Index::Locate).
Occupancy ComputeOccupancy(const format::Index& index, ByteRanges ranges);

}  // namespace hloop::disk
