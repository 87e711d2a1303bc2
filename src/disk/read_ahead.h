// ReadAhead: decides which chunks to fetch ahead of a sequential reader
// (the decision only; BackgroundFetcher fetches them).
//
// A read that continues the previous one (within two chunks: the kernel's
// read-ahead and several FUSE threads arrive slightly out of order) is
// sequential. Like the kernel's read-ahead, the window starts at
// kInitialReadAhead chunks and doubles while the reader keeps consuming
// what was read ahead, up to the limit the link justifies (Limit); a read
// elsewhere starts over. Work is topped up in batches of half a window, so
// small reads do not queue a chunk each.
//
// Thread model: thread-safe; one lock, mu_, held only for the bookkeeping.
#pragma once

#include <cstdint>
#include <vector>

#include "util/mutex.h"

namespace hloop::disk {

// First read-ahead window of a sequential stream, in chunks.
inline constexpr uint64_t kInitialReadAhead = 4;

struct ReadAheadOptions {
  // The window's limit in chunks when not adaptive, and while the link is
  // not measured yet.
  unsigned chunks = 16;
  // Follow the link: 2 × ceil(chunks per round trip) + 4, within
  // [4, max_chunks].
  bool adaptive = true;
  unsigned max_chunks = 256;
  // Never more than this many chunks (0: no cap). Without a disk cache
  // read-ahead lives in the memory cache: a quarter of it at most.
  uint64_t cap_chunks = 0;
  // The chunks are laid out in the order a reader is expected to read them
  // (the hot chunks of a relaid-out index, in a boot's order): every read
  // moves a high-water mark, a read behind it does not start over, and the
  // window is the link's limit from the first read on.
  bool ordered = false;
};

// What OnRead decided.
struct ReadAheadPlan {
  std::vector<uint64_t> chunks;  // to fetch ahead, in order (often none)
  unsigned limit = 0;            // Limit() for this read
};

struct ReadAheadStats {
  unsigned window = 0;  // chunks: the current sequential stream's window
  unsigned limit = 0;   // chunks: the most it may grow to (from the link)
};

class ReadAhead {
 public:
  ReadAhead(ReadAheadOptions options, uint64_t chunk_count);
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // The largest window, in chunks, for a link that carries
  // `chunks_per_rtt` chunk files per round trip (negative: unknown).
  unsigned Limit(double chunks_per_rtt) const;
  // A read of chunks [first, last], on a link of `chunks_per_rtt`.
  ReadAheadPlan OnRead(uint64_t first, uint64_t last, double chunks_per_rtt) EXCLUDES(mu_);
  ReadAheadStats stats() EXCLUDES(mu_);

 private:
  const ReadAheadOptions options_;
  const uint64_t chunk_count_;
  Mutex mu_;
  uint64_t next_expected_ GUARDED_BY(mu_) = 0;    // chunk after the last read
  uint64_t scheduled_until_ GUARDED_BY(mu_) = 0;  // chunks below are scheduled
  uint64_t window_ GUARDED_BY(mu_) = 0;           // the next batch's window; 0: not sequential
  ReadAheadStats stats_ GUARDED_BY(mu_);
};

}  // namespace hloop::disk
