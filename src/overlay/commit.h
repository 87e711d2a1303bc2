// Commit: turn base + overlay into a new image version in a local store.
// Chunks the overlay does not touch keep their index entries (and chunk
// files); only chunks it touches are read (through the overlay), hashed and,
// when their content is new, encoded and stored. The new index records the
// base as its parent and is written last, atomically, after the chunk files
// are on disk.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "disk/block_device.h"
#include "format/hash.h"
#include "format/index.h"
#include "overlay/overlay_device.h"
#include "store/local_store.h"
#include "util/status.h"

namespace hloop::overlay {

struct CommitOptions {
  std::string name;         // the new index: STORE/NAME.idx. Required.
  std::string parent_name;  // recorded with the base's digest as the parent
  int level = -1;           // compression level; -1: the codec's default
  unsigned threads = 0;     // 0: one per core, at most 16
  // Called from the committing thread about five times a second.
  std::function<void(uint64_t chunks_done, uint64_t chunks_total)> progress;
};

struct CommitSummary {
  uint64_t chunks_total = 0;
  uint64_t chunks_changed = 0;  // chunks with at least one block in the overlay
  uint64_t chunks_new = 0;      // chunk files this commit added to the store
  uint64_t bytes_new = 0;       // their size
  uint64_t chunks_copied = 0;   // of those, unchanged chunks the store lacked (copied from the base)
  uint64_t chunks_zero = 0;     // zero chunks in the new version
  std::string index_path;
  format::Hash digest{};
};

// Writes the image that `overlay` reads (its base being the image of
// `base_index`) into `store` as `options.name`. Refuses to replace an index
// of that name unless it is the base itself (the new version then takes
// its place, with the old one as parent). The overlay is not changed.
Result<CommitSummary> Commit(const format::Index& base_index, OverlayDevice& overlay, store::LocalStore& store,
                             const CommitOptions& options);

}  // namespace hloop::overlay
