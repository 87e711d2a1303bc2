#include "disk/read_stats.h"

#include <algorithm>

namespace hloop::disk {

void ReadStats::CountRead(uint64_t bytes) {
  MutexLock lock(&mu_);
  counts_.reads++;
  counts_.bytes += bytes;
}

void ReadStats::CountZeroChunk() {
  MutexLock lock(&mu_);
  counts_.zero_chunks++;
}

void ReadStats::CountWait(std::chrono::steady_clock::duration waited) {
  const uint64_t us =
      uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(waited).count());
  MutexLock lock(&mu_);
  counts_.waits++;
  counts_.wait_us_total += us;
  counts_.wait_us_max = std::max(counts_.wait_us_max, us);
}

ReadCounts ReadStats::counts() {
  MutexLock lock(&mu_);
  return counts_;
}

}  // namespace hloop::disk
