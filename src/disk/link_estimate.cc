#include "disk/link_estimate.h"

#include <algorithm>

namespace hloop::disk {

double AverageStoredChunk(const format::Index& index) {
  const auto& s = index.summary();
  return std::max(double(s.stored_bytes) / double(std::max<uint64_t>(1, s.unique_chunks)), 4096.0);
}

double ChunksPerRoundTrip(fetch::Source& source, const format::Index& index) {
  double rtt, rate;
  source.Estimate(&rtt, &rate);
  if (rtt < 0 || rate <= 0) return -1;
  return rtt * rate / AverageStoredChunk(index);
}

}  // namespace hloop::disk
