#include "store/local_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "format/chunk_file.h"
#include "format/format.h"
#include "util/bytes.h"
#include "util/file.h"

namespace hloop::store {

namespace {
bool IsValidChunkFile(const std::string& path, const format::Hash& h) {
  auto data = ReadFile(path);
  if (!data.ok()) return false;
  auto header = format::ParseChunkHeader(data.value());
  std::string raw;
  return header.ok() && format::DecodeChunk(data.value(), h, header->raw_size, &raw).ok();
}
}  // namespace

Result<LocalStore> LocalStore::Open(const std::string& root, bool create) {
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  if (create) {
    HLOOP_RETURN_IF_ERROR(MakeDirs(r + "/" + format::kChunkDir));
  } else {
    struct stat sb;
    if (::stat(r.c_str(), &sb) != 0) return Status::FromErrno(errno, "store " + r);
    if (!S_ISDIR(sb.st_mode)) return Status::InvalidArgument("store " + r + ": not a directory");
  }
  return LocalStore(r);
}

std::string LocalStore::ChunkFilePath(const format::Hash& h) const {
  return root_ + "/" + format::ChunkPath(h);
}

std::string LocalStore::IndexPath(const std::string& name) const {
  return root_ + "/" + name + format::kIndexSuffix;
}

bool LocalStore::HasChunk(const format::Hash& h) const {
  return ::access(ChunkFilePath(h).c_str(), F_OK) == 0;
}

uint32_t LocalStore::ChunkFileSize(const format::Hash& h) const {
  struct stat sb;
  if (::stat(ChunkFilePath(h).c_str(), &sb) != 0 ||
      uint64_t(sb.st_size) <= format::kChunkHeaderSize)
    return 0;
  return uint32_t(sb.st_size);
}

Status LocalStore::TouchChunk(const format::Hash& h) const {
  const std::string path = ChunkFilePath(h);
  if (::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) != 0) return Status::FromErrno(errno, path);
  return Status::Ok();
}

Status LocalStore::PutChunk(const format::Hash& h, const std::string& file, bool durable,
                            bool* written) {
  *written = false;
  std::string path = ChunkFilePath(h);
  // Same name, same size: the same content (names are content hashes). A file
  // of another size may be the same content under another codec, which older
  // indexes point at with its size: keep it if it is valid. Replace debris
  // (say, a file left empty by a crash).
  struct stat sb;
  if (::stat(path.c_str(), &sb) == 0) {
    if (uint64_t(sb.st_size) == file.size()) return Status::Ok();
    if (IsValidChunkFile(path, h)) return Status::Ok();
  }
  std::string dir = path.substr(0, path.rfind('/'));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return Status::FromErrno(errno, "mkdir " + dir);
  HLOOP_RETURN_IF_ERROR(
      WriteFileAtomic(path, file.data(), file.size(), durable ? Sync::kFull : Sync::kStart));
  *written = true;
  return Status::Ok();
}

Result<std::string> LocalStore::ReadChunk(const format::Hash& h) const {
  return ReadFile(ChunkFilePath(h));
}

Status LocalStore::SyncChunks() {
  ScopedFd root(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid() || ::syncfs(root.get()) != 0) return Status::FromErrno(errno, "sync " + root_);
  return Status::Ok();
}

Status LocalStore::PutIndex(const std::string& name, const std::string& bytes) {
  HLOOP_RETURN_IF_ERROR(WriteFileAtomic(IndexPath(name), bytes.data(), bytes.size(), Sync::kFull));
  ScopedFd dir(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) ::fsync(dir.get());
  return Status::Ok();
}

Result<std::string> LocalStore::ReadIndex(const std::string& name) const {
  return ReadFile(IndexPath(name));
}

namespace {
// Calls fn(name) for each entry of `dir` except . and ..
template <typename Fn>
Status ForEachEntry(const std::string& dir, Fn fn) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Status::FromErrno(errno, dir);
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") fn(n);
  }
  ::closedir(d);
  return Status::Ok();
}
}  // namespace

Result<std::vector<std::string>> LocalStore::ListIndexes() const {
  std::vector<std::string> out;
  const std::string suffix = format::kIndexSuffix;
  HLOOP_RETURN_IF_ERROR(ForEachEntry(root_, [&](const std::string& n) {
    if (n.size() > suffix.size() && n.ends_with(suffix))
      out.push_back(n.substr(0, n.size() - suffix.size()));
  }));
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
// Calls fn(dir, name, hash) for every chunk file name under root/chunks/.
template <typename Fn>
Status ForEachChunkFile(const std::string& root, Fn fn) {
  std::string top = root + "/" + format::kChunkDir;
  std::vector<std::string> fanout;
  HLOOP_RETURN_IF_ERROR(ForEachEntry(top, [&](const std::string& n) { fanout.push_back(n); }));
  for (const auto& sub : fanout) {
    // Only the two-hex-digit fan-out directories hold chunks; anything else
    // (a README, editor droppings) is not ours to judge.
    uint8_t byte;
    if (!HexDecode(sub, &byte, 1)) continue;
    struct stat sb;
    const std::string dir = top + "/" + sub;
    if (::stat(dir.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode)) continue;
    Status st = ForEachEntry(dir, [&](const std::string& n) {
      format::Hash h;
      if (n.compare(0, 2, sub) == 0 && format::ParseHash(n, &h)) fn(dir, n, h);
    });
    if (!st.ok() && !st.IsNotFound()) return st;
  }
  return Status::Ok();
}
}  // namespace

Result<std::vector<format::Hash>> LocalStore::ListChunks() const {
  std::vector<format::Hash> out;
  HLOOP_RETURN_IF_ERROR(ForEachChunkFile(root_, [&](const std::string&, const std::string&,
                                                    const format::Hash& h) { out.push_back(h); }));
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<ChunkFileInfo>> LocalStore::ListChunkFiles() const {
  std::vector<ChunkFileInfo> out;
  HLOOP_RETURN_IF_ERROR(ForEachChunkFile(
      root_, [&](const std::string& dir, const std::string& name, const format::Hash& h) {
        struct stat sb;
        if (::stat((dir + "/" + name).c_str(), &sb) != 0 || !S_ISREG(sb.st_mode)) return;
        out.push_back({.hash = h, .size = uint64_t(sb.st_size), .mtime = int64_t(sb.st_mtime)});
      }));
  std::sort(out.begin(), out.end(),
            [](const ChunkFileInfo& a, const ChunkFileInfo& b) { return a.hash < b.hash; });
  return out;
}

Result<std::vector<std::string>> LocalStore::ListTopFiles(const std::string& suffix) const {
  std::vector<std::string> out;
  HLOOP_RETURN_IF_ERROR(ForEachEntry(root_, [&](const std::string& n) {
    struct stat sb;
    if (n.size() > suffix.size() && n.ends_with(suffix) &&
        ::stat((root_ + "/" + n).c_str(), &sb) == 0 && S_ISREG(sb.st_mode))
      out.push_back(n);
  }));
  std::sort(out.begin(), out.end());
  return out;
}

Status LocalStore::RemoveChunk(const format::Hash& h, int64_t not_after, bool* removed) {
  *removed = false;
  const std::string path = ChunkFilePath(h);
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::FromErrno(errno, "stat " + path);
  }
  if (int64_t(sb.st_mtime) > not_after) return Status::Ok();
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::FromErrno(errno, "remove " + path);
  }
  *removed = true;
  return Status::Ok();
}

Status LocalStore::RemoveIndex(const std::string& name) {
  const std::string path = IndexPath(name);
  if (::unlink(path.c_str()) != 0) return Status::FromErrno(errno, "remove " + path);
  const std::string sig = path + ".sig";
  if (::unlink(sig.c_str()) != 0 && errno != ENOENT)
    return Status::FromErrno(errno, "remove " + sig);
  ScopedFd dir(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid() || ::fsync(dir.get()) != 0) return Status::FromErrno(errno, "sync " + root_);
  return Status::Ok();
}

}  // namespace hloop::store
