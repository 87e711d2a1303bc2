#include "fetch/errors.h"

#include <curl/curl.h>

namespace hloop::fetch {

bool IsTransient(FetchError e) {
  switch (e) {
    case FetchError::kConnect:
    case FetchError::kTimeout:
    case FetchError::kReset:
    case FetchError::kHttp5xx:
    case FetchError::kShortBody:
    case FetchError::kBadBody:
    case FetchError::kOther: return true;
    default: return false;
  }
}

const char* FetchErrorName(FetchError e) {
  switch (e) {
    case FetchError::kNone: return "ok";
    case FetchError::kConnect: return "cannot connect";
    case FetchError::kTimeout: return "timed out";
    case FetchError::kReset: return "connection broken";
    case FetchError::kHttp5xx: return "server error";
    case FetchError::kNotFound: return "not found";
    case FetchError::kHttp4xx: return "refused by server";
    case FetchError::kShortBody: return "wrong body length";
    case FetchError::kTls: return "TLS failure";
    case FetchError::kTooLarge: return "too large";
    case FetchError::kBadBody: return "failed its check";
    case FetchError::kOther: return "transfer failed";
  }
  return "?";
}

FetchError ClassifyCurlCode(int curl_code) {
  switch (CURLcode(curl_code)) {
    case CURLE_OK: return FetchError::kNone;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT: return FetchError::kConnect;
    case CURLE_OPERATION_TIMEDOUT: return FetchError::kTimeout;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return FetchError::kReset;
    case CURLE_FILESIZE_EXCEEDED: return FetchError::kTooLarge;
    case CURLE_WRITE_ERROR:  // our write callback refused an overlong body
      return FetchError::kShortBody;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE: return FetchError::kTls;
    default: return FetchError::kOther;
  }
}

FetchError ClassifyHttpStatus(long status) {
  if (status >= 200 && status < 300) return FetchError::kNone;
  if (status == 404 || status == 410) return FetchError::kNotFound;
  if (status >= 500 || status == 408 || status == 429) return FetchError::kHttp5xx;
  return FetchError::kHttp4xx;
}

}  // namespace hloop::fetch
