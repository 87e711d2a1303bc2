// Packing: split an image file into chunks, store each distinct non-zero
// chunk once as a compressed file named by its hash, and write the index
// last (writer/image_writer.h does the work).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "format/format.h"
#include "store/local_store.h"
#include "util/status.h"
#include "writer/image_writer.h"
#include "writer/layout_writer.h"

namespace hloop::pack {

struct PackOptions {
  std::string name;  // index name; required
  uint32_t chunk_size = format::kDefaultChunkSize;
  format::Codec codec = format::Codec::kZstd;
  int level = -1;        // compression level; -1: the codec's default
  unsigned threads = 0;  // 0: one per core, at most writer::kMaxDefaultThreads
  // Called from the packing thread about five times a second.
  std::function<void(uint64_t bytes_done, uint64_t bytes_total)> progress;
  // Hot chunks and extents to write (e.g. PlanFromLayout of the previous
  // version, `--layout-from`); null: none. Must outlive the call.
  const writer::LayoutPlan* layout = nullptr;
};

// Packs the file or block device at `image_path` into `store` as
// `options.name`. If the store already has an index of that name, the new
// one records it as its parent. Chunk files reach the disk before the index
// is (atomically) replaced. In the summary, every chunk is "changed" and
// none is copied.
Result<writer::WriteSummary> Pack(const std::string& image_path, store::LocalStore& store,
                                  const PackOptions& options);

}  // namespace hloop::pack
