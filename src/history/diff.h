// Comparing two versions of an image by their indexes: which chunks changed,
// which image bytes, and what a client holding one must download to get the
// other. Pure: works on parsed indexes, no I/O.
#pragma once

#include <cstdint>
#include <vector>

#include "format/hash.h"
#include "format/index.h"
#include "util/status.h"

namespace hloop::history {

// The distinct chunk files an index references (its non-zero table entries
// and the hot chunks of its layout, if any), sorted by
// hash, each with its stored size: a set with O(log n) lookup and one
// allocation in all (an image of 2 GiB in 256 KiB chunks has 8192 entries).
class ChunkSet {
 public:
  struct File {
    format::Hash hash;
    uint32_t stored_size;
    bool operator<(const File& o) const { return hash < o.hash; }
  };
  ChunkSet() = default;
  explicit ChunkSet(const format::Index& index) {
    Add(index);
    Seal();
  }
  // Adds the chunk files of `index`; then Seal() before any lookup.
  void Add(const format::Index& index);
  // Sorts and drops duplicates.
  void Seal();
  // REQUIRES: sealed since the last Add.
  bool Contains(const format::Hash& h) const;
  // Distinct files, sorted by hash. REQUIRES: sealed since the last Add.
  const std::vector<File>& files() const { return files_; }

 private:
  std::vector<File> files_;
};

// Chunk files of `to` that `from` does not have: what a client holding
// `from` downloads to get `to`, and what packing or committing `to` over a
// store holding only `from` adds to it.
struct NewFiles {
  uint64_t files = 0;
  uint64_t bytes = 0;  // their stored (compressed) size
};
NewFiles NewChunkFiles(const format::Index& from, const format::Index& to);

// A range of image bytes.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const ByteRange&) const = default;
};

// Chunk number i compared between A and B. A chunk past the end of an image
// counts as absent; "data" is a non-zero chunk, "zero" an all-zero one.
//   added:   data in B; zero or absent in A
//   removed: data in A; zero or absent in B
//   changed: data in both, with different content
//   unchanged: the same content in both (data, or zero in both)
// A chunk that is zero in one and absent in the other (the image grew or
// shrank by zeros) is in none of the counts, but its bytes are in `ranges`.
struct DiffResult {
  uint64_t chunks_a = 0, chunks_b = 0;  // chunk counts of A and B
  uint64_t chunks_added = 0;
  uint64_t chunks_removed = 0;
  uint64_t chunks_changed = 0;
  uint64_t chunks_unchanged = 0;
  NewFiles download;  // NewChunkFiles(A, B)
  // Image byte ranges whose content differs (B's bytes against A's, in
  // the larger image's extent), adjacent ones merged, in order.
  std::vector<ByteRange> ranges;
  uint64_t bytes_changed = 0;  // sum of the ranges' lengths
  // Layouts (EXTENTS records). The table comparison above holds with or
  // without them: a table entry always names its chunk's full content.
  bool layout_a = false, layout_b = false;  // whether A, B have a layout
  uint64_t hot_chunks_a = 0, hot_chunks_b = 0;
  // The hot chunks of B whose files A does not reference (as a table or a
  // hot chunk): what a client of A fetches of B's hot chunks to move to B.
  // Part of `download`.
  NewFiles hot_download;
};

// InvalidArgument if A and B have different chunk sizes (then chunks do not
// line up; NewChunkFiles still answers the download question).
Result<DiffResult> Diff(const format::Index& a, const format::Index& b);

}  // namespace hloop::history
