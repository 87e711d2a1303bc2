// The image writer: the one pipeline that turns image bytes into chunk files
// and an index in a local store. `hloop pack` (pack/packer.h) and
// `hloop commit` (writer/commit.h) are policies over it.
//
// Worker threads claim chunks in turn. Each chunk is read from the source,
// found all-zero (an entry, no file) or hashed; the first chunk with a given
// content that the store lacks is encoded and stored. With a base index,
// chunks the source reports unchanged (ImageBytes::MayDiffer) keep the
// base's entry and are not read, unless the store lacks their chunk file
// (then they are read and copied, so the new version is whole in `store`).
// When every chunk is done, the chunk files are synced and the index is
// written, atomically: an index never names a chunk file that is not on disk.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "format/format.h"
#include "format/hash.h"
#include "format/index.h"
#include "store/local_store.h"
#include "util/status.h"
#include "writer/image_bytes.h"
#include "writer/layout_writer.h"

namespace hloop::writer {

// The thread default: one per core, at most this many (past it the writer
// waits on the disk and the source, not on hashing and compression).
inline constexpr unsigned kMaxDefaultThreads = 16;

struct WriteOptions {
  // The index: STORE/NAME.idx, replaced if it exists. Required: not empty,
  // no '/', not starting with '.'.
  std::string name;
  // With a base: must be the base's.
  uint32_t chunk_size = format::kDefaultChunkSize;
  // The codec of the index, and of the chunk files this run writes.
  format::Codec codec = format::Codec::kZstd;
  int level = -1;        // compression level; -1: the codec's default
  unsigned threads = 0;  // 0: one per core, at most kMaxDefaultThreads
  // Unchanged chunks (see ImageBytes::MayDiffer) reuse its entries. Must
  // describe an image of the source's size in chunks of `chunk_size`, and
  // outlive the call. Null: every chunk is read.
  const format::Index* base = nullptr;
  // Recorded in the new index as the version it derives from.
  std::optional<format::Hash> parent_digest;
  std::string parent_name;
  // Called from the calling thread about five times a second with the bytes
  // of the image handled so far, and last with (size, size) on success.
  std::function<void(uint64_t bytes_done, uint64_t bytes_total)> progress;
  // Hot chunks and extents to add (writer/layout_writer.h); null: none.
  // Must outlive the call.
  const LayoutPlan* layout = nullptr;
};

struct WriteSummary {
  uint64_t chunks_total = 0;
  uint64_t chunks_changed = 0;  // chunks that may differ from the base (all, without one)
  uint64_t chunks_unique = 0;   // distinct non-zero chunks in the image
  uint64_t chunks_new = 0;      // chunk files this run added to the store
  uint64_t bytes_new = 0;       // their size
  uint64_t chunks_copied = 0;  // of those, unchanged chunks the store lacked (read from the source)
  uint64_t chunks_zero = 0;    // zero chunks in the image
  uint64_t bytes_read = 0;     // from the source
  uint64_t stored_bytes = 0;   // the image's distinct chunk files, old and new
  uint64_t bytes_written = 0;  // bytes_new plus the index
  double seconds = 0;
  std::string index_path;
  format::Hash digest{};  // SHA-256 of the index written
  LayoutSummary layout;   // with a layout plan (its hot chunks are in the counts above too)
};

// Writes the image `bytes` reads into `store` as `options.name` (see the
// top of this file). The source is read from several threads at once.
Result<WriteSummary> WriteImage(ImageBytes& bytes, store::LocalStore& store,
                                const WriteOptions& options);

// Whether `name` may name an index in a store (see WriteOptions::name).
bool IsValidImageName(const std::string& name);

}  // namespace hloop::writer
