#include "fetch/engine.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <future>
#include <limits>
#include <random>

#include "util/log.h"

namespace hloop::fetch {

namespace {
// Where a transfer's body goes (CURLOPT_WRITEDATA).
struct Sink {
  std::string* body;
  uint64_t limit;  // 0: none; a longer body aborts the transfer
};

constexpr int kMaxAttemptsForBadAnswers = 3;
constexpr int kMaxMirrors = 64;  // Job::not_found is a bit mask
// A mirror is set aside after this many failures in a row.
constexpr int kFailuresToSetAside = 2;
constexpr int kAsideInitialMs = 1000, kAsideCorruptMs = 10000, kAsideMaxMs = 120000;
// Smoothing of measurements (weight of a new sample).
constexpr double kAlpha = 0.25;
// Until a mirror has been measured.
constexpr double kUnknownBytesPerS = 20e6;
}  // namespace

struct FetchEngine::Mirror {
  MirrorSpec spec;
  unsigned connections = 0;
  unsigned active = 0;
  unsigned active_by_priority[3] = {0, 0, 0};
  double srtt = -1, thr = -1;
  // The round trip without queueing (BBR's min_rtt, drifting up slowly so it
  // follows a path that really got longer): what ranking uses, since a busy
  // mirror's time to first byte also counts the transfers ahead of it there.
  double base_rtt = -1;
  uint64_t transfers = 0, bytes = 0, errors = 0, corrupt = 0, not_found = 0;
  int failures_in_a_row = 0;
  bool aside = false, probing = false;
  int aside_ms = kAsideInitialMs;
  Clock::time_point aside_until{};
};

struct FetchEngine::Job {
  std::string key;  // jobs_ key: rel, or a unique key for pinned requests
  Request req;
  uint64_t seq = 0;  // ready_ key while waiting to start
  int attempts = 0;
  int quick_retries = 0;  // retries on another mirror since the last back-off
  Clock::time_point deadline = Clock::time_point::max();  // from io_timeout_s
  int delay_ms = 0;  // next back-off
  bool ready = false, running = false;
  int mirror = -1;   // where it runs or last ran
  Priority started_as = Priority::kDemand;  // its class in Mirror::active_by_priority while running
  int avoid = -1;    // mirror that failed it last
  uint64_t not_found = 0;  // mirrors that answered 404
  bool probe = false;      // an engine-made probe: updates mirror state only
  std::vector<Callback> waiters;
  std::string body;
  Sink sink{&body, 0};
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
  s->body->append(data, len);
  return len;
}

double Smooth(double old, double sample) { return old < 0 ? sample : old + kAlpha * (sample - old); }

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
    std::lock_guard<std::mutex> lock(mu_);
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
  std::lock_guard<std::mutex> lock(mu_);
  if (mirrors_.size() >= size_t(kMaxMirrors)) {
    LogWarn("more than " + std::to_string(kMaxMirrors) + " mirrors; ignoring " + spec.base);
    return int(mirrors_.size()) - 1;
  }
  Mirror& m = mirrors_.emplace_back();
  m.spec = spec;
  m.spec.http2 = spec.http2 || options_.http2;
  m.connections = std::max(1u, spec.connections ? spec.connections : options_.max_inflight);
  unsigned total = 0, most = 0;
  for (const auto& mm : mirrors_) {
    total += mm.connections;
    most = std::max(most, mm.connections);
  }
  CURLM* multi = static_cast<CURLM*>(multi_);
  // Mirrors may share a host; the engine itself bounds each mirror.
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, long(total));
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, long(total) * 2);
  return int(mirrors_.size()) - 1;
}

void FetchEngine::Probe(const std::string& rel, int count) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    probe_rel_ = rel;
    for (int m = 0; m < int(mirrors_.size()); m++) {
      for (int i = 0; i < count; i++) EnqueueProbe(m);
    }
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

void FetchEngine::EnqueueProbe(int mirror) {
  if (stopping_ || probe_rel_.empty()) return;
  auto job = std::make_unique<Job>();
  job->req = Request{probe_rel_, 0, Priority::kDemand, 1, mirror, true};
  job->key = "\x01probe " + std::to_string(seq_) + " " + probe_rel_;
  job->probe = true;
  job->delay_ms = options_.retry_initial_ms;
  Job* j = job.get();
  jobs_.emplace(job->key, std::move(job));
  MakeReady(j);
}

void FetchEngine::ReportCorrupt(int mirror) {
  std::lock_guard<std::mutex> lock(mu_);
  if (mirror < 0 || mirror >= int(mirrors_.size())) return;
  Mirror& m = mirrors_[size_t(mirror)];
  m.corrupt++;
  if (mirrors_.size() > 1) LogWarn("mirror " + m.spec.base + " served data that failed its hash check");
  SetAside(m, kAsideCorruptMs);
}

void FetchEngine::SetAside(Mirror& m, int initial_ms) {
  // With nowhere else to go there is nothing to gain: keep using it.
  if (mirrors_.size() < 2) return;
  if (m.aside && !m.probing) {
    // Other transfers of the same incident: it is aside already. Only a
    // corrupt report may lengthen the time, never shorten it.
    auto until = Clock::now() + std::chrono::milliseconds(initial_ms);
    if (until > m.aside_until) m.aside_until = until;
    return;
  }
  // First failure of an incident: the initial time (or what a recent
  // incident left); a failed re-probe: twice as long as last time.
  m.aside_ms = m.aside ? std::min(m.aside_ms * 2, kAsideMaxMs) : std::max(m.aside_ms, initial_ms);
  m.aside = true;
  m.probing = false;
  m.aside_until = Clock::now() + std::chrono::milliseconds(m.aside_ms);
  LogInfo("mirror " + m.spec.base + " set aside for " + std::to_string(m.aside_ms / 1000.0).substr(0, 5) + " s");
}

void FetchEngine::MakeReady(Job* job) {
  job->seq = seq_++;
  job->ready = true;
  ready_.emplace(ReadyKey{int(job->req.priority), job->seq}, job);
}

void FetchEngine::Submit(Request req, Callback done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.requests++;
    if (!stopping_ && !mirrors_.empty()) {
      std::string key = req.mirror < 0 && !req.head ? req.rel : "\x01" + std::to_string(seq_) + " " + req.rel;
      auto it = jobs_.find(key);
      if (it != jobs_.end()) {
        stats_.collapsed++;
        it->second->waiters.push_back(std::move(done));
        done = nullptr;
        RaisePriority(it->second.get(), req.priority);
      } else {
        auto job = std::make_unique<Job>();
        job->key = key;
        job->req = std::move(req);
        job->delay_ms = options_.retry_initial_ms;
        if (options_.io_timeout_s > 0) job->deadline = Clock::now() + std::chrono::seconds(options_.io_timeout_s);
        job->waiters.push_back(std::move(done));
        done = nullptr;
        Job* j = job.get();
        jobs_.emplace(key, std::move(job));
        MakeReady(j);
      }
    }
  }
  if (done) {
    done(Status::Unavailable(req.rel + ": fetch engine is shutting down or has no mirror"), {}, -1);
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
  std::lock_guard<std::mutex> lock(mu_);
  EngineStats s = stats_;
  s.inflight = active_;
  s.waiting = ready_.size() + backoff_.size();
  return s;
}

std::vector<MirrorStats> FetchEngine::mirror_stats() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<MirrorStats> out;
  auto now = Clock::now();
  for (const Mirror& m : mirrors_) {
    MirrorStats s;
    s.base = m.spec.base;
    s.http2 = m.spec.http2;
    s.connections = m.connections;
    s.rtt_s = m.srtt;
    s.base_rtt_s = m.base_rtt;
    s.bytes_per_s = m.thr;
    s.transfers = m.transfers;
    s.bytes = m.bytes;
    s.errors = m.errors;
    s.corrupt = m.corrupt;
    s.not_found = m.not_found;
    s.active = m.active;
    s.set_aside = m.aside;
    if (m.aside && m.aside_until > now)
      s.aside_s = std::chrono::duration<double>(m.aside_until - now).count();
    out.push_back(s);
  }
  return out;
}

std::string FetchEngine::base(int m) {
  std::lock_guard<std::mutex> lock(mu_);
  if (mirrors_.empty()) return "";
  if (m < 0 || m >= int(mirrors_.size())) m = 0;
  return mirrors_[size_t(m)].spec.base;
}

unsigned FetchEngine::SlotsFor(const Mirror& m, Priority p) const {
  // Background work leaves room for readers: prefetch may use three quarters
  // of a mirror's connections, read-ahead all but one.
  switch (p) {
    case Priority::kDemand: return m.connections;
    case Priority::kReadAhead: return std::max(1u, m.connections - 1);
    case Priority::kPrefetch: return std::max(1u, m.connections * 3 / 4);
  }
  return m.connections;
}

double FetchEngine::Cost(const Mirror& m, const Job& job) const {
  // Expected seconds to finish the transfer there: a round trip plus the
  // body at the measured rate. Unmeasured mirrors rank after measured ones
  // (so they are tried when the best are busy), in the order given.
  double rtt = m.base_rtt;
  if (rtt < 0) {
    double worst = -1;
    for (const Mirror& o : mirrors_) worst = std::max(worst, o.base_rtt);
    rtt = worst < 0 ? 0.1 : worst * 1.5 + 0.05;
    rtt += 1e-6 * double(&m - &mirrors_[0]);
  }
  double size = job.req.expected_size ? double(job.req.expected_size) : 64e3;
  double thr = m.thr > 0 ? m.thr : kUnknownBytesPerS;
  return rtt + size / thr;
}

int FetchEngine::PickMirror(const Job& job) {
  const int n = int(mirrors_.size());
  // Pass 0: healthy mirrors other than the one that just failed this job;
  // pass 1: any healthy mirror; pass 2: anything that has not said 404.
  for (int pass = 0; pass < 3; pass++) {
    int best = -1;
    double best_cost = std::numeric_limits<double>::infinity();
    bool best_full = false;
    for (int i = 0; i < n; i++) {
      const Mirror& m = mirrors_[size_t(i)];
      if (job.not_found & (uint64_t(1) << i)) continue;
      bool healthy = !m.aside;
      if (pass == 0 && (!healthy || i == job.avoid)) continue;
      if (pass == 1 && !healthy) continue;
      // Until a transfer has measured its rate, a mirror gets two at most:
      // a narrow link must not swallow a burst it cannot serve.
      bool full = m.active >= m.connections || (m.thr < 0 && m.active >= 2 && n > 1) ||
                  m.active_by_priority[int(job.req.priority)] >= SlotsFor(m, job.req.priority) ||
                  (job.req.priority != Priority::kDemand && m.active >= SlotsFor(m, job.req.priority));
      // A busy mirror frees a slot in about one transfer time.
      double cost = Cost(m, job) * (full ? 2 : 1);
      if (cost < best_cost) {
        best = i;
        best_cost = cost;
        best_full = full;
      }
    }
    if (best >= 0) return best_full ? -1 : best;
  }
  return -2;
}

void* FetchEngine::NewEasy(Job* job, const Mirror& m) {
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
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, long(m.spec.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(c, CURLOPT_PIPEWAIT, long(m.spec.http2));
  curl_easy_setopt(c, CURLOPT_NOBODY, long(job->req.head));
  if (!job->req.head) curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  job->sink.limit = job->req.expected_size;
  job->body.clear();
  if (job->req.expected_size) job->body.reserve(job->req.expected_size);
  job->errbuf[0] = 0;
  std::string url = m.spec.base + job->req.rel;
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
  CURLM* multi = static_cast<CURLM*>(multi_);
  auto now = Clock::now();
  while (!backoff_.empty() && backoff_.begin()->first <= now) {
    Job* job = backoff_.begin()->second;
    backoff_.erase(backoff_.begin());
    MakeReady(job);
  }
  // A set-aside mirror whose time is up gets one probe before real work.
  for (int i = 0; i < int(mirrors_.size()); i++) {
    Mirror& m = mirrors_[size_t(i)];
    if (m.aside && !m.probing && m.aside_until <= now && !probe_rel_.empty()) {
      m.probing = true;
      EnqueueProbe(i);
    }
  }
  for (auto it = ready_.begin(); it != ready_.end();) {
    Job* job = it->second;
    int mi;
    if (job->req.mirror >= 0 && job->req.mirror < int(mirrors_.size())) {
      // Pinned (a probe, `hloop mirrors`): it waits for its own mirror's
      // slot without holding up work that may go elsewhere.
      mi = job->req.mirror;
      if (mirrors_[size_t(mi)].active >= mirrors_[size_t(mi)].connections) {
        ++it;
        continue;
      }
    } else {
      mi = PickMirror(*job);
      if (mi == -1) break;  // the best mirror is busy: wait for a slot there
    }
    it = ready_.erase(it);
    job->ready = false;
    if (mi == -2) {  // every mirror said 404
      not_found_.push_back(job);
      continue;
    }
    Mirror& m = mirrors_[size_t(mi)];
    job->running = true;
    job->attempts++;
    job->mirror = mi;
    job->started_as = job->req.priority;
    m.active++;
    m.active_by_priority[int(job->started_as)]++;
    m.transfers++;
    active_++;
    stats_.transfers++;
    stats_.max_inflight_seen = std::max<uint64_t>(stats_.max_inflight_seen, active_);
    void* easy = NewEasy(job, m);
    running_easy_.insert(easy);
    curl_multi_add_handle(multi, static_cast<CURL*>(easy));
  }
}

int FetchEngine::PollTimeoutMs() {
  int ms = 1000;
  auto now = Clock::now();
  if (!backoff_.empty()) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(backoff_.begin()->first - now);
    ms = std::clamp<int>(int(wait.count()) + 1, 0, ms);
  }
  for (const Mirror& m : mirrors_) {
    if (m.aside && !m.probing) {
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(m.aside_until - now);
      ms = std::clamp<int>(int(wait.count()) + 1, 0, ms);
    }
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
  curl_off_t pre_us = 0, first_us = 0, total_us = 0;
  curl_easy_getinfo(c, CURLINFO_PRETRANSFER_TIME_T, &pre_us);
  curl_easy_getinfo(c, CURLINFO_STARTTRANSFER_TIME_T, &first_us);
  curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &total_us);
  curl_multi_remove_handle(static_cast<CURLM*>(multi_), c);
  running_easy_.erase(c);

  FetchError err = ClassifyCurlCode(curl_code);
  std::string detail = job->errbuf[0] ? job->errbuf : curl_easy_strerror(CURLcode(curl_code));
  if (err == FetchError::kShortBody && status >= 200 && status < 300) {
    detail = "body longer than the expected " + std::to_string(job->req.expected_size) + " bytes";
  } else if (status >= 300 && (curl_code == CURLE_OK || err == FetchError::kShortBody)) {
    err = ClassifyHttpStatus(status);
    if (status < 400) err = FetchError::kHttp4xx;  // a redirect we did not follow
    detail = "HTTP " + std::to_string(status);
  } else if (err == FetchError::kNone && job->req.expected_size && job->body.size() != job->req.expected_size) {
    err = FetchError::kShortBody;
    detail = "got " + std::to_string(job->body.size()) + " bytes, expected " + std::to_string(job->req.expected_size);
  }
  idle_easy_.push_back(c);

  thread_local std::mt19937 rng(std::random_device{}());
  std::string url;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Mirror& m = mirrors_[size_t(job->mirror)];
    url = m.spec.base + job->req.rel;
    active_--;
    m.active--;
    m.active_by_priority[int(job->started_as)]--;
    stats_.bytes += job->body.size();
    m.bytes += job->body.size();
    job->running = false;
    // Measurements: time from request sent to first byte, and the body's
    // rate once it flows (only bodies big enough to say something).
    if (err == FetchError::kNone) {
      if (first_us > pre_us) {
        double sample = double(first_us - pre_us) / 1e6;
        m.srtt = Smooth(m.srtt, sample);
        m.base_rtt = m.base_rtt < 0 || sample < m.base_rtt ? sample : m.base_rtt + 0.02 * (sample - m.base_rtt);
      }
      if (job->body.size() >= 32 * 1024) {
        double secs = std::max(double(total_us - first_us) / 1e6, 1e-4);
        m.thr = Smooth(m.thr, double(job->body.size()) / secs);
      }
      m.failures_in_a_row = 0;
      if (m.aside) LogInfo("mirror " + m.spec.base + " is back");
      if (!job->probe) m.aside_ms = kAsideInitialMs;
      m.aside = m.probing = false;
    } else if (err == FetchError::kNotFound) {
      m.not_found++;
    } else if (IsTransient(err) || err == FetchError::kTls || err == FetchError::kHttp4xx) {
      m.errors++;
      m.failures_in_a_row++;
      bool cannot_connect = err == FetchError::kConnect;
      if (job->probe || cannot_connect || m.failures_in_a_row >= kFailuresToSetAside) SetAside(m, kAsideInitialMs);
    }
    if (job->probe) {
      // Probes only measure; nobody waits on them (but Complete frees them).
    } else {
      int healthy_others = 0;
      for (int i = 0; i < int(mirrors_.size()); i++) {
        if (i != job->mirror && !mirrors_[size_t(i)].aside && !(job->not_found & (uint64_t(1) << i)))
          healthy_others++;
      }
      // A 404 from one mirror may only mean it is behind: ask the others.
      if (err == FetchError::kNotFound && job->req.mirror < 0) {
        job->not_found |= uint64_t(1) << job->mirror;
        bool others = false;
        for (int i = 0; i < int(mirrors_.size()); i++) others |= !(job->not_found & (uint64_t(1) << i));
        if (others) {
          LogInfo(url + ": not found there; asking another mirror");
          MakeReady(job);
          return;
        }
      }
      int jittered = job->delay_ms / 2 + int(rng() % unsigned(job->delay_ms / 2 + 1));
      // A server that is away is waited for; a server that answers with the
      // wrong body, or a failure we cannot classify, is not worth waiting for.
      int limit = job->req.max_attempts >= 0 ? job->req.max_attempts : options_.max_attempts;
      if (err == FetchError::kShortBody || err == FetchError::kOther)
        limit = limit ? std::min(limit, kMaxAttemptsForBadAnswers) : kMaxAttemptsForBadAnswers;
      bool attempts_left = limit == 0 || job->attempts < limit;
      bool time_left = Clock::now() + std::chrono::milliseconds(jittered) < job->deadline;
      bool retry = err != FetchError::kNone && IsTransient(err) && attempts_left && !stopping_;
      if (retry && !time_left) {
        detail += "; no answer within --io-timeout " + std::to_string(options_.io_timeout_s) + " s";
      } else if (retry) {
        stats_.retries++;
        job->avoid = job->mirror;
        // Another mirror may have it now; after a round of them, back off.
        if (job->req.mirror < 0 && healthy_others > 0 && job->quick_retries < int(mirrors_.size())) {
          job->quick_retries++;
          LogInfo(url + ": " + FetchErrorName(err) + " (" + detail + "), retry " + std::to_string(job->attempts) +
                  " on another mirror");
          MakeReady(job);
          return;
        }
        job->quick_retries = 0;
        job->delay_ms = std::min(job->delay_ms * 2, options_.retry_max_ms);
        LogInfo(url + ": " + FetchErrorName(err) + " (" + detail + "), retry " + std::to_string(job->attempts) +
                " in " + std::to_string(jittered) + " ms");
        backoff_.emplace(Clock::now() + std::chrono::milliseconds(jittered), job);
        return;
      }
    }
    // A 404 is an answer (optional files such as NAME.profile are often
    // absent), not a failure of the network.
    if (err != FetchError::kNone && err != FetchError::kNotFound && !job->probe) stats_.failures++;
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
    auto it = jobs_.find(job->key);
    owned = std::move(it->second);
    jobs_.erase(it);
  }
  // Every waiter but the last gets a copy of the body.
  for (size_t i = 0; i < owned->waiters.size(); i++) {
    if (i + 1 == owned->waiters.size()) owned->waiters[i](st, std::move(owned->body), owned->mirror);
    else owned->waiters[i](st, owned->body, owned->mirror);
  }
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
    std::vector<Job*> not_found;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
      // Freed slots and due retries start now, not after the next wake-up.
      StartReady();
      not_found.swap(not_found_);
      timeout_ms = PollTimeoutMs();
    }
    for (Job* job : not_found) {
      Complete(job, Status::NotFound(job->req.rel + ": not found on any mirror"));
    }
    // A new transfer needs curl_multi_perform to get going: do not sleep.
    if (running < int(active_)) timeout_ms = 0;
    curl_multi_poll(multi, nullptr, 0, timeout_ms, nullptr);
  }
  // Shutting down: fail everything that is still waiting or running.
  std::vector<Job*> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
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
