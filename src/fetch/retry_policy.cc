#include "fetch/retry_policy.h"

#include <algorithm>
#include <random>

namespace hloop::fetch {

namespace {
constexpr int kMaxAttemptsForBadAnswers = 3;
}  // namespace

RetryPolicy::Jitter RetryPolicy::RandomJitter() {
  return [rng = std::mt19937(std::random_device{}())](int max) mutable {
    return int(rng() % unsigned(max + 1));
  };
}

RetryPolicy::RetryPolicy(const FetchOptions& options, const Clock& clock, Jitter jitter)
    : max_attempts_(options.max_attempts),
      io_timeout_s_(options.io_timeout_s),
      initial_ms_(options.retry_initial_ms),
      max_ms_(options.retry_max_ms),
      clock_(clock),
      jitter_(std::move(jitter)) {}

RetryState RetryPolicy::Start(int max_attempts) const {
  RetryState s;
  s.max_attempts = max_attempts;
  s.delay_ms = initial_ms_;
  if (io_timeout_s_ > 0) s.deadline = clock_.Now() + std::chrono::seconds(io_timeout_s_);
  return s;
}

bool RetryPolicy::Retryable(FetchError error) {
  return error != FetchError::kNone && IsTransient(error);
}

int RetryPolicy::AttemptLimit(const RetryState& state, FetchError error) const {
  int limit = state.max_attempts >= 0 ? state.max_attempts : max_attempts_;
  // A server that is away is waited for; a server that answers with the
  // wrong body, or a failure we cannot classify, is not worth waiting for.
  if (error == FetchError::kShortBody || error == FetchError::kOther)
    limit = limit ? std::min(limit, kMaxAttemptsForBadAnswers) : kMaxAttemptsForBadAnswers;
  return limit;
}

RetryDecision RetryPolicy::Decide(RetryState* state, FetchError error, bool other_mirror,
                                  int mirrors) {
  if (!Retryable(error)) return {RetryAction::kGiveUp};
  const int limit = AttemptLimit(*state, error);
  if (limit != 0 && state->attempts >= limit) return {RetryAction::kGiveUp};
  const int wait_ms = state->delay_ms / 2 + jitter_(state->delay_ms / 2);
  if (clock_.Now() + std::chrono::milliseconds(wait_ms) >= state->deadline)
    return {RetryAction::kTimedOut};
  // Another mirror may have it now; after a round of them, back off.
  if (other_mirror && state->quick_retries < mirrors) {
    state->quick_retries++;
    return {RetryAction::kNow};
  }
  state->quick_retries = 0;
  state->delay_ms = std::min(state->delay_ms * 2, max_ms_);
  return {RetryAction::kAfterDelay, wait_ms};
}

}  // namespace hloop::fetch
