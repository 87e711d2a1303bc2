// BackgroundFetcher: a few threads that fetch chunks nobody waits for yet
// (read-ahead, clusters, the other chunks of a multi-chunk read, NBD CACHE)
// at read-ahead priority, through the ChunkReader into both caches. A
// failure is dropped: a reader that needs the chunk fetches it itself.
//
// The queue keeps the newest work: a reader that jumped away leaves stale
// chunks, and beyond the backlog limit the oldest are dropped.
//
// Thread model: Schedule and the setters may be called from any thread. One
// lock, mu_, guards the queue; the reader's lock is never taken while it is
// held. The threads are owned: Stop() then Join() (or the destructor) end
// them.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <thread>
#include <vector>

#include "disk/chunk_reader.h"
#include "util/mutex.h"

namespace hloop::disk {

class BackgroundFetcher {
 public:
  // `reader` must outlive this. No threads: Schedule only counts.
  BackgroundFetcher(ChunkReader& reader, unsigned threads, size_t backlog);
  ~BackgroundFetcher();
  BackgroundFetcher(const BackgroundFetcher&) = delete;
  BackgroundFetcher& operator=(const BackgroundFetcher&) = delete;

  // Queues chunk i unless fetching it would do nothing (see
  // ChunkReader::WorthFetching).
  void Schedule(uint64_t i) EXCLUDES(mu_);
  // At most this many chunks wait in the queue (the oldest are dropped).
  void set_backlog(size_t chunks) { backlog_.store(chunks, std::memory_order_relaxed); }
  // Chunks queued so far.
  uint64_t issued() EXCLUDES(mu_);

  // Drops the queue; the threads end after the chunk they are fetching
  // (fail the source's fetches to make that quick). Returns at once.
  void Stop() EXCLUDES(mu_);
  // Waits for the threads. REQUIRES: Stop() was called.
  void Join();

 private:
  void WorkerLoop() EXCLUDES(mu_);

  ChunkReader& reader_;
  std::atomic<size_t> backlog_;
  Mutex mu_;
  CondVar cv_;
  std::deque<uint64_t> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  uint64_t issued_ GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace hloop::disk
