// MirrorSet, the mirror choice and health policy, on a fake clock: no
// server, no sleeping.
#include "fetch/mirror_set.h"

#include <gtest/gtest.h>

#include "testing/fake_clock.h"

namespace hloop::fetch {
namespace {

using std::chrono::milliseconds;
using testing::FakeClock;

class MirrorSetTest : public ::testing::Test {
 protected:
  // Mirrors "http://mN/" with `connections` each.
  void AddMirrors(int n, unsigned connections = 4) {
    for (int i = 0; i < n; i++)
      set_.Add(MirrorSpec{"http://m" + std::to_string(i) + "/"}, connections, false);
  }
  // One successful transfer on `m`: first byte after `rtt_s`, `bytes` in `body_s`.
  void Transfer(int m, double rtt_s, uint64_t bytes = 1000, double body_s = 0.001,
                Priority p = Priority::kDemand) {
    set_.Started(m, p);
    set_.Ended(m, p, TransferEnd{FetchError::kNone, rtt_s, bytes, body_s});
  }
  void Fail(int m, FetchError error, bool probe = false) {
    set_.Started(m, Priority::kDemand);
    set_.Ended(m, Priority::kDemand, TransferEnd{error, -1, 0, 0, probe});
  }
  int Pick(uint64_t size = 0, Priority p = Priority::kDemand, MirrorMask not_found = 0,
           int avoid = -1) {
    return set_.Pick(MirrorQuery{p, size, not_found, avoid});
  }
  bool Aside(int m) { return set_.Stats()[size_t(m)].set_aside; }

  FakeClock clock_;
  MirrorSet set_{clock_};
};

TEST_F(MirrorSetTest, AddSettlesConnectionsAndHttp2AndNumbersInOrder) {
  EXPECT_EQ(set_.Add(MirrorSpec{"http://a/"}, 16, false), 0);
  EXPECT_EQ(set_.Add(MirrorSpec{"http://b/", true, 3}, 16, false), 1);
  EXPECT_EQ(set_.Add(MirrorSpec{"http://c/"}, 0, true), 2);
  auto s = set_.Stats();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].connections, 16u);
  EXPECT_FALSE(s[0].http2);
  EXPECT_EQ(s[1].connections, 3u);
  EXPECT_TRUE(s[1].http2);
  EXPECT_EQ(s[2].connections, 1u);  // at least one
  EXPECT_TRUE(s[2].http2);
  EXPECT_EQ(set_.total_connections(), 20u);
  EXPECT_EQ(set_.spec(1).base, "http://b/");
}

TEST_F(MirrorSetTest, IgnoresMirrorsPastTheMaskWidth) {
  for (int i = 0; i < MirrorSet::kMaxMirrors; i++)
    set_.Add(MirrorSpec{"http://m/" + std::to_string(i) + "/"}, 1, false);
  EXPECT_EQ(set_.Add(MirrorSpec{"http://one-too-many/"}, 1, false), MirrorSet::kMaxMirrors - 1);
  EXPECT_EQ(set_.size(), MirrorSet::kMaxMirrors);
}

TEST_F(MirrorSetTest, ChoosesTheMirrorExpectedToFinishFirst) {
  AddMirrors(3);
  Transfer(0, 0.050, 1 << 20, 0.1);  // far, 10 MB/s
  Transfer(1, 0.010, 1 << 20, 1.0);  // near, 1 MB/s
  Transfer(2, 0.030, 1 << 20, 0.1);  // middle, 10 MB/s
  // A small body: the round trip decides.
  EXPECT_EQ(Pick(1000), 1);
  // A large one: the rate decides (0.03 + 0.4 s against 0.01 + 4 s).
  EXPECT_EQ(Pick(4 << 20), 2);
}

TEST_F(MirrorSetTest, UnmeasuredMirrorsRankAfterMeasuredOnesInTheOrderGiven) {
  AddMirrors(3);
  EXPECT_EQ(Pick(), 0);  // nothing measured: the order given
  Transfer(2, 0.200);
  EXPECT_EQ(Pick(), 2);  // even a slow measured mirror beats the unknown
}

TEST_F(MirrorSetTest, ABusyMirrorCountsDoubleAndIsWaitedForWhenStillTheBest) {
  AddMirrors(2, /*connections=*/2);
  Transfer(0, 0.010, 1 << 20, 0.01);
  Transfer(1, 0.015, 1 << 20, 0.01);
  set_.Started(0, Priority::kDemand);
  set_.Started(0, Priority::kDemand);
  // Mirror 0 is full; twice its cost is more than mirror 1's: spill over.
  EXPECT_EQ(Pick(1000), 1);
  // Against a far slower mirror, waiting for a slot at the fast one wins.
  MirrorSet far_set(clock_);
  far_set.Add(MirrorSpec{"http://fast/"}, 2, false);
  far_set.Add(MirrorSpec{"http://slow/"}, 2, false);
  for (int m = 0; m < 2; m++) {
    far_set.Started(m, Priority::kDemand);
    far_set.Ended(m, Priority::kDemand,
                  TransferEnd{FetchError::kNone, m == 0 ? 0.010 : 0.500, 1 << 20, 0.01});
  }
  far_set.Started(0, Priority::kDemand);
  far_set.Started(0, Priority::kDemand);
  EXPECT_EQ(far_set.Pick(MirrorQuery{Priority::kDemand, 1000}), MirrorSet::kWait);
  EXPECT_FALSE(far_set.HasFreeConnection(0));
  EXPECT_TRUE(far_set.HasFreeConnection(1));
}

TEST_F(MirrorSetTest, AnUnmeasuredRateAllowsTwoTransfersAtMost) {
  AddMirrors(2, /*connections=*/8);
  Transfer(0, 0.010);  // a round trip, but a body too small to measure a rate
  Transfer(1, 0.015);
  set_.Started(0, Priority::kDemand);
  EXPECT_EQ(Pick(1000), 0);
  set_.Started(0, Priority::kDemand);
  EXPECT_EQ(Pick(1000), 1);  // two running without a rate: full
}

TEST_F(MirrorSetTest, BackgroundWorkLeavesConnectionsForReaders) {
  AddMirrors(1, /*connections=*/4);
  Transfer(0, 0.010, 1 << 20, 0.01);
  for (int i = 0; i < 2; i++) set_.Started(0, Priority::kPrefetch);
  EXPECT_EQ(Pick(1000, Priority::kPrefetch), 0);
  set_.Started(0, Priority::kPrefetch);
  EXPECT_EQ(Pick(1000, Priority::kPrefetch), MirrorSet::kWait);   // three quarters taken
  EXPECT_EQ(Pick(1000, Priority::kReadAhead), MirrorSet::kWait);  // all but one taken
  EXPECT_EQ(Pick(1000, Priority::kDemand), 0);                    // the last is a reader's
  set_.Started(0, Priority::kDemand);
  EXPECT_EQ(Pick(1000, Priority::kDemand), MirrorSet::kWait);
  set_.Ended(0, Priority::kPrefetch, TransferEnd{});
  EXPECT_EQ(Pick(1000, Priority::kDemand), 0);
}

TEST_F(MirrorSetTest, SmoothsRoundTripsAndRatesAndKeepsASlowlyRisingBase) {
  AddMirrors(1);
  Transfer(0, 0.100, 64 * 1024, 0.1);
  auto s = set_.Stats()[0];
  EXPECT_DOUBLE_EQ(s.rtt_s, 0.100);
  EXPECT_DOUBLE_EQ(s.base_rtt_s, 0.100);
  EXPECT_DOUBLE_EQ(s.bytes_per_s, 655360);
  Transfer(0, 0.200, 128 * 1024, 0.1);
  s = set_.Stats()[0];
  EXPECT_DOUBLE_EQ(s.rtt_s, 0.125);                      // 0.1 + 0.25 * (0.2 - 0.1)
  EXPECT_DOUBLE_EQ(s.base_rtt_s, 0.100 + 0.02 * 0.100);  // drifts up slowly
  EXPECT_DOUBLE_EQ(s.bytes_per_s, 655360 + 0.25 * 655360);
  Transfer(0, 0.050, 16 * 1024, 0.1);  // too small a body for a rate
  s = set_.Stats()[0];
  EXPECT_DOUBLE_EQ(s.rtt_s, 0.125 + 0.25 * (0.050 - 0.125));
  EXPECT_DOUBLE_EQ(s.base_rtt_s, 0.050);  // a lower sample is the new base at once
  EXPECT_DOUBLE_EQ(s.bytes_per_s, 819200);
  Fail(0, FetchError::kTimeout);  // failures measure nothing
  EXPECT_DOUBLE_EQ(set_.Stats()[0].base_rtt_s, 0.050);
  EXPECT_EQ(set_.Stats()[0].transfers, 4u);
  EXPECT_EQ(set_.Stats()[0].bytes, (64u + 128 + 16) * 1024);
  EXPECT_EQ(set_.Stats()[0].errors, 1u);
}

TEST_F(MirrorSetTest, TwoFailuresInARowSetAMirrorAsideUntilAProbeAfterItsTime) {
  AddMirrors(2);
  Transfer(0, 0.010);
  Transfer(1, 0.050);
  Fail(0, FetchError::kReset);
  EXPECT_FALSE(Aside(0));  // one failure is not an incident
  Transfer(0, 0.010);
  Fail(0, FetchError::kReset);
  EXPECT_FALSE(Aside(0));  // the success in between reset the count
  Fail(0, FetchError::kHttp5xx);
  EXPECT_TRUE(Aside(0));
  EXPECT_EQ(Pick(), 1);
  EXPECT_EQ(set_.HealthyOthers(1, 0), 0);
  EXPECT_DOUBLE_EQ(set_.Stats()[0].aside_s, 1.0);
  EXPECT_EQ(set_.NextProbeTime(), clock_.Now() + milliseconds(1000));
  clock_.Advance(milliseconds(999));
  EXPECT_TRUE(set_.TakeDueProbes().empty());
  clock_.Advance(milliseconds(1));
  EXPECT_EQ(set_.TakeDueProbes(), std::vector<int>{0});
  EXPECT_TRUE(set_.TakeDueProbes().empty());  // one probe at a time
  EXPECT_FALSE(set_.NextProbeTime().has_value());
  EXPECT_EQ(Pick(), 1);  // still aside while it is probed
  // The probe fails: twice as long this time.
  Fail(0, FetchError::kTimeout, /*probe=*/true);
  EXPECT_TRUE(Aside(0));
  clock_.Advance(milliseconds(1999));
  EXPECT_TRUE(set_.TakeDueProbes().empty());
  clock_.Advance(milliseconds(1));
  EXPECT_EQ(set_.TakeDueProbes(), std::vector<int>{0});
  // The next probe succeeds: back, and chosen again as the fastest.
  set_.Started(0, Priority::kDemand);
  set_.Ended(0, Priority::kDemand, TransferEnd{FetchError::kNone, 0.010, 0, 0, /*probe=*/true});
  EXPECT_FALSE(Aside(0));
  EXPECT_EQ(Pick(), 0);
}

TEST_F(MirrorSetTest, FailedReprobesDoubleTheTimeUpToTwoMinutes) {
  AddMirrors(2);
  Fail(0, FetchError::kConnect);  // a refused connection: aside at once
  ASSERT_TRUE(Aside(0));
  int expected_ms = 1000;
  for (int round = 0; round < 10; round++) {
    EXPECT_DOUBLE_EQ(set_.Stats()[0].aside_s, expected_ms / 1000.0) << "round " << round;
    clock_.Advance(milliseconds(expected_ms));
    ASSERT_EQ(set_.TakeDueProbes(), std::vector<int>{0});
    Fail(0, FetchError::kConnect, /*probe=*/true);
    expected_ms = std::min(expected_ms * 2, 120000);
  }
  EXPECT_DOUBLE_EQ(set_.Stats()[0].aside_s, 120.0);
}

TEST_F(MirrorSetTest, OtherFailuresOfTheSameIncidentDoNotDoubleTheTime) {
  AddMirrors(2);
  Fail(0, FetchError::kConnect);
  clock_.Advance(milliseconds(500));
  Fail(0, FetchError::kConnect);                   // a transfer that was already running
  EXPECT_DOUBLE_EQ(set_.Stats()[0].aside_s, 1.0);  // 1 s from now, not 2
  clock_.Advance(milliseconds(1000));
  EXPECT_EQ(set_.TakeDueProbes(), std::vector<int>{0});
}

TEST_F(MirrorSetTest, NotFoundIsNotAFailureOfTheMirror) {
  AddMirrors(2);
  for (int i = 0; i < 5; i++) Fail(0, FetchError::kNotFound);
  EXPECT_FALSE(Aside(0));
  EXPECT_EQ(set_.Stats()[0].not_found, 5u);
  EXPECT_EQ(set_.Stats()[0].errors, 0u);
}

TEST_F(MirrorSetTest, ASingleMirrorIsNeverSetAside) {
  AddMirrors(1);
  for (int i = 0; i < 5; i++) Fail(0, FetchError::kConnect);
  set_.ReportCorrupt(0);
  EXPECT_FALSE(Aside(0));
  EXPECT_EQ(Pick(), 0);
  EXPECT_EQ(set_.Stats()[0].corrupt, 1u);
}

TEST_F(MirrorSetTest, NotFoundAsksTheOtherMirrorsCheapestFirstThenGivesUp) {
  AddMirrors(3);
  Transfer(0, 0.030);
  Transfer(1, 0.010);
  Transfer(2, 0.020);
  MirrorMask not_found = 0;
  std::vector<int> asked;
  for (;;) {
    int m = Pick(1000, Priority::kDemand, not_found);
    if (m == MirrorSet::kNoMirror) break;
    asked.push_back(m);
    bool others = set_.NotFoundAt(m, &not_found);
    EXPECT_EQ(others, asked.size() < 3) << "after mirror " << m;
  }
  EXPECT_EQ(asked, (std::vector<int>{1, 2, 0}));
}

TEST_F(MirrorSetTest, NotFoundStillAsksAMirrorThatIsSetAside) {
  AddMirrors(2);
  Transfer(0, 0.010);
  Transfer(1, 0.020);
  Fail(1, FetchError::kConnect);
  ASSERT_TRUE(Aside(1));
  MirrorMask not_found = 0;
  EXPECT_TRUE(set_.NotFoundAt(0, &not_found));
  EXPECT_EQ(set_.HealthyOthers(0, not_found), 0);
  EXPECT_EQ(Pick(1000, Priority::kDemand, not_found), 1);  // last resort: it may be ahead
}

TEST_F(MirrorSetTest, TheMirrorThatFailedARequestLastIsAvoidedWhileAnotherIsHealthy) {
  AddMirrors(2);
  Transfer(0, 0.010);
  Transfer(1, 0.050);
  EXPECT_EQ(Pick(1000, Priority::kDemand, 0, /*avoid=*/0), 1);
  Fail(1, FetchError::kConnect);
  EXPECT_EQ(Pick(1000, Priority::kDemand, 0, /*avoid=*/0), 0);  // nothing else is healthy
}

TEST_F(MirrorSetTest, ACorruptReportSetsAsideForTenSecondsAndOnlyLengthens) {
  AddMirrors(2);
  Transfer(0, 0.010);
  Transfer(1, 0.050);
  set_.ReportCorrupt(0);
  set_.ReportCorrupt(7);  // out of range: ignored
  EXPECT_TRUE(Aside(0));
  EXPECT_EQ(set_.Stats()[0].corrupt, 1u);
  EXPECT_DOUBLE_EQ(set_.Stats()[0].aside_s, 10.0);
  EXPECT_EQ(Pick(), 1);
  clock_.Advance(milliseconds(2000));
  Fail(0, FetchError::kConnect);  // a failure later in the incident does not shorten it
  EXPECT_DOUBLE_EQ(set_.Stats()[0].aside_s, 8.0);
  set_.ReportCorrupt(0);  // a second report lengthens it
  EXPECT_DOUBLE_EQ(set_.Stats()[0].aside_s, 10.0);
  clock_.Advance(milliseconds(9999));
  EXPECT_TRUE(set_.TakeDueProbes().empty());
  clock_.Advance(milliseconds(1));
  EXPECT_EQ(set_.TakeDueProbes(), std::vector<int>{0});
}

TEST_F(MirrorSetTest, EstimateIsTheBestHealthyMirrorsBaseRoundTripAndRate) {
  AddMirrors(3);
  double rtt, rate;
  set_.Estimate(&rtt, &rate);
  EXPECT_EQ(rtt, -1);
  EXPECT_EQ(rate, -1);
  Transfer(0, 0.030, 1 << 20, 0.5);
  Transfer(1, 0.010, 1 << 20, 1.0);
  set_.Estimate(&rtt, &rate);
  EXPECT_DOUBLE_EQ(rtt, 0.010);
  EXPECT_DOUBLE_EQ(rate, 1 << 20);
  set_.ReportCorrupt(1);
  set_.Estimate(&rtt, &rate);
  EXPECT_DOUBLE_EQ(rtt, 0.030);
  EXPECT_DOUBLE_EQ(rate, 2 << 20);
}

}  // namespace
}  // namespace hloop::fetch
