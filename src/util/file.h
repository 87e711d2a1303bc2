// File helpers: an owning descriptor, whole-file reads, atomic replacement.
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace hloop {

// Owns a file descriptor; closes it on destruction. Movable, not copyable.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(ScopedFd&& o) noexcept : fd_(o.release()) {}
  ScopedFd& operator=(ScopedFd&& o) noexcept;
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_ = -1;
};

// Reads a whole file. NotFound if it does not exist.
Result<std::string> ReadFile(const std::string& path);
// Reads exactly `len` bytes at `offset` (short only at end of file).
Status PreadFull(int fd, void* buf, size_t len, uint64_t offset, size_t* got);
Status WriteFull(int fd, const void* buf, size_t len);

// How far WriteFileAtomic takes the data towards the disk before returning.
enum class Sync {
  kNone,   // page cache only
  kStart,  // also start write-back now (sync_file_range), so that a later
           // syncfs() of many such files has little left to wait for
  kFull,   // fsync the file before the rename
};

// Writes `data` to a temporary file in the same directory, syncs it as
// asked, and renames it over `path`: readers see the old file or the new
// one, never a partial one.
Status WriteFileAtomic(const std::string& path, const void* data, size_t len, Sync sync);
// WriteFileAtomic with Sync::kFull, then an fsync of the directory, so the
// new name survives a crash too.
Status WriteFileDurable(const std::string& path, const std::string& data);
// Writes `data` to a new file `path` with permission `mode`, durably (temp
// file, fsync, link(2), fsync of the directory). Refuses, with an error
// naming `path`, if `path` exists: nothing is ever overwritten.
Status WriteNewFile(const std::string& path, const std::string& data, unsigned mode);
// fsyncs the directory that holds `path` (".", if `path` has no '/').
Status SyncParentDir(const std::string& path);
// Reads a whole file that must be at most `limit` bytes; a larger one is
// refused (InvalidArgument naming the file and both sizes) before it is read.
Result<std::string> ReadFileLimited(const std::string& path, size_t limit);
// mkdir -p.
Status MakeDirs(const std::string& path);
// `path` as a process whose root directory is `root` (an absolute directory)
// sees it: PathInside("/run/hloop", "/run/hloop/cache") is "/cache", and
// `root` itself is "/". A relative `path` is taken from the current
// directory. Lexical (symbolic links are not followed); InvalidArgument if
// `path` is not inside `root`.
Result<std::string> PathInside(const std::string& root, const std::string& path);
// A unique temporary name beside `path` ("path.tmp.<pid>.<n>").
std::string TempNameFor(const std::string& path);

}  // namespace hloop
