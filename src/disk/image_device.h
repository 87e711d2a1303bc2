// ImageDevice: the read path from "byte offset in the image" to verified
// bytes. A read finds each chunk it spans in the memory cache, else the disk
// cache (verified), else fetches the chunk file from the Source, checks its
// hash, stores it in both caches, and copies the bytes out. All-zero chunks
// are answered without any I/O.
//
// Thread model: Read() may be called from many threads. Concurrent misses for
// the same chunk collapse into one fetch. Sequential reads start a read-ahead
// of the following chunks on a small pool of worker threads owned by the
// device.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cache/disk_cache.h"
#include "cache/memory_cache.h"
#include "disk/block_device.h"
#include "fetch/source.h"
#include "format/index.h"

namespace hloop::disk {

struct ImageOptions {
  unsigned workers = 8;           // background fetch threads
  unsigned readahead_chunks = 16;  // window ahead of a sequential reader
  uint64_t memory_cache_bytes = uint64_t(64) << 20;
  // A chunk whose content does not match its hash is fetched this many more
  // times before the read fails.
  int corrupt_refetches = 3;
};

struct ImageStats {
  uint64_t chunks_fetched = 0, bytes_fetched = 0;
  uint64_t memory_hits = 0, disk_hits = 0, zero_reads = 0;
  uint64_t hash_mismatches = 0, readahead_issued = 0;
};

class ImageDevice : public BlockDevice {
 public:
  // `cache` may be null (no disk cache). The device owns everything.
  ImageDevice(format::Index index, std::unique_ptr<fetch::Source> source,
              std::unique_ptr<cache::DiskCache> cache, ImageOptions options);
  ~ImageDevice() override;
  ImageDevice(const ImageDevice&) = delete;
  ImageDevice& operator=(const ImageDevice&) = delete;

  uint64_t size() const override { return index_.image_size(); }
  Status Read(uint64_t offset, size_t len, char* buf) override;

  // Makes sure chunk i is in the disk cache (or, without one, just fetches
  // and verifies it). Used by `hloop fetch --all`.
  Status EnsureCached(uint64_t i);
  // Raw content of chunk i, verified. REQUIRES: !index().entry(i).zero().
  // `priority` orders its fetch against others (readers go first).
  Result<cache::ChunkData> GetChunk(uint64_t i, fetch::Priority priority = fetch::Priority::kDemand);

  const format::Index& index() const { return index_; }
  cache::DiskCache* disk_cache() { return cache_.get(); }
  ImageStats stats();

 private:
  struct Inflight {
    std::shared_future<Result<cache::ChunkData>> future;
    fetch::Priority priority;
  };
  // Loads chunk i from the disk cache or the source. No memory cache.
  Result<cache::ChunkData> Load(uint64_t i, const format::ChunkEntry& e, fetch::Priority priority);
  Result<cache::ChunkData> FetchVerified(uint64_t i, const format::ChunkEntry& e, fetch::Priority priority);
  void MaybeReadAhead(uint64_t first, uint64_t last);
  void Schedule(uint64_t i);
  void WorkerLoop();

  const format::Index index_;
  const std::unique_ptr<fetch::Source> source_;
  const std::unique_ptr<cache::DiskCache> cache_;
  const ImageOptions options_;
  cache::MemoryCache memory_;

  std::mutex mu_;
  std::unordered_map<format::Hash, Inflight, format::HashKey> inflight_;  // GUARDED_BY(mu_)
  std::deque<uint64_t> queue_;       // GUARDED_BY(mu_): read-ahead work
  uint64_t next_expected_ = 0;       // GUARDED_BY(mu_): chunk after the last read
  uint64_t readahead_until_ = 0;     // GUARDED_BY(mu_): chunks below are scheduled
  bool stopping_ = false;            // GUARDED_BY(mu_)
  ImageStats stats_;                 // GUARDED_BY(mu_)
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
};

}  // namespace hloop::disk
