#include "fetch/checked_get.h"

#include <sys/stat.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>
#include <utility>

#include "fetch/clock.h"
#include "fetch/retry_policy.h"
#include "util/file.h"
#include "util/log.h"

namespace hloop::fetch {

namespace {

// The check's message names the URL once.
Status WithUrl(const Status& st, const std::string& url) {
  return st.message().find(url) == std::string::npos ? st.Annotate(url) : st;
}

// `text` without any occurrence of `url`: a verdict that does not depend on
// which mirror gave it.
std::string WithoutUrl(std::string text, const std::string& url) {
  for (size_t at; !url.empty() && (at = text.find(url)) != std::string::npos;)
    text.erase(at, url.size());
  return text;
}

}  // namespace

Status GetChecked(FetchEngine& engine, Request request, const BodyCheck& check, std::string* out,
                  int max_verdicts) {
  RetryPolicy policy(engine.options(), Clock::Steady());
  RetryState state = policy.Start(max_verdicts);
  // Each distinct bad copy (verdict, bytes) seen in this run: how often, from whom.
  struct Seen {
    int times = 0;
    std::set<int> mirrors;
  };
  std::map<std::pair<std::string, size_t>, Seen> seen;
  std::set<int> gave_bad;
  for (;;) {
    std::string body;
    int mirror = -1;
    Status st = engine.Get(request, &body, &mirror);
    const std::string url = engine.base(mirror) + request.rel;
    if (st.ok()) {
      st = check(body);
      if (st.ok()) {
        *out = std::move(body);
        return st;
      }
    } else if (!st.IsCorruption()) {
      return st;  // not an answer about the file: the engine has retried it
    }
    // Like the engine's retries, only the final word is a warning.
    Status verdict = WithUrl(st, url);
    if (mirror >= 0) engine.ReportCorrupt(mirror);
    Seen& s = seen[{WithoutUrl(st.message(), url), std::hash<std::string>{}(body)}];
    s.times++;
    s.mirrors.insert(mirror);
    gave_bad.insert(mirror);
    // A request pinned to one mirror has only that one to ask.
    const int mirrors = request.mirror >= 0 ? 1 : int(engine.mirror_stats().size());
    // The cause first (what a user acts on), then why it is final.
    if (s.times >= 2 && int(s.mirrors.size()) >= mirrors)
      return Status::Corruption(verdict.message() + (mirrors > 1
                                                         ? " (the same bad copy from every mirror)"
                                                         : " (the same bad copy twice in a row)"));
    bool other_mirror = false;
    for (int m = 0; m < mirrors && request.mirror < 0; m++) other_mirror |= !gave_bad.count(m);
    state.attempts++;
    RetryDecision d = policy.Decide(&state, FetchError::kBadBody, other_mirror, mirrors);
    switch (d.action) {
      case RetryAction::kGiveUp:
        return verdict.Annotate(std::to_string(state.attempts) + " bad copies in a row");
      case RetryAction::kTimedOut:
        return verdict.Annotate("no good copy within --io-timeout " +
                                std::to_string(engine.options().io_timeout_s) + " s");
      case RetryAction::kNow: LogInfo(verdict.message() + "; fetching it again"); break;
      case RetryAction::kAfterDelay:
        LogInfo(verdict.message() + "; fetching it again in " + std::to_string(d.delay_ms) + " ms");
        std::this_thread::sleep_for(std::chrono::milliseconds(d.delay_ms));
        break;
    }
  }
}

Result<std::string> FetchUrlChecked(const std::string& url, const FetchOptions& options,
                                    const BodyCheck& check, uint64_t max_size,
                                    const std::string& what) {
  auto loc = ParseLocation(url);
  if (!loc.ok()) return loc.status();
  if (loc->kind == Location::Kind::kFile) {
    const std::string& path = loc->index_url;
    struct stat sb;
    if (max_size && ::stat(path.c_str(), &sb) == 0 && uint64_t(sb.st_size) > max_size)
      return Status::Corruption(path + " is larger than the " + std::to_string(max_size) +
                                "-byte limit for " + what);
    auto bytes = ReadFile(path);
    if (!bytes.ok()) return bytes.status();
    Status st = check(*bytes);
    if (!st.ok()) return WithUrl(st, path);
    return bytes;
  }
  FetchEngine engine("", options);
  std::string out;
  HLOOP_RETURN_IF_ERROR(
      GetChecked(engine, Request{.rel = url, .max_size = max_size, .what = what}, check, &out));
  return out;
}

}  // namespace hloop::fetch
