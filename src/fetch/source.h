// Where an image's files come from: a directory or a web server. A Source
// fetches objects by their path relative to the index (for example
// "chunks/ab/ab34..."); it knows nothing about chunks, hashes or caches.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "fetch/url.h"
#include "util/status.h"

namespace hloop::fetch {

struct FetchOptions {
  // Attempts for a transient failure (connect error, reset, timeout, 5xx,
  // short body) before giving up with Unavailable; 0 keeps trying, as a root
  // file system needs (a server that is away for a while is waited for).
  // Back-off doubles from retry_initial_ms up to retry_max_ms, with jitter.
  int max_attempts = 0;
  // A request not answered within this many seconds fails with Unavailable
  // (the front ends turn that into EIO); 0 waits without limit.
  int io_timeout_s = 0;
  int retry_initial_ms = 200;
  int retry_max_ms = 5000;
  long connect_timeout_s = 10;
  // A transfer that moves no byte for this long is abandoned and retried.
  long stall_timeout_s = 10;
  std::string user_agent = "hloop";
  // Transfers in flight at once (HTTP sources).
  unsigned max_inflight = 16;
  // Offer HTTP/2 and multiplex transfers over one connection where the
  // server agrees. Off by default: over a fast link HTTP/1.1 on several
  // connections is usually faster.
  bool http2 = false;
};

// How urgent a fetch is. Lower values go first.
enum class Priority : int {
  kDemand = 0,     // a reader is blocked on it
  kReadAhead = 1,  // a sequential reader will want it soon
  kPrefetch = 2,   // a boot profile says it will be wanted
};

// Thread-safe: Get may be called from many threads at once.
class Source {
 public:
  virtual ~Source() = default;
  // Fetches `rel` into *out. NotFound if the object does not exist (404),
  // Unavailable when the source could not be reached after retries.
  // `expected_size`, if not zero, is the size the object must have: a
  // shorter or longer body is retried, then reported as Corruption.
  virtual Status Get(const std::string& rel, uint64_t expected_size, Priority priority,
                     std::string* out) = 0;
  // A more urgent reader now waits for `rel`, already requested: move it up.
  virtual void Prioritize(const std::string& /*rel*/, Priority /*priority*/) {}
  // The full URL or path of `rel`, for messages.
  virtual std::string Describe(const std::string& rel) const = 0;
};

// A source for the directory or server that holds the index at `loc`.
Result<std::unique_ptr<Source>> OpenSource(const Location& loc, const FetchOptions& options);

}  // namespace hloop::fetch
