// Rollback protection: the highest channel sequence number a client has
// accepted for each channel URL, kept durably across restarts (and crashes)
// in files under a directory of the cache.
//
// One file per URL, named by the hex SHA-256 of the URL, holding the number
// in decimal and a newline. Record() replaces it atomically and durably
// (temporary file, fsync, rename, fsync of the directory): after a crash
// the old or the new number is there, never a torn one.
//
// Thread-compatible; two processes recording the same URL at once may each
// keep its own number (the larger one of the last writer wins).
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace hloop::trust {

class SequenceStore {
 public:
  // Creates `dir` (mode 0700) if missing.
  static Result<SequenceStore> Open(const std::string& dir);
  // The highest sequence recorded for `url`; 0 if never seen. A file that
  // cannot be read as a number is Corruption (never taken as 0).
  Result<uint64_t> Highest(const std::string& url) const;
  // Records `sequence` for `url` unless a higher one is recorded already.
  Status Record(const std::string& url, uint64_t sequence);
  const std::string& dir() const { return dir_; }

 private:
  explicit SequenceStore(std::string dir) : dir_(std::move(dir)) {}
  std::string PathFor(const std::string& url) const;
  std::string dir_;
};

}  // namespace hloop::trust
