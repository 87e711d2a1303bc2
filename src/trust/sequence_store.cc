#include "trust/sequence_store.h"

#include <sys/stat.h>

#include <cerrno>

#include "format/hash.h"
#include "util/file.h"

namespace hloop::trust {

namespace {
constexpr size_t kMaxSequenceFileSize = 64;
}

Result<SequenceStore> SequenceStore::Open(const std::string& dir) {
  size_t slash = dir.rfind('/');
  if (slash != std::string::npos && slash > 0)
    HLOOP_RETURN_IF_ERROR(MakeDirs(dir.substr(0, slash)));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::FromErrno(errno, "mkdir " + dir);
  struct stat sb;
  if (::stat(dir.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode))
    return Status::IOError(dir + ": not a directory");
  return SequenceStore(dir);
}

std::string SequenceStore::PathFor(const std::string& url) const {
  return dir_ + "/" + format::ToHex(format::Sha256(url));
}

Result<uint64_t> SequenceStore::Highest(const std::string& url) const {
  std::string path = PathFor(url);
  auto text = ReadFileLimited(path, kMaxSequenceFileSize);
  if (!text.ok()) return text.status().IsNotFound() ? Result<uint64_t>(0) : text.status();
  std::string_view t = *text;
  uint64_t n = 0;
  bool ok = t.size() >= 2 && t.back() == '\n' && t.size() <= 21;
  for (size_t i = 0; ok && i + 1 < t.size(); i++) {
    uint64_t digit = uint64_t(t[i] - '0');
    ok = t[i] >= '0' && t[i] <= '9' && n <= (UINT64_MAX - digit) / 10;
    n = n * 10 + digit;
  }
  if (!ok)
    return Status::Corruption("sequence record " + path + " for " + url +
                              ": not a decimal number and a newline");
  return n;
}

Status SequenceStore::Record(const std::string& url, uint64_t sequence) {
  auto highest = Highest(url);
  if (!highest.ok()) return highest.status();
  if (*highest >= sequence) return Status::Ok();
  return WriteFileDurable(PathFor(url), std::to_string(sequence) + "\n");
}

}  // namespace hloop::trust
