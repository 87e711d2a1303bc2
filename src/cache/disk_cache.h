// The on-disk cache of verified chunks, shared by every image and version that
// uses the same directory, kept across restarts.
//
// Layout (cache_format.h, docs/format.md): DIR/chunks/ab/<hash> holds the
// raw (decompressed) content of a chunk behind a 24-byte header with an
// XXH3-128 sum, so a warm read costs one read and one fast checksum, no
// decompression. DIR/indexes/ keeps the last good copy of small files
// fetched by URL (the index, the mirror list), so an image can be opened
// while its server is down. DIR/format names the layout's version.
//
// Eviction is least-recently-used between watermarks: when the cached bytes
// pass high_watermark * max_bytes, the oldest chunks are removed until they
// are under low_watermark * max_bytes. Recency survives restarts through the
// files' mtimes. A chunk is also not written when that would leave the file
// system with less than reserve_bytes free (the cache evicts first and, if
// that is not enough, skips caching): the cache never fills the disk.
// Pinned chunks (being read) are never evicted.
//
// Thread-safe: one lock, mu_, guards the bookkeeping and is never held
// across file I/O other than unlink. Several processes may share a directory: writes are atomic
// renames and every read is verified, so the worst case of two processes
// evicting each other's files is a refetch.
#pragma once

#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "cache/cache_format.h"
#include "format/hash.h"
#include "util/mutex.h"
#include "util/status.h"

namespace hloop::cache {

struct DiskCacheOptions {
  std::string dir;
  uint64_t max_bytes = uint64_t(4) << 30;  // 4 GiB
  double high_watermark = 0.95;
  double low_watermark = 0.80;
  // Free space to leave on the file system: max(reserve_bytes,
  // reserve_fraction of its size).
  uint64_t reserve_bytes = uint64_t(256) << 20;
  double reserve_fraction = 0.02;
};

struct DiskCacheStats {
  uint64_t hits = 0, misses = 0, corrupt_discarded = 0;
  uint64_t inserted = 0, evicted = 0, skipped_for_space = 0;
  uint64_t used_bytes = 0, entries = 0;
};

class DiskCache {
 public:
  // Opens (creating if needed) the cache and scans what it holds. A
  // directory of another format version is refused (Unsupported, naming
  // both versions); nothing in it is touched.
  static Result<std::unique_ptr<DiskCache>> Open(const DiskCacheOptions& options);
  DiskCache(const DiskCache&) = delete;
  DiskCache& operator=(const DiskCache&) = delete;

  // Reads chunk `h` of `size` bytes into *out and checks it. NotFound if
  // absent; a file that is truncated or does not match its checksum is deleted
  // and reported as NotFound, so the caller fetches it again.
  Status Get(const format::Hash& h, uint32_t size, std::string* out) EXCLUDES(mu_);
  bool Contains(const format::Hash& h) EXCLUDES(mu_);
  // Stores raw content that the caller has verified against `h`. Best effort: NoSpace when the
  // quota or the disk reserve leaves no room (nothing is written then).
  Status Put(const format::Hash& h, std::string_view raw) EXCLUDES(mu_);

  // Keeps `bytes` as the last good copy of what `url` served (an index, a
  // mirror list), replacing an older copy; not counted against the quota.
  Status PutUrlCopy(const std::string& url, const std::string& bytes);
  // The copy PutUrlCopy kept for `url`; NotFound if none.
  Result<std::string> GetUrlCopy(const std::string& url);

  DiskCacheStats stats() EXCLUDES(mu_);
  const DiskCacheOptions& options() const { return options_; }

 private:
  struct Entry {
    format::Hash hash;
    uint64_t size;
  };
  explicit DiskCache(DiskCacheOptions options) : options_(std::move(options)) {}
  Status Scan() EXCLUDES(mu_);
  std::string PathOf(const format::Hash& h) const;
  std::string UrlCopyPath(const std::string& url) const;
  // Evicts LRU entries until used_ <= target.
  void EvictTo(uint64_t target) REQUIRES(mu_);
  void Remove(const format::Hash& h) REQUIRES(mu_);
  uint64_t FreeSpaceAfterReserve();
  void Touch(const format::Hash& h) REQUIRES(mu_);

  const DiskCacheOptions options_;
  Mutex mu_;
  std::list<Entry> lru_ GUARDED_BY(mu_);  // front = most recent
  std::unordered_map<format::Hash, std::list<Entry>::iterator, format::HashKey> map_
      GUARDED_BY(mu_);
  std::unordered_map<format::Hash, int, format::HashKey> pins_ GUARDED_BY(mu_);  // readers
  std::unordered_set<format::Hash, format::HashKey> writing_ GUARDED_BY(mu_);    // Puts under way
  uint64_t used_ GUARDED_BY(mu_) = 0;
  DiskCacheStats stats_ GUARDED_BY(mu_);
};

}  // namespace hloop::cache
