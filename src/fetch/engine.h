// FetchEngine: every HTTP transfer goes through one libcurl multi handle
// driven by one I/O thread (CernVM-FS's DownloadManager shape). Callers
// submit requests with a priority and wait, or get a callback. The engine
//  - keeps many transfers in flight, bounded per mirror, reusing connections;
//  - starts waiting work in priority order: a read a process is blocked on
//    (kDemand) before read-ahead, before profile prefetch; prefetch and
//    read-ahead never take a mirror's last connections;
//  - collapses concurrent requests for the same object into one transfer,
//    raising its priority if a more urgent request joins;
//  - sends each transfer to the mirror expected to finish it first, from
//    smoothed measurements of every transfer (round-trip time, throughput)
//    and the mirror's load: work goes to the best mirror and spills to the
//    others when that is faster;
//  - retries transient failures (FetchError) on the next mirror at once if
//    there is one, else with exponential back-off and jitter, without
//    holding a transfer slot while it waits;
//  - sets a failing mirror, or one reported to serve corrupt data, aside
//    with its own back-off, and probes it again before using it.
//
// Thread-safe. Callbacks run on the I/O thread and must be quick.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fetch/errors.h"
#include "fetch/source.h"

namespace hloop::fetch {

// One request. Only `rel` is required.
struct Request {
  std::string rel;             // appended to the mirror's base URL
  uint64_t expected_size = 0;  // exact body length required; 0: any
  Priority priority = Priority::kDemand;
  int max_attempts = -1;       // -1: FetchOptions::max_attempts
  int mirror = -1;             // -1: the engine picks; else only this mirror
  bool head = false;           // HEAD request (a probe): no body
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
  void Shutdown();
  ~FetchEngine();
  FetchEngine(const FetchEngine&) = delete;
  FetchEngine& operator=(const FetchEngine&) = delete;

  // Adds a mirror; returns its number (0 for the first). Safe at any time.
  int AddMirror(const MirrorSpec& spec);
  // Sends `count` HEAD requests for `rel` to every mirror to measure its
  // round-trip time; later the same request re-probes set-aside mirrors.
  void Probe(const std::string& rel, int count);
  // The mirror that served `rel` sent data that failed its hash: set it aside.
  void ReportCorrupt(int mirror);

  // `done` runs once, on the I/O thread.
  void Submit(Request request, Callback done);
  // Blocking forms. `mirror`, if not null, receives who served it.
  Status Get(Request request, std::string* out, int* mirror = nullptr);
  Status Get(const std::string& rel, uint64_t expected_size, Priority priority, std::string* out) {
    return Get(Request{rel, expected_size, priority}, out);
  }
  // Raises the priority of a pending request for `rel`, if there is one.
  void Prioritize(const std::string& rel, Priority priority);

  EngineStats stats();
  std::vector<MirrorStats> mirror_stats();
  // The base URL of mirror `m` (of the first mirror if out of range).
  std::string base(int m = 0);

 private:
  using Clock = std::chrono::steady_clock;
  struct Job;
  struct Mirror;
  // Ready jobs, most urgent first: (priority, submission order).
  using ReadyKey = std::pair<int, uint64_t>;

  void Loop();
  void StartReady();                          // REQUIRES: mu_ held
  // The mirror for `job`, -1 to wait for a slot, -2 if no mirror is left.
  int PickMirror(const Job& job);             // REQUIRES: mu_ held
  double Cost(const Mirror& m, const Job& job) const;  // REQUIRES: mu_ held
  unsigned SlotsFor(const Mirror& m, Priority p) const;
  void MakeReady(Job* job);                   // REQUIRES: mu_ held
  void SetAside(Mirror& m, int initial_ms);   // REQUIRES: mu_ held
  void EnqueueProbe(int mirror);              // REQUIRES: mu_ held
  void Finish(void* easy, int curl_code);     // a transfer ended
  void Complete(Job* job, const Status& st);  // REQUIRES: mu_ not held
  void RaisePriority(Job* job, Priority priority);  // REQUIRES: mu_ held
  void* NewEasy(Job* job, const Mirror& m);
  int PollTimeoutMs();                        // REQUIRES: mu_ held

  const FetchOptions options_;
  void* multi_;  // CURLM*, used only on the I/O thread (and wakeup)
  void* headers_ = nullptr;  // curl_slist* of options_.headers

  std::mutex mu_;
  std::deque<Mirror> mirrors_;                        // GUARDED_BY(mu_); never shrinks
  std::string probe_rel_;                             // GUARDED_BY(mu_)
  std::map<std::string, std::unique_ptr<Job>> jobs_;  // by key. GUARDED_BY(mu_)
  std::map<ReadyKey, Job*> ready_;                    // GUARDED_BY(mu_)
  std::multimap<Clock::time_point, Job*> backoff_;    // GUARDED_BY(mu_)
  std::vector<Job*> not_found_;  // every mirror said 404: to complete. GUARDED_BY(mu_)
  std::vector<void*> idle_easy_;                      // I/O thread only
  std::set<void*> running_easy_;                      // I/O thread only
  uint64_t seq_ = 0;                                  // GUARDED_BY(mu_)
  unsigned active_ = 0;                               // GUARDED_BY(mu_)
  bool stopping_ = false;                             // GUARDED_BY(mu_)
  EngineStats stats_;                                 // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace hloop::fetch
