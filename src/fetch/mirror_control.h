// MirrorControl: what a source with several HTTP mirrors offers beyond a
// Source, for `hloop mirrors` and the live statistics. A Source hands it out
// through Source::mirror_control() (nullptr for local files), so callers
// never need to know which kind of source they hold.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace hloop::fetch {

// The transfer engine's counters.
struct EngineStats {
  uint64_t requests = 0;   // submitted
  uint64_t transfers = 0;  // attempts started
  uint64_t retries = 0;
  uint64_t failures = 0;  // requests completed with an error other than 404
  uint64_t bytes = 0;     // body bytes received
  uint64_t inflight = 0;  // transfers running now
  uint64_t max_inflight_seen = 0;
  uint64_t waiting = 0;  // requests waiting for a slot or a retry
};

// What is known about one mirror (MirrorSet::Stats).
struct MirrorStats {
  std::string base;
  bool http2 = false;
  unsigned connections = 0;
  double rtt_s = -1;        // smoothed time to first byte; -1: unknown
  double base_rtt_s = -1;   // the same without queueing (a slowly rising minimum)
  double bytes_per_s = -1;  // smoothed per-transfer throughput; -1: unknown
  uint64_t transfers = 0, bytes = 0, errors = 0, corrupt = 0, not_found = 0;
  unsigned active = 0;
  bool set_aside = false;  // failing or corrupt: not used until re-probed
  double aside_s = 0;      // seconds left before the re-probe
};

// Thread-safe. Mirrors are numbered from 0 in the order they were added
// (the index's own server first), as in Source::Get's `origin`.
class MirrorControl {
 public:
  virtual ~MirrorControl() = default;
  virtual std::vector<MirrorStats> mirror_stats() = 0;
  virtual EngineStats engine_stats() = 0;
  // One attempt at `rel` on mirror `mirror` alone, a HEAD request if `head`
  // (no body). Its measurements and its failure count for the mirror as any
  // transfer's do. Blocks until it ends.
  virtual Status GetFrom(int mirror, const std::string& rel, uint64_t expected_size, bool head,
                         std::string* out) = 0;
};

}  // namespace hloop::fetch
