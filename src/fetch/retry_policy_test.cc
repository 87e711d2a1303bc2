// RetryPolicy on a fake clock with deterministic jitter.
#include "fetch/retry_policy.h"

#include <gtest/gtest.h>

#include <set>

#include "testing/fake_clock.h"

namespace hloop::fetch {
namespace {

using std::chrono::milliseconds;
using testing::FakeClock;

FetchOptions Options(int max_attempts, int initial_ms = 100, int max_ms = 400,
                     int io_timeout_s = 0) {
  FetchOptions o;
  o.max_attempts = max_attempts;
  o.retry_initial_ms = initial_ms;
  o.retry_max_ms = max_ms;
  o.io_timeout_s = io_timeout_s;
  return o;
}

// Jitter that always waits the whole delay, or half of it.
RetryPolicy::Jitter Longest() {
  return [](int max) { return max; };
}
RetryPolicy::Jitter Shortest() {
  return [](int) { return 0; };
}

// One failed attempt: counts it, as the engine does when it starts one.
RetryDecision Fail(RetryPolicy& p, RetryState& s, FetchError e, bool other_mirror = false,
                   int mirrors = 1) {
  s.attempts++;
  return p.Decide(&s, e, other_mirror, mirrors);
}

TEST(RetryPolicyTest, OnlyTransientFailuresAreRetried) {
  FakeClock clock;
  RetryPolicy p(Options(0), clock, Longest());
  for (FetchError e :
       {FetchError::kConnect, FetchError::kTimeout, FetchError::kReset, FetchError::kHttp5xx,
        FetchError::kShortBody, FetchError::kBadBody, FetchError::kOther}) {
    RetryState s = p.Start(-1);
    EXPECT_EQ(Fail(p, s, e).action, RetryAction::kAfterDelay) << FetchErrorName(e);
  }
  for (FetchError e : {FetchError::kNone, FetchError::kNotFound, FetchError::kHttp4xx,
                       FetchError::kTls, FetchError::kTooLarge}) {
    RetryState s = p.Start(-1);
    EXPECT_EQ(Fail(p, s, e).action, RetryAction::kGiveUp) << FetchErrorName(e);
    EXPECT_FALSE(RetryPolicy::Retryable(e));
  }
}

TEST(RetryPolicyTest, GivesUpAfterTheAttemptLimit) {
  FakeClock clock;
  RetryPolicy p(Options(4), clock, Longest());
  RetryState s = p.Start(-1);
  for (int i = 1; i < 4; i++)
    EXPECT_EQ(Fail(p, s, FetchError::kHttp5xx).action, RetryAction::kAfterDelay) << i;
  EXPECT_EQ(Fail(p, s, FetchError::kHttp5xx).action, RetryAction::kGiveUp);
  EXPECT_EQ(s.attempts, 4);
  // A request's own limit wins over the options'.
  RetryState one = p.Start(1);
  EXPECT_EQ(Fail(p, one, FetchError::kConnect).action, RetryAction::kGiveUp);
  RetryState six = p.Start(6);
  for (int i = 1; i < 6; i++)
    EXPECT_EQ(Fail(p, six, FetchError::kConnect).action, RetryAction::kAfterDelay) << i;
  EXPECT_EQ(Fail(p, six, FetchError::kConnect).action, RetryAction::kGiveUp);
}

TEST(RetryPolicyTest, WithoutALimitAServerThatIsAwayIsWaitedForEvenLonger) {
  FakeClock clock;
  RetryPolicy p(Options(0), clock, Longest());
  RetryState s = p.Start(-1);
  for (int i = 0; i < 1000; i++)
    ASSERT_EQ(Fail(p, s, FetchError::kConnect).action, RetryAction::kAfterDelay) << i;
}

TEST(RetryPolicyTest, WrongAnswersAreAskedThreeTimesAtMost) {
  FakeClock clock;
  for (int limit : {0, 10}) {
    RetryPolicy p(Options(limit), clock, Longest());
    for (FetchError e : {FetchError::kShortBody, FetchError::kOther}) {
      RetryState s = p.Start(-1);
      EXPECT_EQ(p.AttemptLimit(s, e), 3);
      EXPECT_EQ(Fail(p, s, e).action, RetryAction::kAfterDelay);
      EXPECT_EQ(Fail(p, s, e).action, RetryAction::kAfterDelay);
      EXPECT_EQ(Fail(p, s, e).action, RetryAction::kGiveUp);
    }
  }
  RetryPolicy two(Options(2), clock, Longest());
  EXPECT_EQ(two.AttemptLimit(two.Start(-1), FetchError::kShortBody), 2);  // a lower limit stays
  EXPECT_EQ(two.AttemptLimit(two.Start(-1), FetchError::kReset), 2);
}

TEST(RetryPolicyTest, BackOffDoublesUpToTheCapWithJitterBetweenHalfAndAll) {
  FakeClock clock;
  RetryPolicy longest(Options(0, 100, 400), clock, Longest());
  RetryState s = longest.Start(-1);
  std::vector<int> waits;
  for (int i = 0; i < 6; i++) waits.push_back(Fail(longest, s, FetchError::kTimeout).delay_ms);
  EXPECT_EQ(waits, (std::vector<int>{100, 200, 400, 400, 400, 400}));
  RetryPolicy shortest(Options(0, 100, 400), clock, Shortest());
  s = shortest.Start(-1);
  waits.clear();
  for (int i = 0; i < 6; i++) waits.push_back(Fail(shortest, s, FetchError::kTimeout).delay_ms);
  EXPECT_EQ(waits, (std::vector<int>{50, 100, 200, 200, 200, 200}));
}

TEST(RetryPolicyTest, RetriesOnAnotherMirrorAtOnceThenBacksOffAfterARound) {
  FakeClock clock;
  RetryPolicy p(Options(0, 100, 400), clock, Longest());
  RetryState s = p.Start(-1);
  std::vector<RetryAction> got;
  for (int i = 0; i < 6; i++)
    got.push_back(Fail(p, s, FetchError::kReset, /*other_mirror=*/true, /*mirrors=*/2).action);
  EXPECT_EQ(got, (std::vector<RetryAction>{RetryAction::kNow, RetryAction::kNow,
                                           RetryAction::kAfterDelay, RetryAction::kNow,
                                           RetryAction::kNow, RetryAction::kAfterDelay}));
  // Quick retries do not grow the back-off: the two waits were 100 and 200.
  EXPECT_EQ(s.delay_ms, 400);
  // Without a healthy mirror to go to, every retry waits.
  RetryState alone = p.Start(-1);
  EXPECT_EQ(Fail(p, alone, FetchError::kReset, /*other_mirror=*/false, 2).action,
            RetryAction::kAfterDelay);
}

TEST(RetryPolicyTest, NoRetryPastTheIoTimeout) {
  FakeClock clock;
  RetryPolicy p(Options(0, 200, 200, /*io_timeout_s=*/1), clock, Longest());
  RetryState s = p.Start(-1);
  EXPECT_EQ(s.deadline, clock.Now() + std::chrono::seconds(1));
  EXPECT_EQ(Fail(p, s, FetchError::kConnect).action, RetryAction::kAfterDelay);
  clock.Advance(milliseconds(700));  // the retry would start at 900 ms
  EXPECT_EQ(Fail(p, s, FetchError::kConnect).action, RetryAction::kAfterDelay);
  clock.Advance(milliseconds(100));  // at 1000 ms: too late
  EXPECT_EQ(Fail(p, s, FetchError::kConnect).action, RetryAction::kTimedOut);
  // Without an io-timeout there is no deadline.
  RetryPolicy forever(Options(0), clock, Longest());
  EXPECT_EQ(forever.Start(-1).deadline, Clock::TimePoint::max());
}

TEST(RetryPolicyTest, RandomJitterStaysWithinItsRange) {
  RetryPolicy::Jitter j = RetryPolicy::RandomJitter();
  std::set<int> seen;
  for (int i = 0; i < 2000; i++) {
    int v = j(10);
    ASSERT_GE(v, 0);
    ASSERT_LE(v, 10);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 11u);  // every value shows up: not a constant
  EXPECT_EQ(j(0), 0);
}

}  // namespace
}  // namespace hloop::fetch
