#include "writer/image_bytes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace hloop::writer {

Result<std::unique_ptr<FileBytes>> FileBytes::Open(const std::string& path) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, path);
  struct stat sb;
  if (::fstat(fd.get(), &sb) != 0) return Status::FromErrno(errno, path);
  uint64_t size = uint64_t(sb.st_size);
  if (!S_ISREG(sb.st_mode)) {
    off_t end = ::lseek(fd.get(), 0, SEEK_END);  // block devices
    if (end < 0) return Status::FromErrno(errno, path);
    size = uint64_t(end);
  }
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::unique_ptr<FileBytes>(new FileBytes(path, std::move(fd), size));
}

Status FileBytes::ReadAt(uint64_t offset, size_t len, char* buf) {
  size_t got = 0;
  Status st = PreadFull(fd_.get(), buf, len, offset, &got);
  if (!st.ok()) return st.Annotate(path_);
  if (got != len) return Status::IOError(path_ + ": file shrank while being read");
  return Status::Ok();
}

}  // namespace hloop::writer
