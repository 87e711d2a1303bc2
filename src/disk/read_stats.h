// ReadStats: counts what readers asked for and how long they waited for the
// network, for `hloop stats` (nbdkit's stats filter). Counting only: it
// changes nothing on the read path.
//
// Thread model: thread-safe; one lock, mu_, held for a few additions.
#pragma once

#include <chrono>
#include <cstdint>

#include "util/mutex.h"

namespace hloop::disk {

struct ReadCounts {
  uint64_t reads = 0, bytes = 0;
  uint64_t zero_chunks = 0;  // chunk reads answered with zeros, without I/O
  // Chunk reads that had to wait for the network (not in memory or the
  // disk cache): how many, how long in total, and the longest, in µs.
  uint64_t waits = 0, wait_us_total = 0, wait_us_max = 0;
};

class ReadStats {
 public:
  ReadStats() = default;
  ReadStats(const ReadStats&) = delete;
  ReadStats& operator=(const ReadStats&) = delete;

  void CountRead(uint64_t bytes) EXCLUDES(mu_);
  void CountZeroChunk() EXCLUDES(mu_);
  void CountWait(std::chrono::steady_clock::duration waited) EXCLUDES(mu_);
  ReadCounts counts() EXCLUDES(mu_);

 private:
  Mutex mu_;
  ReadCounts counts_ GUARDED_BY(mu_);
};

}  // namespace hloop::disk
