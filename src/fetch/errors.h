// The closed set of ways a transfer can fail; the kind decides whether to
// retry (CernVM-FS network_errors.h).
#pragma once

namespace hloop::fetch {

enum class FetchError {
  kNone,
  kConnect,    // could not connect, DNS, refused
  kTimeout,    // connect timeout or stalled transfer
  kReset,      // connection broke mid-transfer
  kHttp5xx,    // server error (also 408, 429): retry
  kNotFound,   // 404/410: final
  kHttp4xx,    // other client errors: final
  kShortBody,  // body length differs from what was expected: retry
  kTls,        // certificate or TLS failure: final
  kTooLarge,   // body over the request's max_size: final
  kBadBody,    // a whole body that failed the caller's check: fetch again
  kOther,
};

bool IsTransient(FetchError e);
const char* FetchErrorName(FetchError e);
// libcurl's CURLcode (as an int, to keep curl.h out of headers) to a kind.
FetchError ClassifyCurlCode(int curl_code);
// HTTP status of a finished transfer to a kind (kNone for 2xx).
FetchError ClassifyHttpStatus(long status);

}  // namespace hloop::fetch
