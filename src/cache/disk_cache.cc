#include "cache/disk_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <vector>

#include <xxhash.h>

#include "util/bytes.h"
#include "util/file.h"
#include "util/log.h"

namespace hloop::cache {

namespace {

// A cache file (cache_format.h): header, then the content. The content was
// checked against its SHA-256 before it entered the cache; the XXH3 sum
// (about 20 times cheaper) only has to catch what a crash or a failing disk
// does to the file afterwards.
void MakeCacheHeader(std::string_view raw, uint8_t* h) {
  XXH128_hash_t sum = XXH3_128bits(raw.data(), raw.size());
  std::memcpy(h + kCacheFileMagicOffset, kCacheFileMagic, sizeof kCacheFileMagic);
  PutU32(h + kCacheFileLengthOffset, uint32_t(raw.size()));
  PutU64(h + kCacheFileSumLowOffset, sum.low64);
  PutU64(h + kCacheFileSumHighOffset, sum.high64);
}

bool CheckCacheFile(const uint8_t* header, std::string_view content) {
  uint8_t want[kCacheHeaderSize];
  MakeCacheHeader(content, want);
  return std::memcmp(header, want, kCacheHeaderSize) == 0;
}

// Writes header + content to a temporary file renamed into place.
Status WriteCacheFile(const std::string& path, std::string_view raw) {
  uint8_t header[kCacheHeaderSize];
  MakeCacheHeader(raw, header);
  std::string tmp = TempNameFor(path);
  ScopedFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno(errno, tmp);
  struct iovec iov[2] = {{header, kCacheHeaderSize}, {const_cast<char*>(raw.data()), raw.size()}};
  ssize_t n = ::writev(fd.get(), iov, 2);
  Status st;
  if (n < 0)
    st = Status::FromErrno(errno, "write " + tmp);
  else if (size_t(n) != kCacheHeaderSize + raw.size())
    st = Status::NoSpace("short write to " + tmp);
  if (st.ok() && ::close(fd.release()) != 0) st = Status::FromErrno(errno, "close " + tmp);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = Status::FromErrno(errno, "rename to " + path);
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

std::string VersionLine(uint64_t version) {
  return std::string(kCacheVersionMagic) + " " + std::to_string(version) + "\n";
}

// Checks DIR/format, or writes it in a directory that has none (new, or made
// before the file existed: the same layout as version 1).
Status CheckFormatVersion(const std::string& dir) {
  const std::string path = dir + "/" + std::string(kCacheVersionFile);
  auto text = ReadFile(path);
  if (!text.ok()) {
    if (!text.status().IsNotFound()) return text.status();
    const std::string line = VersionLine(kCacheFormatVersion);
    return WriteFileAtomic(path, line.data(), line.size(), Sync::kFull);
  }
  if (*text == VersionLine(kCacheFormatVersion)) return Status::Ok();
  std::string_view rest(*text);
  if (rest.substr(0, kCacheVersionMagic.size() + 1) == std::string(kCacheVersionMagic) + " ") {
    rest.remove_prefix(kCacheVersionMagic.size() + 1);
    uint64_t version = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), version);
    if (ec == std::errc() && std::string_view(end, size_t(rest.data() + rest.size() - end)) == "\n")
      return Status::Unsupported("cache " + dir + " has format version " + std::to_string(version) +
                                 "; this hloop reads version " +
                                 std::to_string(kCacheFormatVersion) +
                                 ": use another cache directory");
  }
  return Status::InvalidArgument(path + ": not an hloop cache format file (expected '" +
                                 std::string(kCacheVersionMagic) + " N')");
}

}  // namespace

Result<std::unique_ptr<DiskCache>> DiskCache::Open(const DiskCacheOptions& options) {
  if (options.dir.empty()) return Status::InvalidArgument("no cache directory given");
  if (!(options.low_watermark > 0 && options.low_watermark <= options.high_watermark &&
        options.high_watermark <= 1.0))
    return Status::InvalidArgument("cache watermarks must satisfy 0 < low <= high <= 1");
  HLOOP_RETURN_IF_ERROR(MakeDirs(options.dir));
  HLOOP_RETURN_IF_ERROR(CheckFormatVersion(options.dir));
  HLOOP_RETURN_IF_ERROR(MakeDirs(options.dir + "/" + std::string(kCacheChunksDir)));
  HLOOP_RETURN_IF_ERROR(MakeDirs(options.dir + "/" + std::string(kCacheUrlCopiesDir)));
  std::unique_ptr<DiskCache> c(new DiskCache(options));
  HLOOP_RETURN_IF_ERROR(c->Scan());
  return c;
}

std::string DiskCache::PathOf(const format::Hash& h) const {
  return options_.dir + "/" + format::ChunkPath(h);
}

Status DiskCache::Scan() {
  struct Found {
    format::Hash hash;
    uint64_t size;
    int64_t mtime_ns;
  };
  std::vector<Found> found;
  std::string top = options_.dir + "/" + std::string(kCacheChunksDir);
  DIR* d = ::opendir(top.c_str());
  if (!d) return Status::FromErrno(errno, top);
  std::vector<std::string> subs;
  while (auto* e = ::readdir(d))
    if (e->d_name[0] != '.') subs.push_back(e->d_name);
  ::closedir(d);
  for (const auto& sub : subs) {
    std::string dir = top + "/" + sub;
    DIR* sd = ::opendir(dir.c_str());
    if (!sd) continue;
    while (auto* e = ::readdir(sd)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string path = dir + "/" + name;
      format::Hash h;
      struct stat sb;
      if (!format::ParseHash(name, &h)) {
        // Left over from a crash mid-write: a temporary file never renamed.
        if (name.find(".tmp.") != std::string::npos) ::unlink(path.c_str());
        continue;
      }
      if (::stat(path.c_str(), &sb) != 0) continue;
      found.push_back(
          {h, uint64_t(sb.st_size), int64_t(sb.st_mtim.tv_sec) * 1000000000 + sb.st_mtim.tv_nsec});
    }
    ::closedir(sd);
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.mtime_ns > b.mtime_ns; });
  MutexLock lock(&mu_);
  for (const auto& f : found) {
    lru_.push_back({f.hash, f.size});
    map_[f.hash] = std::prev(lru_.end());
    used_ += f.size;
  }
  if (used_ > uint64_t(options_.high_watermark * double(options_.max_bytes)))
    EvictTo(uint64_t(options_.low_watermark * double(options_.max_bytes)));
  return Status::Ok();
}

void DiskCache::Remove(const format::Hash& h) {
  auto it = map_.find(h);
  if (it == map_.end()) return;
  used_ -= it->second->size;
  lru_.erase(it->second);
  map_.erase(it);
  ::unlink(PathOf(h).c_str());
}

void DiskCache::EvictTo(uint64_t target) {
  auto it = lru_.end();
  while (used_ > target && it != lru_.begin()) {
    --it;
    if (pins_.count(it->hash) || writing_.count(it->hash)) continue;
    format::Hash h = it->hash;
    it = std::next(it);  // Remove() invalidates the current element only
    Remove(h);
    stats_.evicted++;
  }
}

void DiskCache::Touch(const format::Hash& h) {
  auto it = map_.find(h);
  if (it != map_.end()) lru_.splice(lru_.begin(), lru_, it->second);
}

uint64_t DiskCache::FreeSpaceAfterReserve() {
  struct statvfs vs;
  if (::statvfs(options_.dir.c_str(), &vs) != 0) return 0;
  uint64_t avail = uint64_t(vs.f_bavail) * vs.f_frsize;
  uint64_t total = uint64_t(vs.f_blocks) * vs.f_frsize;
  uint64_t reserve =
      std::max(options_.reserve_bytes, uint64_t(options_.reserve_fraction * double(total)));
  return avail > reserve ? avail - reserve : 0;
}

Status DiskCache::Get(const format::Hash& h, uint32_t size, std::string* out) {
  {
    MutexLock lock(&mu_);
    pins_[h]++;
  }
  const std::string path = PathOf(h);
  Status result = Status::Ok();
  bool bad = false;
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    result = Status::NotFound("not cached");
  } else {
    // One readv of header and content, straight into *out; fstat catches a
    // file that is too long.
    uint8_t header[kCacheHeaderSize];
    out->resize(size);
    struct iovec iov[2] = {{header, kCacheHeaderSize}, {out->data(), size}};
    ssize_t got = ::preadv(fd.get(), iov, 2, 0);
    struct stat sb;
    if (got != ssize_t(kCacheHeaderSize + size) || ::fstat(fd.get(), &sb) != 0 ||
        uint64_t(sb.st_size) != kCacheHeaderSize + size || !CheckCacheFile(header, *out)) {
      bad = true;
      LogWarn("cache file " + path + " is truncated or corrupt; discarding it");
    } else {
      ::futimens(fd.get(), nullptr);  // recency, kept across restarts
    }
  }
  MutexLock lock(&mu_);
  if (--pins_[h] == 0) pins_.erase(h);
  if (bad) {
    // A Put under way will rename a good file over the bad one.
    if (writing_.count(h)) {
    } else if (map_.count(h)) {
      Remove(h);
    } else {
      ::unlink(path.c_str());
    }
    stats_.corrupt_discarded++;
    result = Status::NotFound("discarded a corrupt cache file");
  }
  if (result.ok()) {
    stats_.hits++;
    if (!map_.count(h)) {  // another process added it
      lru_.push_front({h, kCacheHeaderSize + size});
      map_[h] = lru_.begin();
      used_ += kCacheHeaderSize + size;
    }
    Touch(h);
  } else {
    stats_.misses++;
    // Another process evicted it, unless a Put of ours is still writing it
    // or renamed it into place after our open() failed: look again.
    if (!bad && map_.count(h) && !writing_.count(h) && ::access(path.c_str(), F_OK) != 0) Remove(h);
  }
  return result;
}

bool DiskCache::Contains(const format::Hash& h) {
  MutexLock lock(&mu_);
  return map_.count(h) != 0;
}

Status DiskCache::Put(const format::Hash& h, std::string_view raw) {
  const uint64_t size = kCacheHeaderSize + raw.size();
  {
    MutexLock lock(&mu_);
    if (map_.count(h) || writing_.count(h)) return Status::Ok();
    const uint64_t high = uint64_t(options_.high_watermark * double(options_.max_bytes));
    const uint64_t low = uint64_t(options_.low_watermark * double(options_.max_bytes));
    if (size > low) {
      stats_.skipped_for_space++;
      return Status::NoSpace("chunk larger than the cache");
    }
    if (used_ + size > high) EvictTo(low - size);
    uint64_t free = FreeSpaceAfterReserve();
    if (free < size) {
      EvictTo(used_ > size - free ? used_ - (size - free) : 0);
      free = FreeSpaceAfterReserve();
    }
    if (free < size || used_ + size > options_.max_bytes) {
      stats_.skipped_for_space++;
      return Status::NoSpace("cache " + options_.dir + ": no room left above the disk reserve");
    }
    writing_.insert(h);  // eviction and misses keep away until it is written
    lru_.push_front({h, size});
    map_[h] = lru_.begin();
    used_ += size;
  }
  const std::string path = PathOf(h);
  std::string dir = path.substr(0, path.rfind('/'));
  Status st = Status::Ok();
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    st = Status::FromErrno(errno, "mkdir " + dir);
  if (st.ok()) st = WriteCacheFile(path, raw);
  MutexLock lock(&mu_);
  writing_.erase(h);
  if (!st.ok()) {
    Remove(h);
    return st;
  }
  stats_.inserted++;
  return Status::Ok();
}

std::string DiskCache::UrlCopyPath(const std::string& url) const {
  return options_.dir + "/" + std::string(kCacheUrlCopiesDir) + "/" +
         format::ToHex(format::Sha256(url)) + std::string(kCacheUrlCopySuffix);
}

Status DiskCache::PutUrlCopy(const std::string& url, const std::string& bytes) {
  return WriteFileAtomic(UrlCopyPath(url), bytes.data(), bytes.size(), Sync::kFull);
}

Result<std::string> DiskCache::GetUrlCopy(const std::string& url) {
  return ReadFile(UrlCopyPath(url));
}

DiskCacheStats DiskCache::stats() {
  MutexLock lock(&mu_);
  DiskCacheStats s = stats_;
  s.used_bytes = used_;
  s.entries = map_.size();
  return s;
}

}  // namespace hloop::cache
