// Where an image's files come from: a directory or a web server. A Source
// fetches objects by their path relative to the index (for example
// "chunks/ab/ab34..."); it knows nothing about chunks, hashes or caches.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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
  // Transfers in flight at once per mirror (a mirror's own setting wins).
  unsigned max_inflight = 16;
  // Offer HTTP/2 and multiplex transfers over one connection where the
  // server agrees, on every mirror (a mirror can also ask for it alone).
  // Off by default: over a fast link HTTP/1.1 on several connections is
  // usually faster.
  bool http2 = false;
  // Proxy URL for every transfer; empty: libcurl's reading of http_proxy,
  // https_proxy, all_proxy and no_proxy from the environment.
  std::string proxy;
  // CA bundle (PEM) to verify HTTPS servers with, instead of the system's.
  // Certificates are always verified.
  std::string cacert;
  // Extra request headers, "Name: value" (for example an access token).
  std::vector<std::string> headers;
};

// A place that serves an image's files: the directory that holds the index,
// as a base URL ending in '/', with its own transfer settings.
struct MirrorSpec {
  std::string base;
  bool http2 = false;        // offer HTTP/2 to this mirror
  unsigned connections = 0;  // transfers in flight at once; 0: the default
};

// Parses "URL[#option,option...]", the form of --mirror and of each line of
// a NAME.mirrors file. URL is the directory holding the index (a trailing
// "NAME.idx" is dropped). Options: "http2", "connections=N". The fragment
// is never sent to the server. InvalidArgument names what is wrong.
Result<MirrorSpec> ParseMirrorSpec(const std::string& text);
// Parses a NAME.mirrors file: one spec per line; blank lines and lines
// starting with '#' are skipped.
Result<std::vector<MirrorSpec>> ParseMirrorList(const std::string& text, const std::string& what);

// How urgent a fetch is. Lower values go first.
enum class Priority : int {
  kDemand = 0,     // a reader is blocked on it
  kReadAhead = 1,  // a sequential reader will want it soon
  kPrefetch = 2,   // a boot profile says it will be wanted
};

class MirrorControl;

// Thread-safe: Get may be called from many threads at once.
class Source {
 public:
  virtual ~Source() = default;
  // Fetches `rel` into *out. NotFound if the object does not exist (404),
  // Unavailable when the source could not be reached after retries.
  // `expected_size`, if not zero, is the size the object must have: a
  // shorter or longer body is retried, then reported as Corruption.
  // `origin`, if not null, receives which mirror served it (for
  // ReportCorrupt).
  virtual Status Get(const std::string& rel, uint64_t expected_size, Priority priority,
                     std::string* out, int* origin) = 0;
  Status Get(const std::string& rel, uint64_t expected_size, Priority priority, std::string* out) {
    return Get(rel, expected_size, priority, out, nullptr);
  }
  // A more urgent reader now waits for `rel`, already requested: move it up.
  virtual void Prioritize(const std::string& /*rel*/, Priority /*priority*/) {}
  // What `origin` served did not match its hash: trust it less.
  virtual void ReportCorrupt(int /*origin*/) {}
  // Smoothed round-trip time and per-transfer throughput of the best mirror
  // (-1 when unknown, and for local files), for sizing read-ahead.
  virtual void Estimate(double* rtt_s, double* bytes_per_s) {
    *rtt_s = -1;
    *bytes_per_s = -1;
  }
  // Fails every pending and later Get with Unavailable (so that threads
  // blocked on a server that is away can be joined).
  virtual void Shutdown() {}
  // Mirror statistics and control, for sources with HTTP mirrors; nullptr
  // for the others. Lives as long as the source.
  virtual MirrorControl* mirror_control() { return nullptr; }
  // The full URL or path of `rel`, for messages.
  virtual std::string Describe(const std::string& rel) const = 0;
  // The same, at the mirror `origin` (from Get).
  virtual std::string DescribeFrom(const std::string& rel, int /*origin*/) const {
    return Describe(rel);
  }
};

// A source for the directory or server that holds the index at `loc`.
Result<std::unique_ptr<Source>> OpenSource(const Location& loc, const FetchOptions& options);

}  // namespace hloop::fetch
