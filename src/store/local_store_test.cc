#include "store/local_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "format/chunk_file.h"
#include "testing/temp_dir.h"

namespace hloop::store {
namespace {

using hloop::testing::FirstDifference;
using hloop::testing::ReadTestFile;
using hloop::testing::ScopedTempDir;
using hloop::testing::WriteTestFile;
namespace fs = std::filesystem;

std::string ChunkFileFor(const std::string& raw) {
  std::string file;
  EXPECT_TRUE(format::EncodeChunk(raw, format::Codec::kZstd, 3, &file).ok());
  return file;
}

// Every path under `root` whose name contains ".tmp.".
std::vector<std::string> TempFiles(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) out.push_back(e.path());
  return out;
}

class LocalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = LocalStore::Open(tmp_.Join("store"), /*create=*/true);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_.emplace(std::move(s.value()));
  }
  LocalStore& store() { return *store_; }

  ScopedTempDir tmp_;
  std::optional<LocalStore> store_;
};

TEST_F(LocalStoreTest, OpenCreatesLayout) {
  EXPECT_TRUE(fs::is_directory(tmp_.Join("store/chunks")));
  EXPECT_EQ(store().root(), tmp_.Join("store"));
  EXPECT_EQ(store().IndexPath("deb"), tmp_.Join("store/deb.idx"));
  format::Hash h = format::Sha256("x");
  EXPECT_EQ(store().ChunkFilePath(h), tmp_.Join("store/") + format::ChunkPath(h));
}

TEST_F(LocalStoreTest, OpenStripsTrailingSlashes) {
  auto s = LocalStore::Open(tmp_.Join("store") + "//", false);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->root(), tmp_.Join("store"));
}

TEST_F(LocalStoreTest, OpenWithoutCreateNeedsExistingDirectory) {
  auto missing = LocalStore::Open(tmp_.Join("nope"), /*create=*/false);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();
  EXPECT_FALSE(fs::exists(tmp_.Join("nope")));
  ASSERT_TRUE(WriteTestFile(tmp_.Join("file"), "x"));
  auto file = LocalStore::Open(tmp_.Join("file"), /*create=*/false);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), Status::Code::kInvalidArgument);
}

TEST_F(LocalStoreTest, PutChunkWritesOnce) {
  std::string raw = "some chunk content";
  format::Hash h = format::Sha256(raw);
  std::string file = ChunkFileFor(raw);
  EXPECT_FALSE(store().HasChunk(h));
  bool written = false;
  ASSERT_TRUE(store().PutChunk(h, file, /*durable=*/false, &written).ok());
  EXPECT_TRUE(written);
  EXPECT_TRUE(store().HasChunk(h));
  EXPECT_EQ(FirstDifference(ReadTestFile(store().ChunkFilePath(h)), file), "");

  // A second put of the same hash does not touch the file.
  written = true;
  ASSERT_TRUE(store().PutChunk(h, "different bytes", /*durable=*/true, &written).ok());
  EXPECT_FALSE(written);
  EXPECT_EQ(FirstDifference(ReadTestFile(store().ChunkFilePath(h)), file), "");
}

TEST_F(LocalStoreTest, ReadChunkReturnsTheFile) {
  std::string raw = "abc";
  format::Hash h = format::Sha256(raw);
  std::string file = ChunkFileFor(raw);
  bool written;
  ASSERT_TRUE(store().PutChunk(h, file, true, &written).ok());
  auto r = store().ReadChunk(h);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(FirstDifference(r.value(), file), "");
  std::string out;
  EXPECT_TRUE(format::DecodeChunk(r.value(), h, 3, &out).ok());
  EXPECT_EQ(out, raw);
}

TEST_F(LocalStoreTest, ReadMissingChunkIsNotFound) {
  auto r = store().ReadChunk(format::Sha256("missing"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
}

TEST_F(LocalStoreTest, ListChunksReturnsSortedHashes) {
  std::vector<format::Hash> want;
  for (int i = 0; i < 20; i++) {
    std::string raw = "chunk " + std::to_string(i);
    format::Hash h = format::Sha256(raw);
    bool written;
    ASSERT_TRUE(store().PutChunk(h, ChunkFileFor(raw), false, &written).ok());
    want.push_back(h);
  }
  std::sort(want.begin(), want.end());
  auto r = store().ListChunks();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value(), want);
}

TEST_F(LocalStoreTest, ListChunksOfEmptyStore) {
  auto r = store().ListChunks();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST_F(LocalStoreTest, ListChunksIgnoresForeignFilesInFanoutDirs) {
  format::Hash h = format::Sha256("real");
  bool written;
  ASSERT_TRUE(store().PutChunk(h, ChunkFileFor("real"), false, &written).ok());
  std::string hex = format::ToHex(h);
  std::string dir = tmp_.Join("store/chunks/") + hex.substr(0, 2);
  ASSERT_TRUE(WriteTestFile(dir + "/notes.txt", "x"));
  ASSERT_TRUE(WriteTestFile(dir + "/" + hex + ".tmp.123.4", "partial"));
  ASSERT_TRUE(WriteTestFile(dir + "/" + hex.substr(0, 63), "short name"));
  // A well-formed hash in the wrong fan-out directory is not where readers look.
  format::Hash other = format::Sha256("elsewhere");
  std::string other_hex = format::ToHex(other);
  std::string wrong_dir = other_hex.substr(0, 2) == "00" ? "01" : "00";
  fs::create_directories(tmp_.Join("store/chunks/") + wrong_dir);
  ASSERT_TRUE(WriteTestFile(tmp_.Join("store/chunks/") + wrong_dir + "/" + other_hex, "x"));
  auto r = store().ListChunks();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value(), std::vector<format::Hash>{h});
}

// "files with other names are skipped" (local_store.h) holds for files
// directly in chunks/ too, such as a README or a .DS_Store left by a tool.
TEST_F(LocalStoreTest, ListChunksIgnoresForeignFilesInChunksDir) {
  format::Hash h = format::Sha256("real");
  bool written;
  ASSERT_TRUE(store().PutChunk(h, ChunkFileFor("real"), false, &written).ok());
  ASSERT_TRUE(WriteTestFile(tmp_.Join("store/chunks/README"), "chunk files live below"));
  auto r = store().ListChunks();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value(), std::vector<format::Hash>{h});
}

TEST_F(LocalStoreTest, PutIndexReadIndexRoundTrip) {
  ASSERT_TRUE(store().PutIndex("debian", "index bytes v1").ok());
  auto r = store().ReadIndex("debian");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), "index bytes v1");
  ASSERT_TRUE(store().PutIndex("debian", "index bytes v2").ok());
  EXPECT_EQ(store().ReadIndex("debian").value(), "index bytes v2");
  EXPECT_EQ(ReadTestFile(tmp_.Join("store/debian.idx")), "index bytes v2");
}

TEST_F(LocalStoreTest, ReadMissingIndexIsNotFound) {
  auto r = store().ReadIndex("nope");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound());
}

TEST_F(LocalStoreTest, ListIndexesReturnsSortedNamesOnly) {
  ASSERT_TRUE(store().PutIndex("zeta", "z").ok());
  ASSERT_TRUE(store().PutIndex("alpha", "a").ok());
  ASSERT_TRUE(store().PutIndex("mid.v2", "m").ok());
  ASSERT_TRUE(WriteTestFile(tmp_.Join("store/readme.txt"), "x"));
  ASSERT_TRUE(WriteTestFile(tmp_.Join("store/.idx"), "x"));
  ASSERT_TRUE(WriteTestFile(tmp_.Join("store/old.idx.tmp.1.2"), "x"));
  ASSERT_TRUE(WriteTestFile(tmp_.Join("store/x.idxy"), "x"));
  auto r = store().ListIndexes();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), (std::vector<std::string>{"alpha", "mid.v2", "zeta"}));
}

TEST_F(LocalStoreTest, LeavesNoTemporaryFiles) {
  for (int i = 0; i < 10; i++) {
    std::string raw = "c" + std::to_string(i);
    bool written;
    ASSERT_TRUE(store().PutChunk(format::Sha256(raw), ChunkFileFor(raw), i % 2, &written).ok());
    ASSERT_TRUE(store().PutIndex("img" + std::to_string(i % 3), raw).ok());
  }
  EXPECT_TRUE(TempFiles(tmp_.Join("store")).empty());
}

TEST_F(LocalStoreTest, ConcurrentPutsOfOneChunkWriteItOnce) {
  std::string raw = "shared";
  format::Hash h = format::Sha256(raw);
  std::string file = ChunkFileFor(raw);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&] {
      bool written;
      if (store().PutChunk(h, file, false, &written).ok()) ok++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 8);
  EXPECT_EQ(FirstDifference(ReadTestFile(store().ChunkFilePath(h)), file), "");
  EXPECT_TRUE(TempFiles(tmp_.Join("store")).empty());
}

TEST_F(LocalStoreTest, ChunkFileSizeIsZeroForMissingAndEmptyFiles) {
  std::string raw = "sized";
  format::Hash h = format::Sha256(raw);
  EXPECT_EQ(store().ChunkFileSize(h), 0u);
  std::string file = ChunkFileFor(raw);
  bool written;
  ASSERT_TRUE(store().PutChunk(h, file, false, &written).ok());
  EXPECT_EQ(store().ChunkFileSize(h), file.size());
  // Debris of a crash before the sync: no file that could be a chunk.
  ASSERT_TRUE(WriteTestFile(store().ChunkFilePath(h), std::string(format::kChunkHeaderSize, 'x')));
  EXPECT_EQ(store().ChunkFileSize(h), 0u);
  ASSERT_TRUE(WriteTestFile(store().ChunkFilePath(h), ""));
  EXPECT_EQ(store().ChunkFileSize(h), 0u);
}

TEST_F(LocalStoreTest, SyncChunksFailsWhenTheStoreDirectoryIsGone) {
  EXPECT_TRUE(store().SyncChunks().ok());
  fs::remove_all(tmp_.Join("store"));
  Status st = store().SyncChunks();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(tmp_.Join("store")), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace hloop::store
