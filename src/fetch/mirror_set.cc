#include "fetch/mirror_set.h"

#include <algorithm>
#include <limits>

#include "util/log.h"

namespace hloop::fetch {

namespace {
// A mirror is set aside after this many failures in a row.
constexpr int kFailuresToSetAside = 2;
constexpr int kAsideInitialMs = 1000, kAsideCorruptMs = 10000, kAsideMaxMs = 120000;
// Smoothing of measurements (weight of a new sample).
constexpr double kAlpha = 0.25;
// How fast the base round trip follows samples above it.
constexpr double kBaseRttDrift = 0.02;
// Bodies shorter than this say little about a mirror's rate.
constexpr uint64_t kMinBodyForRate = 32 * 1024;
// Until a mirror has been measured.
constexpr double kUnknownBytesPerS = 20e6;
constexpr double kUnknownSize = 64e3;

double Smooth(double old, double sample) {
  return old < 0 ? sample : old + kAlpha * (sample - old);
}

bool Has(MirrorMask mask, int m) { return (mask & (MirrorMask(1) << m)) != 0; }

// Background work leaves room for readers: prefetch may use three quarters
// of a mirror's connections, read-ahead all but one.
unsigned SlotsFor(unsigned connections, Priority p) {
  switch (p) {
    case Priority::kDemand: return connections;
    case Priority::kReadAhead: return std::max(1u, connections - 1);
    case Priority::kPrefetch: return std::max(1u, connections * 3 / 4);
  }
  return connections;
}
}  // namespace

int MirrorSet::Add(const MirrorSpec& spec, unsigned default_connections, bool http2) {
  if (mirrors_.size() >= size_t(kMaxMirrors)) {
    LogWarn("more than " + std::to_string(kMaxMirrors) + " mirrors; ignoring " + spec.base);
    return size() - 1;
  }
  Mirror& m = mirrors_.emplace_back();
  m.spec = spec;
  m.spec.http2 = spec.http2 || http2;
  m.connections = std::max(1u, spec.connections ? spec.connections : default_connections);
  m.spec.connections = m.connections;
  m.aside_ms = kAsideInitialMs;
  return size() - 1;
}

unsigned MirrorSet::total_connections() const {
  unsigned total = 0;
  for (const Mirror& m : mirrors_) total += m.connections;
  return total;
}

double MirrorSet::Cost(int i, const MirrorQuery& query) const {
  // Expected seconds to finish the transfer there: a round trip plus the
  // body at the measured rate. Unmeasured mirrors rank after measured ones
  // (so they are tried when the best are busy), in the order given.
  const Mirror& m = mirrors_[size_t(i)];
  double rtt = m.base_rtt;
  if (rtt < 0) {
    double worst = -1;
    for (const Mirror& o : mirrors_) worst = std::max(worst, o.base_rtt);
    rtt = worst < 0 ? 0.1 : worst * 1.5 + 0.05;
    rtt += 1e-6 * double(i);
  }
  double size = query.expected_size ? double(query.expected_size) : kUnknownSize;
  double thr = m.thr > 0 ? m.thr : kUnknownBytesPerS;
  return rtt + size / thr;
}

bool MirrorSet::Full(const Mirror& m, Priority p) const {
  // Until a transfer has measured its rate, a mirror gets two at most: a
  // narrow link must not swallow a burst it cannot serve.
  const unsigned slots = SlotsFor(m.connections, p);
  return m.active >= m.connections || (m.thr < 0 && m.active >= 2 && mirrors_.size() > 1) ||
         m.active_by_priority[int(p)] >= slots || (p != Priority::kDemand && m.active >= slots);
}

int MirrorSet::Pick(const MirrorQuery& query) const {
  for (int pass = 0; pass < 3; pass++) {
    int best = -1;
    double best_cost = std::numeric_limits<double>::infinity();
    bool best_full = false;
    for (int i = 0; i < size(); i++) {
      const Mirror& m = mirrors_[size_t(i)];
      if (Has(query.not_found, i)) continue;
      if (pass == 0 && (m.aside || i == query.avoid)) continue;
      if (pass == 1 && m.aside) continue;
      bool full = Full(m, query.priority);
      // A busy mirror frees a slot in about one transfer time.
      double cost = Cost(i, query) * (full ? 2 : 1);
      if (cost < best_cost) {
        best = i;
        best_cost = cost;
        best_full = full;
      }
    }
    if (best >= 0) return best_full ? kWait : best;
  }
  return kNoMirror;
}

bool MirrorSet::HasFreeConnection(int m) const {
  const Mirror& mirror = mirrors_[size_t(m)];
  return mirror.active < mirror.connections;
}

void MirrorSet::Started(int i, Priority p) {
  Mirror& m = mirrors_[size_t(i)];
  m.active++;
  m.active_by_priority[int(p)]++;
  m.transfers++;
}

void MirrorSet::Ended(int i, Priority started_as, const TransferEnd& end) {
  Mirror& m = mirrors_[size_t(i)];
  m.active--;
  m.active_by_priority[int(started_as)]--;
  m.bytes += end.body_bytes;
  if (end.error == FetchError::kNone) {
    // Measurements: time from request sent to first byte, and the body's
    // rate once it flows (only bodies big enough to say something).
    if (end.first_byte_s > 0) {
      const double sample = end.first_byte_s;
      m.srtt = Smooth(m.srtt, sample);
      m.base_rtt = m.base_rtt < 0 || sample < m.base_rtt
                       ? sample
                       : m.base_rtt + kBaseRttDrift * (sample - m.base_rtt);
    }
    if (end.body_bytes >= kMinBodyForRate) {
      m.thr = Smooth(m.thr, double(end.body_bytes) / std::max(end.body_s, 1e-4));
    }
    m.failures_in_a_row = 0;
    if (m.aside) LogInfo("mirror " + m.spec.base + " is back");
    // A probe that succeeds ends the incident but keeps its back-off, so a
    // mirror that fails again at once waits longer.
    if (!end.probe) m.aside_ms = kAsideInitialMs;
    m.aside = m.probing = false;
  } else if (end.error == FetchError::kNotFound) {
    m.not_found++;
  } else if (IsTransient(end.error) || end.error == FetchError::kTls ||
             end.error == FetchError::kHttp4xx) {
    m.errors++;
    m.failures_in_a_row++;
    if (end.probe || end.error == FetchError::kConnect ||
        m.failures_in_a_row >= kFailuresToSetAside)
      SetAside(m, kAsideInitialMs);
  }
}

bool MirrorSet::NotFoundAt(int m, MirrorMask* not_found) const {
  *not_found |= MirrorMask(1) << m;
  for (int i = 0; i < size(); i++) {
    if (!Has(*not_found, i)) return true;
  }
  return false;
}

int MirrorSet::HealthyOthers(int m, MirrorMask not_found) const {
  int n = 0;
  for (int i = 0; i < size(); i++) n += i != m && !mirrors_[size_t(i)].aside && !Has(not_found, i);
  return n;
}

void MirrorSet::ReportCorrupt(int i) {
  if (i < 0 || i >= size()) return;
  Mirror& m = mirrors_[size_t(i)];
  m.corrupt++;
  if (size() > 1) LogWarn("mirror " + m.spec.base + " served data that failed its hash check");
  SetAside(m, kAsideCorruptMs);
}

void MirrorSet::SetAside(Mirror& m, int initial_ms) {
  // With nowhere else to go there is nothing to gain: keep using it.
  if (size() < 2) return;
  const Clock::TimePoint now = clock_.Now();
  if (m.aside && !m.probing) {
    // Other transfers of the same incident: it is aside already. Only a
    // corrupt report may lengthen the time, never shorten it.
    m.aside_until = std::max(m.aside_until, now + std::chrono::milliseconds(initial_ms));
    return;
  }
  // First failure of an incident: the initial time (or what a recent
  // incident left); a failed re-probe: twice as long as last time.
  m.aside_ms = m.aside ? std::min(m.aside_ms * 2, kAsideMaxMs) : std::max(m.aside_ms, initial_ms);
  m.aside = true;
  m.probing = false;
  m.aside_until = now + std::chrono::milliseconds(m.aside_ms);
  LogInfo("mirror " + m.spec.base + " set aside for " +
          std::to_string(m.aside_ms / 1000.0).substr(0, 5) + " s");
}

std::vector<int> MirrorSet::TakeDueProbes() {
  std::vector<int> due;
  const Clock::TimePoint now = clock_.Now();
  for (int i = 0; i < size(); i++) {
    Mirror& m = mirrors_[size_t(i)];
    if (m.aside && !m.probing && m.aside_until <= now) {
      m.probing = true;
      due.push_back(i);
    }
  }
  return due;
}

std::optional<Clock::TimePoint> MirrorSet::NextProbeTime() const {
  std::optional<Clock::TimePoint> next;
  for (const Mirror& m : mirrors_) {
    if (m.aside && !m.probing && (!next || m.aside_until < *next)) next = m.aside_until;
  }
  return next;
}

std::vector<MirrorStats> MirrorSet::Stats() const {
  const Clock::TimePoint now = clock_.Now();
  std::vector<MirrorStats> out;
  for (const Mirror& m : mirrors_) {
    MirrorStats s;
    s.base = m.spec.base;
    s.http2 = m.spec.http2;
    s.connections = m.connections;
    s.rtt_s = m.srtt;
    s.base_rtt_s = m.base_rtt;
    s.bytes_per_s = m.thr;
    s.transfers = m.transfers;
    s.bytes = m.bytes;
    s.errors = m.errors;
    s.corrupt = m.corrupt;
    s.not_found = m.not_found;
    s.active = m.active;
    s.set_aside = m.aside;
    if (m.aside && m.aside_until > now)
      s.aside_s = std::chrono::duration<double>(m.aside_until - now).count();
    out.push_back(s);
  }
  return out;
}

void MirrorSet::Estimate(double* rtt_s, double* bytes_per_s) const {
  *rtt_s = -1;
  *bytes_per_s = -1;
  for (const Mirror& m : mirrors_) {
    if (m.aside || m.base_rtt < 0) continue;
    if (*rtt_s < 0 || m.base_rtt < *rtt_s) {
      *rtt_s = m.base_rtt;
      *bytes_per_s = m.thr;
    }
  }
}

}  // namespace hloop::fetch
