// Unit tests of ImageDevice's stages on their own: read-ahead decisions,
// cluster planning, the recorder's order, the background fetcher's backlog.
// Device-level behaviour stays in image_device_test.cc.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "disk/background_fetcher.h"
#include "disk/clusters.h"
#include "disk/profile.h"
#include "disk/profile_recorder.h"
#include "disk/read_ahead.h"
#include "disk/read_stats.h"
#include "format/chunk_file.h"
#include "format/codec.h"
#include "testing/fake_source.h"
#include "testing/temp_dir.h"
#include "testing/wait_for.h"

namespace hloop::disk {
namespace {

using hloop::testing::WaitFor;

constexpr uint32_t kCs = 4096;

ReadAheadOptions Fixed(unsigned chunks) {
  ReadAheadOptions o;
  o.chunks = chunks;
  o.adaptive = false;
  return o;
}

std::vector<uint64_t> Range(uint64_t from, uint64_t to) {
  std::vector<uint64_t> v;
  for (uint64_t i = from; i < to; i++) v.push_back(i);
  return v;
}

TEST(ReadAheadTest, LimitFollowsTheLinkWithinItsBounds) {
  ReadAheadOptions o;
  o.chunks = 16;
  o.max_chunks = 256;
  ReadAhead ra(o, 1000);
  EXPECT_EQ(ra.Limit(-1), 16u) << "unknown link: the configured window";
  EXPECT_EQ(ra.Limit(10), 24u) << "2 * 10 + 4";
  EXPECT_EQ(ra.Limit(10.2), 26u) << "rounded up: 2 * 11 + 4";
  EXPECT_EQ(ra.Limit(0), 4u) << "a LAN: the floor";
  EXPECT_EQ(ra.Limit(1e6), 256u) << "a long fat pipe: the cap";
  EXPECT_EQ(ReadAhead(Fixed(3), 1000).Limit(100), 3u) << "not adaptive: the link is ignored";
  o.cap_chunks = 8;
  EXPECT_EQ(ReadAhead(o, 1000).Limit(100), 8u) << "without a disk cache: capped";
  EXPECT_EQ(ReadAhead(o, 1000).Limit(-1), 8u);
}

TEST(ReadAheadTest, StartsAtFourAndDoublesWhileTheReaderKeepsUp) {
  ReadAhead ra(Fixed(64), 1000);
  std::vector<unsigned> windows;
  std::vector<uint64_t> scheduled;
  for (uint64_t i = 0; i < 120; i++) {
    ReadAheadPlan plan = ra.OnRead(i, i, -1);
    EXPECT_EQ(plan.limit, 64u);
    scheduled.insert(scheduled.end(), plan.chunks.begin(), plan.chunks.end());
    unsigned w = ra.stats().window;
    if (windows.empty() || windows.back() != w) windows.push_back(w);
  }
  EXPECT_EQ(windows, (std::vector<unsigned>{4, 8, 16, 32, 64}));
  // Every chunk ahead is scheduled exactly once, in order, and never more
  // than a window beyond the reader.
  ASSERT_FALSE(scheduled.empty());
  EXPECT_EQ(scheduled, Range(1, scheduled.back() + 1));
  EXPECT_LE(scheduled.back(), 119u + 1 + 64);
}

TEST(ReadAheadTest, TheFirstReadSchedulesTheInitialWindowThenTopsUpInHalfWindows) {
  ReadAhead ra(Fixed(64), 1000);
  EXPECT_EQ(ra.OnRead(0, 0, -1).chunks, Range(1, 1 + kInitialReadAhead));
  // While it grows, each read schedules up to the doubled window.
  EXPECT_EQ(ra.OnRead(1, 1, -1).chunks, Range(5, 10));
  // At its limit the window is topped up only once half of it is consumed.
  ReadAhead full(Fixed(4), 1000);
  EXPECT_EQ(full.OnRead(0, 0, -1).chunks, Range(1, 5));
  EXPECT_TRUE(full.OnRead(1, 1, -1).chunks.empty());
  EXPECT_EQ(full.OnRead(2, 2, -1).chunks, Range(5, 7));
  EXPECT_TRUE(full.OnRead(3, 3, -1).chunks.empty());
  EXPECT_EQ(full.OnRead(4, 4, -1).chunks, Range(7, 9));
}

TEST(ReadAheadTest, ARandomReadStartsOverAndSlightDisorderDoesNot) {
  ReadAhead ra(Fixed(64), 1000);
  for (uint64_t i = 0; i < 40; i++) (void)ra.OnRead(i, i, -1);
  EXPECT_GE(ra.stats().window, 16u);
  // Two chunks back (several FUSE threads): still sequential.
  EXPECT_TRUE(ra.OnRead(38, 38, -1).chunks.empty());
  EXPECT_GE(ra.stats().window, 16u);
  // A jump elsewhere: nothing scheduled, and the next run starts small.
  EXPECT_TRUE(ra.OnRead(500, 500, -1).chunks.empty());
  EXPECT_EQ(ra.OnRead(501, 501, -1).chunks, Range(502, 506));
  EXPECT_EQ(ra.stats().window, 4u);
}

TEST(ReadAheadTest, NeverSchedulesPastTheEnd) {
  ReadAhead ra(Fixed(64), 10);
  std::vector<uint64_t> all;
  for (uint64_t i = 0; i < 10; i++) {
    auto c = ra.OnRead(i, i, -1).chunks;
    all.insert(all.end(), c.begin(), c.end());
  }
  EXPECT_EQ(all, Range(1, 10));
}

TEST(ReadAheadTest, AnOrderedStreamReadsAheadOfItsHighWaterMarkWithoutStartingOver) {
  ReadAheadOptions o = Fixed(8);
  o.ordered = true;
  ReadAhead ra(o, 100);
  // The first read schedules a whole window: the chunks are in read order.
  EXPECT_EQ(ra.OnRead(0, 0, -1).chunks, Range(1, 9));
  // Reads behind or inside the window do not start over, nor schedule again.
  EXPECT_TRUE(ra.OnRead(0, 0, -1).chunks.empty());
  EXPECT_TRUE(ra.OnRead(2, 2, -1).chunks.empty());
  // Past half the window: topped up from where it ended.
  EXPECT_EQ(ra.OnRead(5, 5, -1).chunks, Range(9, 14));
  // A jump forward moves the mark; a read far behind it changes nothing.
  EXPECT_EQ(ra.OnRead(40, 41, -1).chunks, Range(42, 50));
  EXPECT_TRUE(ra.OnRead(3, 3, -1).chunks.empty());
  EXPECT_EQ(ra.OnRead(95, 95, -1).chunks, Range(96, 100)) << "clipped at the end";
  EXPECT_TRUE(ra.OnRead(99, 99, -1).chunks.empty());
}

TEST(ClusterTest, ChunksAreTheLargestPowerOfTwoInHalfARoundTrip) {
  EXPECT_EQ(ClusterChunks(8, -1), 1u) << "unknown link: off";
  EXPECT_EQ(ClusterChunks(8, 0.5), 1u) << "a LAN: off";
  EXPECT_EQ(ClusterChunks(8, 3.9), 1u);
  EXPECT_EQ(ClusterChunks(8, 4), 2u);
  EXPECT_EQ(ClusterChunks(8, 6), 2u);
  EXPECT_EQ(ClusterChunks(8, 8), 4u);
  EXPECT_EQ(ClusterChunks(8, 100), 8u) << "capped by the configured cluster";
  EXPECT_EQ(ClusterChunks(6, 100), 4u) << "a power of two within the cap";
  EXPECT_EQ(ClusterChunks(1, 100), 1u);
  EXPECT_EQ(ClusterChunks(0, 100), 1u);
}

TEST(ClusterTest, ClusterOfIsAlignedAndClippedToTheImage) {
  EXPECT_EQ(ClusterOf(21, 8, 64), (std::pair<uint64_t, uint64_t>{16, 24}));
  EXPECT_EQ(ClusterOf(16, 8, 64), (std::pair<uint64_t, uint64_t>{16, 24}));
  EXPECT_EQ(ClusterOf(23, 8, 64), (std::pair<uint64_t, uint64_t>{16, 24}));
  EXPECT_EQ(ClusterOf(61, 8, 62), (std::pair<uint64_t, uint64_t>{56, 62}));
  EXPECT_EQ(ClusterOf(5, 1, 62), (std::pair<uint64_t, uint64_t>{5, 6}));
}

// An index of `size` bytes in chunks of `chunk_size`: chunk i is zero when
// zero(i), else distinct data; with `layout` (REQUIRES: valid for it).
format::Index MakeIndexOf(uint64_t size, uint32_t chunk_size, bool (*zero)(uint64_t),
                          format::Layout layout = {}) {
  format::IndexBuilder b(size, chunk_size, format::Codec::kNone);
  for (uint64_t i = 0; i < b.chunk_count(); i++) {
    format::ChunkEntry e;
    if (zero(i)) {
      e.flags = format::kEntryFlagZero;
    } else {
      e.hash = format::Sha256(std::to_string(i));
      e.stored_size = chunk_size;
    }
    b.set_entry(i, e);
  }
  b.set_layout(std::move(layout));
  auto ix = format::Index::Parse(b.Encode(), "t.idx");
  EXPECT_TRUE(ix.ok()) << ix.status().ToString();
  return std::move(ix.value());
}

// An index of `n` chunks of 4 KiB (one profile block each).
format::Index MakeIndex(uint64_t n, bool (*zero)(uint64_t)) {
  return MakeIndexOf(n * kCs, kCs, zero);
}

// The (offset, length) of each entry of a recorded profile, which must
// parse as version 2; the times are not compared (they depend on the clock).
std::vector<ByteRange> RecordedRanges(const std::string& text) {
  auto p = ParseProfile(text, "recorded");
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  if (!p.ok()) return {};
  EXPECT_EQ(p->version, 2u);
  std::vector<ByteRange> out;
  uint64_t last_ms = 0;
  for (const ProfileEntry& e : p->entries) {
    EXPECT_GE(e.ms, last_ms) << "times never go back";
    last_ms = e.ms;
    out.push_back(ByteRange{.offset = e.offset, .length = e.length});
  }
  return out;
}

TEST(ProfileRecorderTest, RecordsFirstReadsOfNonZeroBlocksInOrderOnlyOnceStarted) {
  format::Index index = MakeIndex(10, [](uint64_t i) { return i == 3; });
  ProfileRecorder rec(index);
  rec.OnRead(5 * kCs, (5 - 5 + 1) * kCs);  // before Start: not recorded
  EXPECT_EQ(rec.recorded(), 0u);
  rec.Start("");
  rec.OnRead(6 * kCs, (6 - 6 + 1) * kCs);
  rec.OnRead(2 * kCs, (4 - 2 + 1) * kCs);  // 3 is zero
  rec.OnRead(6 * kCs, (7 - 6 + 1) * kCs);  // 6 again
  rec.OnRead(0 * kCs, (0 - 0 + 1) * kCs);
  EXPECT_EQ(rec.recorded(), 5u);
  EXPECT_EQ(rec.Text().rfind("hloop-profile 2\n", 0), 0u) << rec.Text();
  EXPECT_EQ(RecordedRanges(rec.Text()), (std::vector<ByteRange>{
                                            {6 * kCs, kCs},
                                            {2 * kCs, kCs},
                                            {4 * kCs, kCs},
                                            {7 * kCs, kCs},
                                            {0, kCs},
                                        }));
  auto p = ParseProfile(rec.Text(), "recorded");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(ProfileSlots(*p, index), (std::vector<uint64_t>{6, 2, 4, 7, 0}));
  EXPECT_TRUE(rec.Save().ok()) << "no path: nothing to write";
}

TEST(ProfileRecorderTest, RecordsBlocksNotChunksMergingEachReadsNewBlocks) {
  // 64 KiB chunks (16 blocks each), chunk 2 zeros, the last block partial.
  constexpr uint64_t kChunk = 65536, kB = 4096;
  const uint64_t size = 4 * kChunk - 100;
  format::Index index = MakeIndexOf(size, kChunk, [](uint64_t i) { return i == 2; });
  ProfileRecorder rec(index);
  rec.Start("");
  rec.OnRead(5000, 10000);                       // blocks 1-3: one entry
  rec.OnRead(0, 20000);                          // blocks 0-4: 0 and 4 are new
  rec.OnRead(size - 10, 10);                     // the last, partial block
  rec.OnRead(60000, 10000);                      // blocks 14-17, across chunks 0 and 1
  rec.OnRead(2 * kChunk - kB, kChunk + 2 * kB);  // block 31, chunk 2 (zeros), block 48
  rec.OnRead(2 * kChunk + 100, 5000);            // only zeros: nothing
  rec.OnRead(size, 0);                           // nothing
  EXPECT_EQ(rec.recorded(), 3u + 2 + 1 + 4 + 2);
  EXPECT_EQ(RecordedRanges(rec.Text()), (std::vector<ByteRange>{
                                            {1 * kB, 3 * kB},
                                            {0, kB},
                                            {4 * kB, kB},
                                            {63 * kB, kB - 100},
                                            {14 * kB, 4 * kB},
                                            {31 * kB, kB},
                                            {48 * kB, kB},
                                        }));
  // Everything again: nothing new.
  rec.OnRead(0, size);
  EXPECT_EQ(rec.recorded(), 64u - 16) << "every block outside the zero chunk, once";
}

TEST(ProfileRecorderTest, SkipsBlocksInZeroExtents) {
  // A relaid-out index may say a range is zeros with an extent; blocks in
  // it cost nothing and are not recorded, a block only partly in it is.
  format::Layout layout;
  layout.extents.push_back(
      format::ImageExtent{kCs, uint32_t(2 * kCs + 100), format::kExtentZero, 0});
  format::Index index = MakeIndexOf(
      8 * kCs, kCs, [](uint64_t) { return false; }, layout);
  ProfileRecorder rec(index);
  rec.Start("");
  rec.OnRead(0, 8 * kCs);
  EXPECT_EQ(rec.recorded(), 6u);
  EXPECT_EQ(RecordedRanges(rec.Text()), (std::vector<ByteRange>{{0, kCs}, {3 * kCs, 5 * kCs}}));
}

TEST(ProfileRecorderTest, SaveWritesTheProfileAtomically) {
  format::Index index = MakeIndex(4, [](uint64_t) { return false; });
  hloop::testing::ScopedTempDir tmp;
  ProfileRecorder rec(index);
  rec.Start(tmp.Join("boot.profile"));
  rec.OnRead(3 * kCs, (3 - 3 + 1) * kCs);
  rec.OnRead(1 * kCs, (1 - 1 + 1) * kCs);
  ASSERT_TRUE(rec.Save().ok());
  std::string text = hloop::testing::ReadTestFile(tmp.Join("boot.profile"));
  EXPECT_EQ(text, rec.Text());
  auto p = ParseProfile(text, "p");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(ProfileSlots(*p, index), (std::vector<uint64_t>{3, 1}));
}

TEST(ReadStatsTest, CountsReadsZerosAndWaits) {
  ReadStats s;
  s.CountRead(100);
  s.CountRead(28);
  s.CountZeroChunk();
  s.CountWait(std::chrono::microseconds(300));
  s.CountWait(std::chrono::microseconds(100));
  ReadCounts c = s.counts();
  EXPECT_EQ(c.reads, 2u);
  EXPECT_EQ(c.bytes, 128u);
  EXPECT_EQ(c.zero_chunks, 1u);
  EXPECT_EQ(c.waits, 2u);
  EXPECT_EQ(c.wait_us_total, 400u);
  EXPECT_EQ(c.wait_us_max, 300u);
}

TEST(BackgroundFetcherTest, SkipsZeroChunksAndKeepsOnlyTheNewestBacklog) {
  format::Index index = MakeIndex(20, [](uint64_t i) { return i == 0; });
  std::vector<std::string> rel;
  for (uint64_t i = 0; i < 20; i++) rel.push_back(format::ChunkPath(index.entry(i).hash));
  auto src = std::make_unique<hloop::testing::FakeSource>();
  hloop::testing::FakeSource* fake = src.get();
  fake->set_delay(std::chrono::milliseconds(300));
  ChunkReader reader(std::move(index), std::move(src), nullptr, 1 << 20, 0, nullptr);
  BackgroundFetcher fetcher(reader, /*threads=*/1, /*backlog=*/3);
  fetcher.Schedule(0);  // zero: nothing to fetch
  EXPECT_EQ(fetcher.issued(), 0u);
  // The thread takes 1 (or nothing yet) and waits on the slow source; of
  // 2..6 only the newest three stay queued.
  fetcher.Schedule(1);
  ASSERT_TRUE(WaitFor([&] { return fake->total_gets() == 1; }));
  for (uint64_t i = 2; i <= 6; i++) fetcher.Schedule(i);
  EXPECT_EQ(fetcher.issued(), 6u);
  ASSERT_TRUE(WaitFor([&] { return fake->gets(rel[6]) == 1; }));
  EXPECT_EQ(fake->gets(rel[1]), 1);
  EXPECT_EQ(fake->gets(rel[2]), 0);
  EXPECT_EQ(fake->gets(rel[3]), 0);
  EXPECT_EQ(fake->gets(rel[4]), 1);
  EXPECT_EQ(fake->gets(rel[5]), 1);
  for (const auto& [r, priority] : fake->requests())
    EXPECT_EQ(priority, fetch::Priority::kReadAhead) << r;
  fetcher.Stop();
  fetcher.Join();
}

}  // namespace
}  // namespace hloop::disk
