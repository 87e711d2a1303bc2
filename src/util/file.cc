#include "util/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>

namespace hloop {

ScopedFd& ScopedFd::operator=(ScopedFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

ScopedFd::~ScopedFd() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::string> ReadFile(const std::string& path) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, path);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, path);
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  return out;
}

Status PreadFull(int fd, void* buf, size_t len, uint64_t offset, size_t* got) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, static_cast<char*>(buf) + done, len - done, off_t(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read");
    }
    if (n == 0) break;
    done += size_t(n);
  }
  *got = done;
  return Status::Ok();
}

Status WriteFull(int fd, const void* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::write(fd, static_cast<const char*>(buf) + done, len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write");
    }
    done += size_t(n);
  }
  return Status::Ok();
}

Result<std::string> PathInside(const std::string& root, const std::string& path) {
  namespace fs = std::filesystem;
  fs::path r = fs::path(root).lexically_normal();
  if (!r.is_absolute()) return Status::InvalidArgument("'" + root + "' is not an absolute path");
  std::error_code ec;
  fs::path p = fs::path(path).is_absolute() ? fs::path(path) : fs::current_path(ec) / path;
  if (ec) return Status::FromErrno(ec.value(), "current directory");
  fs::path rel = p.lexically_normal().lexically_relative(r);
  if (rel.empty() || *rel.begin() == "..")
    return Status::InvalidArgument("'" + path + "' is not inside '" + root + "'");
  std::string inside = (fs::path("/") / rel).lexically_normal().string();
  // "/." for the root itself; a trailing '/' of a directory is dropped.
  if (inside == "/.") return std::string("/");
  if (inside.size() > 1 && inside.back() == '/') inside.pop_back();
  return inside;
}

std::string TempNameFor(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

Status WriteFileAtomic(const std::string& path, const void* data, size_t len, Sync sync) {
  std::string tmp = TempNameFor(path);
  ScopedFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno(errno, tmp);
  Status st = WriteFull(fd.get(), data, len);
  if (st.ok() && sync == Sync::kFull && ::fsync(fd.get()) != 0)
    st = Status::FromErrno(errno, "fsync " + tmp);
  if (st.ok() && sync == Sync::kStart) ::sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
  if (st.ok() && ::close(fd.release()) != 0) st = Status::FromErrno(errno, "close " + tmp);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = Status::FromErrno(errno, "rename to " + path);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st.Annotate(path);
  }
  return Status::Ok();
}

Status SyncParentDir(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  ScopedFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, dir);
  if (::fsync(fd.get()) != 0) return Status::FromErrno(errno, "fsync " + dir);
  return Status::Ok();
}

Status WriteFileDurable(const std::string& path, const std::string& data) {
  HLOOP_RETURN_IF_ERROR(WriteFileAtomic(path, data.data(), data.size(), Sync::kFull));
  return SyncParentDir(path);
}

Status WriteNewFile(const std::string& path, const std::string& data, unsigned mode) {
  std::string tmp = TempNameFor(path);
  ScopedFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.valid()) return Status::FromErrno(errno, tmp);
  // The umask must not widen or narrow what the caller asked for.
  Status st = ::fchmod(fd.get(), mode) == 0 ? Status::Ok() : Status::FromErrno(errno, tmp);
  if (st.ok()) st = WriteFull(fd.get(), data.data(), data.size());
  if (st.ok() && ::fsync(fd.get()) != 0) st = Status::FromErrno(errno, "fsync " + tmp);
  if (st.ok() && ::close(fd.release()) != 0) st = Status::FromErrno(errno, "close " + tmp);
  if (st.ok() && ::link(tmp.c_str(), path.c_str()) != 0) {
    st = errno == EEXIST
             ? Status::InvalidArgument(path + ": exists already; refusing to overwrite it")
             : Status::FromErrno(errno, "link to " + path);
  }
  ::unlink(tmp.c_str());
  if (!st.ok()) return st;
  return SyncParentDir(path);
}

Result<std::string> ReadFileLimited(const std::string& path, size_t limit) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, path);
  struct stat sb;
  if (::fstat(fd.get(), &sb) != 0) return Status::FromErrno(errno, path);
  if (uint64_t(sb.st_size) > limit)
    return Status::InvalidArgument(path + ": " + std::to_string(sb.st_size) +
                                   " bytes, more than the limit of " + std::to_string(limit));
  // Room for what the file holds and one byte more, to see it grow since
  // fstat (a 1 GiB limit does not allocate 1 GiB for a small file).
  const size_t room = size_t(sb.st_size) + 1;
  std::string out(room, '\0');
  size_t got = 0;
  HLOOP_RETURN_IF_ERROR(PreadFull(fd.get(), out.data(), out.size(), 0, &got).Annotate(path));
  if (got > limit)
    return Status::InvalidArgument(path + ": more than the limit of " + std::to_string(limit) +
                                   " bytes");
  if (got == room) return Status::IOError(path + ": grew while being read");
  out.resize(got);
  return out;
}

Status MakeDirs(const std::string& path) {
  if (path.empty()) return Status::Ok();
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
      return Status::FromErrno(errno, "mkdir " + cur);
  }
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode))
    return Status::IOError(path + ": not a directory");
  return Status::Ok();
}

}  // namespace hloop
