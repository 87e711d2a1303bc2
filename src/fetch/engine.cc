#include "fetch/engine.h"

#include <curl/curl.h>

#include <algorithm>
#include <future>
#include <mutex>

#include "util/log.h"

namespace hloop::fetch {

namespace {
// Where a transfer's body goes (CURLOPT_WRITEDATA).
struct Sink {
  std::string* body;
  uint64_t limit;     // 0: none; a longer body aborts the transfer
  uint64_t max_size;  // 0: none; a longer body aborts it too, as too large
  bool too_large;     // set when max_size aborted it
};
}  // namespace

struct FetchEngine::Job {
  Request req;
  uint64_t seq = 0;  // ready_ key while waiting to start
  RetryState retry;
  bool ready = false, running = false;
  int mirror = -1;                          // where it runs or last ran
  Priority started_as = Priority::kDemand;  // its class in the mirror set while running
  int avoid = -1;                           // mirror that failed it last
  MirrorMask not_found = 0;                 // mirrors that answered 404
  bool probe = false;                       // an engine-made probe: updates mirror state only
  Callback done;                            // null for probes
  std::string body;
  Sink sink{&body, 0, 0, false};
  char errbuf[CURL_ERROR_SIZE] = {0};
};

namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t WriteBody(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  size_t len = size * n;
  if (s->limit && s->body->size() + len > s->limit) return 0;  // overlong: abort
  if (s->max_size && s->body->size() + len > s->max_size) {
    s->too_large = true;
    return 0;
  }
  s->body->append(data, len);
  return len;
}

Status ToStatus(FetchError err, const std::string& msg) {
  switch (err) {
    case FetchError::kNone: return Status::Ok();
    case FetchError::kNotFound: return Status::NotFound(msg);
    case FetchError::kShortBody:
    case FetchError::kTooLarge: return Status::Corruption(msg);
    case FetchError::kHttp4xx:
    case FetchError::kTls: return Status::IOError(msg);
    default: return Status::Unavailable(msg);
  }
}

}  // namespace

FetchEngine::FetchEngine(FetchOptions options) : options_(std::move(options)) {
  GlobalInit();
  multi_ = curl_multi_init();
  CURLM* m = static_cast<CURLM*>(multi_);
  curl_multi_setopt(m, CURLMOPT_PIPELINING, long(CURLPIPE_MULTIPLEX));
  curl_slist* list = nullptr;
  for (const auto& h : options_.headers) list = curl_slist_append(list, h.c_str());
  headers_ = list;
  thread_ = std::thread([this] { Loop(); });
}

FetchEngine::FetchEngine(std::string base, FetchOptions options) : FetchEngine(std::move(options)) {
  AddMirror(MirrorSpec{std::move(base)});
}

void FetchEngine::Shutdown() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

FetchEngine::~FetchEngine() {
  Shutdown();
  thread_.join();
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
  curl_slist_free_all(static_cast<curl_slist*>(headers_));
}

int FetchEngine::AddMirror(const MirrorSpec& spec) {
  MutexLock lock(&mu_);
  int m = mirrors_.Add(spec, options_.max_inflight, options_.http2);
  long total = long(mirrors_.total_connections());
  CURLM* multi = static_cast<CURLM*>(multi_);
  // Mirrors may share a host; the engine itself bounds each mirror.
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, total);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, total * 2);
  return m;
}

void FetchEngine::Probe(const std::string& rel, int count) {
  {
    MutexLock lock(&mu_);
    probe_rel_ = rel;
    for (int m = 0; m < mirrors_.size(); m++) {
      for (int i = 0; i < count; i++) EnqueueProbe(m);
    }
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

void FetchEngine::EnqueueProbe(int mirror) {
  if (stopping_ || probe_rel_.empty()) return;
  auto job = std::make_unique<Job>();
  job->req = Request{.rel = probe_rel_, .max_attempts = 1, .mirror = mirror, .head = true};
  job->probe = true;
  job->retry = retry_.Start(1);
  job->retry.deadline = Clock::TimePoint::max();  // one attempt, no retry to bound
  Job* j = job.get();
  jobs_.emplace(probe_rel_, std::move(job));
  MakeReady(j);
}

void FetchEngine::ReportCorrupt(int mirror) {
  MutexLock lock(&mu_);
  mirrors_.ReportCorrupt(mirror);
}

void FetchEngine::MakeReady(Job* job) {
  job->seq = seq_++;
  job->ready = true;
  ready_.emplace(ReadyKey{int(job->req.priority), job->seq}, job);
}

void FetchEngine::Submit(Request req, Callback done) {
  {
    MutexLock lock(&mu_);
    stats_.requests++;
    if (!stopping_ && mirrors_.size() > 0) {
      auto job = std::make_unique<Job>();
      job->retry = retry_.Start(req.max_attempts);
      job->req = std::move(req);
      job->done = std::move(done);
      done = nullptr;
      Job* j = job.get();
      jobs_.emplace(j->req.rel, std::move(job));
      MakeReady(j);
    }
  }
  if (done) {
    done(Status::Unavailable(req.rel + ": fetch engine is shutting down or has no mirror"), {}, -1);
    return;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

void FetchEngine::Prioritize(const std::string& rel, Priority priority) {
  MutexLock lock(&mu_);
  auto [begin, end] = jobs_.equal_range(rel);
  for (auto it = begin; it != end; ++it) RaisePriority(it->second.get(), priority);
}

void FetchEngine::RaisePriority(Job* job, Priority priority) {
  if (int(priority) >= int(job->req.priority)) return;
  if (job->ready) {
    ready_.erase(ReadyKey{int(job->req.priority), job->seq});
    ready_.emplace(ReadyKey{int(priority), job->seq}, job);
  }
  job->req.priority = priority;
}

Status FetchEngine::Get(Request req, std::string* out, int* mirror) {
  std::promise<Status> promise;
  auto result = promise.get_future();
  Submit(std::move(req), [&](const Status& st, std::string body, int m) {
    if (st.ok()) *out = std::move(body);
    if (mirror) *mirror = m;
    promise.set_value(st);
  });
  return result.get();
}

EngineStats FetchEngine::stats() {
  MutexLock lock(&mu_);
  EngineStats s = stats_;
  s.inflight = active_;
  s.waiting = ready_.size() + backoff_.size();
  return s;
}

std::vector<MirrorStats> FetchEngine::mirror_stats() {
  MutexLock lock(&mu_);
  return mirrors_.Stats();
}

void FetchEngine::Estimate(double* rtt_s, double* bytes_per_s) {
  MutexLock lock(&mu_);
  mirrors_.Estimate(rtt_s, bytes_per_s);
}

std::string FetchEngine::base(int m) {
  MutexLock lock(&mu_);
  if (mirrors_.size() == 0) return "";
  if (m < 0 || m >= mirrors_.size()) m = 0;
  return mirrors_.spec(m).base;
}

void* FetchEngine::NewEasy(Job* job, const MirrorSpec& mirror) {
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
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, WriteBody);
    // Proxy: an explicit one, else libcurl reads the environment.
    if (!options_.proxy.empty()) curl_easy_setopt(c, CURLOPT_PROXY, options_.proxy.c_str());
    if (!options_.cacert.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.cacert.c_str());
    if (headers_) curl_easy_setopt(c, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(headers_));
  }
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION,
                   long(mirror.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(c, CURLOPT_PIPEWAIT, long(mirror.http2));
  curl_easy_setopt(c, CURLOPT_NOBODY, long(job->req.head));
  if (!job->req.head) curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  job->sink.limit = job->req.expected_size;
  job->sink.max_size = job->req.max_size;
  job->sink.too_large = false;
  // libcurl refuses a longer body by its Content-Length before reading it.
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(job->req.max_size));
  job->body.clear();
  if (job->req.expected_size) job->body.reserve(job->req.expected_size);
  job->errbuf[0] = 0;
  std::string url = mirror.base + job->req.rel;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &job->sink);
  curl_easy_setopt(c, CURLOPT_PRIVATE, job);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, job->errbuf);
  // An attempt may not outlive the request's deadline (a dead host that
  // drops packets would otherwise hold it for the whole connect timeout).
  long timeout_ms = 0;
  if (job->retry.deadline != Clock::TimePoint::max()) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(job->retry.deadline - clock_.Now())
            .count();
    timeout_ms = std::max<long>(1, long(left));
  }
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  return c;
}

void FetchEngine::StartReady() {
  CURLM* multi = static_cast<CURLM*>(multi_);
  auto now = clock_.Now();
  while (!backoff_.empty() && backoff_.begin()->first <= now) {
    Job* job = backoff_.begin()->second;
    backoff_.erase(backoff_.begin());
    MakeReady(job);
  }
  // A set-aside mirror whose time is up gets one probe before real work.
  if (!probe_rel_.empty()) {
    for (int m : mirrors_.TakeDueProbes()) EnqueueProbe(m);
  }
  for (auto it = ready_.begin(); it != ready_.end();) {
    Job* job = it->second;
    int mi;
    if (job->req.mirror >= 0 && job->req.mirror < mirrors_.size()) {
      // Pinned (a probe, `hloop mirrors`): it waits for its own mirror's
      // slot without holding up work that may go elsewhere.
      mi = job->req.mirror;
      if (!mirrors_.HasFreeConnection(mi)) {
        ++it;
        continue;
      }
    } else {
      mi = mirrors_.Pick(
          MirrorQuery{job->req.priority, job->req.expected_size, job->not_found, job->avoid});
      if (mi == MirrorSet::kWait) break;  // the best mirror is busy: wait for a slot there
    }
    it = ready_.erase(it);
    job->ready = false;
    if (mi == MirrorSet::kNoMirror) {  // every mirror said 404
      not_found_.push_back(job);
      continue;
    }
    job->running = true;
    job->retry.attempts++;
    job->mirror = mi;
    job->started_as = job->req.priority;
    mirrors_.Started(mi, job->started_as);
    active_++;
    stats_.transfers++;
    stats_.max_inflight_seen = std::max<uint64_t>(stats_.max_inflight_seen, active_);
    void* easy = NewEasy(job, mirrors_.spec(mi));
    running_easy_.insert(easy);
    curl_multi_add_handle(multi, static_cast<CURL*>(easy));
  }
}

int FetchEngine::PollTimeoutMs() {
  int ms = 1000;
  auto now = clock_.Now();
  auto until = [&](Clock::TimePoint t) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(t - now);
    ms = std::clamp<int>(int(wait.count()) + 1, 0, ms);
  };
  if (!backoff_.empty()) until(backoff_.begin()->first);
  if (auto probe = mirrors_.NextProbeTime()) until(*probe);
  return ms;
}

FetchEngine::Outcome FetchEngine::ReadOutcome(void* easy, int curl_code, Job* job) {
  CURL* c = static_cast<CURL*>(easy);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_off_t pre_us = 0, first_us = 0, total_us = 0;
  curl_easy_getinfo(c, CURLINFO_PRETRANSFER_TIME_T, &pre_us);
  curl_easy_getinfo(c, CURLINFO_STARTTRANSFER_TIME_T, &first_us);
  curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &total_us);

  Outcome o;
  o.error = ClassifyCurlCode(curl_code);
  o.detail = job->errbuf[0] ? job->errbuf : curl_easy_strerror(CURLcode(curl_code));
  if ((job->sink.too_large || curl_code == CURLE_FILESIZE_EXCEEDED) && status >= 200 &&
      status < 300) {
    o.error = FetchError::kTooLarge;
    o.detail = "is larger than the " + std::to_string(job->req.max_size) + "-byte limit for " +
               job->req.what;
  } else if (o.error == FetchError::kShortBody && status >= 200 && status < 300) {
    o.detail = "body longer than the expected " + std::to_string(job->req.expected_size) + " bytes";
  } else if (status >= 300 && (curl_code == CURLE_OK || o.error == FetchError::kShortBody ||
                               o.error == FetchError::kTooLarge)) {
    o.error = ClassifyHttpStatus(status);
    if (status < 400) o.error = FetchError::kHttp4xx;  // a redirect we did not follow
    o.detail = "HTTP " + std::to_string(status);
  } else if (o.error == FetchError::kNone && job->req.expected_size &&
             job->body.size() != job->req.expected_size) {
    o.error = FetchError::kShortBody;
    o.detail = "got " + std::to_string(job->body.size()) + " bytes, expected " +
               std::to_string(job->req.expected_size);
  }
  o.end.error = o.error;
  o.end.first_byte_s = first_us > pre_us ? double(first_us - pre_us) / 1e6 : -1;
  o.end.body_bytes = job->body.size();
  o.end.body_s = double(total_us - first_us) / 1e6;
  o.end.probe = job->probe;
  return o;
}

void FetchEngine::Finish(void* easy, int curl_code) {
  CURL* c = static_cast<CURL*>(easy);
  Job* job = nullptr;
  curl_easy_getinfo(c, CURLINFO_PRIVATE, &job);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  Outcome outcome = ReadOutcome(easy, curl_code, job);
  curl_multi_remove_handle(static_cast<CURLM*>(multi_), c);
  running_easy_.erase(c);
  idle_easy_.push_back(c);
  std::optional<Status> st;
  {
    MutexLock lock(&mu_);
    st = Settle(job, std::move(outcome));
  }
  if (st) Complete(job, *st);
}

std::optional<Status> FetchEngine::Settle(Job* job, Outcome o) {
  const std::string url = mirrors_.spec(job->mirror).base + job->req.rel;
  active_--;
  stats_.bytes += job->body.size();
  job->running = false;
  mirrors_.Ended(job->mirror, job->started_as, o.end);
  const FetchError err = o.error;
  // Probes only measure; nobody waits on them (but Complete frees them).
  if (!job->probe && err != FetchError::kNone) {
    const bool pinned = job->req.mirror >= 0;
    const int healthy_others = mirrors_.HealthyOthers(job->mirror, job->not_found);
    // A 404 from one mirror may only mean it is behind: ask the others.
    if (err == FetchError::kNotFound && !pinned &&
        mirrors_.NotFoundAt(job->mirror, &job->not_found)) {
      LogInfo(url + ": not found there; asking another mirror");
      MakeReady(job);
      return std::nullopt;
    }
    RetryDecision d;
    if (!stopping_)
      d = retry_.Decide(&job->retry, err, !pinned && healthy_others > 0, mirrors_.size());
    const std::string what = url + ": " + FetchErrorName(err) + " (" + o.detail + "), retry " +
                             std::to_string(job->retry.attempts);
    switch (d.action) {
      case RetryAction::kGiveUp: break;
      case RetryAction::kTimedOut:
        o.detail +=
            "; no answer within --io-timeout " + std::to_string(options_.io_timeout_s) + " s";
        break;
      case RetryAction::kNow:
        stats_.retries++;
        job->avoid = job->mirror;
        LogInfo(what + " on another mirror");
        MakeReady(job);
        return std::nullopt;
      case RetryAction::kAfterDelay:
        stats_.retries++;
        job->avoid = job->mirror;
        LogInfo(what + " in " + std::to_string(d.delay_ms) + " ms");
        backoff_.emplace(clock_.Now() + std::chrono::milliseconds(d.delay_ms), job);
        return std::nullopt;
    }
    // A 404 is an answer (optional files such as NAME.profile are often
    // absent), not a failure of the network.
    if (err != FetchError::kNotFound) stats_.failures++;
  }
  if (err == FetchError::kTooLarge) return ToStatus(err, url + " " + o.detail);
  return ToStatus(err, url + ": " + FetchErrorName(err) + " (" + o.detail + ")");
}

void FetchEngine::Complete(Job* job, const Status& st) {
  std::unique_ptr<Job> owned;
  {
    MutexLock lock(&mu_);
    auto it = jobs_.find(job->req.rel);  // the first job for its rel
    while (it->second.get() != job) ++it;
    owned = std::move(it->second);
    jobs_.erase(it);
  }
  if (owned->done) owned->done(st, std::move(owned->body), owned->mirror);
}

void FetchEngine::Loop() {
  CURLM* multi = static_cast<CURLM*>(multi_);
  for (;;) {
    int running = 0;
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg == CURLMSG_DONE) Finish(msg->easy_handle, int(msg->data.result));
    }
    int timeout_ms;
    unsigned active;
    std::vector<Job*> not_found;
    {
      MutexLock lock(&mu_);
      if (stopping_) break;
      // Freed slots and due retries start now, not after the next wake-up.
      StartReady();
      not_found.swap(not_found_);
      timeout_ms = PollTimeoutMs();
      active = active_;
    }
    for (Job* job : not_found) {
      Complete(job, Status::NotFound(job->req.rel + ": not found on any mirror"));
    }
    // A new transfer needs curl_multi_perform to get going: do not sleep.
    if (running < int(active)) timeout_ms = 0;
    curl_multi_poll(multi, nullptr, 0, timeout_ms, nullptr);
  }
  // Shutting down: fail everything that is still waiting or running.
  std::vector<Job*> all;
  {
    MutexLock lock(&mu_);
    for (auto& [key, job] : jobs_) all.push_back(job.get());
    ready_.clear();
    backoff_.clear();
  }
  for (void* c : running_easy_) {
    curl_multi_remove_handle(multi, static_cast<CURL*>(c));
    curl_easy_cleanup(static_cast<CURL*>(c));
  }
  running_easy_.clear();
  for (Job* job : all) Complete(job, Status::Unavailable(job->req.rel + ": fetch engine stopped"));
  for (void* c : idle_easy_) curl_easy_cleanup(static_cast<CURL*>(c));
  idle_easy_.clear();
}

}  // namespace hloop::fetch
