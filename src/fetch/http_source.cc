#include "fetch/http_source.h"

#include <curl/curl.h>

#include <chrono>
#include <random>
#include <thread>

#include "util/file.h"
#include "util/log.h"

namespace hloop::fetch {

bool IsTransient(FetchError e) {
  switch (e) {
    case FetchError::kConnect:
    case FetchError::kTimeout:
    case FetchError::kReset:
    case FetchError::kHttp5xx:
    case FetchError::kShortBody:
    case FetchError::kOther:
      return true;
    default:
      return false;
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
    case FetchError::kOther: return "transfer failed";
  }
  return "?";
}

namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Body {
  std::string* out;
  uint64_t limit;  // stop early if the body grows past this (0: no limit)
};

size_t WriteCallback(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<Body*>(user);
  size_t len = size * n;
  if (body->limit && body->out->size() + len > body->limit) return 0;  // aborts: too long
  body->out->append(data, len);
  return len;
}

FetchError Classify(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return FetchError::kConnect;
    case CURLE_OPERATION_TIMEDOUT:
      return FetchError::kTimeout;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return FetchError::kReset;
    case CURLE_WRITE_ERROR:
      return FetchError::kShortBody;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
      return FetchError::kTls;
    default:
      return FetchError::kOther;
  }
}

}  // namespace

HttpSource::HttpSource(std::string base, FetchOptions options)
    : base_(std::move(base)), options_(std::move(options)) {
  GlobalInit();
}

HttpSource::~HttpSource() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* HttpSource::Borrow() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options_.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, options_.stall_timeout_s);
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, WriteCallback);
  // Chunks are already compressed; asking for gzip would only cost CPU.
  return c;
}

void HttpSource::Return(void* handle) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(handle);
}

FetchError HttpSource::Attempt(void* handle, const std::string& url, uint64_t expected_size,
                               std::string* out, std::string* detail) {
  CURL* c = static_cast<CURL*>(handle);
  out->clear();
  if (expected_size) out->reserve(expected_size);
  Body body{out, expected_size};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (rc == CURLE_WRITE_ERROR && code >= 200 && code < 300) {
    *detail = "body longer than the expected " + std::to_string(expected_size) + " bytes";
    return FetchError::kShortBody;
  }
  if (code >= 400 || (rc == CURLE_OK && code >= 300)) {
    *detail = "HTTP " + std::to_string(code);
    if (code == 404 || code == 410) return FetchError::kNotFound;
    if (code >= 500 || code == 408 || code == 429) return FetchError::kHttp5xx;
    return FetchError::kHttp4xx;
  }
  if (rc != CURLE_OK) {
    *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    return Classify(rc);
  }
  if (expected_size && out->size() != expected_size) {
    *detail = "got " + std::to_string(out->size()) + " bytes, expected " + std::to_string(expected_size);
    return FetchError::kShortBody;
  }
  return FetchError::kNone;
}

Status HttpSource::Get(const std::string& rel, uint64_t expected_size, std::string* out) {
  const std::string url = base_ + rel;
  thread_local std::mt19937 rng(std::random_device{}());
  int delay_ms = options_.retry_initial_ms;
  void* handle = Borrow();
  FetchError err = FetchError::kNone;
  std::string detail;
  for (int attempt = 1;; attempt++) {
    err = Attempt(handle, url, expected_size, out, &detail);
    if (err == FetchError::kNone || !IsTransient(err) || attempt >= options_.max_attempts) break;
    int jittered = delay_ms / 2 + int(rng() % unsigned(delay_ms / 2 + 1));
    LogInfo(url + ": " + FetchErrorName(err) + " (" + detail + "), retry " + std::to_string(attempt) +
            " in " + std::to_string(jittered) + " ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(jittered));
    delay_ms = std::min(delay_ms * 2, options_.retry_max_ms);
  }
  Return(handle);
  if (err == FetchError::kNone) return Status::Ok();
  std::string msg = url + ": " + FetchErrorName(err) + " (" + detail + ")";
  if (err == FetchError::kNotFound) return Status::NotFound(msg);
  if (err == FetchError::kShortBody) return Status::Corruption(msg);
  if (err == FetchError::kHttp4xx || err == FetchError::kTls) return Status::IOError(msg);
  return Status::Unavailable(msg);
}

Result<std::string> FetchUrl(const std::string& url, const FetchOptions& options) {
  auto loc = ParseLocation(url);
  if (!loc.ok()) return loc.status();
  std::string out;
  if (loc->kind == Location::Kind::kFile) {
    auto data = ReadFile(loc->index_url);
    if (!data.ok()) return data.status();
    return std::move(data.value());
  }
  HttpSource http("", options);
  HLOOP_RETURN_IF_ERROR(http.Get(url, 0, &out));
  return out;
}

}  // namespace hloop::fetch
