// Packing: split an image into chunks, store each distinct non-zero chunk
// once as a compressed file named by its hash, and write the index last.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "format/format.h"
#include "format/hash.h"
#include "store/local_store.h"
#include "util/status.h"

namespace hloop::pack {

struct PackOptions {
  std::string name;  // index name; required
  uint32_t chunk_size = format::kDefaultChunkSize;
  format::Codec codec = format::Codec::kZstd;
  int level = 3;
  unsigned threads = 0;  // 0: one per core
  // Called from the packing thread about five times a second.
  std::function<void(uint64_t bytes_done, uint64_t bytes_total)> progress;
};

struct PackSummary {
  uint64_t chunks_total = 0;
  uint64_t chunks_unique = 0;  // distinct non-zero chunks in this image
  uint64_t chunks_new = 0;     // chunk files this run added to the store
  uint64_t chunks_zero = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;  // chunk files added, plus the index
  uint64_t stored_bytes = 0;   // the image's distinct chunk files, old and new
  double seconds = 0;
  std::string index_path;
  format::Hash digest{};
};

// Packs the file or block device at `image_path` into `store` as
// `options.name`. If the store already has an index of that name, the new
// one records it as its parent. Chunk files reach the disk before the index
// is (atomically) replaced.
Result<PackSummary> Pack(const std::string& image_path, store::LocalStore& store,
                         const PackOptions& options);

}  // namespace hloop::pack
