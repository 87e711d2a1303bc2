// HTTP(S) source on libcurl. Each calling thread borrows an easy handle from
// a pool, so connections are kept alive and reused across requests.
// Thread-safe.
//
// Transient failures are retried with exponential back-off and jitter; the
// fuller engine (curl multi, mirrors, priorities) comes with issue #3.
#pragma once

#include <mutex>
#include <vector>

#include "fetch/source.h"

namespace hloop::fetch {

// Closed set of failure kinds; they decide whether to retry.
enum class FetchError {
  kNone,
  kConnect,    // could not connect, DNS, refused
  kTimeout,    // connect timeout or stalled transfer
  kReset,      // connection broke mid-transfer
  kHttp5xx,    // server error: retry
  kNotFound,   // 404/410: final
  kHttp4xx,    // other client errors: final
  kShortBody,  // body length differs from what was expected: retry
  kTls,        // certificate or TLS failure: final
  kOther,
};
bool IsTransient(FetchError e);
const char* FetchErrorName(FetchError e);

class HttpSource : public Source {
 public:
  HttpSource(std::string base, FetchOptions options);
  ~HttpSource() override;
  Status Get(const std::string& rel, uint64_t expected_size, std::string* out) override;
  std::string Describe(const std::string& rel) const override { return base_ + rel; }

 private:
  void* Borrow();  // CURL*
  void Return(void* handle);
  // One attempt; classifies the failure.
  FetchError Attempt(void* handle, const std::string& url, uint64_t expected_size,
                     std::string* out, std::string* detail);

  const std::string base_;
  const FetchOptions options_;
  std::mutex mu_;
  std::vector<void*> idle_;  // GUARDED_BY(mu_)
};

// Fetches one URL (http, https, file or path) whole: for the index.
Result<std::string> FetchUrl(const std::string& url, const FetchOptions& options);

}  // namespace hloop::fetch
