#include "cache/disk_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <latch>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "testing/temp_dir.h"

namespace hloop::cache {
namespace {

using hloop::testing::FirstDifference;
using hloop::testing::RandomBytes;
using hloop::testing::ReadTestFile;
using hloop::testing::ScopedTempDir;
using hloop::testing::WriteTestFile;
namespace fs = std::filesystem;

constexpr uint64_t kChunk = 4096;
// Each cache file is a 24-byte header (magic, length, XXH3-128; docs/format.md)
// and the raw content; quotas count whole files.
constexpr uint64_t kHeader = kCacheHeaderSize;
constexpr uint64_t kEntry = kHeader + kChunk;

std::string Data(int i, size_t n = kChunk) { return RandomBytes(n, 1000 + i); }
format::Hash HashOf(int i, size_t n = kChunk) { return format::Sha256(Data(i, n)); }

struct DiskFile {
  std::string path;
  uint64_t size;
};

// Every file under DIR/chunks.
std::vector<DiskFile> FilesIn(const std::string& dir) {
  std::vector<DiskFile> out;
  for (const auto& e : fs::recursive_directory_iterator(dir + "/chunks"))
    if (e.is_regular_file()) out.push_back({e.path(), uint64_t(e.file_size())});
  return out;
}

void SetMtime(const std::string& path, time_t seconds) {
  struct timespec ts[2] = {{seconds, 0}, {seconds, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, 0), 0) << path;
}

class DiskCacheTest : public ::testing::Test {
 protected:
  DiskCacheOptions Options(uint64_t max_bytes, double high = 0.95, double low = 0.80) {
    DiskCacheOptions o;
    o.dir = tmp_.Join("cache");
    o.max_bytes = max_bytes;
    o.high_watermark = high;
    o.low_watermark = low;
    // The test machine's free space must not matter.
    o.reserve_bytes = 0;
    o.reserve_fraction = 0;
    return o;
  }
  std::unique_ptr<DiskCache> Open(const DiskCacheOptions& o) {
    auto c = DiskCache::Open(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c.value()) : nullptr;
  }
  std::string PathOf(const format::Hash& h) { return tmp_.Join("cache/") + format::ChunkPath(h); }
  void PutOk(DiskCache* c, int i) {
    Status st = c->Put(HashOf(i), Data(i));
    ASSERT_TRUE(st.ok()) << i << ": " << st.ToString();
  }
  // Get must succeed with the right bytes.
  void ExpectHit(DiskCache* c, int i) {
    std::string out;
    Status st = c->Get(HashOf(i), kChunk, &out);
    ASSERT_TRUE(st.ok()) << i << ": " << st.ToString();
    EXPECT_EQ(FirstDifference(out, Data(i)), "") << i;
  }

  ScopedTempDir tmp_;
};

TEST_F(DiskCacheTest, PutGetRoundTrip) {
  auto c = Open(Options(1 << 20));
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->Contains(HashOf(1)));
  PutOk(c.get(), 1);
  EXPECT_TRUE(c->Contains(HashOf(1)));
  ExpectHit(c.get(), 1);
  // Header, then the raw (decompressed) bytes at DIR/chunks/ab/<hash>.
  std::string file = ReadTestFile(PathOf(HashOf(1)));
  ASSERT_EQ(file.size(), kEntry);
  EXPECT_EQ(file.substr(0, 4), "HLCC");
  EXPECT_EQ(FirstDifference(file.substr(kHeader), Data(1)), "");
  DiskCacheStats s = c->stats();
  EXPECT_EQ(s.inserted, 1u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 0u);
  EXPECT_EQ(s.used_bytes, kEntry);
  EXPECT_EQ(s.entries, 1u);
}

TEST_F(DiskCacheTest, GetOfAbsentChunkIsNotFound) {
  auto c = Open(Options(1 << 20));
  std::string out;
  EXPECT_TRUE(c->Get(HashOf(1), kChunk, &out).IsNotFound());
  EXPECT_EQ(c->stats().misses, 1u);
  EXPECT_EQ(c->stats().corrupt_discarded, 0u);
}

TEST_F(DiskCacheTest, SecondPutOfSameChunkIsNoop) {
  auto c = Open(Options(1 << 20));
  PutOk(c.get(), 1);
  PutOk(c.get(), 1);
  EXPECT_EQ(c->stats().inserted, 1u);
  EXPECT_EQ(c->stats().used_bytes, kEntry);
}

TEST_F(DiskCacheTest, ChunksOfDifferentSizes) {
  auto c = Open(Options(1 << 20));
  for (size_t n : {size_t(1), size_t(100), size_t(65536)}) {
    ASSERT_TRUE(c->Put(HashOf(7, n), Data(7, n)).ok());
    std::string out;
    ASSERT_TRUE(c->Get(HashOf(7, n), uint32_t(n), &out).ok());
    EXPECT_EQ(FirstDifference(out, Data(7, n)), "");
  }
  EXPECT_EQ(c->stats().used_bytes, 3 * kHeader + 1 + 100 + 65536);
}

TEST_F(DiskCacheTest, AlteredFileIsDiscarded) {
  auto c = Open(Options(1 << 20));
  PutOk(c.get(), 1);
  PutOk(c.get(), 2);
  std::string bytes = ReadTestFile(PathOf(HashOf(1)));
  bytes[1234] ^= 0x10;
  ASSERT_TRUE(WriteTestFile(PathOf(HashOf(1)), bytes));
  std::string out;
  Status st = c->Get(HashOf(1), kChunk, &out);
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  EXPECT_FALSE(fs::exists(PathOf(HashOf(1))));
  EXPECT_FALSE(c->Contains(HashOf(1)));
  DiskCacheStats s = c->stats();
  EXPECT_EQ(s.corrupt_discarded, 1u);
  EXPECT_EQ(s.used_bytes, kEntry);
  EXPECT_EQ(s.entries, 1u);
  ExpectHit(c.get(), 2);  // the other entry is untouched
  // It can be cached again.
  PutOk(c.get(), 1);
  ExpectHit(c.get(), 1);
}

TEST_F(DiskCacheTest, TruncatedFileIsDiscarded) {
  auto c = Open(Options(1 << 20));
  PutOk(c.get(), 1);
  ASSERT_EQ(::truncate(PathOf(HashOf(1)).c_str(), kEntry - 1), 0);
  std::string out;
  EXPECT_TRUE(c->Get(HashOf(1), kChunk, &out).IsNotFound());
  EXPECT_FALSE(fs::exists(PathOf(HashOf(1))));
  EXPECT_EQ(c->stats().corrupt_discarded, 1u);
  EXPECT_EQ(c->stats().used_bytes, 0u);
}

TEST_F(DiskCacheTest, FileWithExtraBytesIsDiscarded) {
  auto c = Open(Options(1 << 20));
  PutOk(c.get(), 1);
  ASSERT_TRUE(WriteTestFile(PathOf(HashOf(1)), ReadTestFile(PathOf(HashOf(1))) + "extra"));
  std::string out;
  EXPECT_TRUE(c->Get(HashOf(1), kChunk, &out).IsNotFound());
  EXPECT_FALSE(fs::exists(PathOf(HashOf(1))));
  EXPECT_EQ(c->stats().corrupt_discarded, 1u);
}

TEST_F(DiskCacheTest, DamageAnywhereInTheFileIsDetected) {
  auto c = Open(Options(1 << 20));
  for (size_t pos : {size_t(0), size_t(3), size_t(4), size_t(7), size_t(8), size_t(15), size_t(16),
                     size_t(23), size_t(kHeader), size_t(kHeader + 2000), size_t(kEntry - 1)}) {
    SCOPED_TRACE(pos);
    PutOk(c.get(), 1);
    std::string bytes = ReadTestFile(PathOf(HashOf(1)));
    ASSERT_EQ(bytes.size(), kEntry);
    bytes[pos] ^= 0x01;
    ASSERT_TRUE(WriteTestFile(PathOf(HashOf(1)), bytes));
    std::string out;
    EXPECT_TRUE(c->Get(HashOf(1), kChunk, &out).IsNotFound());
    EXPECT_FALSE(fs::exists(PathOf(HashOf(1))));
  }
  EXPECT_EQ(c->stats().corrupt_discarded, 11u);
}

TEST_F(DiskCacheTest, RawFileWithoutHeaderIsDiscarded) {
  // What an older hloop left: the raw content only.
  auto c = Open(Options(1 << 20));
  std::string hex = format::ToHex(HashOf(1));
  fs::create_directories(tmp_.Join("cache/chunks/") + hex.substr(0, 2));
  ASSERT_TRUE(WriteTestFile(PathOf(HashOf(1)), Data(1)));
  std::string out;
  EXPECT_TRUE(c->Get(HashOf(1), kChunk, &out).IsNotFound());
  EXPECT_FALSE(fs::exists(PathOf(HashOf(1))));
}

TEST_F(DiskCacheTest, GetWithAnotherSizeThanStoredIsAMiss) {
  auto c = Open(Options(1 << 20));
  PutOk(c.get(), 1);
  std::string out;
  EXPECT_FALSE(c->Get(HashOf(1), kChunk - 1, &out).ok());
  EXPECT_FALSE(c->Get(HashOf(1), kChunk + 1, &out).ok());
}

TEST_F(DiskCacheTest, FileRemovedBehindItsBackIsAMiss) {
  auto c = Open(Options(1 << 20));
  PutOk(c.get(), 1);
  ASSERT_TRUE(fs::remove(PathOf(HashOf(1))));
  std::string out;
  EXPECT_TRUE(c->Get(HashOf(1), kChunk, &out).IsNotFound());
  EXPECT_FALSE(c->Contains(HashOf(1)));
  EXPECT_EQ(c->stats().used_bytes, 0u);
  EXPECT_EQ(c->stats().corrupt_discarded, 0u);
}

TEST_F(DiskCacheTest, SeesChunksAddedByAnotherInstance) {
  auto a = Open(Options(1 << 20));
  auto b = Open(Options(1 << 20));
  PutOk(a.get(), 1);
  ExpectHit(b.get(), 1);
  EXPECT_TRUE(b->Contains(HashOf(1)));
  EXPECT_EQ(b->stats().used_bytes, kEntry);
}

TEST_F(DiskCacheTest, UsageStaysUnderMaxAcrossManyPuts) {
  const uint64_t max = 40 * kEntry;
  auto c = Open(Options(max));
  for (int i = 0; i < 200; i++) {
    PutOk(c.get(), i);
    ASSERT_LE(c->stats().used_bytes, max) << "after put " << i;
  }
  DiskCacheStats s = c->stats();
  EXPECT_GT(s.evicted, 0u);
  EXPECT_EQ(s.inserted, 200u);
  // What the cache believes matches what is on disk.
  auto files = FilesIn(tmp_.Join("cache"));
  EXPECT_EQ(files.size(), s.entries);
  uint64_t on_disk = 0;
  for (const auto& f : files) on_disk += f.size;
  EXPECT_EQ(on_disk, s.used_bytes);
  // The most recent chunk is always kept.
  ExpectHit(c.get(), 199);
}

TEST_F(DiskCacheTest, EvictsLeastRecentlyUsedFirst) {
  // Room for exactly 10 chunks; an eviction goes down to 5 (low = 0.5).
  auto c = Open(Options(10 * kEntry, /*high=*/1.0, /*low=*/0.5));
  for (int i = 0; i < 10; i++) PutOk(c.get(), i);
  EXPECT_EQ(c->stats().evicted, 0u);
  // Chunks 0 and 1 were put first but read since: they are the most recent.
  ExpectHit(c.get(), 0);
  ExpectHit(c.get(), 1);
  PutOk(c.get(), 10);
  // Down to 4 before the put, so 6 evicted: 2..7, the least recently used.
  EXPECT_EQ(c->stats().evicted, 6u);
  for (int i : {0, 1, 8, 9, 10}) EXPECT_TRUE(c->Contains(HashOf(i))) << i;
  for (int i = 2; i <= 7; i++) {
    EXPECT_FALSE(c->Contains(HashOf(i))) << i;
    EXPECT_FALSE(fs::exists(PathOf(HashOf(i)))) << i;
  }
  for (int i : {0, 1, 8, 9, 10}) ExpectHit(c.get(), i);
  EXPECT_EQ(c->stats().used_bytes, 5 * kEntry);
}

TEST_F(DiskCacheTest, PassingHighWatermarkEvictsDownToLow) {
  const uint64_t max = 100 * kEntry;
  const double high = 0.9, low = 0.6;
  auto c = Open(Options(max, high, low));
  uint64_t peak = 0;
  int i = 0;
  for (; c->stats().evicted == 0; i++) {
    ASSERT_LT(i, 1000);
    PutOk(c.get(), i);
    if (c->stats().evicted == 0) peak = c->stats().used_bytes;
  }
  // No eviction until the high watermark was reached...
  EXPECT_EQ(peak, 90 * kEntry);
  EXPECT_EQ(i, 91);
  // ... then down to the low watermark (the new chunk included).
  EXPECT_LE(c->stats().used_bytes, uint64_t(low * max));
  EXPECT_GE(c->stats().used_bytes, uint64_t(low * max) - kEntry);
}

TEST_F(DiskCacheTest, ReopenSeesExistingEntries) {
  {
    auto c = Open(Options(1 << 20));
    for (int i = 0; i < 5; i++) PutOk(c.get(), i);
  }
  auto c = Open(Options(1 << 20));
  DiskCacheStats s = c->stats();
  EXPECT_EQ(s.entries, 5u);
  EXPECT_EQ(s.used_bytes, 5 * kEntry);
  for (int i = 0; i < 5; i++) {
    EXPECT_TRUE(c->Contains(HashOf(i)));
    ExpectHit(c.get(), i);
  }
}

TEST_F(DiskCacheTest, ReopenTakesLruOrderFromMtimes) {
  const time_t now = std::time(nullptr);
  {
    auto c = Open(Options(1 << 20));
    for (int i = 0; i < 10; i++) PutOk(c.get(), i);
  }
  // Older index, older file; but 3 is the newest of all.
  for (int i = 0; i < 10; i++) SetMtime(PathOf(HashOf(i)), now - 1000 + 10 * i);
  SetMtime(PathOf(HashOf(3)), now - 1);
  auto c = Open(Options(10 * kEntry, 1.0, 0.5));
  EXPECT_EQ(c->stats().entries, 10u);
  EXPECT_EQ(c->stats().evicted, 0u);
  PutOk(c.get(), 10);  // evicts the 6 oldest
  for (int i : {3, 7, 8, 9, 10}) EXPECT_TRUE(c->Contains(HashOf(i))) << i;
  for (int i : {0, 1, 2, 4, 5, 6}) EXPECT_FALSE(c->Contains(HashOf(i))) << i;
}

TEST_F(DiskCacheTest, ReopenWithSmallerQuotaEvictsOldestAtOpen) {
  const time_t now = std::time(nullptr);
  {
    auto c = Open(Options(1 << 20));
    for (int i = 0; i < 10; i++) PutOk(c.get(), i);
  }
  for (int i = 0; i < 10; i++) SetMtime(PathOf(HashOf(i)), now - 1000 + 10 * i);
  auto c = Open(Options(5 * kEntry, 0.95, 0.8));
  DiskCacheStats s = c->stats();
  EXPECT_LE(s.used_bytes, 4 * kEntry);
  EXPECT_EQ(s.entries, 4u);
  EXPECT_EQ(FilesIn(tmp_.Join("cache")).size(), 4u);
  for (int i = 6; i < 10; i++) EXPECT_TRUE(c->Contains(HashOf(i))) << i;
}

TEST_F(DiskCacheTest, GetRefreshesRecencyAcrossRestarts) {
  const time_t now = std::time(nullptr);
  {
    auto c = Open(Options(1 << 20));
    for (int i = 0; i < 10; i++) PutOk(c.get(), i);
  }
  for (int i = 0; i < 10; i++) SetMtime(PathOf(HashOf(i)), now - 1000 + 10 * i);
  {
    auto c = Open(Options(1 << 20));
    ExpectHit(c.get(), 0);  // the oldest becomes the newest
  }
  auto c = Open(Options(5 * kEntry, 0.95, 0.8));
  EXPECT_TRUE(c->Contains(HashOf(0)));
  EXPECT_FALSE(c->Contains(HashOf(1)));
}

TEST_F(DiskCacheTest, LeftoverTempFilesRemovedAtOpen) {
  std::string hex = format::ToHex(HashOf(1));
  std::string dir = tmp_.Join("cache/chunks/") + hex.substr(0, 2);
  fs::create_directories(dir);
  ASSERT_TRUE(WriteTestFile(dir + "/" + hex + ".tmp.4242.0", "half written"));
  ASSERT_TRUE(WriteTestFile(dir + "/" + hex + ".tmp.1.17", "half written"));
  auto c = Open(Options(1 << 20));
  EXPECT_FALSE(fs::exists(dir + "/" + hex + ".tmp.4242.0"));
  EXPECT_FALSE(fs::exists(dir + "/" + hex + ".tmp.1.17"));
  EXPECT_EQ(c->stats().entries, 0u);
  EXPECT_EQ(c->stats().used_bytes, 0u);
}

TEST_F(DiskCacheTest, ReserveFractionRefusesPutsAndWritesNothing) {
  DiskCacheOptions o = Options(1 << 20);
  o.reserve_fraction = 1.0;  // the whole file system is reserved
  auto c = Open(o);
  Status st = c->Put(HashOf(1), Data(1));
  EXPECT_EQ(st.code(), Status::Code::kNoSpace) << st.ToString();
  EXPECT_FALSE(c->Contains(HashOf(1)));
  EXPECT_FALSE(fs::exists(PathOf(HashOf(1))));
  EXPECT_TRUE(FilesIn(tmp_.Join("cache")).empty());
  DiskCacheStats s = c->stats();
  EXPECT_EQ(s.skipped_for_space, 1u);
  EXPECT_EQ(s.used_bytes, 0u);
  EXPECT_EQ(s.entries, 0u);
  EXPECT_EQ(s.inserted, 0u);
  std::string out;
  EXPECT_TRUE(c->Get(HashOf(1), kChunk, &out).IsNotFound());
}

TEST_F(DiskCacheTest, ReserveBytesRefusesPuts) {
  DiskCacheOptions o = Options(1 << 20);
  o.reserve_bytes = uint64_t(1) << 62;
  auto c = Open(o);
  EXPECT_EQ(c->Put(HashOf(1), Data(1)).code(), Status::Code::kNoSpace);
  EXPECT_FALSE(fs::exists(PathOf(HashOf(1))));
  EXPECT_TRUE(FilesIn(tmp_.Join("cache")).empty());
}

TEST_F(DiskCacheTest, ChunkLargerThanTheCacheIsNotStored) {
  auto c = Open(Options(2 * kChunk));
  EXPECT_EQ(c->Put(HashOf(1, 2 * kChunk), Data(1, 2 * kChunk)).code(), Status::Code::kNoSpace);
  EXPECT_TRUE(FilesIn(tmp_.Join("cache")).empty());
  EXPECT_EQ(c->stats().skipped_for_space, 1u);
}

TEST_F(DiskCacheTest, PutUrlCopyGetUrlCopy) {
  auto c = Open(Options(1 << 20));
  ASSERT_TRUE(c->PutUrlCopy("http://a/x.idx", "index A").ok());
  ASSERT_TRUE(c->PutUrlCopy("http://b/x.idx", "index B").ok());
  EXPECT_EQ(c->GetUrlCopy("http://a/x.idx").value(), "index A");
  EXPECT_EQ(c->GetUrlCopy("http://b/x.idx").value(), "index B");
  ASSERT_TRUE(c->PutUrlCopy("http://a/x.idx", "index A2").ok());
  EXPECT_EQ(c->GetUrlCopy("http://a/x.idx").value(), "index A2");
  auto missing = c->GetUrlCopy("http://c/x.idx");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound());
  // Kept across restarts, and not counted as chunks.
  c.reset();
  c = Open(Options(1 << 20));
  EXPECT_EQ(c->GetUrlCopy("http://b/x.idx").value(), "index B");
  EXPECT_EQ(c->stats().entries, 0u);
}

TEST_F(DiskCacheTest, ANewCacheRecordsItsFormatVersion) {
  auto c = Open(Options(1 << 20));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(ReadTestFile(tmp_.Join("cache/format")), "hloop-cache 1\n");
  EXPECT_EQ(std::string(kCacheVersionMagic) + " " + std::to_string(kCacheFormatVersion) + "\n",
            "hloop-cache 1\n");
}

TEST_F(DiskCacheTest, ACacheFromBeforeTheVersionFileIsReadAndMarked) {
  {
    auto c = Open(Options(1 << 20));
    PutOk(c.get(), 1);
    ASSERT_TRUE(c->PutUrlCopy("http://a/x.idx", "index A").ok());
  }
  ASSERT_EQ(::unlink(tmp_.Join("cache/format").c_str()), 0);
  auto c = Open(Options(1 << 20));
  ASSERT_NE(c, nullptr);
  ExpectHit(c.get(), 1);
  EXPECT_EQ(c->GetUrlCopy("http://a/x.idx").value(), "index A");
  EXPECT_EQ(ReadTestFile(tmp_.Join("cache/format")), "hloop-cache 1\n");
}

TEST_F(DiskCacheTest, AnotherFormatVersionIsRefusedAndLeftAlone) {
  {
    auto c = Open(Options(1 << 20));
    PutOk(c.get(), 1);
  }
  ASSERT_TRUE(WriteTestFile(tmp_.Join("cache/format"), "hloop-cache 2\n"));
  auto v2 = DiskCache::Open(Options(1 << 20));
  ASSERT_FALSE(v2.ok());
  EXPECT_EQ(v2.status().code(), Status::Code::kUnsupported);
  EXPECT_NE(v2.status().message().find("format version 2; this hloop reads version 1"),
            std::string::npos)
      << v2.status().message();
  EXPECT_EQ(ReadTestFile(tmp_.Join("cache/format")), "hloop-cache 2\n");
  EXPECT_EQ(FilesIn(tmp_.Join("cache")).size(), 1u);
  for (const char* text :
       {"", "hloop-cache 1", "hloop-cache x\n", "something else\n", "hloop-cache 1\n\n"}) {
    ASSERT_TRUE(WriteTestFile(tmp_.Join("cache/format"), text));
    auto bad = DiskCache::Open(Options(1 << 20));
    ASSERT_FALSE(bad.ok()) << "'" << text << "'";
    EXPECT_NE(bad.status().message().find("not an hloop cache format file"), std::string::npos)
        << bad.status().message();
  }
}

TEST_F(DiskCacheTest, CacheFileHeaderIsLaidOutAsDocumented) {
  auto c = Open(Options(1 << 20));
  PutOk(c.get(), 3);
  const std::string file = ReadTestFile(PathOf(HashOf(3)));
  ASSERT_EQ(file.size(), kCacheHeaderSize + kChunk);
  EXPECT_EQ(file.substr(kCacheFileMagicOffset, 4), "HLCC");
  const auto* p = reinterpret_cast<const uint8_t*>(file.data());
  EXPECT_EQ(uint32_t(p[kCacheFileLengthOffset]) | uint32_t(p[kCacheFileLengthOffset + 1]) << 8 |
                uint32_t(p[kCacheFileLengthOffset + 2]) << 16 |
                uint32_t(p[kCacheFileLengthOffset + 3]) << 24,
            uint32_t(kChunk));
  EXPECT_EQ(kCacheFileSumHighOffset + 8, kCacheHeaderSize);
  EXPECT_EQ(file.substr(kCacheHeaderSize), Data(3));
}

TEST_F(DiskCacheTest, OpenRejectsBadOptions) {
  DiskCacheOptions o = Options(1 << 20);
  o.dir = "";
  EXPECT_EQ(DiskCache::Open(o).status().code(), Status::Code::kInvalidArgument);
  for (auto [high, low] :
       {std::pair{0.5, 0.8}, std::pair{1.5, 0.8}, std::pair{0.9, 0.0}, std::pair{0.9, -0.1}}) {
    EXPECT_EQ(DiskCache::Open(Options(1 << 20, high, low)).status().code(),
              Status::Code::kInvalidArgument)
        << high << " " << low;
  }
}

// Several readers missing the same chunk at once each fetch it and Put it
// (what two ImageDevices sharing a cache do). The cache's idea of what it
// holds must still match the files on disk, or the quota stops meaning
// anything: files it forgot are never evicted.
TEST_F(DiskCacheTest, ConcurrentMissesAndPutsOfOneChunkKeepAccountsRight) {
  std::vector<std::string> data;
  std::vector<format::Hash> hashes;
  for (int i = 0; i < 64; i++) {
    data.push_back(Data(i));
    hashes.push_back(format::Sha256(data.back()));
  }
  for (int round = 0; round < 10; round++) {
    SCOPED_TRACE(round);
    DiskCacheOptions o = Options(1 << 30);
    o.dir = tmp_.Join("cache" + std::to_string(round));
    auto c = Open(o);
    std::atomic<int> wrong{0};
    std::latch start(8);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; t++) {
      threads.emplace_back([&] {
        std::string out;
        start.arrive_and_wait();
        for (size_t i = 0; i < data.size(); i++) {
          if (c->Get(hashes[i], kChunk, &out).ok()) {
            if (out != data[i]) wrong++;
          } else if (!c->Put(hashes[i], data[i]).ok()) {
            wrong++;
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(wrong, 0);
    DiskCacheStats s = c->stats();
    EXPECT_EQ(s.corrupt_discarded, 0u);
    std::vector<DiskFile> files;
    for (const auto& e : fs::recursive_directory_iterator(o.dir + "/chunks"))
      if (e.is_regular_file()) files.push_back({e.path(), uint64_t(e.file_size())});
    ASSERT_EQ(files.size(), data.size());  // every chunk was put by someone
    EXPECT_EQ(s.entries, files.size());
    EXPECT_EQ(s.used_bytes, files.size() * kEntry);
    for (size_t i = 0; i < data.size(); i++) EXPECT_TRUE(c->Contains(hashes[i])) << i;
    if (HasFailure()) break;
  }
}

TEST_F(DiskCacheTest, ConcurrentPutsAndGetsStayWithinQuota) {
  const uint64_t max = 32 * kEntry;
  auto c = Open(Options(max));
  std::vector<std::string> data;
  std::vector<format::Hash> hashes;
  for (int i = 0; i < 64; i++) {
    data.push_back(Data(i));
    hashes.push_back(format::Sha256(data.back()));
  }
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::string out;
      for (int n = 0; n < 300; n++) {
        int i = int(rng() % data.size());
        if (c->Get(hashes[i], kChunk, &out).ok()) {
          if (out != data[i]) wrong++;
        } else {
          Status st = c->Put(hashes[i], data[i]);
          if (!st.ok() && st.code() != Status::Code::kNoSpace) wrong++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_LE(c->stats().used_bytes, max);
  EXPECT_EQ(c->stats().corrupt_discarded, 0u);
}

}  // namespace
}  // namespace hloop::cache
