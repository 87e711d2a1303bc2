// ProfilePrefetcher: replays a boot profile (the papers' DLAHEAD). A few
// threads walk the profile's chunks in order and fetch each one not yet
// cached or read, at the lowest priority (below readers and read-ahead),
// into the disk cache; without a disk cache into the memory cache, as that
// is all there is. A chunk a reader has already read is skipped: too late
// to help.
//
// Thread model: thread-safe. OnRead is called on every read and takes no
// lock unless a prefetched chunk is read for the first time (one atomic
// byte per chunk). mu_ guards the list and the counters; the reader's lock
// is never taken while it is held. The threads are owned: Stop() then
// Join() (or the destructor) end them.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "disk/chunk_reader.h"
#include "util/mutex.h"

namespace hloop::disk {

struct PrefetchStats {
  // Chunks listed, handled (fetched, or found cached or read), failed, and
  // first read after their prefetch had finished (useful).
  uint64_t total = 0, done = 0, failed = 0, useful = 0;
};

class ProfilePrefetcher {
 public:
  // `reader` must outlive this.
  ProfilePrefetcher(ChunkReader& reader, unsigned threads);
  ~ProfilePrefetcher();
  ProfilePrefetcher(const ProfilePrefetcher&) = delete;
  ProfilePrefetcher& operator=(const ProfilePrefetcher&) = delete;

  // Starts fetching `chunks` in this order (numbers past the image's end
  // are counted as done). Ignored once a non-empty list was started, or
  // after Stop().
  void Start(std::vector<uint64_t> chunks) EXCLUDES(mu_);
  // A read of slot i (index.h).
  void OnRead(uint64_t i) EXCLUDES(mu_);
  PrefetchStats stats() EXCLUDES(mu_);

  // The threads end after the chunk they are fetching. Returns at once.
  void Stop() EXCLUDES(mu_);
  // Waits for the threads. REQUIRES: Stop() was called.
  void Join();

 private:
  // Per chunk.
  static constexpr uint8_t kRead = 1;        // a reader has read it
  static constexpr uint8_t kPrefetched = 2;  // this prefetcher fetched it
  void Loop() EXCLUDES(mu_);

  ChunkReader& reader_;
  const unsigned threads_;
  const std::unique_ptr<std::atomic<uint8_t>[]> flags_;
  Mutex mu_;
  std::vector<uint64_t> list_ GUARDED_BY(mu_);
  size_t next_ GUARDED_BY(mu_) = 0;
  bool stopping_ GUARDED_BY(mu_) = false;
  PrefetchStats stats_ GUARDED_BY(mu_);
  std::vector<std::thread> workers_;  // written by Start, then Join
};

}  // namespace hloop::disk
