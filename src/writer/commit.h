// Commit: a changed image (base + overlay) as a new image version in a
// local store. Chunks the source reports unchanged keep their index entries
// (and chunk files); only the others are read, hashed and, when their
// content is new, encoded and stored, with the base's chunk size and codec.
// The new index records the base as its parent and is written last,
// atomically, after the chunk files are on disk (writer/image_writer.h).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "format/hash.h"
#include "format/index.h"
#include "store/local_store.h"
#include "util/status.h"
#include "writer/image_bytes.h"
#include "writer/image_writer.h"
#include "writer/layout_writer.h"

namespace hloop::writer {

struct CommitOptions {
  std::string name;  // the new index: STORE/NAME.idx. Required.
  std::string
      parent_name;  // recorded with the base's digest as the parent; empty: the base's own name
  int level = -1;   // compression level; -1: the codec's default
  unsigned threads = 0;  // 0: one per core, at most kMaxDefaultThreads
  // Called from the committing thread about five times a second with the
  // bytes of the image handled so far.
  std::function<void(uint64_t bytes_done, uint64_t bytes_total)> progress;
  // The new version's hot chunks and extents (layout_writer.h). Unset: the
  // base's layout, carried over (none if the base has none); an empty plan:
  // none.
  std::optional<LayoutPlan> layout;
};

// Writes the image `image` reads into `store` as `options.name`. `image`
// tells which ranges differ from the image of `base_index` (for an overlay:
// DeviceBytes with OverlayDevice::Touches). Refuses to replace an index of
// that name unless it is the base itself (the new version then takes its
// place, with the old one as parent). The source is only read.
// In the summary, chunks_changed counts the chunks `image` may have changed
// and chunks_copied the unchanged ones the store lacked.
Result<WriteSummary> Commit(const format::Index& base_index, ImageBytes& image,
                            store::LocalStore& store, const CommitOptions& options);

}  // namespace hloop::writer
