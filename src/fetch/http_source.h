// HTTP(S) source: a Source over the FetchEngine (one curl multi handle, one
// I/O thread, priorities, collapsing, retries). Thread-safe.
#pragma once

#include <memory>

#include "fetch/engine.h"
#include "fetch/errors.h"
#include "fetch/source.h"

namespace hloop::fetch {

class HttpSource : public Source {
 public:
  HttpSource(std::string base, FetchOptions options)
      : engine_(std::make_unique<FetchEngine>(std::move(base), std::move(options))) {}
  Status Get(const std::string& rel, uint64_t expected_size, Priority priority,
             std::string* out) override {
    return engine_->Get(rel, expected_size, priority, out);
  }
  void Prioritize(const std::string& rel, Priority priority) override { engine_->Prioritize(rel, priority); }
  std::string Describe(const std::string& rel) const override { return engine_->base() + rel; }
  FetchEngine& engine() { return *engine_; }

 private:
  std::unique_ptr<FetchEngine> engine_;
};

// Fetches one URL (http, https, file or path) whole: for the index.
Result<std::string> FetchUrl(const std::string& url, const FetchOptions& options);

}  // namespace hloop::fetch
