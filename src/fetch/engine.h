// FetchEngine: every HTTP transfer goes through one libcurl multi handle
// driven by one I/O thread (CernVM-FS's DownloadManager shape). Callers
// submit requests with a priority and wait, or get a callback. The engine
//  - keeps many transfers in flight (max_inflight), reusing connections;
//  - starts waiting work in priority order: a read a process is blocked on
//    (kDemand) before read-ahead, before profile prefetch;
//  - collapses concurrent requests for the same object into one transfer,
//    raising its priority if a more urgent request joins;
//  - retries transient failures (FetchError) with exponential back-off and
//    jitter, without holding a transfer slot while it waits.
//
// Thread-safe. Callbacks run on the I/O thread and must be quick.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
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

struct EngineStats {
  uint64_t requests = 0;       // submitted, including collapsed ones
  uint64_t collapsed = 0;      // joined a transfer already pending
  uint64_t transfers = 0;      // attempts started
  uint64_t retries = 0;
  uint64_t failures = 0;       // requests completed with an error
  uint64_t bytes = 0;          // body bytes received
  uint64_t max_inflight_seen = 0;
};

class FetchEngine {
 public:
  using Callback = std::function<void(const Status&, std::string body)>;

  // `base` is put before every relative path ("http://host/dir/").
  FetchEngine(std::string base, FetchOptions options);
  // Fails every request still waiting with Unavailable and stops the thread.
  ~FetchEngine();
  FetchEngine(const FetchEngine&) = delete;
  FetchEngine& operator=(const FetchEngine&) = delete;

  // Fetches base + rel. `expected_size` (0: any) is the exact body length
  // required. `done` runs once, on the I/O thread.
  void Submit(const std::string& rel, uint64_t expected_size, Priority priority, Callback done);
  // Blocking form of Submit.
  Status Get(const std::string& rel, uint64_t expected_size, Priority priority, std::string* out);
  // Raises the priority of a pending request for `rel`, if there is one.
  void Prioritize(const std::string& rel, Priority priority);

  EngineStats stats();
  const std::string& base() const { return base_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Job;
  // Ready jobs, most urgent first: (priority, submission order).
  using ReadyKey = std::pair<int, uint64_t>;

  void Loop();
  void StartReady();                          // REQUIRES: mu_ held
  void Finish(void* easy, int curl_code);     // a transfer ended
  void Complete(Job* job, const Status& st);  // REQUIRES: mu_ not held
  void RaisePriority(Job* job, Priority priority);  // REQUIRES: mu_ held
  void* NewEasy(Job* job);
  int PollTimeoutMs();                        // REQUIRES: mu_ held

  const std::string base_;
  const FetchOptions options_;
  void* multi_;  // CURLM*, used only on the I/O thread (and wakeup)

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Job>> jobs_;  // by rel. GUARDED_BY(mu_)
  std::map<ReadyKey, Job*> ready_;                    // GUARDED_BY(mu_)
  std::multimap<Clock::time_point, Job*> backoff_;    // GUARDED_BY(mu_)
  std::vector<void*> idle_easy_;                      // I/O thread only
  std::set<void*> running_easy_;                      // I/O thread only
  uint64_t seq_ = 0;                                  // GUARDED_BY(mu_)
  unsigned active_ = 0;                               // GUARDED_BY(mu_)
  bool stopping_ = false;                             // GUARDED_BY(mu_)
  EngineStats stats_;                                 // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace hloop::fetch
