// The layout writer: packs chosen image ranges densely, in a given order,
// into "hot" chunk files, and maps them with extents (format/layout.h). The
// image writer calls it after the table's chunks are written, so a relaid-out
// index is written like any other: chunk files first, the index last.
//
// What to pack is a LayoutPlan: from boot profiles (`hloop relayout`), or the
// layout of an earlier version carried to a new one (`pack --layout-from`,
// `commit`), where the hot chunks whose blocks did not change come out
// identical and are stored once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/format.h"
#include "format/index.h"
#include "format/layout.h"
#include "store/local_store.h"
#include "util/status.h"
#include "writer/image_bytes.h"

namespace hloop::writer {

// The relayout's granularity: a file system's block.
inline constexpr uint64_t kLayoutBlock = 4096;

struct LayoutPlan {
  // Image ranges to pack into hot chunks, in this order; they must not
  // overlap. Past the image's end they are cut.
  std::vector<format::ByteRange> ranges;
  // false (a plan from profiles): 4 KiB blocks that read as zeros are not
  // packed but mapped as zero extents, and ranges in all-zero table chunks
  // are skipped (they cost nothing already).
  // true (a carried layout): every range is packed as it is, zeros or not,
  // so that the hot chunks after a block that changed keep their content and
  // are shared with the earlier version.
  bool keep_zero_blocks = false;
  // Ranges that were zero extents in the layout carried: zero extents again
  // where they still read as zeros.
  std::vector<format::ByteRange> zero_ranges;
};

// Adds `ranges` to `plan` in order, leaving out the bytes the plan has
// already (the first profile given wins), cut to an image of `image_size`.
void AddToPlan(const std::vector<format::ByteRange>& ranges, uint64_t image_size, LayoutPlan* plan);

// The plan that lays out another version of `index`'s image as `index` is:
// its hot chunks' ranges in hot-chunk order, and its zero extents.
LayoutPlan PlanFromLayout(const format::Index& index);

struct LayoutSummary {
  uint64_t hot_chunks = 0;
  uint64_t hot_new = 0, hot_bytes_new = 0;  // hot chunk files this run added
  uint64_t hot_stored_bytes = 0;            // the distinct hot chunk files, old and new
  uint64_t hot_raw_bytes = 0;               // bytes packed into hot chunks
  uint64_t extents = 0, zero_extents = 0;
  uint64_t mapped_bytes = 0;   // image bytes the extents cover
  uint64_t dropped_bytes = 0;  // plan bytes left out: the EXTENTS record was full
};

// Reads the plan's ranges from `bytes`, writes the hot chunks `store` lacks
// (not synced: the caller syncs before writing the index) and returns the
// layout. `table` is the index's table (zero chunks are skipped by a plan
// from profiles); hot chunks are cut at `chunk_size`.
Result<format::Layout> WriteLayout(ImageBytes& bytes, const std::vector<format::ChunkEntry>& table,
                                   uint32_t chunk_size, const LayoutPlan& plan,
                                   store::LocalStore& store, format::Codec codec, int level,
                                   LayoutSummary* summary);

}  // namespace hloop::writer
