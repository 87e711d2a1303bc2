// Clusters: when a reader's chunk must come from the network, also fetch
// (in the background) the other chunks of its aligned cluster. A scattered
// reader (a boot: many small files, each read once) defeats sequential
// read-ahead, but a file system keeps related blocks close, so the
// neighbours of a miss are likely next, and on a slow link fetching them
// together saves round trips.
//
// The cluster follows the link: the largest power of two of chunks that
// fits in half of what one round trip carries, so the neighbours never
// delay the read that waits; on a LAN (or before anything is measured) it
// is one chunk, i.e. off.
//
// Thread model: OnDemandMiss is called on readers' threads (ChunkReader's
// demand-miss hook); thread-safe, one lock, mu_, for the counters only.
#pragma once

#include <cstdint>
#include <utility>

#include "disk/background_fetcher.h"
#include "disk/chunk_reader.h"
#include "util/mutex.h"

namespace hloop::disk {

// Chunks per cluster: the largest power of two n <= max_chunks with
// n <= chunks_per_rtt / 2; 1 (off) when max_chunks <= 1 or the link is
// unknown (chunks_per_rtt < 0).
unsigned ClusterChunks(uint64_t max_chunks, double chunks_per_rtt);

// The aligned cluster of `n` chunks holding chunk i, as [begin, end),
// clipped to the image's chunk_count.
std::pair<uint64_t, uint64_t> ClusterOf(uint64_t i, unsigned n, uint64_t chunk_count);

struct ClusterStats {
  uint64_t issued = 0;  // neighbours scheduled because a read missed
  unsigned chunks = 0;  // the cluster size at the last miss (1: off)
};

class Clusters {
 public:
  // `max_chunks`: the configured cluster in chunks (0 or 1: off). `reader`
  // and `fetcher` must outlive this.
  Clusters(ChunkReader& reader, BackgroundFetcher& fetcher, uint64_t max_chunks);
  Clusters(const Clusters&) = delete;
  Clusters& operator=(const Clusters&) = delete;

  // Chunk i is about to be fetched for a reader: schedule the neighbours
  // that are neither zero nor in the disk cache.
  void OnDemandMiss(uint64_t i) EXCLUDES(mu_);
  ClusterStats stats() EXCLUDES(mu_);

 private:
  ChunkReader& reader_;
  BackgroundFetcher& fetcher_;
  const uint64_t max_chunks_;
  Mutex mu_;
  ClusterStats stats_ GUARDED_BY(mu_);
};

}  // namespace hloop::disk
