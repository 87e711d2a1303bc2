#include "disk/clusters.h"

#include <algorithm>

#include "disk/link_estimate.h"

namespace hloop::disk {

unsigned ClusterChunks(uint64_t max_chunks, double chunks_per_rtt) {
  if (max_chunks <= 1 || chunks_per_rtt < 0) return 1;
  uint64_t n = 1;
  while (n * 2 <= max_chunks && double(n * 2) <= chunks_per_rtt / 2) n *= 2;
  return unsigned(n);
}

std::pair<uint64_t, uint64_t> ClusterOf(uint64_t i, unsigned n, uint64_t chunk_count) {
  const uint64_t begin = i / n * n;
  return {begin, std::min<uint64_t>(chunk_count, begin + n)};
}

Clusters::Clusters(ChunkReader& reader, BackgroundFetcher& fetcher, uint64_t max_chunks)
    : reader_(reader), fetcher_(fetcher), max_chunks_(max_chunks) {}

void Clusters::OnDemandMiss(uint64_t i) {
  // Ask the source only when clusters are on.
  unsigned n = 1;
  if (max_chunks_ > 1)
    n = ClusterChunks(max_chunks_, ChunksPerRoundTrip(reader_.source(), reader_.index()));
  {
    MutexLock lock(&mu_);
    stats_.chunks = n;
  }
  if (n <= 1) return;
  // Hot chunks cluster with hot chunks, table chunks with table chunks.
  const format::Index& index = reader_.index();
  const uint64_t base = index.is_hot(i) ? index.chunk_count() : 0;
  const uint64_t count = index.is_hot(i) ? index.slot_count() - base : index.chunk_count();
  auto [begin, end] = ClusterOf(i - base, n, count);
  begin += base;
  end += base;
  for (uint64_t j = begin; j < end; j++) {
    // Not a table chunk whose every byte is read from hot chunks.
    if (j == i || index.entry(j).zero() || (!index.is_hot(j) && !index.TableChunkUsed(j)) ||
        reader_.InDiskCache(j))
      continue;
    {
      MutexLock lock(&mu_);
      stats_.issued++;
    }
    fetcher_.Schedule(j);
  }
}

ClusterStats Clusters::stats() {
  MutexLock lock(&mu_);
  return stats_;
}

}  // namespace hloop::disk
