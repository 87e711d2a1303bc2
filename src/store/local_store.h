// A store in a local directory: chunks/ab/<hash> files plus NAME.idx files,
// laid out so that any static web server can serve the directory as is.
// LocalStore owns every stat, write and sync of these files; nothing else
// opens them (the paths are for messages and for the HTTP side).
//
// Thread-safe: methods may be called from many threads at once; every write
// goes to a temporary file that is renamed into place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/hash.h"
#include "util/status.h"

namespace hloop::store {

// A chunk file as listed by LocalStore::ListChunkFiles.
struct ChunkFileInfo {
  format::Hash hash{};
  uint64_t size = 0;  // bytes
  int64_t mtime = 0;  // seconds since the epoch
};

class LocalStore {
 public:
  // Creates the directory (and chunks/) if missing.
  static Result<LocalStore> Open(const std::string& root, bool create);

  const std::string& root() const { return root_; }
  std::string ChunkFilePath(const format::Hash& h) const;
  std::string IndexPath(const std::string& name) const;

  bool HasChunk(const format::Hash& h) const;
  // Size of the chunk file for `h`, or 0 when the store has none that could
  // be one (missing, or no longer than a chunk header: say, left empty by a
  // crash before a sync). Not a check of its content (see PutChunk).
  uint32_t ChunkFileSize(const format::Hash& h) const;
  // Sets the modification time of the chunk file for `h` to now: a writer
  // that reuses a chunk file marks it fresh, so that `hloop gc`'s grace
  // period keeps it until the new index that names it is written.
  Status TouchChunk(const format::Hash& h) const;
  // Writes a chunk file unless a valid one with this name exists already
  // (an invalid one, e.g. left empty by a crash, is replaced). Sets
  // *written to whether this call added it. `durable` fsyncs the file.
  Status PutChunk(const format::Hash& h, const std::string& file, bool durable, bool* written);
  Result<std::string> ReadChunk(const format::Hash& h) const;
  // Makes every chunk file written so far durable (syncfs of the store's
  // file system): call it before writing an index that names them. A store
  // directory that cannot be opened is an error.
  Status SyncChunks();
  // Atomically writes NAME.idx (fsynced; the directory too).
  Status PutIndex(const std::string& name, const std::string& bytes);
  Result<std::string> ReadIndex(const std::string& name) const;
  // Names (without .idx) of every index in the store, sorted.
  Result<std::vector<std::string>> ListIndexes() const;
  // Every chunk file in the store, by hash (files with other names are skipped).
  Result<std::vector<format::Hash>> ListChunks() const;
  // The same, with each file's size and modification time, sorted by hash.
  // A file that vanishes while listed is left out.
  Result<std::vector<ChunkFileInfo>> ListChunkFiles() const;
  // Names of the regular files at the top of the store whose name ends with
  // `suffix` (say ".channel"), sorted; the suffix is kept.
  Result<std::vector<std::string>> ListTopFiles(const std::string& suffix) const;

  // Removal, for garbage collection. Each removes one name with unlink(2),
  // so a reader sees the file whole or not at all.
  //
  // Removes the chunk file for `h` if its mtime is still at most `not_after`
  // (seconds since the epoch): a file rewritten since it was listed is kept.
  // *removed says whether it was removed; a file already gone is not an error.
  Status RemoveChunk(const format::Hash& h, int64_t not_after, bool* removed);
  // Removes NAME.idx, then its signature NAME.idx.sig if there is one (in
  // that order: the index is the root that names chunks), and syncs the
  // directory. NotFound if NAME.idx does not exist.
  Status RemoveIndex(const std::string& name);

 private:
  explicit LocalStore(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

}  // namespace hloop::store
