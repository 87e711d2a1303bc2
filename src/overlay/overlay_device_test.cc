#include "overlay/overlay_device.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "overlay/overlay_file.h"
#include "testing/temp_dir.h"
#include "util/bytes.h"

namespace hloop::overlay {
namespace {

using hloop::testing::FirstDifference;
using hloop::testing::RandomBytes;
using hloop::testing::ReadTestFile;
using hloop::testing::ScopedTempDir;
using hloop::testing::WriteTestFile;

constexpr uint64_t kB = kBlockSize;

// A read-only base in memory. Bytes [hole_from, hole_to) are reported as a
// hole by Extents (and are zeros). Counts reads; refuses writes (the
// BlockDevice default), so a test notices any write that reaches the base.
class MemDevice : public BlockDevice {
 public:
  explicit MemDevice(std::string content) : content_(std::move(content)) {}
  uint64_t size() const override { return content_.size(); }
  Status Read(uint64_t offset, size_t len, char* buf) override {
    if (offset > size() || len > size() - offset)
      return Status::InvalidArgument("read past the end");
    if (delay_.count()) std::this_thread::sleep_for(delay_);
    std::memcpy(buf, content_.data() + offset, len);
    reads_++;
    return Status::Ok();
  }
  Result<std::vector<Extent>> Extents(uint64_t offset, uint64_t len) override {
    std::vector<Extent> out;
    uint64_t end = std::min(offset + len, size());
    for (uint64_t pos = offset; pos < end;) {
      bool zero = pos >= hole_from && pos < hole_to;
      uint64_t stop =
          zero ? std::min(end, hole_to) : (pos < hole_from ? std::min(end, hole_from) : end);
      out.push_back(Extent{stop - pos, zero});
      pos = stop;
    }
    return out;
  }
  void Prefetch(uint64_t, uint64_t len) override { prefetched_ += len; }
  // Every read sleeps this long (a slow network), widening race windows.
  void set_delay(std::chrono::milliseconds d) { delay_ = d; }
  void set_hole(uint64_t from, uint64_t to) {
    hole_from = from;
    hole_to = to;
    std::memset(content_.data() + from, 0, to - from);
  }
  const std::string& content() const { return content_; }
  int reads() const { return reads_; }
  uint64_t prefetched() const { return prefetched_; }

 private:
  std::string content_;
  uint64_t hole_from = 0, hole_to = 0;
  std::atomic<int> reads_{0};
  std::atomic<uint64_t> prefetched_{0};
  std::chrono::milliseconds delay_{0};
};

format::Hash DigestOf(const std::string& s) { return format::Sha256(s); }

class OverlayTest : public ::testing::Test {
 protected:
  // 13 blocks and a 1000-byte tail: the last block is short.
  static constexpr uint64_t kSize = 13 * kB + 1000;
  OverlayTest() : base_(RandomBytes(kSize, 7)), model_(base_.content()) {
    id_.digest = DigestOf("base index v1");
    id_.name = "base";
  }

  std::unique_ptr<OverlayDevice> OpenOk(const OverlayOptions& o = {}) {
    auto d = OverlayDevice::Open(path(), base_, id_, o);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? std::move(d.value()) : nullptr;
  }
  std::string path() const { return tmp_.Join("disk.overlay"); }
  std::string ReadAll(OverlayDevice& d) {
    std::string out(d.size(), '\0');
    Status st = d.Read(0, out.size(), out.data());
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }
  // Writes through the device and into the model.
  void WriteBoth(OverlayDevice& d, uint64_t off, const std::string& data, bool fua = false) {
    Status st = d.Write(off, data.size(), data.data(), fua);
    ASSERT_TRUE(st.ok()) << st.ToString() << " at " << off << "+" << data.size();
    model_.replace(off, data.size(), data);
  }
  void ZeroBoth(OverlayDevice& d, uint64_t off, uint64_t len) {
    ASSERT_TRUE(d.WriteZeroes(off, len).ok());
    model_.replace(off, len, std::string(len, '\0'));
  }
  // The overlay file as a crash would leave it now: the page cache
  // survives a killed process, so this is exactly what a restart finds.
  std::string Snapshot() { return ReadTestFile(path()); }

  ScopedTempDir tmp_;
  MemDevice base_;
  std::string model_;
  BaseIdentity id_;
};

TEST_F(OverlayTest, NewOverlayReadsTheBaseAndRecordsIt) {
  auto d = OpenOk();
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->can_write());
  EXPECT_EQ(d->size(), kSize);
  EXPECT_EQ(FirstDifference(ReadAll(*d), base_.content()), "");
  auto info = InspectOverlay(path());
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->header.image_size, kSize);
  EXPECT_EQ(info->header.block_count, 14u);
  EXPECT_EQ(info->header.base_digest, id_.digest);
  EXPECT_EQ(info->header.base_name, "base");
  EXPECT_EQ(info->counts.data_blocks, 0u);
  EXPECT_EQ(info->file_size, info->header.data_offset + 14 * kB);
}

TEST_F(OverlayTest, OpenWithoutCreateNeedsAFile) {
  OverlayOptions o;
  o.create = false;
  auto d = OverlayDevice::Open(path(), base_, id_, o);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.status().IsNotFound());
}

// Unaligned head, aligned body, unaligned tail, in every combination,
// including the short last block and writes inside one block.
TEST_F(OverlayTest, WritesOfEveryAlignmentReadBack) {
  auto d = OpenOk();
  ASSERT_TRUE(d);
  const uint64_t offsets[] = {0,          1,      100,         kB - 1,  kB,           kB + 1,
                              3 * kB - 7, 5 * kB, 12 * kB + 5, 13 * kB, 13 * kB + 999};
  const uint64_t lens[] = {1, 7, kB - 1, kB, kB + 1, 2 * kB, 3 * kB + 123, 9 * kB};
  uint64_t seed = 100;
  for (uint64_t off : offsets) {
    for (uint64_t len : lens) {
      if (off + len > kSize) len = kSize - off;
      WriteBoth(*d, off, RandomBytes(len, seed++));
      if (HasFatalFailure()) return;
    }
  }
  EXPECT_EQ(FirstDifference(ReadAll(*d), model_), "");
  // Reads of every alignment too.
  std::mt19937_64 rng(3);
  for (int i = 0; i < 300; i++) {
    uint64_t off = rng() % kSize, len = 1 + rng() % std::min<uint64_t>(kSize - off, 5 * kB);
    std::string buf(len, '\0');
    ASSERT_TRUE(d->Read(off, len, buf.data()).ok());
    ASSERT_EQ(FirstDifference(buf, model_.substr(off, len)), "") << off << "+" << len;
  }
  // The whole file ends up written: only the last block's partial write
  // needed the base.
  EXPECT_EQ(d->stats().data_blocks, 14u);
}

TEST_F(OverlayTest, ReadOnlyBlocksStayOnTheBase) {
  auto d = OpenOk();
  ASSERT_TRUE(d);
  WriteBoth(*d, 2 * kB + 10, "hello");
  EXPECT_EQ(d->state(2), BlockState::kData);
  EXPECT_EQ(d->state(1), BlockState::kBase);
  EXPECT_EQ(d->state(3), BlockState::kBase);
  int before = base_.reads();
  std::string buf(kB, '\0');
  ASSERT_TRUE(d->Read(2 * kB, kB, buf.data()).ok());
  EXPECT_EQ(base_.reads(), before);  // all from the overlay
  EXPECT_EQ(buf, model_.substr(2 * kB, kB));
  ASSERT_TRUE(d->Read(5 * kB, kB, buf.data()).ok());
  EXPECT_EQ(base_.reads(), before + 1);
}

TEST_F(OverlayTest, WriteZeroesAndTrimRecordZeroBlocks) {
  auto d = OpenOk();
  ASSERT_TRUE(d);
  WriteBoth(*d, 0, RandomBytes(6 * kB, 1));
  // Blocks 1..3 whole, plus part of block 0 and block 4.
  ZeroBoth(*d, kB - 100, 3 * kB + 200);
  EXPECT_EQ(d->state(0), BlockState::kData);
  EXPECT_EQ(d->state(1), BlockState::kZero);
  EXPECT_EQ(d->state(3), BlockState::kZero);
  EXPECT_EQ(d->state(4), BlockState::kData);
  // Trim of base blocks: zero too, no data kept.
  ASSERT_TRUE(d->Trim(8 * kB, 2 * kB).ok());
  model_.replace(8 * kB, 2 * kB, std::string(2 * kB, '\0'));
  EXPECT_EQ(d->state(8), BlockState::kZero);
  EXPECT_EQ(d->state(9), BlockState::kZero);
  ZeroBoth(*d, 10 * kB, kB);
  EXPECT_EQ(d->state(10), BlockState::kZero);
  // Zeroing part of a zero block changes nothing; part of a base block
  // whose other bytes are zero too makes a zero block, not data.
  ZeroBoth(*d, 8 * kB + 5, 10);
  EXPECT_EQ(d->state(8), BlockState::kZero);
  std::string buf(kB, '\0');
  ASSERT_TRUE(d->Write(11 * kB, kB, buf.data()).ok());
  model_.replace(11 * kB, kB, buf);
  EXPECT_EQ(d->state(11), BlockState::kData);  // a whole-block write of zeros is still data
  ZeroBoth(*d, 11 * kB, 7);
  EXPECT_EQ(d->state(11), BlockState::kData);  // in place
  ZeroBoth(*d, 12 * kB + 1, kB - 1);
  EXPECT_EQ(d->state(12), BlockState::kData);  // the base's first byte stays
  ZeroBoth(*d, 12 * kB, 1);
  EXPECT_EQ(d->state(12), BlockState::kData);
  EXPECT_EQ(FirstDifference(ReadAll(*d), model_), "");
  OverlayStats s = d->stats();
  EXPECT_EQ(s.zero_blocks, 6u);  // 1, 2, 3, 8, 9, 10
  EXPECT_EQ(s.data_blocks, 5u);  // 0, 4, 5, 11, 12
  // Written again after zeroing: data once more.
  WriteBoth(*d, 2 * kB + 1, "x");
  EXPECT_EQ(d->state(2), BlockState::kData);
  EXPECT_EQ(FirstDifference(ReadAll(*d), model_), "");
  d.reset();
  auto r = OpenOk();
  ASSERT_TRUE(r);
  EXPECT_EQ(FirstDifference(ReadAll(*r), model_), "");
  EXPECT_EQ(r->state(1), BlockState::kZero);
}

TEST_F(OverlayTest, ExtentsShowZeroBlocksAsHolesAndAskTheBaseForTheRest) {
  base_.set_hole(6 * kB, 9 * kB);
  model_ = base_.content();
  auto d = OpenOk();
  ASSERT_TRUE(d);
  ZeroBoth(*d, kB, 2 * kB);                     // hole at blocks 1-2
  WriteBoth(*d, 7 * kB, std::string(kB, 'a'));  // data inside the base's hole
  auto ex = d->Extents(0, kSize);
  ASSERT_TRUE(ex.ok());
  std::vector<std::pair<uint64_t, bool>> got;
  uint64_t total = 0;
  for (const auto& e : *ex) {
    got.emplace_back(e.length, e.zero);
    total += e.length;
  }
  std::vector<std::pair<uint64_t, bool>> want = {
      {kB, false}, {2 * kB, true}, {3 * kB, false},        {kB, true},
      {kB, false}, {kB, true},     {kSize - 9 * kB, false}};
  EXPECT_EQ(got, want);
  EXPECT_EQ(total, kSize);
  // A range inside one run, unaligned.
  auto one = d->Extents(kB + 5, 10);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_TRUE((*one)[0].zero);
  EXPECT_GE((*one)[0].length, 10u);
  EXPECT_FALSE(d->Extents(kSize, 1).ok());
  d->Prefetch(0, 100);
  EXPECT_EQ(base_.prefetched(), 100u);
}

TEST_F(OverlayTest, RangeChecks) {
  auto d = OpenOk();
  ASSERT_TRUE(d);
  char c = 0;
  EXPECT_FALSE(d->Write(kSize, 1, &c).ok());
  EXPECT_FALSE(d->Write(kSize - 1, 2, &c).ok());
  EXPECT_FALSE(d->Read(kSize, 1, &c).ok());
  EXPECT_FALSE(d->WriteZeroes(kSize - 1, 2).ok());
  EXPECT_TRUE(d->Write(kSize - 1, 1, &c).ok());
  EXPECT_TRUE(d->Write(0, 0, &c).ok());
}

TEST_F(OverlayTest, FlushedWritesSurviveReopen) {
  {
    auto d = OpenOk();
    ASSERT_TRUE(d);
    WriteBoth(*d, 5, RandomBytes(3 * kB, 9));
    WriteBoth(*d, 11 * kB + 17, RandomBytes(2 * kB + 983, 10));
    ASSERT_TRUE(d->Flush().ok());
    ASSERT_TRUE(d->Flush().ok());  // nothing new: still fine
  }
  auto d = OpenOk();
  ASSERT_TRUE(d);
  EXPECT_EQ(FirstDifference(ReadAll(*d), model_), "");
  auto info = InspectOverlay(path());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->counts.data_blocks, d->stats().data_blocks);
}

// kill -9: the overlay file keeps what reached the page cache, but the map
// only what a flush wrote. Flushed (and FUA) writes are there; a block first
// written after the last flush reads as before. (A block already in the
// overlay is changed in place, so an unflushed change to it may survive,
// as on a disk; that is checked in TornMapPageMixesOldAndNewStatesOnly.)
TEST_F(OverlayTest, KilledProcessKeepsFlushedAndFuaWritesOnly) {
  std::string flushed_model;
  std::string crashed;
  {
    auto d = OpenOk();
    ASSERT_TRUE(d);
    WriteBoth(*d, 0, RandomBytes(2 * kB, 1));
    ASSERT_TRUE(d->Flush().ok());
    WriteBoth(*d, 4 * kB + 3, RandomBytes(100, 2), /*fua=*/true);
    flushed_model = model_;
    WriteBoth(*d, 8 * kB, RandomBytes(2 * kB, 3));  // never flushed
    ZeroBoth(*d, 10 * kB, kB);                      // never flushed either
    WriteBoth(*d, 11 * kB + 1, "x");                // nor this
    crashed = Snapshot();
  }  // (the destructor flushes; the snapshot was taken before)
  ASSERT_TRUE(WriteTestFile(path(), crashed));
  auto d = OpenOk();
  ASSERT_TRUE(d);
  EXPECT_EQ(FirstDifference(ReadAll(*d), flushed_model), "");
  EXPECT_EQ(d->stats().data_blocks, 3u);  // 0, 1, 4
  EXPECT_EQ(d->stats().zero_blocks, 0u);
}

// Power lost in the middle of writing a map page: some entries of the page
// are new, the others old. Every block then reads as either its content at
// the previous flush or at the one being made: the data of both is on disk
// before any map page changes.
TEST_F(OverlayTest, TornMapPageMixesOldAndNewStatesOnly) {
  std::string old_file, new_file, old_model, new_model;
  {
    auto d = OpenOk();
    ASSERT_TRUE(d);
    WriteBoth(*d, 0, RandomBytes(4 * kB, 1));
    ZeroBoth(*d, 6 * kB, 2 * kB);
    ASSERT_TRUE(d->Flush().ok());
    old_file = Snapshot();
    old_model = model_;
    WriteBoth(*d, 2 * kB, RandomBytes(8 * kB, 2));  // over data, zero and base blocks
    ZeroBoth(*d, 0, kB);
    WriteBoth(*d, 12 * kB, RandomBytes(kSize - 12 * kB, 3));
    ASSERT_TRUE(d->Flush().ok());
    new_file = Snapshot();
    new_model = model_;
  }
  auto h = ParseHeader(new_file, "test");
  ASSERT_TRUE(h.ok());
  // Every way of tearing the (one) map page at a 512-byte sector, and at
  // single bytes within the first sector (the map entries all live there).
  std::vector<size_t> cuts = {0, 1, 2, 3, 4, 512, 4096};
  for (size_t cut : cuts) {
    std::string torn = new_file;
    // Sectors past the cut still hold the old map.
    torn.replace(h->map_offset + cut, kMapPageSize - cut,
                 old_file.substr(h->map_offset + cut, kMapPageSize - cut));
    ASSERT_TRUE(WriteTestFile(path(), torn));
    auto d = OpenOk();
    ASSERT_TRUE(d) << "cut " << cut;
    std::string got = ReadAll(*d);
    for (uint64_t b = 0; b * kB < kSize; b++) {
      uint64_t n = std::min(kB, kSize - b * kB);
      std::string blk = got.substr(b * kB, n);
      EXPECT_TRUE(blk == old_model.substr(b * kB, n) || blk == new_model.substr(b * kB, n))
          << "block " << b << " is neither old nor new with the map torn at byte " << cut;
    }
    // (With the whole old map, blocks 2, 3 and 0 changed in place still
    // read new: that is allowed.)
    if (cut == kMapPageSize) {
      EXPECT_EQ(FirstDifference(got, new_model), "");
    }
    if (cut == 0) {
      EXPECT_EQ(FirstDifference(got.substr(4 * kB), old_model.substr(4 * kB)), "");
    }
  }
}

TEST_F(OverlayTest, RefusesAnotherBaseUnlessForced) {
  {
    auto d = OpenOk();
    ASSERT_TRUE(d);
    WriteBoth(*d, 100, "written on v1");
  }
  BaseIdentity other{DigestOf("base index v2"), "base-v2"};
  auto refused = OverlayDevice::Open(path(), base_, other, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("was made on base"), std::string::npos)
      << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("--force"), std::string::npos);
  OverlayOptions force;
  force.force = true;
  auto forced = OverlayDevice::Open(path(), base_, other, force);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_EQ(FirstDifference(ReadAll(**forced), model_), "");
  forced.value().reset();
  // The binding does not move: the file still names v1.
  auto info = InspectOverlay(path());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->header.base_digest, id_.digest);
  // Another size is refused even with force.
  MemDevice bigger(RandomBytes(kSize + kB, 1));
  auto wrong_size = OverlayDevice::Open(path(), bigger, other, force);
  ASSERT_FALSE(wrong_size.ok());
  EXPECT_NE(wrong_size.status().message().find("bytes"), std::string::npos);
}

TEST_F(OverlayTest, OneProcessAtATime) {
  auto d = OpenOk();
  ASSERT_TRUE(d);
  auto second = OverlayDevice::Open(path(), base_, id_, {});
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(second.status().IsUnavailable()) << second.status().ToString();
  d.reset();
  EXPECT_TRUE(OverlayDevice::Open(path(), base_, id_, {}).ok());
}

// A truncated, extended or damaged overlay is refused with a reason and
// never read as if it were whole.
TEST_F(OverlayTest, RefusesDamagedFiles) {
  {
    auto d = OpenOk();
    ASSERT_TRUE(d);
    WriteBoth(*d, 0, RandomBytes(3 * kB, 4));
  }
  const std::string good = ReadTestFile(path());
  auto h = ParseHeader(good, "test");
  ASSERT_TRUE(h.ok());
  auto expect_refused = [&](const std::string& bytes, const std::string& why,
                            bool corruption = true) {
    ASSERT_TRUE(WriteTestFile(path(), bytes));
    auto d = OverlayDevice::Open(path(), base_, id_, {});
    ASSERT_FALSE(d.ok()) << why;
    if (corruption) {
      EXPECT_TRUE(d.status().IsCorruption()) << why << ": " << d.status().ToString();
    }
    EXPECT_FALSE(InspectOverlay(path()).ok()) << why;
  };
  expect_refused(good.substr(0, good.size() - 1), "torn tail (truncated by a byte)");
  expect_refused(good.substr(0, h->data_offset + kB), "truncated in the data area");
  expect_refused(good.substr(0, 100), "truncated in the header");
  expect_refused("", "empty");
  expect_refused(good + "x", "extended");
  std::string bad = good;
  bad[0] = 'X';
  expect_refused(bad, "bad magic");
  bad = good;
  bad[kHdrImageSize] ^= 1;
  expect_refused(bad, "header bit flip (checksum)");
  bad = good;
  bad[kHdrChecksum + 3] ^= 1;
  expect_refused(bad, "checksum bit flip");
  bad = good;
  bad[h->map_offset] = char(0xff);  // entries of state 3
  expect_refused(bad, "invalid map entry");
  bad = good;
  bad[h->map_offset + 14 / 4] |= char(1 << 4);  // block 14 does not exist
  expect_refused(bad, "map entry past the last block");
  // A newer version is named as such.
  Header hv = *h;
  std::string v2 = EncodeHeader(hv);
  PutU16(reinterpret_cast<uint8_t*>(v2.data()) + kHdrVersion, 2);
  bad = good;
  bad.replace(0, kHeaderSize, v2);
  ASSERT_TRUE(WriteTestFile(path(), bad));
  auto d = OverlayDevice::Open(path(), base_, id_, {});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Status::Code::kUnsupported) << d.status().ToString();
  // And the good one still opens.
  ASSERT_TRUE(WriteTestFile(path(), good));
  EXPECT_TRUE(OverlayDevice::Open(path(), base_, id_, {}).ok());
}

TEST_F(OverlayTest, HeaderRoundTrip) {
  Header h = MakeHeader(uint64_t(1) << 40, DigestOf("x"), "debian-12", 1700000000);
  EXPECT_EQ(h.block_count, (uint64_t(1) << 40) / kB);
  EXPECT_EQ(h.map_length, h.block_count / 4);  // 64 MiB of map per TiB
  EXPECT_EQ(h.data_offset, kHeaderSize + h.map_length);
  auto back = ParseHeader(EncodeHeader(h), "x");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->image_size, h.image_size);
  EXPECT_EQ(back->base_name, "debian-12");
  EXPECT_EQ(back->base_digest, h.base_digest);
  EXPECT_EQ(back->created, 1700000000u);
  EXPECT_EQ(back->file_size(), h.file_size());
  Header tiny = MakeHeader(1, DigestOf("y"), "", 0);
  EXPECT_EQ(tiny.block_count, 1u);
  EXPECT_EQ(tiny.map_length, kMapPageSize);
  EXPECT_TRUE(ParseHeader(EncodeHeader(tiny), "y").ok());
}

// Many writers at once, each on its own bytes but sharing blocks: the 8
// pieces of every block belong to 8 threads, which all start on the same
// block while the base answers slowly. A read-modify-write of a block that
// is not serialised with its neighbours' would lose their bytes. Flushes and
// reads run alongside.
TEST_F(OverlayTest, ConcurrentWritersDoNotLoseEachOthersBytes) {
  constexpr int kThreads = 8;
  constexpr uint64_t kPiece = kB / kThreads;
  MemDevice slow(RandomBytes(64 * kB, 5));
  slow.set_delay(std::chrono::milliseconds(2));
  std::string model = slow.content();
  auto opened = OverlayDevice::Open(path(), slow, id_, {});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  OverlayDevice& d = **opened;
  const uint64_t pieces = slow.size() / kPiece;
  std::vector<std::string> data(pieces);
  for (uint64_t p = 0; p < pieces; p++) data[p] = RandomBytes(kPiece, 1000 + p);
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      for (uint64_t p = uint64_t(t); p < pieces; p += kThreads)
        if (!d.Write(p * kPiece, kPiece, data[p].data()).ok()) errors++;
    });
  }
  std::thread flusher([&] {
    while (!stop)
      if (!d.Flush().ok()) errors++;
  });
  std::thread reader([&] {
    std::string buf(slow.size(), '\0');
    while (!stop)
      if (!d.Read(0, buf.size(), buf.data()).ok()) errors++;
  });
  for (auto& th : threads) th.join();
  stop = true;
  flusher.join();
  reader.join();
  EXPECT_EQ(errors, 0);
  for (uint64_t p = 0; p < pieces; p++) model.replace(p * kPiece, kPiece, data[p]);
  std::string got(slow.size(), '\0');
  ASSERT_TRUE(d.Read(0, got.size(), got.data()).ok());
  EXPECT_EQ(FirstDifference(got, model), "");
  opened.value().reset();
  auto r = OverlayDevice::Open(path(), slow, id_, {});
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE((*r)->Read(0, got.size(), got.data()).ok());
  EXPECT_EQ(FirstDifference(got, model), "");
}

// Writers racing over the same blocks of a larger image, with unaligned
// ends: nothing fails or deadlocks, and what the map and the data say
// survives a reopen unchanged.
TEST_F(OverlayTest, ConcurrentOverlappingWritersLeaveWholeWrites) {
  MemDevice big(RandomBytes(512 * kB, 5));
  auto d = OverlayDevice::Open(path(), big, id_, {});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  constexpr int kThreads = 6;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < 200; i++) {
        uint64_t b = rng() % 500, n = 1 + rng() % 12;
        std::string buf(n * kB - 1 - (rng() % 100), char('A' + t));
        uint64_t off = b * kB + (rng() % 50);
        if (!(*d)->Write(off, buf.size(), buf.data()).ok()) errors++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors, 0);
  std::string all(512 * kB, '\0');
  ASSERT_TRUE((*d)->Read(0, all.size(), all.data()).ok());
  d.value().reset();
  auto r = OverlayDevice::Open(path(), big, id_, {});
  ASSERT_TRUE(r.ok());
  std::string again(512 * kB, '\0');
  ASSERT_TRUE((*r)->Read(0, again.size(), again.data()).ok());
  EXPECT_EQ(FirstDifference(again, all), "");
}

}  // namespace
}  // namespace hloop::overlay
