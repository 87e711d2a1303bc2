#include "fetch/engine.h"

#include <curl/curl.h>

#include <algorithm>
#include <future>
#include <random>

#include "util/log.h"

namespace hloop::fetch {

namespace {
// Where a transfer's body goes (CURLOPT_WRITEDATA).
struct Sink {
  std::string* body;
  uint64_t limit;  // 0: none; a longer body aborts the transfer
};
}  // namespace

struct FetchEngine::Job {
  std::string rel;
  uint64_t expected_size = 0;
  Priority priority = Priority::kPrefetch;
  uint64_t seq = 0;  // ready_ key while waiting to start
  int attempts = 0;
  Clock::time_point deadline = Clock::time_point::max();  // from io_timeout_s
  int delay_ms = 0;  // next back-off
  bool ready = false, running = false;
  std::vector<Callback> waiters;
  std::string body;
  Sink sink{&body, 0};
  char errbuf[CURL_ERROR_SIZE] = {0};
};

namespace {

constexpr int kMaxAttemptsForBadAnswers = 3;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t WriteBody(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  size_t len = size * n;
  if (s->limit && s->body->size() + len > s->limit) return 0;  // overlong: abort
  s->body->append(data, len);
  return len;
}

}  // namespace

FetchEngine::FetchEngine(std::string base, FetchOptions options)
    : base_(std::move(base)), options_(std::move(options)) {
  GlobalInit();
  multi_ = curl_multi_init();
  CURLM* m = static_cast<CURLM*>(multi_);
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, long(options_.max_inflight));
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, long(options_.max_inflight) * 2);
  curl_multi_setopt(m, CURLMOPT_PIPELINING, long(CURLPIPE_MULTIPLEX));
  thread_ = std::thread([this] { Loop(); });
}

FetchEngine::~FetchEngine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
  thread_.join();
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

void FetchEngine::Submit(const std::string& rel, uint64_t expected_size, Priority priority,
                         Callback done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.requests++;
    if (!stopping_) {
      auto it = jobs_.find(rel);
      if (it != jobs_.end()) {
        stats_.collapsed++;
        it->second->waiters.push_back(std::move(done));
        done = nullptr;
        RaisePriority(it->second.get(), priority);
      } else {
        auto job = std::make_unique<Job>();
        job->rel = rel;
        job->expected_size = expected_size;
        job->priority = priority;
        job->delay_ms = options_.retry_initial_ms;
        if (options_.io_timeout_s > 0) job->deadline = Clock::now() + std::chrono::seconds(options_.io_timeout_s);
        job->waiters.push_back(std::move(done));
        done = nullptr;
        job->seq = seq_++;
        job->ready = true;
        ready_.emplace(ReadyKey{int(priority), job->seq}, job.get());
        jobs_.emplace(rel, std::move(job));
      }
    }
  }
  if (done) {
    done(Status::Unavailable(base_ + rel + ": fetch engine is shutting down"), {});
    return;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

void FetchEngine::Prioritize(const std::string& rel, Priority priority) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(rel);
  if (it != jobs_.end()) RaisePriority(it->second.get(), priority);
}

void FetchEngine::RaisePriority(Job* job, Priority priority) {
  if (int(priority) >= int(job->priority)) return;
  if (job->ready) {
    ready_.erase(ReadyKey{int(job->priority), job->seq});
    ready_.emplace(ReadyKey{int(priority), job->seq}, job);
  }
  job->priority = priority;
}

Status FetchEngine::Get(const std::string& rel, uint64_t expected_size, Priority priority,
                        std::string* out) {
  std::promise<Status> promise;
  auto result = promise.get_future();
  Submit(rel, expected_size, priority, [&](const Status& st, std::string body) {
    if (st.ok()) *out = std::move(body);
    promise.set_value(st);
  });
  return result.get();
}

EngineStats FetchEngine::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void* FetchEngine::NewEasy(Job* job) {
  CURL* c;
  if (!idle_easy_.empty()) {
    c = static_cast<CURL*>(idle_easy_.back());
    idle_easy_.pop_back();
  } else {
    c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options_.connect_timeout_s);
    // A transfer that moves no byte for stall_timeout_s is abandoned.
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, options_.stall_timeout_s);
    curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION,
                     long(options_.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1));
    curl_easy_setopt(c, CURLOPT_PIPEWAIT, long(options_.http2));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, WriteBody);
  }
  job->sink.limit = job->expected_size;
  job->body.clear();
  if (job->expected_size) job->body.reserve(job->expected_size);
  job->errbuf[0] = 0;
  std::string url = base_ + job->rel;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &job->sink);
  curl_easy_setopt(c, CURLOPT_PRIVATE, job);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, job->errbuf);
  // An attempt may not outlive the request's deadline (a dead host that
  // drops packets would otherwise hold it for the whole connect timeout).
  long timeout_ms = 0;
  if (job->deadline != Clock::time_point::max()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(job->deadline - Clock::now()).count();
    timeout_ms = std::max<long>(1, long(left));
  }
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  return c;
}

void FetchEngine::StartReady() {
  CURLM* m = static_cast<CURLM*>(multi_);
  auto now = Clock::now();
  while (!backoff_.empty() && backoff_.begin()->first <= now) {
    Job* job = backoff_.begin()->second;
    backoff_.erase(backoff_.begin());
    job->seq = seq_++;
    job->ready = true;
    ready_.emplace(ReadyKey{int(job->priority), job->seq}, job);
  }
  while (active_ < options_.max_inflight && !ready_.empty()) {
    Job* job = ready_.begin()->second;
    ready_.erase(ready_.begin());
    job->ready = false;
    job->running = true;
    job->attempts++;
    active_++;
    stats_.transfers++;
    stats_.max_inflight_seen = std::max<uint64_t>(stats_.max_inflight_seen, active_);
    void* easy = NewEasy(job);
    running_easy_.insert(easy);
    curl_multi_add_handle(m, static_cast<CURL*>(easy));
  }
}

int FetchEngine::PollTimeoutMs() {
  int ms = 1000;
  if (!backoff_.empty()) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(backoff_.begin()->first - Clock::now());
    ms = std::clamp<int>(int(wait.count()) + 1, 0, ms);
  }
  return ms;
}

void FetchEngine::Finish(void* easy, int curl_code) {
  CURL* c = static_cast<CURL*>(easy);
  Job* job = nullptr;
  curl_easy_getinfo(c, CURLINFO_PRIVATE, &job);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_multi_remove_handle(static_cast<CURLM*>(multi_), c);
  running_easy_.erase(c);

  FetchError err = ClassifyCurlCode(curl_code);
  std::string detail = job->errbuf[0] ? job->errbuf : curl_easy_strerror(CURLcode(curl_code));
  if (err == FetchError::kShortBody && status >= 200 && status < 300) {
    detail = "body longer than the expected " + std::to_string(job->expected_size) + " bytes";
  } else if (status >= 300 && (curl_code == CURLE_OK || err == FetchError::kShortBody)) {
    err = ClassifyHttpStatus(status);
    if (status < 400) err = FetchError::kHttp4xx;  // a redirect we did not follow
    detail = "HTTP " + std::to_string(status);
  } else if (err == FetchError::kNone && job->expected_size && job->body.size() != job->expected_size) {
    err = FetchError::kShortBody;
    detail = "got " + std::to_string(job->body.size()) + " bytes, expected " + std::to_string(job->expected_size);
  }
  idle_easy_.push_back(c);

  const std::string url = base_ + job->rel;
  thread_local std::mt19937 rng(std::random_device{}());
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_--;
    stats_.bytes += job->body.size();
    job->running = false;
    int jittered = job->delay_ms / 2 + int(rng() % unsigned(job->delay_ms / 2 + 1));
    // A server that is away is waited for; a server that answers with the
    // wrong body, or a failure we cannot classify, is not worth waiting for.
    int limit = options_.max_attempts;
    if (err == FetchError::kShortBody || err == FetchError::kOther)
      limit = limit ? std::min(limit, kMaxAttemptsForBadAnswers) : kMaxAttemptsForBadAnswers;
    bool attempts_left = limit == 0 || job->attempts < limit;
    bool time_left = Clock::now() + std::chrono::milliseconds(jittered) < job->deadline;
    if (err != FetchError::kNone && IsTransient(err) && attempts_left && !stopping_ && !time_left) {
      detail += "; no answer within --io-timeout " + std::to_string(options_.io_timeout_s) + " s";
    }
    if (err != FetchError::kNone && IsTransient(err) && attempts_left && time_left && !stopping_) {
      job->delay_ms = std::min(job->delay_ms * 2, options_.retry_max_ms);
      stats_.retries++;
      LogInfo(url + ": " + FetchErrorName(err) + " (" + detail + "), retry " + std::to_string(job->attempts) +
              " in " + std::to_string(jittered) + " ms");
      backoff_.emplace(Clock::now() + std::chrono::milliseconds(jittered), job);
      return;
    }
    if (err != FetchError::kNone) stats_.failures++;
  }
  std::string msg = url + ": " + FetchErrorName(err) + " (" + detail + ")";
  Status st;
  switch (err) {
    case FetchError::kNone: break;
    case FetchError::kNotFound: st = Status::NotFound(msg); break;
    case FetchError::kShortBody: st = Status::Corruption(msg); break;
    case FetchError::kHttp4xx:
    case FetchError::kTls: st = Status::IOError(msg); break;
    default: st = Status::Unavailable(msg); break;
  }
  Complete(job, st);
}

void FetchEngine::Complete(Job* job, const Status& st) {
  std::unique_ptr<Job> owned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(job->rel);
    owned = std::move(it->second);
    jobs_.erase(it);
  }
  // Every waiter but the last gets a copy of the body.
  for (size_t i = 0; i < owned->waiters.size(); i++) {
    if (i + 1 == owned->waiters.size()) owned->waiters[i](st, std::move(owned->body));
    else owned->waiters[i](st, owned->body);
  }
}

void FetchEngine::Loop() {
  CURLM* m = static_cast<CURLM*>(multi_);
  for (;;) {
    int running = 0;
    curl_multi_perform(m, &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(m, &left)) {
      if (msg->msg == CURLMSG_DONE) Finish(msg->easy_handle, int(msg->data.result));
    }
    int timeout_ms;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
      // Freed slots and due retries start now, not after the next wake-up.
      StartReady();
      timeout_ms = PollTimeoutMs();
    }
    // A new transfer needs curl_multi_perform to get going: do not sleep.
    if (running < int(active_)) timeout_ms = 0;
    curl_multi_poll(m, nullptr, 0, timeout_ms, nullptr);
  }
  // Shutting down: fail everything that is still waiting or running.
  std::vector<Job*> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [rel, job] : jobs_) all.push_back(job.get());
    ready_.clear();
    backoff_.clear();
  }
  for (void* c : running_easy_) {
    curl_multi_remove_handle(m, static_cast<CURL*>(c));
    curl_easy_cleanup(static_cast<CURL*>(c));
  }
  running_easy_.clear();
  for (Job* job : all) Complete(job, Status::Unavailable(base_ + job->rel + ": fetch engine stopped"));
  for (void* c : idle_easy_) curl_easy_cleanup(static_cast<CURL*>(c));
  idle_easy_.clear();
}

}  // namespace hloop::fetch
