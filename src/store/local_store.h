// A store in a local directory: chunks/ab/<hash> files plus NAME.idx files,
// laid out so that any static web server can serve the directory as is.
// LocalStore owns every stat, write and sync of these files; nothing else
// opens them (the paths are for messages and for the HTTP side).
//
// Thread-safe: methods may be called from many threads at once; every write
// goes to a temporary file that is renamed into place.
#pragma once

#include <string>
#include <vector>

#include "format/hash.h"
#include "util/status.h"

namespace hloop::store {

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

 private:
  explicit LocalStore(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

}  // namespace hloop::store
