// Test-only: an in-memory fetch::Source. Objects are a map rel -> bytes;
// every Get is counted per path, and failures, corruption and latency can be
// injected per path. Thread-safe, like every Source.
//
// A device owns its Source, so tests usually keep a raw pointer:
//   auto src = std::make_unique<FakeSource>();
//   FakeSource* fake = src.get();  // valid while the device lives
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fetch/source.h"
#include "util/mutex.h"
#include "util/status.h"

namespace hloop::testing {

class FakeSource : public fetch::Source {
 public:
  // Adds or replaces the object at `rel`.
  void Set(const std::string& rel, std::string bytes) {
    MutexLock lock(&mu_);
    objects_[rel] = std::move(bytes);
  }
  void Erase(const std::string& rel) {
    MutexLock lock(&mu_);
    objects_.erase(rel);
  }
  // The next `times` Gets of `rel` (-1: every one) return its bytes with the
  // last byte flipped: same length, wrong content.
  void Corrupt(const std::string& rel, int times = -1) {
    MutexLock lock(&mu_);
    corrupt_[rel] = times;
  }
  // The next `times` Gets of `rel` (-1: every one) fail with `status`.
  void Fail(const std::string& rel, Status status, int times = -1) {
    MutexLock lock(&mu_);
    fail_[rel] = {std::move(status), times};
  }
  // What Estimate reports (default: unknown).
  void set_estimate(double rtt_s, double bytes_per_s) {
    MutexLock lock(&mu_);
    rtt_s_ = rtt_s;
    bytes_per_s_ = bytes_per_s;
  }
  void Estimate(double* rtt_s, double* bytes_per_s) override {
    MutexLock lock(&mu_);
    *rtt_s = rtt_s_;
    *bytes_per_s = bytes_per_s_;
  }
  void ReportCorrupt(int) override {
    MutexLock lock(&mu_);
    corrupt_reports_++;
  }
  int corrupt_reports() const {
    MutexLock lock(&mu_);
    return corrupt_reports_;
  }
  // Every Get in arrival order, with its priority.
  std::vector<std::pair<std::string, fetch::Priority>> requests() const {
    MutexLock lock(&mu_);
    return requests_;
  }
  // Every Get sleeps this long before answering (to widen race windows).
  void set_delay(std::chrono::milliseconds d) {
    MutexLock lock(&mu_);
    delay_ = d;
  }

  int gets(const std::string& rel) const {
    MutexLock lock(&mu_);
    auto it = gets_.find(rel);
    return it == gets_.end() ? 0 : it->second;
  }
  int total_gets() const {
    MutexLock lock(&mu_);
    int n = 0;
    for (const auto& [rel, c] : gets_) n += c;
    return n;
  }
  void ResetCounts() {
    MutexLock lock(&mu_);
    gets_.clear();
  }

  using Source::Get;
  Status Get(const std::string& rel, uint64_t expected_size, fetch::Priority priority,
             std::string* out, int* origin) override {
    if (origin) *origin = 0;
    std::chrono::milliseconds delay;
    {
      MutexLock lock(&mu_);
      gets_[rel]++;
      requests_.emplace_back(rel, priority);
      delay = delay_;
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    MutexLock lock(&mu_);
    if (auto f = fail_.find(rel); f != fail_.end() && f->second.times != 0) {
      if (f->second.times > 0) f->second.times--;
      return f->second.status;
    }
    auto it = objects_.find(rel);
    if (it == objects_.end()) return Status::NotFound(Describe(rel) + ": 404");
    std::string data = it->second;
    if (auto c = corrupt_.find(rel); c != corrupt_.end() && c->second != 0) {
      if (c->second > 0) c->second--;
      if (!data.empty()) data.back() = char(data.back() ^ 0x5a);
    }
    if (expected_size && data.size() != expected_size)
      return Status::Corruption(Describe(rel) + ": is " + std::to_string(data.size()) +
                                " bytes, expected " + std::to_string(expected_size));
    *out = std::move(data);
    return Status::Ok();
  }
  std::string Describe(const std::string& rel) const override { return "fake://" + rel; }

 private:
  struct Failure {
    Status status;
    int times;
  };
  mutable Mutex mu_;
  std::map<std::string, std::string> objects_ GUARDED_BY(mu_);
  std::map<std::string, int> corrupt_ GUARDED_BY(mu_);
  std::map<std::string, Failure> fail_ GUARDED_BY(mu_);
  std::map<std::string, int> gets_ GUARDED_BY(mu_);
  std::chrono::milliseconds delay_ GUARDED_BY(mu_){0};
  double rtt_s_ GUARDED_BY(mu_) = -1;
  double bytes_per_s_ GUARDED_BY(mu_) = -1;
  int corrupt_reports_ GUARDED_BY(mu_) = 0;
  std::vector<std::pair<std::string, fetch::Priority>> requests_ GUARDED_BY(mu_);
};

}  // namespace hloop::testing
