// MirrorSet: the policy that decides which mirror serves each transfer, and
// how much each mirror is trusted. Pure: no curl, no threads; the time comes
// from a Clock. The engine (mechanism) tells it when a transfer starts and
// how it ended; it keeps per mirror:
//  - measurements, smoothed (EWMA, weight 0.25): time to first byte, a base
//    round trip (the minimum of those samples, drifting up by 2% of the
//    difference per sample, so it follows a path that really got longer but
//    not a mirror's queueing), and per-transfer rate (bodies of 32 KiB or
//    more);
//  - load: transfers running, per priority, against its connection limit;
//    background work leaves room for readers (prefetch may use three
//    quarters of the connections, read-ahead all but one);
//  - health: two failures in a row, a refused connection or a failed probe
//    set a mirror aside for 1 s, doubling per failed re-probe up to 2 min; a
//    corrupt report sets it aside for 10 s. When the time is up it is due
//    for one probe; a success puts it back. With a single mirror nothing is
//    set aside: there is nowhere else to go.
// Choice: the lowest expected time `base rtt + size / rate`; a mirror at its
// limit counts double (it frees a slot in about one transfer time), and if
// it is still the best the transfer waits for it. Unmeasured mirrors rank
// after measured ones, in the order given, and get two transfers at most
// until one has measured their rate.
//
// Not thread-safe: the engine calls it under its own mutex.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fetch/clock.h"
#include "fetch/errors.h"
#include "fetch/mirror_control.h"
#include "fetch/source.h"

namespace hloop::fetch {

// A set of mirror numbers: bit i is mirror i.
using MirrorMask = uint64_t;

// What the choice of a mirror needs to know about a request.
struct MirrorQuery {
  Priority priority = Priority::kDemand;
  uint64_t expected_size = 0;  // body bytes; 0: unknown (costed as 64 kB)
  MirrorMask not_found = 0;    // mirrors that answered 404: never again
  int avoid = -1;              // the mirror that failed it last: only if nothing else is healthy
};

// How a transfer ended, as the engine measured it.
struct TransferEnd {
  FetchError error = FetchError::kNone;
  double first_byte_s = -1;  // request sent to first byte (connection set-up excluded); <0: unknown
  uint64_t body_bytes = 0;
  double body_s = 0;   // first byte to last
  bool probe = false;  // an engine-made probe (a HEAD) rather than a request
};

class MirrorSet {
 public:
  static constexpr int kMaxMirrors = 64;  // a MirrorMask has 64 bits
  // Pick() results besides a mirror number.
  static constexpr int kWait = -1;      // the best mirror is busy: wait for one of its slots
  static constexpr int kNoMirror = -2;  // every mirror answered 404

  // `clock` must outlive the set.
  explicit MirrorSet(const Clock& clock) : clock_(clock) {}

  // Adds a mirror with `default_connections` unless it names its own, and
  // HTTP/2 if it or `http2` asks; returns its number. Past kMaxMirrors the
  // spec is ignored (with a warning) and the last number is returned.
  int Add(const MirrorSpec& spec, unsigned default_connections, bool http2);
  int size() const { return int(mirrors_.size()); }
  // Mirror `m`'s spec, as added (with its connections and HTTP/2 settled).
  // REQUIRES: 0 <= m < size().
  const MirrorSpec& spec(int m) const { return mirrors_[size_t(m)].spec; }
  // The sum of every mirror's connection limit.
  unsigned total_connections() const;

  // The mirror for a request, or kWait, or kNoMirror. Pass 0: healthy
  // mirrors but `avoid`; pass 1: any healthy one; pass 2: anything that has
  // not answered 404.
  int Pick(const MirrorQuery& query) const;
  // Whether mirror `m` can start one more transfer (for requests pinned to it).
  bool HasFreeConnection(int m) const;

  // A transfer of priority `p` starts on `m`.
  void Started(int m, Priority p);
  // It ended; `started_as` is the priority Started was told.
  void Ended(int m, Priority started_as, const TransferEnd& end);
  // Mirror `m` answered 404 to a request: adds it to *not_found; true if
  // another mirror may still have the object (a mirror that is behind).
  bool NotFoundAt(int m, MirrorMask* not_found) const;
  // Healthy mirrors other than `m` that have not answered 404.
  int HealthyOthers(int m, MirrorMask not_found) const;
  // What `m` served failed its hash: set it aside for longer.
  void ReportCorrupt(int m);

  // Set-aside mirrors whose time is up, now marked as being probed: the
  // engine sends each one probe.
  std::vector<int> TakeDueProbes();
  // When the next set-aside mirror becomes due, if any is waiting.
  std::optional<Clock::TimePoint> NextProbeTime() const;

  std::vector<MirrorStats> Stats() const;
  // Base round trip and rate of the healthy mirror with the lowest round
  // trip (where most work goes); -1 when nothing is measured.
  void Estimate(double* rtt_s, double* bytes_per_s) const;

 private:
  struct Mirror {
    MirrorSpec spec;
    unsigned connections = 0;
    unsigned active = 0;
    unsigned active_by_priority[3] = {0, 0, 0};
    double srtt = -1, thr = -1, base_rtt = -1;
    uint64_t transfers = 0, bytes = 0, errors = 0, corrupt = 0, not_found = 0;
    int failures_in_a_row = 0;
    bool aside = false, probing = false;
    int aside_ms = 0;
    Clock::TimePoint aside_until{};
  };

  double Cost(int m, const MirrorQuery& query) const;
  bool Full(const Mirror& m, Priority p) const;
  void SetAside(Mirror& m, int initial_ms);

  const Clock& clock_;
  std::vector<Mirror> mirrors_;
};

}  // namespace hloop::fetch
