// ChunkReader: verified chunk content by chunk number. It looks the chunk up
// in the index, then in the memory cache, then in the disk cache (checked),
// and else fetches its chunk file from the Source, decodes it, checks its
// SHA-256 (refetching a corrupt one a few times) and stores it in both
// caches. It knows nothing of offsets, read-ahead or profiles: the stages of
// ImageDevice build those on top of it.
//
// Concurrent misses for the same chunk collapse here, and only here: the
// first caller fetches and the others wait for its result (the in-flight
// table), whatever their priority; a more urgent waiter moves the fetch up
// (Source::Prioritize). EnsureCached joins the same table. The source does
// not merge requests itself, so every collapsed wait is a transfer saved;
// stats().collapsed counts them.
//
// Thread model: every method may be called from any thread. One lock, mu_,
// guards the in-flight table and the counters; it is never held across a
// cache read or a fetch.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <unordered_map>

#include "cache/disk_cache.h"
#include "cache/memory_cache.h"
#include "fetch/source.h"
#include "format/index.h"
#include "util/mutex.h"

namespace hloop::disk {

struct ChunkReaderStats {
  uint64_t chunks_fetched = 0, bytes_fetched = 0;  // verified chunk files from the source
  uint64_t memory_hits = 0, disk_hits = 0;
  uint64_t hash_mismatches = 0;  // chunk files that failed their hash (each refetch counts)
  uint64_t collapsed = 0;  // misses that waited for a fetch of the same chunk already under way
};

// Where a chunk read by GetMissed goes besides the caller.
enum class Fill {
  kMemoryAndDisk,  // both caches (a reader wants it now or soon)
  kDiskOnly,       // the disk cache only (nowhere without one): leave the memory cache to readers
};

class ChunkReader {
 public:
  // Called when a reader's chunk (Priority::kDemand) is in no cache and no
  // fetch of it is under way, just before it is fetched, on the reader's
  // thread. May be empty.
  using DemandMissHook = std::function<void(uint64_t chunk)>;

  // `cache` may be null (no disk cache). `corrupt_refetches`: how many more
  // times a chunk whose content does not match its hash is fetched before
  // the read fails.
  ChunkReader(format::Index index, std::unique_ptr<fetch::Source> source,
              std::unique_ptr<cache::DiskCache> cache, uint64_t memory_cache_bytes,
              int corrupt_refetches, DemandMissHook on_demand_miss);
  ChunkReader(const ChunkReader&) = delete;
  ChunkReader& operator=(const ChunkReader&) = delete;

  // Chunk i from the memory cache, counted as a hit; null when absent.
  // REQUIRES: !index().entry(i).zero() (for every method taking a chunk).
  cache::ChunkData FromMemory(uint64_t i);
  // Chunk i, after a miss of the memory cache: joins a fetch already under
  // way (counted in stats().collapsed), else reads the disk cache, else
  // fetches. A copy in the memory cache answers unless `fill` is kDiskOnly
  // and there is a disk cache (the caller wants it there). `network`, if
  // not null, is set when the chunk was (or most likely was) fetched rather
  // than found in a cache.
  Result<cache::ChunkData> GetMissed(uint64_t i, fetch::Priority priority, Fill fill,
                                     bool* network);
  // FromMemory, else GetMissed into both caches.
  Result<cache::ChunkData> Get(uint64_t i, fetch::Priority priority);
  // Makes sure chunk i (any chunk) is in the disk cache, or without one
  // fetches and verifies it (unless it is in memory). The memory cache is
  // left alone. A fetch goes through the in-flight table as GetMissed's does.
  Status EnsureCached(uint64_t i);

  bool InMemory(uint64_t i);
  // False without a disk cache.
  bool InDiskCache(uint64_t i);
  // Whether fetching chunk i ahead of a reader would do anything: not a
  // zero chunk, not in memory, and no fetch of it under way.
  bool WorthFetching(uint64_t i) EXCLUDES(mu_);

  const format::Index& index() const { return index_; }
  cache::DiskCache* disk_cache() { return cache_.get(); }
  fetch::Source& source() { return *source_; }
  ChunkReaderStats stats() EXCLUDES(mu_);

 private:
  struct Inflight {
    std::shared_future<Result<cache::ChunkData>> future;
    fetch::Priority priority;
  };
  // The disk cache, else the source; stores what it fetched in the disk
  // cache. `fetched`, if not null, is set when it went to the source.
  Result<cache::ChunkData> Load(uint64_t i, const format::ChunkEntry& e, fetch::Priority priority,
                                bool* fetched) EXCLUDES(mu_);
  Result<cache::ChunkData> FetchVerified(uint64_t i, const format::ChunkEntry& e,
                                         fetch::Priority priority) EXCLUDES(mu_);

  const format::Index index_;
  const std::unique_ptr<fetch::Source> source_;
  const std::unique_ptr<cache::DiskCache> cache_;
  const int corrupt_refetches_;
  const DemandMissHook on_demand_miss_;
  cache::MemoryCache memory_;

  Mutex mu_;
  std::unordered_map<format::Hash, Inflight, format::HashKey> inflight_ GUARDED_BY(mu_);
  ChunkReaderStats stats_ GUARDED_BY(mu_);
};

}  // namespace hloop::disk
