// RetryPolicy: whether and when a failed transfer is tried again. Pure: no
// curl, no threads; the time comes from a Clock and the jitter from an
// injectable function.
//  - Only transient failures (FetchError: connect, timeout, reset, 5xx,
//    wrong body length, unclassified) are retried; 404, other 4xx and TLS
//    failures are final.
//  - Attempts are bounded by the request's own limit, else
//    FetchOptions::max_attempts (0: no limit, as a root file system needs);
//    a server that answers with the wrong body, or a failure that cannot be
//    classified, is asked three times at most.
//  - A retry goes at once to another healthy mirror when there is one (once
//    per mirror); after such a round it backs off: the delay doubles from
//    retry_initial_ms up to retry_max_ms, and each wait is drawn between
//    half the delay and the delay (jitter).
//  - A request with an io_timeout_s deadline is not retried past it.
//
// Not thread-safe (the jitter function has state): the engine calls it under
// its own mutex.
#pragma once

#include <functional>

#include "fetch/clock.h"
#include "fetch/errors.h"
#include "fetch/source.h"

namespace hloop::fetch {

// One request's retry state; the engine counts attempts as it starts them.
struct RetryState {
  int attempts = 0;       // transfers started for the request
  int max_attempts = -1;  // the request's own limit; -1: FetchOptions::max_attempts
  int quick_retries = 0;  // retries on another mirror since the last back-off
  int delay_ms = 0;       // the next back-off, before jitter
  Clock::TimePoint deadline = Clock::TimePoint::max();  // from io_timeout_s
};

enum class RetryAction {
  kGiveUp,      // final: complete the request with the failure
  kTimedOut,    // final: a retry would pass the request's deadline
  kNow,         // retry at once, on another mirror
  kAfterDelay,  // retry after RetryDecision::delay_ms, on any mirror
};

struct RetryDecision {
  RetryAction action = RetryAction::kGiveUp;
  int delay_ms = 0;  // for kAfterDelay
};

class RetryPolicy {
 public:
  // Returns a number in [0, max]; the wait is delay / 2 + Jitter(delay / 2).
  using Jitter = std::function<int(int max)>;
  // Uniformly random jitter.
  static Jitter RandomJitter();

  // `clock` must outlive the policy.
  RetryPolicy(const FetchOptions& options, const Clock& clock, Jitter jitter = RandomJitter());

  // The state of a new request; `max_attempts` as in RetryState.
  RetryState Start(int max_attempts) const;
  // Whether a failure of this kind is worth another attempt at all.
  static bool Retryable(FetchError error);
  // The attempt limit for `state` after a failure `error`; 0: none.
  int AttemptLimit(const RetryState& state, FetchError error) const;
  // The request's last attempt failed with `error` (not kNone). `other_mirror`:
  // another healthy mirror could take it; `mirrors`: how many there are.
  // Updates `state` for the retry it decides on.
  RetryDecision Decide(RetryState* state, FetchError error, bool other_mirror, int mirrors);

 private:
  const int max_attempts_, io_timeout_s_, initial_ms_, max_ms_;
  const Clock& clock_;
  Jitter jitter_;
};

}  // namespace hloop::fetch
