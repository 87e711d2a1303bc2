#include "disk/profile_prefetcher.h"

#include <algorithm>

namespace hloop::disk {

ProfilePrefetcher::ProfilePrefetcher(ChunkReader& reader, unsigned threads)
    : reader_(reader),
      threads_(std::max(1u, threads)),
      flags_(new std::atomic<uint8_t>[reader.index().slot_count()]()) {}

ProfilePrefetcher::~ProfilePrefetcher() {
  Stop();
  Join();
}

void ProfilePrefetcher::Start(std::vector<uint64_t> chunks) {
  {
    MutexLock lock(&mu_);
    if (!list_.empty() || stopping_) return;
    list_ = std::move(chunks);
    next_ = 0;
    stats_.total = list_.size();
  }
  for (unsigned t = 0; t < threads_; t++) workers_.emplace_back([this] { Loop(); });
}

void ProfilePrefetcher::OnRead(uint64_t i) {
  const uint8_t before = flags_[i].fetch_or(kRead, std::memory_order_relaxed);
  if ((before & kRead) || !(before & kPrefetched)) return;
  MutexLock lock(&mu_);
  stats_.useful++;
}

void ProfilePrefetcher::Loop() {
  const format::Index& index = reader_.index();
  // With a disk cache the profile goes there and leaves the memory cache to
  // the reader; without one, memory is all there is.
  const Fill fill = reader_.disk_cache() ? Fill::kDiskOnly : Fill::kMemoryAndDisk;
  for (;;) {
    uint64_t i;
    {
      MutexLock lock(&mu_);
      if (stopping_ || next_ >= list_.size()) return;
      i = list_[next_++];
    }
    bool ok = true;
    if (i < index.slot_count()) {
      bool have = index.entry(i).zero() || reader_.InMemory(i) || reader_.InDiskCache(i) ||
                  (flags_[i].load(std::memory_order_relaxed) & kRead);
      if (!have) {
        ok = reader_.GetMissed(i, fetch::Priority::kPrefetch, fill, nullptr).ok();
        if (ok) flags_[i].fetch_or(kPrefetched, std::memory_order_relaxed);
      }
    }
    MutexLock lock(&mu_);
    stats_.done++;
    if (!ok) stats_.failed++;
  }
}

PrefetchStats ProfilePrefetcher::stats() {
  MutexLock lock(&mu_);
  return stats_;
}

void ProfilePrefetcher::Stop() {
  MutexLock lock(&mu_);
  stopping_ = true;
}

void ProfilePrefetcher::Join() {
  for (auto& t : workers_) t.join();
  workers_.clear();
}

}  // namespace hloop::disk
