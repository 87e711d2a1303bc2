// HTTP(S) source: a Source over the FetchEngine (one curl multi handle, one
// I/O thread, mirrors, priorities, collapsing, retries). Thread-safe.
#pragma once

#include <memory>

#include "fetch/engine.h"
#include "fetch/errors.h"
#include "fetch/source.h"

namespace hloop::fetch {

class HttpSource : public Source {
 public:
  explicit HttpSource(std::unique_ptr<FetchEngine> engine) : engine_(std::move(engine)) {}
  using Source::Get;
  Status Get(const std::string& rel, uint64_t expected_size, Priority priority, std::string* out,
             int* origin) override {
    return engine_->Get(Request{rel, expected_size, priority}, out, origin);
  }
  void Prioritize(const std::string& rel, Priority priority) override { engine_->Prioritize(rel, priority); }
  void ReportCorrupt(int origin) override { engine_->ReportCorrupt(origin); }
  void Estimate(double* rtt_s, double* bytes_per_s) override;
  void Shutdown() override { engine_->Shutdown(); }
  std::optional<EngineStats> engine_stats() override { return engine_->stats(); }
  std::vector<MirrorStats> mirror_stats() override { return engine_->mirror_stats(); }
  std::string Describe(const std::string& rel) const override { return engine_->base() + rel; }
  std::string DescribeFrom(const std::string& rel, int origin) const override { return engine_->base(origin) + rel; }
  FetchEngine& engine() { return *engine_; }

 private:
  std::unique_ptr<FetchEngine> engine_;
};

// Fetches one URL (http, https, file or path) whole: for the index.
Result<std::string> FetchUrl(const std::string& url, const FetchOptions& options);

}  // namespace hloop::fetch
