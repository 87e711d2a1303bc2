// HTTP(S) source: a Source over the FetchEngine (one curl multi handle, one
// I/O thread, mirrors, priorities, retries), and the
// MirrorControl of its mirrors. Thread-safe.
#pragma once

#include <memory>

#include "fetch/engine.h"
#include "fetch/mirror_control.h"
#include "fetch/source.h"

namespace hloop::fetch {

class HttpSource : public Source, public MirrorControl {
 public:
  explicit HttpSource(std::unique_ptr<FetchEngine> engine) : engine_(std::move(engine)) {}
  using Source::Get;
  Status Get(const std::string& rel, uint64_t expected_size, Priority priority, std::string* out,
             int* origin) override {
    return engine_->Get(Request{rel, expected_size, priority}, out, origin);
  }
  void Prioritize(const std::string& rel, Priority priority) override {
    engine_->Prioritize(rel, priority);
  }
  void ReportCorrupt(int origin) override { engine_->ReportCorrupt(origin); }
  void Estimate(double* rtt_s, double* bytes_per_s) override {
    engine_->Estimate(rtt_s, bytes_per_s);
  }
  void Shutdown() override { engine_->Shutdown(); }
  MirrorControl* mirror_control() override { return this; }
  std::string Describe(const std::string& rel) const override { return engine_->base() + rel; }
  std::string DescribeFrom(const std::string& rel, int origin) const override {
    return engine_->base(origin) + rel;
  }

  // MirrorControl
  std::vector<MirrorStats> mirror_stats() override { return engine_->mirror_stats(); }
  EngineStats engine_stats() override { return engine_->stats(); }
  Status GetFrom(int mirror, const std::string& rel, uint64_t expected_size, bool head,
                 std::string* out) override {
    return engine_->Get(Request{rel, expected_size, Priority::kDemand, 1, mirror, head}, out);
  }

 private:
  std::unique_ptr<FetchEngine> engine_;
};

// Fetches one URL (http, https, file or path) whole: for the index.
Result<std::string> FetchUrl(const std::string& url, const FetchOptions& options);

}  // namespace hloop::fetch
