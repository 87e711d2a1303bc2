// A store in a local directory: chunks/ab/<hash> files plus NAME.idx files,
// laid out so that any static web server can serve the directory as is.
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
  // Writes a chunk file unless a valid one with this name exists already
  // (an invalid one, e.g. left empty by a crash, is replaced). Sets
  // *written to whether this call added it. `durable` fsyncs the file.
  Status PutChunk(const format::Hash& h, const std::string& file, bool durable, bool* written);
  Result<std::string> ReadChunk(const format::Hash& h) const;
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
