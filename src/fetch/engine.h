// FetchEngine: the transport. Every HTTP transfer goes through one libcurl
// multi handle driven by one I/O thread (CernVM-FS's DownloadManager shape).
// Callers submit requests with a priority and wait, or get a callback. The
// engine
//  - keeps many transfers in flight, bounded per mirror, reusing connections;
//  - starts waiting work in priority order: a read a process is blocked on
//    (kDemand) before read-ahead, before profile prefetch;
//  - raises the priority of pending requests for an object when a more
//    urgent reader needs it (Prioritize);
//  - keeps requests that wait for a retry in a back-off queue that holds no
//    transfer slot, and probes set-aside mirrors before they get work again.
// What it decides with is policy, kept apart and pure: MirrorSet (which
// mirror, measurements, set-aside, 404 fan-out) and RetryPolicy (which
// failures retry, how often, after how long).
//
// Every request is a transfer of its own: concurrent requests for one object
// are not merged here (the chunk reader of the disk module is the one place
// they collapse).
//
// Thread-safe. Callbacks run on the I/O thread and must be quick.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fetch/clock.h"
#include "fetch/errors.h"
#include "fetch/mirror_control.h"
#include "fetch/mirror_set.h"
#include "fetch/retry_policy.h"
#include "fetch/source.h"
#include "util/mutex.h"

namespace hloop::fetch {

// One request. Only `rel` is required.
struct Request {
  std::string rel;             // appended to the mirror's base URL
  uint64_t expected_size = 0;  // exact body length required; 0: any
  Priority priority = Priority::kDemand;
  int max_attempts = -1;  // -1: FetchOptions::max_attempts
  int mirror = -1;        // -1: the engine picks; else only this mirror
  bool head = false;      // HEAD request (a probe): no body
  // Largest body accepted; 0: no limit. A longer one is refused without
  // being read whole (by its Content-Length, else as it arrives): a final
  // Corruption ("... is larger than the N-byte limit for <what>"), not
  // retried, for it is a verdict about the file, not about the link.
  uint64_t max_size = 0;
  std::string what = "a file";  // what `rel` is, for the size-limit message
};

class FetchEngine {
 public:
  // `mirror` is the index of the mirror that served the request (-1 if none did).
  using Callback = std::function<void(const Status&, std::string body, int mirror)>;

  // An engine without mirrors; add them with AddMirror before submitting.
  explicit FetchEngine(FetchOptions options);
  // An engine with one mirror, `base` ("http://host/dir/", or "" when
  // requests carry whole URLs).
  FetchEngine(std::string base, FetchOptions options);
  // Fails every request still waiting or submitted later with Unavailable.
  void Shutdown() EXCLUDES(mu_);
  ~FetchEngine();
  FetchEngine(const FetchEngine&) = delete;
  FetchEngine& operator=(const FetchEngine&) = delete;

  // Adds a mirror; returns its number (0 for the first). Safe at any time.
  int AddMirror(const MirrorSpec& spec) EXCLUDES(mu_);
  // Sends `count` HEAD requests for `rel` to every mirror to measure its
  // round-trip time; later the same request re-probes set-aside mirrors.
  void Probe(const std::string& rel, int count) EXCLUDES(mu_);
  // The mirror that served `rel` sent data that failed its hash: set it aside.
  void ReportCorrupt(int mirror) EXCLUDES(mu_);

  // `done` runs once, on the I/O thread.
  void Submit(Request request, Callback done) EXCLUDES(mu_);
  // Blocking forms. `mirror`, if not null, receives who served it.
  Status Get(Request request, std::string* out, int* mirror = nullptr);
  Status Get(const std::string& rel, uint64_t expected_size, Priority priority, std::string* out) {
    return Get(Request{rel, expected_size, priority}, out);
  }
  // Raises the priority of every pending request for `rel` (none: nothing).
  void Prioritize(const std::string& rel, Priority priority) EXCLUDES(mu_);

  EngineStats stats() EXCLUDES(mu_);
  std::vector<MirrorStats> mirror_stats() EXCLUDES(mu_);
  // MirrorSet::Estimate: the best healthy mirror's round trip and rate.
  void Estimate(double* rtt_s, double* bytes_per_s) EXCLUDES(mu_);
  // The base URL of mirror `m` (of the first mirror if out of range).
  std::string base(int m = 0) EXCLUDES(mu_);
  const FetchOptions& options() const { return options_; }

 private:
  struct Job;
  // What the transport saw of a finished transfer.
  struct Outcome {
    FetchError error = FetchError::kNone;
    std::string detail;  // for messages
    TransferEnd end;     // for the mirror set
  };
  // Ready jobs, most urgent first: (priority, submission order).
  using ReadyKey = std::pair<int, uint64_t>;

  void Loop() EXCLUDES(mu_);
  void StartReady() REQUIRES(mu_);
  void MakeReady(Job* job) REQUIRES(mu_);
  void EnqueueProbe(int mirror) REQUIRES(mu_);
  // A transfer ended: Outcome from curl, then Settle, then Complete.
  void Finish(void* easy, int curl_code) EXCLUDES(mu_);
  Outcome ReadOutcome(void* easy, int curl_code, Job* job);  // I/O thread
  // Applies the policies to a finished attempt: the Status to complete the
  // job with, or nullopt if it was queued again (another mirror, back-off).
  std::optional<Status> Settle(Job* job, Outcome outcome) REQUIRES(mu_);
  void Complete(Job* job, const Status& st) EXCLUDES(mu_);
  void RaisePriority(Job* job, Priority priority) REQUIRES(mu_);
  void* NewEasy(Job* job, const MirrorSpec& mirror) REQUIRES(mu_);
  int PollTimeoutMs() REQUIRES(mu_);

  const FetchOptions options_;
  const Clock& clock_ = Clock::Steady();
  void* multi_;              // CURLM*, used only on the I/O thread (and wakeup)
  void* headers_ = nullptr;  // curl_slist* of options_.headers

  Mutex mu_;
  MirrorSet mirrors_ GUARDED_BY(mu_){clock_};
  RetryPolicy retry_ GUARDED_BY(mu_){options_, clock_};
  std::string probe_rel_ GUARDED_BY(mu_);
  // Every job not yet completed, by its `rel` (several may share one).
  std::multimap<std::string, std::unique_ptr<Job>> jobs_ GUARDED_BY(mu_);
  std::map<ReadyKey, Job*> ready_ GUARDED_BY(mu_);
  std::multimap<Clock::TimePoint, Job*> backoff_ GUARDED_BY(mu_);
  std::vector<Job*> not_found_ GUARDED_BY(mu_);  // every mirror said 404: to complete
  std::vector<void*> idle_easy_;                 // I/O thread only
  std::set<void*> running_easy_;                 // I/O thread only
  uint64_t seq_ GUARDED_BY(mu_) = 0;
  unsigned active_ GUARDED_BY(mu_) = 0;
  bool stopping_ GUARDED_BY(mu_) = false;
  EngineStats stats_ GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace hloop::fetch
