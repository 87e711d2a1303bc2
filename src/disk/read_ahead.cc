#include "disk/read_ahead.h"

#include <algorithm>
#include <cmath>

namespace hloop::disk {

ReadAhead::ReadAhead(ReadAheadOptions options, uint64_t chunk_count)
    : options_(options), chunk_count_(chunk_count) {
  stats_.limit = options_.chunks;
}

unsigned ReadAhead::Limit(double chunks_per_rtt) const {
  uint64_t window = options_.chunks;
  if (options_.adaptive && chunks_per_rtt >= 0) {
    // Enough chunks in flight to cover the bandwidth-delay product: each
    // transfer takes a round trip plus its body's time, during which the
    // reader consumes that many more chunks. Twice that, as the reader may
    // be faster than one connection.
    window = uint64_t(2 * std::ceil(chunks_per_rtt)) + 4;
    window = std::clamp<uint64_t>(window, 4, options_.max_chunks);
  }
  if (options_.cap_chunks) window = std::min(window, options_.cap_chunks);
  return unsigned(window);
}

ReadAheadPlan ReadAhead::OnRead(uint64_t first, uint64_t last, double chunks_per_rtt) {
  const uint64_t limit = Limit(chunks_per_rtt);
  ReadAheadPlan plan;
  plan.limit = unsigned(limit);
  MutexLock lock(&mu_);
  stats_.limit = unsigned(limit);
  if (options_.ordered) {
    // Ahead of the furthest chunk read so far, a whole window at once,
    // topped up when half of it has been consumed.
    next_expected_ = std::max(next_expected_, last + 1);
    const uint64_t from = std::max(next_expected_, scheduled_until_);
    const uint64_t to = std::min(chunk_count_, next_expected_ + limit);
    stats_.window = unsigned(limit);
    if (from + limit / 2 > to && scheduled_until_ > next_expected_) return plan;
    for (uint64_t j = from; j < to; j++) plan.chunks.push_back(j);
    scheduled_until_ = std::max(scheduled_until_, to);
    return plan;
  }
  const bool sequential = first + 2 >= next_expected_ && first <= next_expected_ + 2;
  next_expected_ = last + 1;
  stats_.limit = unsigned(limit);
  if (!sequential) {
    scheduled_until_ = 0;
    window_ = 0;
    return plan;
  }
  // A boot reads many short runs, and a full bandwidth-delay window behind
  // each would fetch far more than it reads: start small.
  if (window_ == 0) window_ = std::min(kInitialReadAhead, limit);
  window_ = std::min(window_, limit);
  const uint64_t from = std::max(last + 1, scheduled_until_);
  const uint64_t to = std::min(chunk_count_, last + 1 + window_);
  if (from + window_ / 2 > to && scheduled_until_ > last + 1) return plan;
  for (uint64_t j = from; j < to; j++) plan.chunks.push_back(j);
  scheduled_until_ = std::max(scheduled_until_, to);
  stats_.window = unsigned(window_);
  window_ = std::min(window_ * 2, limit);
  return plan;
}

ReadAheadStats ReadAhead::stats() {
  MutexLock lock(&mu_);
  return stats_;
}

}  // namespace hloop::disk
