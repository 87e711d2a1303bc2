#include "disk/image_device.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <latch>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "disk/open_image.h"
#include "disk/profile.h"
#include "disk/stage.h"
#include "fetch/checked_get.h"
#include "fetch/engine.h"
#include "fetch/http_source.h"
#include "fetch/url.h"
#include "format/chunk_file.h"
#include "format/codec.h"
#include "pack/packer.h"
#include "store/local_store.h"
#include "testing/fake_source.h"
#include "testing/http_server.h"
#include "testing/temp_dir.h"
#include "testing/wait_for.h"

namespace hloop::disk {
namespace {

using format::Codec;
using hloop::testing::FakeSource;
using hloop::testing::FirstDifference;
using hloop::testing::RandomBytes;
using hloop::testing::ScopedTempDir;
using hloop::testing::WaitFor;
using hloop::testing::WriteTestFile;

constexpr uint32_t kCs = 4096;

// An image packed in memory: its bytes, index and chunk files.
struct TestImage {
  std::string content;
  std::string index_bytes;
  std::map<std::string, std::string> files;  // rel path -> chunk file

  format::Index Index() const {
    auto ix = format::Index::Parse(index_bytes, "test.idx");
    EXPECT_TRUE(ix.ok()) << ix.status().ToString();
    return std::move(ix.value());
  }
  std::string ChunkRel(uint64_t i) const {
    return format::ChunkPath(format::Sha256(content.substr(i * kCs, kCs)));
  }
  std::string Chunk(uint64_t i) const { return content.substr(i * kCs, kCs); }
  uint64_t chunk_count() const { return (content.size() + kCs - 1) / kCs; }
  std::vector<std::string> hot_rels;  // the hot chunk files of Relayout(), in order
};

TestImage BuildImage(std::string content, Codec codec = Codec::kZstd) {
  TestImage img;
  img.content = std::move(content);
  format::IndexBuilder b(img.content.size(), kCs, codec);
  for (uint64_t i = 0; i < b.chunk_count(); i++) {
    std::string raw = img.content.substr(i * kCs, kCs);
    format::ChunkEntry e;
    if (raw.find_first_not_of('\0') == std::string::npos) {
      e.flags = format::kEntryFlagZero;
    } else {
      std::string file;
      EXPECT_TRUE(format::EncodeChunk(raw, codec, format::DefaultLevel(codec), &file).ok());
      e.hash = format::Sha256(raw);
      e.stored_size = uint32_t(file.size());
      img.files[format::ChunkPath(e.hash)] = file;
    }
    b.set_entry(i, e);
  }
  b.meta().name = "test";
  img.index_bytes = b.Encode();
  return img;
}

// 13 full chunks and a 1000-byte tail:
//   0-2 random, 3 zeros, 4 = copy of 1, 5-6 zeros, 7-9 text, 10-12 random, 13 short random.
std::string MixedContent() {
  std::string s;
  s += RandomBytes(3 * kCs, 1);
  s += std::string(kCs, '\0');
  s += s.substr(kCs, kCs);
  s += std::string(2 * kCs, '\0');
  std::string text;
  for (int i = 0; text.size() < 3 * kCs; i++)
    text += "line " + std::to_string(i) + " of some file\n";
  s += text.substr(0, 3 * kCs);
  s += RandomBytes(3 * kCs + 1000, 2);
  return s;
}

// Unique non-zero chunks of MixedContent: 0,1,2,7..13 (4 repeats 1).
constexpr int kMixedUnique = 10;

std::unique_ptr<FakeSource> SourceFor(const TestImage& img) {
  auto src = std::make_unique<FakeSource>();
  for (const auto& [rel, file] : img.files) src->Set(rel, file);
  return src;
}

ImageOptions Quiet() {
  ImageOptions o;
  o.workers = 0;  // no read-ahead: Get counts are exact
  o.readahead_chunks = 0;
  return o;
}

cache::DiskCacheOptions CacheOptions(const std::string& dir) {
  cache::DiskCacheOptions o;
  o.dir = dir;
  o.max_bytes = 64 << 20;
  o.reserve_bytes = 0;
  o.reserve_fraction = 0;
  return o;
}

std::unique_ptr<cache::DiskCache> OpenCache(const std::string& dir) {
  auto c = cache::DiskCache::Open(CacheOptions(dir));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::move(c.value());
}

class ImageDeviceTest : public ::testing::Test {
 protected:
  // A device over `img` with a FakeSource (kept in fake_) and optional cache.
  std::unique_ptr<ImageDevice> Make(const TestImage& img, ImageOptions opts = Quiet(),
                                    std::unique_ptr<cache::DiskCache> cache = nullptr) {
    auto src = SourceFor(img);
    fake_ = src.get();
    return std::make_unique<ImageDevice>(img.Index(), std::move(src), std::move(cache), opts);
  }
  std::string ReadAll(ImageDevice* dev) {
    std::string out(dev->size(), '\x55');
    Status st = dev->Read(0, out.size(), out.data());
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }

  ScopedTempDir tmp_;
  FakeSource* fake_ = nullptr;  // owned by the device
};

void ExpectReadsMatch(ImageDevice* dev, const std::string& content) {
  const uint64_t size = content.size();
  std::vector<std::pair<uint64_t, size_t>> reads = {
      {0, size},                   // everything
      {0, 1},                      // first byte
      {size - 1, 1},               // last byte
      {13 * kCs, 1000},            // the short last chunk exactly
      {13 * kCs - 10, 1010},       // ending at the end, spanning into it
      {kCs - 1, 2},                // straddling a boundary
      {kCs - 100, 3 * kCs + 200},  // spanning data, zero and repeated chunks
      {2 * kCs + 17, kCs},         // unaligned, one boundary
      {5 * kCs, 2 * kCs},          // zero chunks only
  };
  for (uint64_t i = 0; i * kCs < size; i++)
    reads.push_back({i * kCs, std::min<uint64_t>(kCs, size - i * kCs)});
  std::mt19937_64 rng(42);
  for (int n = 0; n < 300; n++) {
    uint64_t off = rng() % size;
    size_t len = size_t(1 + rng() % std::min<uint64_t>(size - off, 3 * kCs));
    reads.push_back({off, len});
  }
  for (auto [off, len] : reads) {
    std::string buf(len, '\x55');
    Status st = dev->Read(off, len, buf.data());
    ASSERT_TRUE(st.ok()) << off << "+" << len << ": " << st.ToString();
    ASSERT_EQ(FirstDifference(buf, content.substr(off, len)), "")
        << "read of " << len << " bytes at " << off;
  }
}

TEST_F(ImageDeviceTest, ReadsMatchImageAtManyOffsets) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img);
  EXPECT_EQ(dev->size(), img.content.size());
  ExpectReadsMatch(dev.get(), img.content);
}

TEST_F(ImageDeviceTest, ReadsMatchImageWithDiskCache) {
  TestImage img = BuildImage(MixedContent(), Codec::kZlib);
  auto dev = Make(img, Quiet(), OpenCache(tmp_.Join("cache")));
  ExpectReadsMatch(dev.get(), img.content);
}

TEST_F(ImageDeviceTest, ReadsMatchUncompressedImage) {
  TestImage img = BuildImage(MixedContent(), Codec::kNone);
  auto dev = Make(img);
  ExpectReadsMatch(dev.get(), img.content);
}

TEST_F(ImageDeviceTest, EachDistinctChunkIsFetchedOnce) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img);
  EXPECT_EQ(FirstDifference(ReadAll(dev.get()), img.content), "");
  EXPECT_EQ(FirstDifference(ReadAll(dev.get()), img.content), "");
  EXPECT_EQ(fake_->total_gets(), kMixedUnique);
  for (const auto& [rel, file] : img.files) EXPECT_EQ(fake_->gets(rel), 1) << rel;
  ImageStats s = dev->stats();
  EXPECT_EQ(s.chunks_fetched, uint64_t(kMixedUnique));
  uint64_t stored = 0;
  for (const auto& [rel, file] : img.files) stored += file.size();
  EXPECT_EQ(s.bytes_fetched, stored);
  EXPECT_GT(s.memory_hits, 0u);
  EXPECT_EQ(s.hash_mismatches, 0u);
}

TEST_F(ImageDeviceTest, ZeroChunksReadAsZerosWithoutAnyGet) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img);
  std::string buf(kCs, '\x55');
  ASSERT_TRUE(dev->Read(3 * kCs, kCs, buf.data()).ok());
  EXPECT_EQ(FirstDifference(buf, std::string(kCs, '\0')), "");
  buf.assign(2 * kCs - 6, '\x55');
  ASSERT_TRUE(dev->Read(5 * kCs + 3, buf.size(), buf.data()).ok());
  EXPECT_EQ(FirstDifference(buf, std::string(buf.size(), '\0')), "");
  EXPECT_EQ(fake_->total_gets(), 0);
  EXPECT_EQ(dev->stats().zero_reads, 3u);
  EXPECT_EQ(dev->stats().chunks_fetched, 0u);
}

TEST_F(ImageDeviceTest, AllZeroImageNeverTouchesTheSource) {
  TestImage img = BuildImage(std::string(5 * kCs + 7, '\0'));
  EXPECT_TRUE(img.files.empty());
  auto dev = Make(img);
  EXPECT_EQ(FirstDifference(ReadAll(dev.get()), img.content), "");
  EXPECT_EQ(fake_->total_gets(), 0);
}

TEST_F(ImageDeviceTest, CorruptChunkIsRefetchedThenFails) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img);
  const std::string rel = img.ChunkRel(2);
  fake_->Corrupt(rel);  // every time
  std::string buf(kCs, '\0');
  Status st = dev->Read(2 * kCs, kCs, buf.data());
  ASSERT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("chunk 2"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("hash mismatch"), std::string::npos) << st.message();
  // Asked once, then corrupt_refetches more times, before failing.
  const int tries = 1 + disk::ImageOptions{}.corrupt_refetches;
  EXPECT_EQ(fake_->gets(rel), tries);
  EXPECT_EQ(dev->stats().hash_mismatches, uint64_t(tries));
  EXPECT_EQ(dev->stats().chunks_fetched, 0u);
}

TEST_F(ImageDeviceTest, RefetchCountFollowsOptions) {
  TestImage img = BuildImage(MixedContent());
  ImageOptions o = Quiet();
  o.corrupt_refetches = 3;
  auto dev = Make(img, o);
  fake_->Corrupt(img.ChunkRel(9));
  std::string buf(kCs, '\0');
  EXPECT_TRUE(dev->Read(9 * kCs, kCs, buf.data()).IsCorruption());
  EXPECT_EQ(fake_->gets(img.ChunkRel(9)), 4);
}

TEST_F(ImageDeviceTest, CorruptOnceThenGoodSucceeds) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img, Quiet(), OpenCache(tmp_.Join("cache")));
  const std::string rel = img.ChunkRel(8);
  fake_->Corrupt(rel, 1);
  std::string buf(kCs, '\0');
  Status st = dev->Read(8 * kCs, kCs, buf.data());
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(FirstDifference(buf, img.Chunk(8)), "");
  EXPECT_EQ(fake_->gets(rel), 2);
  EXPECT_EQ(dev->stats().hash_mismatches, 1u);
  // The good copy was cached.
  EXPECT_TRUE(dev->disk_cache()->Contains(format::Sha256(img.Chunk(8))));
}

TEST_F(ImageDeviceTest, CorruptChunkIsNeitherServedNorCached) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img, Quiet(), OpenCache(tmp_.Join("cache")));
  const std::string rel = img.ChunkRel(10);
  fake_->Corrupt(rel);
  // Reads that touch the chunk fail, however they cover it.
  for (auto [off, len] : {std::pair<uint64_t, size_t>{10 * kCs, kCs},
                          {10 * kCs + 100, 10},
                          {9 * kCs, 3 * kCs},
                          {0, size_t(img.content.size())}}) {
    std::string buf(len, '\0');
    EXPECT_TRUE(dev->Read(off, len, buf.data()).IsCorruption()) << off << "+" << len;
  }
  EXPECT_FALSE(dev->disk_cache()->Contains(format::Sha256(img.Chunk(10))));
  // Once the source is healthy the same device reads it (nothing bad was kept).
  fake_->Corrupt(rel, 0);
  int before = fake_->gets(rel);
  std::string buf(kCs, '\0');
  ASSERT_TRUE(dev->Read(10 * kCs, kCs, buf.data()).ok());
  EXPECT_EQ(FirstDifference(buf, img.Chunk(10)), "");
  EXPECT_EQ(fake_->gets(rel), before + 1);
}

TEST_F(ImageDeviceTest, WrongSizedObjectIsRefetchedThenFails) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img);
  const std::string rel = img.ChunkRel(0);
  fake_->Set(rel, img.files.at(rel) + "trailing junk");
  std::string buf(kCs, '\0');
  EXPECT_TRUE(dev->Read(0, kCs, buf.data()).IsCorruption());
  EXPECT_EQ(fake_->gets(rel), 1 + disk::ImageOptions{}.corrupt_refetches);
}

TEST_F(ImageDeviceTest, MissingChunkIsNotFoundWithoutRefetch) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img);
  const std::string rel = img.ChunkRel(1);
  fake_->Erase(rel);
  std::string buf(kCs, '\0');
  Status st = dev->Read(kCs, kCs, buf.data());
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  EXPECT_NE(st.message().find("chunk 1"), std::string::npos) << st.message();
  EXPECT_EQ(fake_->gets(rel), 1);
}

TEST_F(ImageDeviceTest, UnavailableSourceFailsTheReadAndRecovers) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img);
  const std::string rel = img.ChunkRel(11);
  fake_->Fail(rel, Status::Unavailable("server down"), 1);
  std::string buf(kCs, '\0');
  EXPECT_TRUE(dev->Read(11 * kCs, kCs, buf.data()).IsUnavailable());
  EXPECT_EQ(fake_->gets(rel), 1);
  ASSERT_TRUE(dev->Read(11 * kCs, kCs, buf.data()).ok());
  EXPECT_EQ(FirstDifference(buf, img.Chunk(11)), "");
}

TEST_F(ImageDeviceTest, ReadPastTheEndIsRejected) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img);
  const uint64_t size = dev->size();
  char buf[16];
  EXPECT_EQ(dev->Read(size, 1, buf).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(dev->Read(size - 1, 2, buf).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(dev->Read(~uint64_t(0) - 3, 8, buf).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(dev->Read(size + 100, 0, buf).code(), Status::Code::kOk);  // nothing to read
  EXPECT_TRUE(dev->Read(3, 0, buf).ok());
  EXPECT_EQ(fake_->total_gets(), 0);
}

TEST_F(ImageDeviceTest, ConcurrentReadsOfOneChunkCollapseIntoOneGet) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img);
  fake_->set_delay(std::chrono::milliseconds(200));
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      std::string buf(100, '\0');
      start.arrive_and_wait();
      Status st = dev->Read(7 * kCs + 10 * t, buf.size(), buf.data());
      if (st.ok() && buf == img.content.substr(7 * kCs + 10 * t, 100)) good++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good, kThreads);
  EXPECT_EQ(fake_->gets(img.ChunkRel(7)), 1);
  EXPECT_EQ(fake_->total_gets(), 1);
}

// The same over HTTP: the fetch engine does not merge requests, so the
// device's in-flight table alone keeps eight readers of one chunk to one
// GET, and counts the seven that waited for it.
TEST_F(ImageDeviceTest, ConcurrentHttpReadersOfOneChunkMakeOneGet) {
  TestImage img = BuildImage(MixedContent());
  hloop::testing::TestHttpServer server([&](const httplib::Request& req, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto it = img.files.find(req.path.substr(1));
    if (it == img.files.end()) {
      res.status = 404;
      return;
    }
    res.set_content(it->second, "application/octet-stream");
  });
  fetch::FetchOptions fo;
  fo.max_attempts = 1;
  auto source =
      std::make_unique<fetch::HttpSource>(std::make_unique<fetch::FetchEngine>(server.base(), fo));
  ImageDevice dev(img.Index(), std::move(source), nullptr, Quiet());
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      std::string buf(100, '\0');
      start.arrive_and_wait();
      Status st = dev.Read(7 * kCs + 10 * t, buf.size(), buf.data());
      if (st.ok() && buf == img.content.substr(7 * kCs + 10 * t, 100)) good++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good, kThreads);
  EXPECT_EQ(server.count("/" + img.ChunkRel(7)), 1);
  EXPECT_EQ(server.log().size(), 1u);
  EXPECT_EQ(dev.stats().collapsed, uint64_t(kThreads - 1));
}

// Same property without a sleeping source: readers arrive at any moment,
// including just as the first fetch completes. A reader that missed the
// memory cache a moment before the fetch finished must still not fetch
// again (image_device.h: "Concurrent misses for the same chunk collapse into
// one fetch").
TEST_F(ImageDeviceTest, ConcurrentReadersNeverFetchAChunkTwice) {
  TestImage img = BuildImage(RandomBytes(64 * kCs, 9));
  int doubles = 0;
  for (int iter = 0; iter < 300 && doubles == 0; iter++) {
    auto dev = Make(img);
    std::latch start(8);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; t++) {
      threads.emplace_back([&] {
        std::string buf(kCs, '\0');
        start.arrive_and_wait();
        for (uint64_t c = 0; c < 64; c++) ASSERT_TRUE(dev->Read(c * kCs, kCs, buf.data()).ok());
      });
    }
    for (auto& t : threads) t.join();
    for (int c = 0; c < 64; c++) {
      if (fake_->gets(img.ChunkRel(c)) > 1) {
        ADD_FAILURE() << "iteration " << iter << ": chunk " << c << " fetched "
                      << fake_->gets(img.ChunkRel(c)) << " times";
        doubles++;
      }
    }
  }
  EXPECT_EQ(doubles, 0);
}

TEST_F(ImageDeviceTest, ConcurrentReadersOfACorruptChunkAllFail) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img);
  fake_->set_delay(std::chrono::milliseconds(100));
  fake_->Corrupt(img.ChunkRel(12));
  std::latch start(6);
  std::atomic<int> corrupt{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; t++) {
    threads.emplace_back([&] {
      std::string buf(kCs, '\0');
      start.arrive_and_wait();
      if (dev->Read(12 * kCs, kCs, buf.data()).IsCorruption()) corrupt++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(corrupt, 6);
  // One collapsed fetch and its refetches.
  EXPECT_EQ(fake_->gets(img.ChunkRel(12)), 1 + disk::ImageOptions{}.corrupt_refetches);
}

TEST_F(ImageDeviceTest, ManyThreadsReadingEverythingGetRightBytes) {
  TestImage img = BuildImage(MixedContent());
  ImageOptions o;  // read-ahead on, default workers
  o.readahead_chunks = 4;
  auto dev = Make(img, o, OpenCache(tmp_.Join("cache")));
  fake_->set_delay(std::chrono::milliseconds(2));
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int n = 0; n < 200; n++) {
        uint64_t off = rng() % img.content.size();
        size_t len = size_t(1 + rng() % std::min<uint64_t>(img.content.size() - off, 2 * kCs));
        std::string buf(len, '\0');
        if (!dev->Read(off, len, buf.data()).ok() || buf != img.content.substr(off, len)) bad++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad, 0);
}

TEST_F(ImageDeviceTest, SecondDeviceHitsTheDiskCache) {
  TestImage img = BuildImage(MixedContent());
  {
    auto dev = Make(img, Quiet(), OpenCache(tmp_.Join("cache")));
    EXPECT_EQ(FirstDifference(ReadAll(dev.get()), img.content), "");
    EXPECT_EQ(fake_->total_gets(), kMixedUnique);
  }
  auto dev = Make(img, Quiet(), OpenCache(tmp_.Join("cache")));
  EXPECT_EQ(FirstDifference(ReadAll(dev.get()), img.content), "");
  EXPECT_EQ(fake_->total_gets(), 0);
  EXPECT_EQ(dev->stats().disk_hits, uint64_t(kMixedUnique));
  EXPECT_EQ(dev->stats().chunks_fetched, 0u);
}

TEST_F(ImageDeviceTest, CorruptDiskCacheEntryIsFetchedAgain) {
  TestImage img = BuildImage(MixedContent());
  format::Hash h = format::Sha256(img.Chunk(2));
  {
    auto dev = Make(img, Quiet(), OpenCache(tmp_.Join("cache")));
    ReadAll(dev.get());
  }
  std::string path = tmp_.Join("cache/") + format::ChunkPath(h);
  std::string bytes = hloop::testing::ReadTestFile(path);
  ASSERT_EQ(bytes.size(), 24 + kCs);  // header (docs/format.md), then the raw chunk
  bytes[24 + 100] ^= 1;
  ASSERT_TRUE(WriteTestFile(path, bytes));
  auto dev = Make(img, Quiet(), OpenCache(tmp_.Join("cache")));
  EXPECT_EQ(FirstDifference(ReadAll(dev.get()), img.content), "");
  EXPECT_EQ(fake_->total_gets(), 1);
  EXPECT_EQ(fake_->gets(img.ChunkRel(2)), 1);
  EXPECT_EQ(dev->disk_cache()->stats().corrupt_discarded, 1u);
  // ... and the cache holds the good copy again.
  EXPECT_EQ(FirstDifference(hloop::testing::ReadTestFile(path).substr(24), img.Chunk(2)), "");
}

TEST_F(ImageDeviceTest, EnsureCachedFillsTheDiskCache) {
  TestImage img = BuildImage(MixedContent());
  {
    auto dev = Make(img, Quiet(), OpenCache(tmp_.Join("cache")));
    for (uint64_t i = 0; i < img.chunk_count(); i++) ASSERT_TRUE(dev->EnsureCached(i).ok()) << i;
    EXPECT_EQ(fake_->total_gets(), kMixedUnique);
    for (uint64_t i = 0; i < img.chunk_count(); i++) {
      format::ChunkEntry e = dev->index().entry(i);
      if (!e.zero()) {
        EXPECT_TRUE(dev->disk_cache()->Contains(e.hash)) << i;
      }
    }
    // Already cached: no more fetching.
    for (uint64_t i = 0; i < img.chunk_count(); i++) ASSERT_TRUE(dev->EnsureCached(i).ok());
    EXPECT_EQ(fake_->total_gets(), kMixedUnique);
  }
  auto dev = Make(img, Quiet(), OpenCache(tmp_.Join("cache")));
  EXPECT_EQ(FirstDifference(ReadAll(dev.get()), img.content), "");
  EXPECT_EQ(fake_->total_gets(), 0);
}

TEST_F(ImageDeviceTest, EnsureCachedJoinsAReadersFetch) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img, Quiet(), OpenCache(tmp_.Join("cache")));
  fake_->set_delay(std::chrono::milliseconds(300));
  std::thread reader([&] {
    std::string buf(kCs, '\0');
    EXPECT_TRUE(dev->Read(7 * kCs, kCs, buf.data()).ok());
  });
  // The reader's fetch is under way (the source counts a Get as it starts).
  ASSERT_TRUE(WaitFor([&] { return fake_->gets(img.ChunkRel(7)) == 1; }));
  ASSERT_TRUE(dev->EnsureCached(7).ok());
  reader.join();
  EXPECT_EQ(fake_->gets(img.ChunkRel(7)), 1);
  EXPECT_EQ(dev->stats().collapsed, 1u);
  EXPECT_TRUE(dev->disk_cache()->Contains(format::Sha256(img.Chunk(7))));
}

TEST_F(ImageDeviceTest, EnsureCachedReportsCorruption) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img, Quiet(), OpenCache(tmp_.Join("cache")));
  fake_->Corrupt(img.ChunkRel(0));
  EXPECT_TRUE(dev->EnsureCached(0).IsCorruption());
  EXPECT_FALSE(dev->disk_cache()->Contains(format::Sha256(img.Chunk(0))));
  EXPECT_TRUE(dev->EnsureCached(3).ok());  // a zero chunk needs nothing
}

TEST_F(ImageDeviceTest, GetChunkReturnsVerifiedRawContent) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img);
  auto c = dev->GetChunk(13);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(FirstDifference(**c, img.content.substr(13 * kCs)), "");
  EXPECT_EQ((*c)->size(), 1000u);
}

TEST_F(ImageDeviceTest, SequentialReadsFetchFollowingChunksInBackground) {
  TestImage img = BuildImage(RandomBytes(16 * kCs, 3));
  ImageOptions o;
  o.workers = 2;
  o.readahead_chunks = 4;
  auto dev = Make(img, o);
  std::string buf(kCs, '\0');
  ASSERT_TRUE(dev->Read(0, kCs, buf.data()).ok());
  ASSERT_TRUE(dev->Read(kCs, kCs, buf.data()).ok());
  // Chunks 2..4 arrive without anyone reading them.
  ASSERT_TRUE(WaitFor([&] { return dev->stats().chunks_fetched >= 5; }))
      << "fetched " << dev->stats().chunks_fetched;
  for (int i = 2; i <= 4; i++) EXPECT_EQ(fake_->gets(img.ChunkRel(i)), 1) << i;
  EXPECT_GE(dev->stats().readahead_issued, 3u);
  // Reading them now costs no fetch.
  std::string two(2 * kCs, '\0');
  ASSERT_TRUE(dev->Read(2 * kCs, 2 * kCs, two.data()).ok());
  EXPECT_EQ(FirstDifference(two, img.content.substr(2 * kCs, 2 * kCs)), "");
  EXPECT_GE(dev->stats().memory_hits, 2u);
  for (int i = 2; i <= 3; i++) EXPECT_EQ(fake_->gets(img.ChunkRel(i)), 1) << i;
  // Nothing near the end was touched: the window is bounded.
  EXPECT_EQ(fake_->gets(img.ChunkRel(15)), 0);
}

TEST_F(ImageDeviceTest, RandomReadsDoNotReadAhead) {
  TestImage img = BuildImage(RandomBytes(16 * kCs, 3));
  ImageOptions o;
  o.workers = 2;
  o.readahead_chunks = 4;
  auto dev = Make(img, o);
  std::string buf(10, '\0');
  for (uint64_t i : {10, 2, 7, 14, 5}) ASSERT_TRUE(dev->Read(i * kCs, buf.size(), buf.data()).ok());
  EXPECT_EQ(dev->stats().readahead_issued, 0u);
  EXPECT_EQ(fake_->total_gets(), 5);
}

TEST_F(ImageDeviceTest, DestroyingWithReadAheadPendingDoesNotHang) {
  TestImage img = BuildImage(RandomBytes(32 * kCs, 4));
  ImageOptions o;
  o.workers = 2;
  o.readahead_chunks = 16;
  auto dev = Make(img, o);
  fake_->set_delay(std::chrono::milliseconds(20));
  std::string buf(kCs, '\0');
  ASSERT_TRUE(dev->Read(0, kCs, buf.data()).ok());
  dev.reset();  // must return (workers stop after their current chunk)
  SUCCEED();
}

// The real path: pack a file into a directory store, open its index by path.
TEST_F(ImageDeviceTest, ReadsAPackedImageThroughAFileSource) {
  std::string content = MixedContent();
  ASSERT_TRUE(WriteTestFile(tmp_.Join("disk.img"), content));
  auto store = store::LocalStore::Open(tmp_.Join("store"), true);
  ASSERT_TRUE(store.ok());
  pack::PackOptions po;
  po.name = "disk";
  po.chunk_size = kCs;
  auto sum = pack::Pack(tmp_.Join("disk.img"), *store, po);
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();

  auto bytes = store->ReadIndex("disk");
  ASSERT_TRUE(bytes.ok());
  auto index = format::Index::Parse(std::move(bytes.value()), "disk.idx");
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  auto loc = fetch::ParseLocation(store->IndexPath("disk"));
  ASSERT_TRUE(loc.ok());
  auto source = fetch::OpenSource(*loc, fetch::FetchOptions());
  ASSERT_TRUE(source.ok());
  ImageDevice dev(std::move(index.value()), std::move(source.value()), nullptr, Quiet());
  std::string out(dev.size(), '\0');
  ASSERT_TRUE(dev.Read(0, out.size(), out.data()).ok());
  EXPECT_EQ(FirstDifference(out, content), "");
  ExpectReadsMatch(&dev, content);

  // Corrupt a chunk file in the store: reads of it fail, others still work.
  format::Hash h = format::Sha256(content.substr(7 * kCs, kCs));
  std::string path = store->ChunkFilePath(h);
  std::string file = hloop::testing::ReadTestFile(path);
  file[file.size() - 5] ^= 0x40;
  ASSERT_TRUE(WriteTestFile(path, file));
  auto index2 = format::Index::Parse(store->ReadIndex("disk").value(), "disk.idx");
  ImageDevice dev2(std::move(index2.value()), std::move(fetch::OpenSource(*loc, {}).value()),
                   nullptr, Quiet());
  std::string buf(kCs, '\0');
  EXPECT_TRUE(dev2.Read(7 * kCs, kCs, buf.data()).IsCorruption());
  ASSERT_TRUE(dev2.Read(8 * kCs, kCs, buf.data()).ok());
  EXPECT_EQ(FirstDifference(buf, content.substr(8 * kCs, kCs)), "");
}

TEST_F(ImageDeviceTest, OpenImageByPathCachesTheIndex) {
  std::string content = MixedContent();
  ASSERT_TRUE(WriteTestFile(tmp_.Join("disk.img"), content));
  auto store = store::LocalStore::Open(tmp_.Join("store"), true);
  pack::PackOptions po;
  po.name = "disk";
  po.chunk_size = kCs;
  ASSERT_TRUE(pack::Pack(tmp_.Join("disk.img"), *store, po).ok());

  OpenOptions oo;
  oo.cache = CacheOptions(tmp_.Join("cache"));
  oo.image = Quiet();
  const std::string url = store->IndexPath("disk");
  auto dev = OpenImage(url, oo);
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_EQ(ImageName((*dev)->index(), url), "disk");
  std::string out((*dev)->size(), '\0');
  ASSERT_TRUE((*dev)->Read(0, out.size(), out.data()).ok());
  EXPECT_EQ(FirstDifference(out, content), "");
  auto cached = (*dev)->disk_cache()->GetUrlCopy(url);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(cached.value(), store->ReadIndex("disk").value());
  dev.value().reset();
  auto missing = OpenImage(tmp_.Join("store/nope.idx"), oo);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();
}

fetch::FetchOptions FastFail() {
  fetch::FetchOptions f;
  f.max_attempts = 1;
  f.retry_initial_ms = 1;
  f.retry_max_ms = 1;
  f.connect_timeout_s = 2;
  return f;
}

TEST_F(ImageDeviceTest, LoadIndexFallsBackToTheCachedCopyWhenTheServerIsDown) {
  TestImage img = BuildImage(MixedContent());
  auto cache = OpenCache(tmp_.Join("cache"));
  // Nothing listens on port 1: connection refused, a transient failure.
  const std::string url = "http://127.0.0.1:1/images/test.idx";
  auto none = LoadIndex(url, FastFail(), cache.get());
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(none.status().IsUnavailable()) << none.status().ToString();
  ASSERT_TRUE(cache->PutUrlCopy(url, img.index_bytes).ok());
  auto ix = LoadIndex(url, FastFail(), cache.get());
  ASSERT_TRUE(ix.ok()) << ix.status().ToString();
  EXPECT_EQ(ix->bytes(), img.index_bytes);
  // Without a cache there is nothing to fall back on.
  EXPECT_TRUE(LoadIndex(url, FastFail(), nullptr).status().IsUnavailable());
}

TEST_F(ImageDeviceTest, LoadIndexNeverReplacesACorruptOrMissingIndexWithTheCachedOne) {
  TestImage img = BuildImage(MixedContent());
  auto cache = OpenCache(tmp_.Join("cache"));
  const std::string path = tmp_.Join("test.idx");
  ASSERT_TRUE(cache->PutUrlCopy(path, img.index_bytes).ok());
  // The index does not exist: NotFound, not the cached copy.
  auto missing = LoadIndex(path, FastFail(), cache.get());
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();
  // What is there is corrupt: Corruption, not the cached copy.
  std::string bad = img.index_bytes;
  bad[200] ^= 1;
  ASSERT_TRUE(WriteTestFile(path, bad));
  auto corrupt = LoadIndex(path, FastFail(), cache.get());
  ASSERT_FALSE(corrupt.ok());
  EXPECT_TRUE(corrupt.status().IsCorruption()) << corrupt.status().ToString();
  // ... and the cached copy was not overwritten with the bad one.
  EXPECT_EQ(FirstDifference(cache->GetUrlCopy(path).value(), img.index_bytes), "");
  // A good index is loaded and becomes the cached copy.
  std::string other = BuildImage(RandomBytes(3 * kCs, 77)).index_bytes;
  ASSERT_TRUE(WriteTestFile(path, other));
  auto good = LoadIndex(path, FastFail(), cache.get());
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(FirstDifference(cache->GetUrlCopy(path).value(), other), "");
}

// A server for `img` at /test.idx whose first `corrupt` GETs of the index
// each have a different byte flipped; counts the index GETs.
class FlakyIndexServer {
 public:
  FlakyIndexServer(const TestImage& img, int corrupt)
      : server_([this, &img, corrupt](const httplib::Request& req, httplib::Response& res) {
          if (req.path == "/test.idx") {
            if (req.method != "GET") return res.set_content(img.index_bytes, "text/plain");
            std::string body = img.index_bytes;
            int n = index_gets_++;
            if (n < corrupt) body[size_t(200 + 7 * n) % body.size()] ^= 0x10;
            return res.set_content(body, "application/octet-stream");
          }
          auto it = img.files.find(req.path.substr(1));
          if (it == img.files.end()) {
            res.status = 404;
            return;
          }
          res.set_content(it->second, "application/octet-stream");
        }) {}
  std::string url() const { return server_.base() + "test.idx"; }
  int index_gets() const { return index_gets_; }

 private:
  std::atomic<int> index_gets_{0};
  hloop::testing::TestHttpServer server_;
};

OpenOptions FastOpen() {
  OpenOptions oo;
  oo.fetch.retry_initial_ms = 1;
  oo.fetch.retry_max_ms = 4;
  oo.image = Quiet();
  return oo;
}

TEST_F(ImageDeviceTest, OpenImageFetchesACorruptIndexAgainLikeACorruptChunk) {
  TestImage img = BuildImage(MixedContent());
  FlakyIndexServer server(img, 3);
  auto dev = OpenImage(server.url(), FastOpen());
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_EQ(server.index_gets(), 4);
  EXPECT_EQ((*dev)->index().bytes(), img.index_bytes);
  EXPECT_EQ(FirstDifference(ReadAll(dev->get()), img.content), "");
}

TEST_F(ImageDeviceTest, OpenImageFailsWithTheIndexCheckWhenEveryCopyIsCorrupt) {
  TestImage img = BuildImage(MixedContent());
  FlakyIndexServer server(img, 1000);
  OpenOptions oo = FastOpen();
  oo.cache = CacheOptions(tmp_.Join("cache"));
  {
    // A good cached copy is no excuse: the server answered, with bad copies.
    auto cache = OpenCache(tmp_.Join("cache"));
    ASSERT_TRUE(cache->PutUrlCopy(server.url(), img.index_bytes).ok());
  }
  auto dev = OpenImage(server.url(), oo);
  ASSERT_FALSE(dev.ok());
  EXPECT_TRUE(dev.status().IsCorruption()) << dev.status().ToString();
  const std::string msg = dev.status().message();
  EXPECT_NE(msg.find("bad copies in a row"), std::string::npos) << msg;
  EXPECT_NE(msg.find("index " + server.url() + ": checksum"), std::string::npos) << msg;
  EXPECT_EQ(server.index_gets(), fetch::kDefaultMaxVerdicts);
  // The same through LoadIndex, which fetches by URL without an engine.
  auto ix = LoadIndex(server.url(), FastOpen().fetch, nullptr);
  ASSERT_TRUE(ix.status().IsCorruption()) << ix.status().ToString();
  EXPECT_NE(ix.status().message().find("checksum"), std::string::npos) << ix.status().ToString();
}

TEST_F(ImageDeviceTest, LoadIndexByUrlFetchesACorruptIndexAgain) {
  TestImage img = BuildImage(MixedContent());
  FlakyIndexServer server(img, 2);
  auto ix = LoadIndex(server.url(), FastOpen().fetch, nullptr);
  ASSERT_TRUE(ix.ok()) << ix.status().ToString();
  EXPECT_EQ(ix->bytes(), img.index_bytes);
  EXPECT_EQ(server.index_gets(), 3);
}

TEST_F(ImageDeviceTest, AnOversizedProfileIsRefusedWithTheLimitInTheMessage) {
  TestImage img = BuildImage(MixedContent());
  std::string huge = "hloop-profile 1\n";
  while (huge.size() < (1 << 20)) huge += "# padding padding padding padding padding\n";
  hloop::testing::TestHttpServer profiles([&](const httplib::Request&, httplib::Response& res) {
    res.set_content(huge, "text/plain");
  });
  FlakyIndexServer server(img, 0);
  OpenOptions oo = FastOpen();
  oo.profile = profiles.base() + "huge.profile";
  auto dev = OpenImage(server.url(), oo);
  ASSERT_FALSE(dev.ok());
  EXPECT_TRUE(dev.status().IsCorruption()) << dev.status().ToString();
  EXPECT_NE(dev.status().message().find(oo.profile + " is larger than the"), std::string::npos)
      << dev.status().ToString();
  EXPECT_NE(dev.status().message().find("-byte limit for a profile"), std::string::npos)
      << dev.status().ToString();
}

// ---- Boot profiles, adaptive read-ahead, corrupt reports (issue #3) ----

std::string ChunkRel(const TestImage& img, uint64_t i) {
  return format::ChunkPath(img.Index().entry(i).hash);
}

TEST_F(ImageDeviceTest, RecordsFirstReadsOfNonZeroBlocksInOrder) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img);
  dev->StartRecording("");
  char buf[10];
  ASSERT_TRUE(dev->Read(2 * kCs + 5, 10, buf).ok());
  ASSERT_TRUE(dev->Read(0, 10, buf).ok());
  ASSERT_TRUE(dev->Read(2 * kCs, 10, buf).ok());                  // again: not recorded twice
  ASSERT_TRUE(dev->Read(3 * kCs, 10, buf).ok());                  // a zero chunk: not recorded
  ASSERT_TRUE(dev->Read(8 * kCs - 5, 10, buf).ok());              // spans 7 and 8: one range
  ASSERT_TRUE(dev->Read(img.content.size() - 10, 10, buf).ok());  // the last, partial block
  std::string text = dev->ProfileText();
  EXPECT_EQ(text.rfind("hloop-profile 2\n", 0), 0u) << text;
  auto profile = ParseProfile(text, "recorded");
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  ASSERT_EQ(profile->entries.size(), 4u) << text;
  const uint64_t last = img.content.size() / kCs;
  const std::vector<std::pair<uint64_t, uint64_t>> want = {
      {2 * kCs, kCs}, {0, kCs}, {7 * kCs, 2 * kCs}, {last * kCs, img.content.size() - last * kCs}};
  for (size_t k = 0; k < want.size(); k++) {
    EXPECT_EQ(profile->entries[k].offset, want[k].first) << k;
    EXPECT_EQ(profile->entries[k].length, want[k].second) << k;
  }
  EXPECT_EQ(ProfileSlots(*profile, img.Index()), (std::vector<uint64_t>{2, 0, 7, 8, last}));
  EXPECT_EQ(dev->stats().profile_recorded, 5u);  // 4 KiB blocks (here one a chunk)
}

TEST_F(ImageDeviceTest, RecordedProfileIsWrittenWhenTheDeviceCloses) {
  TestImage img = BuildImage(MixedContent());
  std::string path = tmp_.path() + "/boot.profile";
  {
    auto dev = Make(img);
    dev->StartRecording(path);
    char buf[10];
    ASSERT_TRUE(dev->Read(10 * kCs, 10, buf).ok());
  }
  auto profile = ParseProfile(testing::ReadTestFile(path), path);
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  EXPECT_EQ(profile->version, 2u);
  EXPECT_EQ(ProfileSlots(*profile, img.Index()), (std::vector<uint64_t>{10}));
}

TEST_F(ImageDeviceTest, PrefetchFetchesTheProfileInOrderAtTheLowestPriorityIntoTheCache) {
  TestImage img = BuildImage(MixedContent());
  ImageOptions o = Quiet();
  o.prefetch_threads = 1;  // one at a time: the order is observable
  auto dev = Make(img, o, OpenCache(tmp_.path() + "/cache"));
  dev->StartPrefetch({10, 2, 3, 4, 7, 200});  // 3 is zero, 4 repeats 1, 200 is beyond the end
  for (int i = 0; i < 500 && dev->stats().prefetch_done < 6; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ImageStats st = dev->stats();
  EXPECT_EQ(st.prefetch_total, 6u);
  EXPECT_EQ(st.prefetch_done, 6u);
  EXPECT_EQ(st.prefetch_failed, 0u);
  auto reqs = fake_->requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[0].first, ChunkRel(img, 10));
  EXPECT_EQ(reqs[1].first, ChunkRel(img, 2));
  EXPECT_EQ(reqs[2].first, ChunkRel(img, 4));
  EXPECT_EQ(reqs[3].first, ChunkRel(img, 7));
  for (const auto& r : reqs) EXPECT_EQ(r.second, fetch::Priority::kPrefetch);
  // The reader then finds them in the cache: no more fetches, exact bytes,
  // and the statistics say the prefetch was useful.
  std::string got(kCs, '\0');
  for (uint64_t i : {10, 2, 1, 7}) {
    ASSERT_TRUE(dev->Read(i * kCs, kCs, got.data()).ok());
    EXPECT_EQ(got, img.content.substr(i * kCs, kCs));
  }
  EXPECT_EQ(fake_->total_gets(), 4);
  EXPECT_EQ(dev->stats().prefetch_useful, 3u);  // 10, 2 and 7 (1 was fetched as 4)
}

TEST_F(ImageDeviceTest, PrefetchSkipsChunksAlreadyReadOrCached) {
  TestImage img = BuildImage(MixedContent());
  ImageOptions o = Quiet();
  o.prefetch_threads = 2;
  auto dev = Make(img, o, OpenCache(tmp_.path() + "/cache"));
  std::string got(kCs, '\0');
  ASSERT_TRUE(dev->Read(0, kCs, got.data()).ok());
  fake_->ResetCounts();
  dev->StartPrefetch({0, 0, 1});
  for (int i = 0; i < 500 && dev->stats().prefetch_done < 3; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(fake_->gets(ChunkRel(img, 0)), 0);
  EXPECT_EQ(fake_->gets(ChunkRel(img, 1)), 1);
}

// `img` relaid out (issue 14): hot chunk 0 holds image chunks 10 then 2,
// hot chunk 1 holds chunk 12; the table is unchanged. The hot chunk files
// are added to the image's files.
TestImage RelaidOut(const TestImage& img) {
  TestImage out = img;
  const format::Index index = img.Index();
  format::Layout layout;
  for (const std::string& raw : {img.Chunk(10) + img.Chunk(2), img.Chunk(12)}) {
    std::string file;
    EXPECT_TRUE(
        format::EncodeChunk(raw, Codec::kZstd, format::DefaultLevel(Codec::kZstd), &file).ok());
    const format::Hash hash = format::Sha256(raw);
    out.files[format::ChunkPath(hash)] = file;
    layout.hot.push_back(format::HotChunk{hash, uint32_t(file.size()), uint32_t(raw.size())});
  }
  layout.extents.push_back(format::ImageExtent{2 * kCs, kCs, 0, kCs});
  layout.extents.push_back(format::ImageExtent{10 * kCs, kCs, 0, 0});
  layout.extents.push_back(format::ImageExtent{12 * kCs, kCs, 1, 0});
  format::IndexBuilder b(index.image_size(), kCs, index.codec());
  for (uint64_t i = 0; i < index.chunk_count(); i++) b.set_entry(i, index.entry(i));
  b.meta().name = "test-hot";
  b.set_layout(layout);
  out.index_bytes = b.Encode();
  return out;
}

TEST_F(ImageDeviceTest, AProfileRecordedOnARelaidOutImagePrefetchesItsHotChunksInOrderIssue14) {
  TestImage plain = BuildImage(MixedContent());
  TestImage hot = RelaidOut(plain);
  ASSERT_TRUE(hot.Index().has_extents());
  const uint64_t table = hot.Index().chunk_count();  // hot chunk k is slot table + k
  auto record = [&](const TestImage& img) {
    auto dev = Make(img);
    dev->StartRecording("");
    char buf[10];
    for (uint64_t at : std::vector<uint64_t>{10 * kCs + 7, 2 * kCs, 12 * kCs + 100, 0})
      EXPECT_TRUE(dev->Read(at, 10, buf).ok());
    return dev->ProfileText();
  };
  // A profile names image bytes, not chunk files: the same reads record the
  // same ranges on either layout.
  auto on_hot = ParseProfile(record(hot), "hot");
  auto on_plain = ParseProfile(record(plain), "plain");
  ASSERT_TRUE(on_hot.ok() && on_plain.ok());
  ASSERT_EQ(on_hot->entries.size(), 4u);
  for (size_t k = 0; k < 4; k++) {
    EXPECT_EQ(on_hot->entries[k].offset, on_plain->entries[k].offset) << k;
    EXPECT_EQ(on_hot->entries[k].length, on_plain->entries[k].length) << k;
  }
  const std::vector<uint64_t> slots = ProfileSlots(*on_hot, hot.Index());
  EXPECT_EQ(slots, (std::vector<uint64_t>{table, table + 1, 0}));
  EXPECT_EQ(ProfileSlots(*on_plain, hot.Index()), slots);
  EXPECT_EQ(ProfileSlots(*on_plain, plain.Index()), (std::vector<uint64_t>{10, 2, 12, 0}));

  // Replayed on a cold cache: the hot chunk files, in order, then chunk 0;
  // the reads then fetch nothing and read the image's bytes.
  ImageOptions o = Quiet();
  o.prefetch_threads = 1;  // one at a time: the order is observable
  auto dev = Make(hot, o, OpenCache(tmp_.path() + "/cache"));
  dev->StartPrefetch(slots);
  for (int i = 0; i < 500 && dev->stats().prefetch_done < 3; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto reqs = fake_->requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].first, format::ChunkPath(format::Sha256(plain.Chunk(10) + plain.Chunk(2))));
  EXPECT_EQ(reqs[1].first, format::ChunkPath(format::Sha256(plain.Chunk(12))));
  EXPECT_EQ(reqs[2].first, ChunkRel(plain, 0));
  std::string got(kCs, '\0');
  for (uint64_t i : {10, 2, 12, 0}) {
    ASSERT_TRUE(dev->Read(i * kCs, kCs, got.data()).ok());
    EXPECT_EQ(got, plain.content.substr(i * kCs, kCs)) << i;
  }
  EXPECT_EQ(fake_->total_gets(), 3);
}

TEST_F(ImageDeviceTest, ReadAheadWindowFollowsTheBandwidthDelayProduct) {
  TestImage img = BuildImage(RandomBytes(40 * kCs, 9));
  ImageOptions o;
  o.workers = 1;
  o.readahead_chunks = 16;
  o.readahead_max_chunks = 256;
  auto dev = Make(img, o, OpenCache(tmp_.path() + "/cache"));
  char buf[10];
  ASSERT_TRUE(dev->Read(0, 10, buf).ok());
  EXPECT_EQ(dev->stats().readahead_max, 16u) << "unknown link: the configured window";
  // 50 ms, and a transfer rate at which ten chunk files fit in one round
  // trip: 2 * 10 + 4 chunks.
  double stored = std::max(4096.0, double(img.Index().summary().stored_bytes) /
                                       double(img.Index().summary().unique_chunks));
  fake_->set_estimate(0.05, 10 * stored / 0.05);
  ASSERT_TRUE(dev->Read(kCs, 10, buf).ok());
  EXPECT_EQ(dev->stats().readahead_max, 24u);
  // A LAN: less than a chunk per round trip, a handful of chunks.
  fake_->set_estimate(0.0002, 0.5 * stored / 0.0002);
  ASSERT_TRUE(dev->Read(2 * kCs, 10, buf).ok());
  EXPECT_LE(dev->stats().readahead_max, 8u);
  EXPECT_GE(dev->stats().readahead_max, 4u);
  // A very long fat pipe: capped.
  fake_->set_estimate(0.5, 1e9);
  ASSERT_TRUE(dev->Read(3 * kCs, 10, buf).ok());
  EXPECT_EQ(dev->stats().readahead_max, 256u);
}

// The stored size of an average chunk file of `img`, as ClusterChunks sees it.
double StoredChunk(const TestImage& img) {
  return std::max(4096.0, double(img.Index().summary().stored_bytes) /
                              double(img.Index().summary().unique_chunks));
}

TEST_F(ImageDeviceTest, AMissOnALongFatLinkFetchesTheRestOfItsCluster) {
  TestImage img = BuildImage(RandomBytes(64 * kCs, 11));
  ImageOptions o;
  o.workers = 2;
  o.cluster_max_bytes = 8 * kCs;
  auto dev = Make(img, o, OpenCache(tmp_.path() + "/cache"));
  fake_->set_estimate(0.1, 100 * StoredChunk(img) / 0.1);  // 100 chunks per round trip
  char buf[10];
  ASSERT_TRUE(dev->Read(21 * kCs + 5, sizeof buf, buf).ok());
  EXPECT_EQ(std::string(buf, sizeof buf), img.content.substr(21 * kCs + 5, sizeof buf));
  // The aligned cluster 16..23 arrives in the background, nothing beyond it.
  ASSERT_TRUE(WaitFor([&] { return dev->stats().chunks_fetched >= 8; }))
      << dev->stats().chunks_fetched;
  for (int i = 16; i <= 23; i++) EXPECT_EQ(fake_->gets(img.ChunkRel(i)), 1) << i;
  EXPECT_EQ(fake_->gets(img.ChunkRel(15)), 0);
  EXPECT_EQ(fake_->gets(img.ChunkRel(24)), 0);
  EXPECT_EQ(dev->stats().cluster_issued, 7u);
  EXPECT_EQ(dev->stats().cluster_chunks, 8u);
  for (const auto& [rel, priority] : fake_->requests()) {
    if (rel == img.ChunkRel(21)) continue;
    EXPECT_EQ(priority, fetch::Priority::kReadAhead) << rel;
  }
  // A neighbour read now is a hit and starts no cluster of its own.
  ASSERT_TRUE(dev->Read(17 * kCs, sizeof buf, buf).ok());
  EXPECT_EQ(dev->stats().cluster_issued, 7u);
  EXPECT_EQ(fake_->total_gets(), 8);
}

TEST_F(ImageDeviceTest, TheClusterShrinksWithTheLinkAndIsOffOnALan) {
  TestImage img = BuildImage(RandomBytes(64 * kCs, 12));
  ImageOptions o;
  o.workers = 2;
  o.cluster_max_bytes = 8 * kCs;
  auto dev = Make(img, o, OpenCache(tmp_.path() + "/cache"));
  char buf[10];
  // Nothing measured yet: no guessing.
  ASSERT_TRUE(dev->Read(3 * kCs, sizeof buf, buf).ok());
  EXPECT_EQ(dev->stats().cluster_chunks, 1u);
  // A LAN: half a chunk per round trip.
  fake_->set_estimate(0.0002, 0.5 * StoredChunk(img) / 0.0002);
  for (uint64_t i : {40, 9, 30}) ASSERT_TRUE(dev->Read(i * kCs, sizeof buf, buf).ok());
  EXPECT_EQ(dev->stats().cluster_chunks, 1u);
  EXPECT_EQ(dev->stats().cluster_issued, 0u);
  EXPECT_EQ(fake_->total_gets(), 4);
  // Six chunks per round trip: half of it holds a cluster of 2.
  fake_->set_estimate(0.05, 6 * StoredChunk(img) / 0.05);
  ASSERT_TRUE(dev->Read(51 * kCs, sizeof buf, buf).ok());
  EXPECT_EQ(dev->stats().cluster_chunks, 2u);
  ASSERT_TRUE(WaitFor([&] { return fake_->gets(img.ChunkRel(50)) == 1; }));
  EXPECT_EQ(fake_->gets(img.ChunkRel(52)), 0);
}

TEST_F(ImageDeviceTest, ClustersCanBeTurnedOff) {
  TestImage img = BuildImage(RandomBytes(32 * kCs, 13));
  ImageOptions o;
  o.workers = 2;
  o.cluster_max_bytes = 0;
  auto dev = Make(img, o, OpenCache(tmp_.path() + "/cache"));
  fake_->set_estimate(0.1, 1e9);
  char buf[10];
  for (uint64_t i : {20, 3, 11}) ASSERT_TRUE(dev->Read(i * kCs, sizeof buf, buf).ok());
  EXPECT_EQ(dev->stats().cluster_issued, 0u);
  EXPECT_EQ(fake_->total_gets(), 3);
}

TEST_F(ImageDeviceTest, AFixedReadAheadWindowIgnoresTheLink) {
  TestImage img = BuildImage(RandomBytes(8 * kCs, 9));
  ImageOptions o;
  o.workers = 1;
  o.readahead_chunks = 3;
  o.adaptive_readahead = false;
  auto dev = Make(img, o, OpenCache(tmp_.path() + "/cache"));
  fake_->set_estimate(0.05, 20e6);
  char buf[10];
  ASSERT_TRUE(dev->Read(0, 10, buf).ok());
  ASSERT_TRUE(dev->Read(kCs, 10, buf).ok());
  EXPECT_EQ(dev->stats().readahead_max, 3u);
}

TEST_F(ImageDeviceTest, ReadAheadStartsSmallAndDoublesWhileTheReaderKeepsUp) {
  TestImage img = BuildImage(RandomBytes(200 * kCs, 9));
  ImageOptions o;
  o.workers = 1;
  o.readahead_chunks = 64;
  o.adaptive_readahead = false;
  auto dev = Make(img, o, OpenCache(tmp_.path() + "/cache"));
  std::vector<unsigned> windows;
  std::string buf(kCs, '\0');
  for (uint64_t i = 0; i < 120; i++) {
    ASSERT_TRUE(dev->Read(i * kCs, kCs, buf.data()).ok());
    unsigned w = dev->stats().readahead_window;
    if (windows.empty() || windows.back() != w) windows.push_back(w);
  }
  EXPECT_EQ(windows, (std::vector<unsigned>{4, 8, 16, 32, 64}));
  // A jump elsewhere starts over.
  ASSERT_TRUE(dev->Read(190 * kCs, 10, buf.data()).ok());
  ASSERT_TRUE(dev->Read(150 * kCs, 10, buf.data()).ok());
  ASSERT_TRUE(dev->Read(151 * kCs, 10, buf.data()).ok());
  EXPECT_LE(dev->stats().readahead_window, 8u);
}

TEST_F(ImageDeviceTest, AHashMismatchIsReportedToTheSource) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img);
  fake_->Corrupt(ChunkRel(img, 2), 1);
  std::string got(kCs, '\0');
  ASSERT_TRUE(dev->Read(2 * kCs, kCs, got.data()).ok());
  EXPECT_EQ(got, img.content.substr(2 * kCs, kCs));
  EXPECT_EQ(fake_->corrupt_reports(), 1);
}

TEST_F(ImageDeviceTest, ReaderWaitsAreCounted) {
  TestImage img = BuildImage(MixedContent());
  auto dev = Make(img);
  fake_->set_delay(std::chrono::milliseconds(30));
  char buf[10];
  ASSERT_TRUE(dev->Read(0, 10, buf).ok());
  ASSERT_TRUE(dev->Read(5, 10, buf).ok());  // memory hit: no wait
  ImageStats st = dev->stats();
  EXPECT_EQ(st.reads, 2u);
  EXPECT_EQ(st.waits, 1u);
  EXPECT_GE(st.wait_us_max, 25000u);
}

TEST_F(ImageDeviceTest, ExtentsShowZeroChunksAsHoles) {
  TestImage img = BuildImage(MixedContent());  // chunks 3, 5 and 6 are zero
  auto dev = Make(img);
  auto all = dev->Extents(0, dev->size());
  ASSERT_TRUE(all.ok());
  std::vector<std::pair<uint64_t, bool>> got;
  for (const auto& e : *all) got.emplace_back(e.length, e.zero);
  std::vector<std::pair<uint64_t, bool>> want = {
      {3 * kCs, false}, {kCs, true}, {kCs, false}, {2 * kCs, true}, {6 * kCs + 1000, false}};
  EXPECT_EQ(got, want);
  auto part = dev->Extents(3 * kCs + 10, 100);  // inside a hole, clipped to the request
  ASSERT_TRUE(part.ok());
  ASSERT_EQ(part->size(), 1u);
  EXPECT_TRUE((*part)[0].zero);
  EXPECT_EQ((*part)[0].length, 100u);
  EXPECT_FALSE(dev->Extents(dev->size(), 1).ok());
  EXPECT_EQ(fake_->total_gets(), 0);  // answered from the index alone
}

// ---- Indexes with a layout (issue 14) ----

struct Range {
  uint64_t offset = 0;
  uint32_t length = 0;
};

// Gives `img` a layout as `hloop relayout` would: hot chunk k holds the
// image bytes of hot[k]'s ranges, in that order (the boot's order), and
// `zeros` are zero extents (the image must be zero there). The table stays.
void Relayout(TestImage* img, const std::vector<std::vector<Range>>& hot,
              const std::vector<Range>& zeros) {
  const format::Index old = img->Index();
  format::Layout layout;
  for (size_t k = 0; k < hot.size(); k++) {
    std::string raw;
    for (const Range& r : hot[k]) {
      layout.extents.push_back({.image_offset = r.offset,
                                .length = r.length,
                                .hot = uint32_t(k),
                                .hot_offset = uint32_t(raw.size())});
      raw += img->content.substr(r.offset, r.length);
    }
    std::string file;
    ASSERT_TRUE(format::EncodeChunk(raw, Codec::kZstd, 3, &file).ok());
    const format::Hash h = format::Sha256(raw);
    layout.hot.push_back(
        {.hash = h, .stored_size = uint32_t(file.size()), .raw_size = uint32_t(raw.size())});
    img->files[format::ChunkPath(h)] = file;
    img->hot_rels.push_back(format::ChunkPath(h));
  }
  for (const Range& r : zeros) {
    ASSERT_EQ(img->content.substr(r.offset, r.length), std::string(r.length, '\0'));
    layout.extents.push_back({.image_offset = r.offset, .length = r.length});
  }
  std::sort(layout.extents.begin(), layout.extents.end(),
            [](const auto& a, const auto& b) { return a.image_offset < b.image_offset; });
  ASSERT_TRUE(format::ValidateLayout(layout, img->content.size()).ok());
  format::IndexBuilder b(old.image_size(), old.chunk_size(), old.codec());
  for (uint64_t i = 0; i < old.chunk_count(); i++) b.set_entry(i, old.entry(i));
  b.meta().name = "test";
  b.set_layout(std::move(layout));
  img->index_bytes = b.Encode();
}

// MixedContent with 500 zero bytes inside text chunk 8, relaid out:
//   hot 0: [kCs-300, kCs+500)     across the edge of chunks 0 and 1
//          [2kCs+100, 2kCs+1100)  unaligned, inside chunk 2
//          [7kCs+10, 7kCs+4000)   inside chunk 7
//   hot 1: [13kCs+200, 13kCs+1000) the image's last, partial block, to its end
//          [10kCs, 12kCs)          chunks 10 and 11 whole: their table
//                                  entries are never read
//   zeros: [3kCs+100, 3kCs+2100)  inside zero chunk 3
//          [8kCs+1000, 8kCs+1500) inside text chunk 8, between hot ranges
const std::vector<std::vector<Range>> kHot = {
    {{kCs - 300, 800}, {2 * kCs + 100, 1000}, {7 * kCs + 10, 3990}},
    {{13 * kCs + 200, 800}, {10 * kCs, 2 * kCs}}};
const std::vector<Range> kZeros = {{3 * kCs + 100, 2000}, {8 * kCs + 1000, 500}};

TestImage RelaidImage() {
  std::string content = MixedContent();
  content.replace(8 * kCs + 1000, 500, std::string(500, '\0'));
  TestImage img = BuildImage(std::move(content));
  Relayout(&img, kHot, kZeros);
  return img;
}

// Table chunks no extent covers entirely: all but 10 and 11.
bool CoveredTableChunk(uint64_t i) { return i == 10 || i == 11; }

TEST_F(ImageDeviceTest, ALayoutReadsBackTheImageAtEveryBoundary_Issue14) {
  TestImage img = RelaidImage();
  ASSERT_TRUE(img.Index().has_extents());
  for (bool cached : {false, true}) {
    auto dev = Make(img, Quiet(), cached ? OpenCache(tmp_.Join("cache")) : nullptr);
    ExpectReadsMatch(dev.get(), img.content);
    // Every extent edge: a byte either side, a few either side, and reads
    // that start or end exactly on it.
    std::vector<uint64_t> edges;
    for (const auto& chunk : kHot)
      for (const Range& r : chunk) edges.insert(edges.end(), {r.offset, r.offset + r.length});
    for (const Range& r : kZeros) edges.insert(edges.end(), {r.offset, r.offset + r.length});
    const uint64_t size = img.content.size();
    for (uint64_t e : edges) {
      for (auto [from, to] : std::vector<std::pair<uint64_t, uint64_t>>{
               {e - 1, e + 1}, {e - 7, e + 9}, {e - 1, e}, {e, e + 1}, {e - 300, e + kCs}}) {
        to = std::min(to, size);
        if (from >= to) continue;
        std::string buf(to - from, '\x55');
        ASSERT_TRUE(dev->Read(from, buf.size(), buf.data()).ok()) << from;
        ASSERT_EQ(FirstDifference(buf, img.content.substr(from, to - from)), "")
            << "read [" << from << ", " << to << ")";
      }
    }
  }
}

TEST_F(ImageDeviceTest, ReadsServedByHotChunksFetchNoTableChunk_Issue14) {
  TestImage img = RelaidImage();
  auto dev = Make(img);
  for (const auto& chunk : kHot) {
    for (const Range& r : chunk) {
      std::string buf(r.length, '\x55');
      ASSERT_TRUE(dev->Read(r.offset, r.length, buf.data()).ok());
      EXPECT_EQ(FirstDifference(buf, img.content.substr(r.offset, r.length)), "");
    }
  }
  for (const std::string& rel : img.hot_rels) EXPECT_EQ(fake_->gets(rel), 1) << rel;
  EXPECT_EQ(fake_->total_gets(), 2);
  // The zero extents cost nothing either.
  for (const Range& r : kZeros) {
    std::string buf(r.length, '\x55');
    ASSERT_TRUE(dev->Read(r.offset, r.length, buf.data()).ok());
    EXPECT_EQ(buf, std::string(r.length, '\0'));
  }
  EXPECT_EQ(fake_->total_gets(), 2);
}

TEST_F(ImageDeviceTest, ReadAheadOfHotReadsPullsNoColdTableChunk_Issue14) {
  TestImage img = RelaidImage();
  ImageOptions o;
  o.workers = 1;  // one worker takes the queue in order (see the end)
  o.readahead_chunks = 4;
  auto dev = Make(img, o);
  // The boot's reads in hot order, 512 bytes at a time: sequential in the
  // hot chunks, scattered over the table.
  for (const auto& chunk : kHot) {
    for (const Range& r : chunk) {
      for (uint64_t pos = r.offset, end = r.offset + r.length; pos < end; pos += 512) {
        const size_t n = size_t(std::min<uint64_t>(512, end - pos));
        std::string buf(n, '\x55');
        ASSERT_TRUE(dev->Read(pos, n, buf.data()).ok());
        ASSERT_EQ(FirstDifference(buf, img.content.substr(pos, n)), "") << pos;
      }
    }
  }
  // A marker behind whatever read-ahead scheduled: once the worker has
  // fetched it, it has fetched (or dropped) everything queued before it.
  const uint64_t marker = 12;
  dev->Prefetch(marker * kCs, 1);
  ASSERT_TRUE(WaitFor([&] { return fake_->gets(img.ChunkRel(marker)) == 1; }));
  for (uint64_t i = 0; i < img.chunk_count(); i++)
    if (i != marker) {
      EXPECT_EQ(fake_->gets(img.ChunkRel(i)), 0) << "table chunk " << i;
    }
  for (const std::string& rel : img.hot_rels) EXPECT_EQ(fake_->gets(rel), 1) << rel;
}

TEST_F(ImageDeviceTest, ReadsOfColdRangesFetchNoHotChunk_Issue14) {
  TestImage img = RelaidImage();
  auto dev = Make(img);
  // Chunk 0 before the hot range, chunk 8 around its zero extent, chunks
  // 9 and 12, and chunk 13 before its hot tail.
  for (auto [off, len] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, kCs - 300}, {8 * kCs, kCs}, {9 * kCs, kCs}, {12 * kCs, kCs}, {13 * kCs, 200}}) {
    std::string buf(len, '\x55');
    ASSERT_TRUE(dev->Read(off, len, buf.data()).ok());
    EXPECT_EQ(FirstDifference(buf, img.content.substr(off, len)), "") << off;
  }
  for (const std::string& rel : img.hot_rels) EXPECT_EQ(fake_->gets(rel), 0) << rel;
  for (uint64_t i : {0, 8, 9, 12, 13}) EXPECT_EQ(fake_->gets(img.ChunkRel(i)), 1) << i;
  EXPECT_EQ(fake_->total_gets(), 5);
}

TEST_F(ImageDeviceTest, ExtentsShowZeroExtentsAsHoles_Issue14) {
  TestImage img = RelaidImage();
  auto dev = Make(img);
  auto all = dev->Extents(0, dev->size());
  ASSERT_TRUE(all.ok());
  std::vector<std::pair<uint64_t, bool>> got;
  for (const auto& e : *all) got.emplace_back(e.length, e.zero);
  // Zero chunks 3, 5, 6 (the zero extent inside chunk 3 is part of its
  // hole) and the zero extent inside chunk 8.
  std::vector<std::pair<uint64_t, bool>> want = {{3 * kCs, false},
                                                 {kCs, true},
                                                 {kCs, false},
                                                 {2 * kCs, true},
                                                 {kCs + 1000, false},
                                                 {500, true},
                                                 {5 * kCs - 1500 + 1000, false}};
  EXPECT_EQ(got, want);
  auto part = dev->Extents(8 * kCs + 1100, 100);  // inside the zero extent
  ASSERT_TRUE(part.ok());
  ASSERT_EQ(part->size(), 1u);
  EXPECT_TRUE((*part)[0].zero);
  EXPECT_EQ((*part)[0].length, 100u);
  EXPECT_EQ(fake_->total_gets(), 0);
}

// StageImage (hloop fetch --all/--update) over a real HTTP server that counts
// requests: chunks already in the disk cache are counted and not fetched.
class StageImageTest : public ImageDeviceTest {
 protected:
  // Serves the chunk files of every image added, logging each request.
  void Serve(const TestImage& img) { files_.insert(img.files.begin(), img.files.end()); }
  hloop::testing::TestHttpServer& server() {
    if (!server_)
      server_ = std::make_unique<hloop::testing::TestHttpServer>(
          [this](const httplib::Request& req, httplib::Response& res) {
            auto it = files_.find(req.path.substr(1));
            if (it == files_.end()) {
              res.status = 404;
              return;
            }
            res.set_content(it->second, "application/octet-stream");
          });
    return *server_;
  }
  std::unique_ptr<ImageDevice> Open(const TestImage& img, std::unique_ptr<cache::DiskCache> cache) {
    fetch::FetchOptions fo;
    fo.max_attempts = 1;
    auto source = std::make_unique<fetch::HttpSource>(
        std::make_unique<fetch::FetchEngine>(server().base(), fo));
    return std::make_unique<ImageDevice>(img.Index(), std::move(source), std::move(cache), Quiet());
  }
  Result<StageReport> Stage(const TestImage& img, std::unique_ptr<cache::DiskCache> cache) {
    auto dev = Open(img, std::move(cache));
    return StageImage(*dev, server().base() + "test.idx", StageOptions{.jobs = 4, .progress = {}});
  }
  uint64_t StoredSize(const TestImage& img, uint64_t i) {
    return img.files.at(img.ChunkRel(i)).size();
  }

  std::map<std::string, std::string> files_;  // written before the server starts
  std::unique_ptr<hloop::testing::TestHttpServer> server_;
};

TEST_F(StageImageTest, FetchesOnlyTheChunksTheCacheLacks) {
  TestImage img = BuildImage(MixedContent());
  Serve(img);
  {
    // A reader already brought chunks 0 and 7 into the cache.
    auto dev = Open(img, OpenCache(tmp_.Join("cache")));
    std::string buf(kCs, '\0');
    ASSERT_TRUE(dev->Read(0, kCs, buf.data()).ok());
    ASSERT_TRUE(dev->Read(7 * kCs, kCs, buf.data()).ok());
  }
  ASSERT_EQ(server().log().size(), 2u);
  auto r = Stage(img, OpenCache(tmp_.Join("cache")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->chunks, uint64_t(kMixedUnique));
  EXPECT_EQ(r->cached_chunks, 2u);
  EXPECT_EQ(r->cached_raw_bytes, 2u * kCs);
  EXPECT_EQ(r->cached_stored_bytes, StoredSize(img, 0) + StoredSize(img, 7));
  EXPECT_EQ(r->fetched_chunks, uint64_t(kMixedUnique - 2));
  // Unique chunks: 0,1,2,7..13; 13 is the 1000-byte tail.
  EXPECT_EQ(r->fetched_raw_bytes, 7u * kCs + 1000);
  uint64_t stored = 0;
  for (uint64_t i : {1, 2, 8, 9, 10, 11, 12, 13}) stored += StoredSize(img, i);
  EXPECT_EQ(r->fetched_stored_bytes, stored);
  EXPECT_EQ(r->raw_bytes, r->cached_raw_bytes + r->fetched_raw_bytes);
  EXPECT_EQ(r->stored_bytes, r->cached_stored_bytes + r->fetched_stored_bytes);
  // Every distinct chunk crossed the wire exactly once, the cached ones before.
  EXPECT_EQ(server().log().size(), size_t(kMixedUnique));
  for (uint64_t i : {0, 1, 2, 7, 8, 9, 10, 11, 12, 13})
    EXPECT_EQ(server().count("/" + img.ChunkRel(i)), 1) << "chunk " << i;

  // Staged: a second run fetches nothing, and neither does reading the image.
  auto again = Stage(img, OpenCache(tmp_.Join("cache")));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->fetched_chunks, 0u);
  EXPECT_EQ(again->fetched_stored_bytes, 0u);
  EXPECT_EQ(again->cached_chunks, uint64_t(kMixedUnique));
  auto dev = Open(img, OpenCache(tmp_.Join("cache")));
  EXPECT_EQ(FirstDifference(ReadAll(dev.get()), img.content), "");
  EXPECT_EQ(server().log().size(), size_t(kMixedUnique));
}

// The update: v2 shares all but three chunks with v1, which is staged. Only
// v2's new chunks are fetched, and then v2 reads without the network.
TEST_F(StageImageTest, AnUpdateFetchesOnlyTheNewVersionsNewChunks) {
  TestImage v1 = BuildImage(MixedContent());
  std::string content2 = MixedContent();
  content2.replace(10 * kCs, 3 * kCs, RandomBytes(3 * kCs, 77));
  TestImage v2 = BuildImage(content2);
  Serve(v1);
  Serve(v2);
  auto r1 = Stage(v1, OpenCache(tmp_.Join("cache")));
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ(r1->fetched_chunks, uint64_t(kMixedUnique));
  const size_t before = server().log().size();
  ASSERT_EQ(before, size_t(kMixedUnique));

  auto r2 = Stage(v2, OpenCache(tmp_.Join("cache")));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->fetched_chunks, 3u);
  EXPECT_EQ(r2->fetched_raw_bytes, 3u * kCs);
  EXPECT_EQ(r2->fetched_stored_bytes, StoredSize(v2, 10) + StoredSize(v2, 11) + StoredSize(v2, 12));
  EXPECT_EQ(r2->cached_chunks, uint64_t(kMixedUnique - 3));
  const auto log = server().log();
  ASSERT_EQ(log.size(), before + 3);
  std::set<std::string> fetched(log.begin() + before, log.end());
  EXPECT_EQ(fetched, (std::set<std::string>{"/" + v2.ChunkRel(10), "/" + v2.ChunkRel(11),
                                            "/" + v2.ChunkRel(12)}));
  auto dev = Open(v2, OpenCache(tmp_.Join("cache")));
  EXPECT_EQ(FirstDifference(ReadAll(dev.get()), v2.content), "");
  EXPECT_EQ(server().log().size(), before + 3);
}

TEST_F(StageImageTest, StagesHotChunksAndSkipsTableChunksTheExtentsCover_Issue14) {
  TestImage img = RelaidImage();
  Serve(img);
  auto r = Stage(img, OpenCache(tmp_.Join("cache")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // The 10 distinct data chunks but 10 and 11, and the 2 hot chunks.
  EXPECT_EQ(r->chunks, uint64_t(kMixedUnique - 2 + 2));
  EXPECT_EQ(r->fetched_chunks, r->chunks);
  const format::Index ix = img.Index();
  uint64_t raw = 0;
  for (uint64_t k = 0; k < 2; k++) raw += ix.chunk_length(ix.chunk_count() + k);
  EXPECT_EQ(r->raw_bytes, raw + (kMixedUnique - 2 - 1) * kCs + 1000);
  for (const std::string& rel : img.hot_rels) EXPECT_EQ(server().count("/" + rel), 1) << rel;
  for (uint64_t i = 0; i < img.chunk_count(); i++) {
    if (CoveredTableChunk(i)) {
      EXPECT_EQ(server().count("/" + img.ChunkRel(i)), 0) << i;
    }
  }
  EXPECT_EQ(server().log().size(), r->chunks);
  // Staged: reading the whole image needs no request.
  auto dev = Open(img, OpenCache(tmp_.Join("cache")));
  EXPECT_EQ(FirstDifference(ReadAll(dev.get()), img.content), "");
  EXPECT_EQ(server().log().size(), r->chunks);
}

TEST_F(StageImageTest, FailsNamingAHotChunkThatCannotBeFetched_Issue14) {
  TestImage img = RelaidImage();
  Serve(img);
  files_.erase(img.hot_rels[1]);
  auto r = Stage(img, OpenCache(tmp_.Join("cache")));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  const std::string msg = r.status().ToString();
  EXPECT_NE(msg.find("1 of 10 chunks"), std::string::npos) << msg;
  EXPECT_NE(msg.find("hot chunk 1 (" +
                     format::ToHex(img.Index().entry(img.chunk_count() + 1).hash) + ")"),
            std::string::npos)
      << msg;
}

TEST_F(StageImageTest, FailsNamingAChunkThatCannotBeFetched) {
  TestImage img = BuildImage(MixedContent());
  Serve(img);
  files_.erase(img.ChunkRel(8));
  auto r = Stage(img, OpenCache(tmp_.Join("cache")));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  const std::string msg = r.status().ToString();
  EXPECT_NE(msg.find("1 of 10 chunks"), std::string::npos) << msg;
  EXPECT_NE(msg.find("chunk 8 (" + format::ToHex(format::Sha256(img.Chunk(8))) + ")"),
            std::string::npos)
      << msg;
}

TEST_F(StageImageTest, FailsWhenTheImageDoesNotFitInTheCache) {
  TestImage img = BuildImage(MixedContent());
  Serve(img);
  cache::DiskCacheOptions small = CacheOptions(tmp_.Join("cache"));
  small.max_bytes = 4 * kCs;
  auto cache = cache::DiskCache::Open(small);
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  auto r = Stage(img, std::move(cache.value()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNoSpace) << r.status().ToString();
  EXPECT_NE(r.status().message().find("are not in the cache"), std::string::npos)
      << r.status().ToString();
}

TEST_F(StageImageTest, NeedsADiskCache) {
  TestImage img = BuildImage(MixedContent());
  Serve(img);
  auto r = Stage(img, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
  EXPECT_TRUE(server().log().empty());
}

}  // namespace
}  // namespace hloop::disk
