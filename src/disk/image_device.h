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

#include <chrono>
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
  unsigned workers = 16;          // background fetch threads, one chunk in flight each
  // Window ahead of a sequential reader, in chunks. When adaptive, this is
  // only the start: the window follows the measured bandwidth-delay product
  // of the link, up to readahead_max_chunks.
  unsigned readahead_chunks = 16;
  bool adaptive_readahead = true;
  unsigned readahead_max_chunks = 256;
  // A read that has to go to the network also fetches the other chunks of
  // its aligned cluster of this many bytes (in the background), when the
  // link can carry them within the round trip the read waits anyway: a
  // file system keeps related blocks close, so a scattered reader (a boot)
  // soon wants the neighbours. The cluster follows the link like the
  // read-ahead window (ClusterChunks); 0 or one chunk's size: off.
  uint64_t cluster_max_bytes = uint64_t(1) << 20;
  // Threads fetching a boot profile's chunks (each has one fetch in flight).
  unsigned prefetch_threads = 12;
  uint64_t memory_cache_bytes = uint64_t(64) << 20;
  // A chunk whose content does not match its hash is fetched this many more
  // times before the read fails.
  int corrupt_refetches = 3;
};

struct ImageStats {
  uint64_t reads = 0, bytes_read = 0;
  uint64_t chunks_fetched = 0, bytes_fetched = 0;
  uint64_t memory_hits = 0, disk_hits = 0, zero_reads = 0;
  uint64_t hash_mismatches = 0, readahead_issued = 0;
  uint64_t cluster_issued = 0;    // neighbours fetched because a read missed
  unsigned cluster_chunks = 0;    // the current cluster size (1: off)
  unsigned readahead_window = 0;  // chunks: the current sequential stream's window
  unsigned readahead_max = 0;     // chunks: the most it may grow to (from the link)
  // Readers that had to wait for a chunk from the network: how many, how long.
  uint64_t waits = 0, wait_us_total = 0, wait_us_max = 0;
  // Boot profile: chunks listed, done (fetched or found cached), failed,
  // and chunks first read after their prefetch had finished (useful).
  uint64_t prefetch_total = 0, prefetch_done = 0, prefetch_failed = 0, prefetch_useful = 0;
  uint64_t profile_recorded = 0;  // chunks recorded so far
};

// First read-ahead window of a sequential stream, in chunks.
inline constexpr uint64_t kInitialReadAhead = 4;

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
  // Zero chunks are holes; everything else is data.
  Result<std::vector<Extent>> Extents(uint64_t offset, uint64_t len) override;
  // Fetches the chunks of the range in the background at read-ahead
  // priority (NBD CACHE).
  void Prefetch(uint64_t offset, uint64_t len) override;

  // Makes sure chunk i is in the disk cache (or, without one, just fetches
  // and verifies it). Used by `hloop fetch --all`.
  Status EnsureCached(uint64_t i);
  // Raw content of chunk i, verified. REQUIRES: !index().entry(i).zero().
  // `priority` orders its fetch against others (readers go first).
  Result<cache::ChunkData> GetChunk(uint64_t i, fetch::Priority priority = fetch::Priority::kDemand);

  // Boot profile (the papers' DLAHEAD). Fetches `chunks` in this order, in
  // parallel, into the cache (or memory without one), below readers and
  // read-ahead in priority. Chunks already cached are skipped.
  void StartPrefetch(std::vector<uint64_t> chunks);
  // Starts recording which chunks are read, first read first, with the
  // time since this call. The profile is written to `save_to` (if not
  // empty) by SaveProfile and when the device is destroyed.
  void StartRecording(std::string save_to);
  // The recorded profile in the format of docs/format.md.
  std::string ProfileText();
  Status SaveProfile();

  const format::Index& index() const { return index_; }
  cache::DiskCache* disk_cache() { return cache_.get(); }
  fetch::Source& source() { return *source_; }
  ImageStats stats();

 private:
  struct Inflight {
    std::shared_future<Result<cache::ChunkData>> future;
    fetch::Priority priority;
  };
  // Loads chunk i from the disk cache or the source. No memory cache.
  // `fetched`, if not null, is set when the chunk came from the source.
  Result<cache::ChunkData> Load(uint64_t i, const format::ChunkEntry& e, fetch::Priority priority, bool* fetched);
  Result<cache::ChunkData> FetchVerified(uint64_t i, const format::ChunkEntry& e, fetch::Priority priority);
  // GetChunk; `to_memory` false leaves the memory cache alone (prefetch
  // into the disk cache). `network`, if not null, is set when the chunk was
  // (or most likely was) fetched rather than found in a cache.
  Result<cache::ChunkData> GetChunkImpl(uint64_t i, fetch::Priority priority, bool to_memory, bool* network);
  unsigned ReadAheadWindow();
  void MaybeReadAhead(uint64_t first, uint64_t last);
  unsigned ClusterChunks();
  // Schedules the rest of chunk i's cluster. Called when a reader's chunk
  // is about to be fetched (neither cached nor in flight).
  void FetchClusterOf(uint64_t i);
  void Schedule(uint64_t i);
  void NoteFirstReads(uint64_t first, uint64_t last);
  void WorkerLoop();
  void PrefetchLoop();

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
  uint64_t window_ = 0;              // GUARDED_BY(mu_): read-ahead window, grows to the max
  bool stopping_ = false;            // GUARDED_BY(mu_)
  ImageStats stats_;                 // GUARDED_BY(mu_)
  std::condition_variable cv_;
  std::vector<std::thread> workers_;

  // Profile prefetch and recording. Per chunk: bit 0 read, bit 1 prefetched.
  std::mutex profile_mu_;
  std::vector<uint8_t> chunk_flags_;            // GUARDED_BY(profile_mu_)
  bool recording_ = false;                      // GUARDED_BY(profile_mu_)
  std::chrono::steady_clock::time_point record_start_;
  std::string record_path_;
  std::vector<std::pair<uint64_t, uint64_t>> recorded_;  // (ms, chunk). GUARDED_BY(profile_mu_)
  std::vector<uint64_t> prefetch_list_;         // GUARDED_BY(mu_)
  size_t prefetch_next_ = 0;                    // GUARDED_BY(mu_)
  std::vector<std::thread> prefetchers_;
};

}  // namespace hloop::disk
