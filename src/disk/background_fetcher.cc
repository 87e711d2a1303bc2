#include "disk/background_fetcher.h"

namespace hloop::disk {

BackgroundFetcher::BackgroundFetcher(ChunkReader& reader, unsigned threads, size_t backlog)
    : reader_(reader), backlog_(backlog) {
  for (unsigned t = 0; t < threads; t++) threads_.emplace_back([this] { WorkerLoop(); });
}

BackgroundFetcher::~BackgroundFetcher() {
  Stop();
  Join();
}

void BackgroundFetcher::Schedule(uint64_t i) {
  if (!reader_.WorthFetching(i)) return;
  {
    MutexLock lock(&mu_);
    queue_.push_back(i);
    const size_t keep = backlog_.load(std::memory_order_relaxed);
    while (queue_.size() > keep) queue_.pop_front();
    issued_++;
  }
  cv_.Signal();
}

uint64_t BackgroundFetcher::issued() {
  MutexLock lock(&mu_);
  return issued_;
}

void BackgroundFetcher::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.SignalAll();
}

void BackgroundFetcher::Join() {
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void BackgroundFetcher::WorkerLoop() {
  for (;;) {
    uint64_t i;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && queue_.empty()) cv_.Wait(&mu_);
      if (stopping_) return;
      i = queue_.front();
      queue_.pop_front();
    }
    auto r = reader_.Get(i, fetch::Priority::kReadAhead);  // a reader retries a failure itself
    (void)r;
  }
}

}  // namespace hloop::disk
