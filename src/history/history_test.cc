// Diff, Log and Gc over small synthetic stores: chunk files and indexes
// written directly (chunk size 4 KiB), with PARENT records as commit writes.
#include <sys/stat.h>
#include <utime.h>

#include <ctime>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "format/chunk_file.h"
#include "history/diff.h"
#include "history/gc.h"
#include "history/log.h"
#include "pack/verify.h"
#include "publish/publish.h"
#include "testing/store_util.h"
#include "testing/temp_dir.h"

namespace hloop::history {
namespace {

using hloop::testing::ChunkNames;
using hloop::testing::LoadStoreIndex;
using hloop::testing::ScopedTempDir;
using hloop::testing::WriteTestFile;

constexpr uint32_t kCs = format::kMinChunkSize;

// A chunk's content: a letter repeated ('\0' for a zero chunk).
std::string Content(char c, uint32_t len = kCs) { return std::string(len, c); }

class HistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::LocalStore::Open(tmp_.Join("store"), /*create=*/true);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_.emplace(std::move(s.value()));
  }

  // Writes index NAME of an image whose chunks hold `chunks` (one letter
  // each; '0' a zero chunk) and whose last chunk is `last_len` long (0:
  // full), with `parent` as its PARENT. Returns the index.
  // With `relaid`, the index also has a layout (as `hloop relayout` makes):
  // one hot chunk holding the first halves of chunks 0 and 1, which must be
  // data chunks.
  format::Index Put(const std::string& name, const std::string& chunks,
                    const format::Index* parent = nullptr, uint32_t last_len = 0,
                    bool relaid = false) {
    const uint64_t size = uint64_t(chunks.size()) * kCs - (last_len ? kCs - last_len : 0);
    format::IndexBuilder b(size, kCs, format::Codec::kNone);
    for (size_t i = 0; i < chunks.size(); i++) {
      const uint32_t len = (i + 1 == chunks.size() && last_len) ? last_len : kCs;
      format::ChunkEntry e;
      if (chunks[i] == '0') {
        e.flags = format::kEntryFlagZero;
      } else {
        const std::string raw = Content(chunks[i], len);
        std::string file;
        EXPECT_TRUE(format::EncodeChunk(raw, format::Codec::kNone, 0, &file).ok());
        e.hash = format::Sha256(raw);
        e.stored_size = uint32_t(file.size());
        bool written;
        EXPECT_TRUE(store_->PutChunk(e.hash, file, false, &written).ok());
      }
      b.set_entry(i, e);
    }
    if (relaid) b.set_layout(HotLayout(chunks));
    b.meta().name = name;
    b.meta().created = 1700000000;
    if (parent) {
      b.meta().parent_digest = parent->digest();
      b.meta().parent_name = parent->meta().name;
    }
    EXPECT_TRUE(store_->PutIndex(name, b.Encode()).ok());
    return LoadStoreIndex(*store_, name);
  }

  // The hot chunk of Put(..., relaid=true), written to the store.
  static std::string HotContent(const std::string& chunks) {
    return Content(chunks[0], kCs / 2) + Content(chunks[1], kCs / 2);
  }
  format::Layout HotLayout(const std::string& chunks) {
    const std::string raw = HotContent(chunks);
    std::string file;
    EXPECT_TRUE(format::EncodeChunk(raw, format::Codec::kNone, 0, &file).ok());
    bool written;
    EXPECT_TRUE(store_->PutChunk(format::Sha256(raw), file, false, &written).ok());
    format::Layout l;
    l.hot.push_back({.hash = format::Sha256(raw),
                     .stored_size = uint32_t(file.size()),
                     .raw_size = uint32_t(raw.size())});
    l.extents.push_back({.image_offset = 0, .length = kCs / 2, .hot = 0, .hot_offset = 0});
    l.extents.push_back({.image_offset = kCs, .length = kCs / 2, .hot = 0, .hot_offset = kCs / 2});
    return l;
  }
  std::string HotHex(const std::string& chunks) {
    return format::ToHex(format::Sha256(HotContent(chunks)));
  }

  std::string ChunkHex(char c, uint32_t len = kCs) {
    return format::ToHex(format::Sha256(Content(c, len)));
  }
  // Sets the mtime of every chunk file to `t`.
  void AgeChunks(time_t t) {
    for (const auto& hex : ChunkNames(*store_)) {
      format::Hash h;
      ASSERT_TRUE(format::ParseHash(hex, &h));
      struct utimbuf ut {
        t, t
      };
      ASSERT_EQ(::utime(store_->ChunkFilePath(h).c_str(), &ut), 0);
    }
  }
  bool Exists(const std::string& rel) {
    struct stat sb;
    return ::stat(tmp_.Join("store/" + rel).c_str(), &sb) == 0;
  }

  ScopedTempDir tmp_;
  std::optional<store::LocalStore> store_;
};

// ---- Diff ----

TEST_F(HistoryTest, DiffClassifiesChunksByNumber) {
  auto a = Put("a", "ab0cd0e");
  auto b = Put("b", "aX0d0fe");
  // 0: a=a unchanged; 1: b->X changed; 2: 0=0 unchanged; 3: c->d changed;
  // 4: d->0 removed; 5: 0->f added; 6: e=e unchanged.
  auto d = Diff(a, b);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->chunks_added, 1u);
  EXPECT_EQ(d->chunks_removed, 1u);
  EXPECT_EQ(d->chunks_changed, 2u);
  EXPECT_EQ(d->chunks_unchanged, 3u);
  // Chunks 1 and 3..5 differ: two ranges, 3..5 merged.
  std::vector<ByteRange> want = {{1 * kCs, kCs}, {3 * kCs, 3 * kCs}};
  EXPECT_EQ(d->ranges, want);
  EXPECT_EQ(d->bytes_changed, 4u * kCs);
  // New files: X and f ('d' is in A already, at another chunk number).
  EXPECT_EQ(d->download.files, 2u);
  EXPECT_EQ(d->download.bytes, 2u * (kCs + format::kChunkHeaderSize));
}

TEST_F(HistoryTest, DiffOfAnIndexWithItselfIsEmpty) {
  auto a = Put("a", "abca0");
  auto d = Diff(a, a);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->chunks_unchanged, 5u);
  EXPECT_EQ(d->chunks_added + d->chunks_removed + d->chunks_changed, 0u);
  EXPECT_TRUE(d->ranges.empty());
  EXPECT_EQ(d->download.files, 0u);
  EXPECT_EQ(d->download.bytes, 0u);
}

TEST_F(HistoryTest, DiffCountsRepeatedNewContentOnce) {
  auto a = Put("a", "aaaa");
  auto b = Put("b", "abbb");
  auto d = Diff(a, b);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->chunks_changed, 3u);
  EXPECT_EQ(d->download.files, 1u);
  EXPECT_EQ(d->download.bytes, kCs + format::kChunkHeaderSize);
}

TEST_F(HistoryTest, DiffSaysWhichSideHasALayoutAndWhatItsHotChunksCost) {
  auto a = Put("a", "abc");
  auto b = Put("b", "abc", nullptr, 0, /*relaid=*/true);
  auto d = Diff(a, b);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  // The same image: the tables agree, only the hot chunk is new.
  EXPECT_EQ(d->chunks_unchanged, 3u);
  EXPECT_TRUE(d->ranges.empty());
  EXPECT_FALSE(d->layout_a);
  EXPECT_TRUE(d->layout_b);
  EXPECT_EQ(d->hot_chunks_a, 0u);
  EXPECT_EQ(d->hot_chunks_b, 1u);
  const uint64_t hot_file = kCs + format::kChunkHeaderSize;
  EXPECT_EQ(d->hot_download.files, 1u);
  EXPECT_EQ(d->hot_download.bytes, hot_file);
  EXPECT_EQ(d->download.files, 1u);
  EXPECT_EQ(d->download.bytes, hot_file);
  // Back to the original layout: nothing to fetch.
  d = Diff(b, a);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->layout_a);
  EXPECT_FALSE(d->layout_b);
  EXPECT_EQ(d->hot_download.files, 0u);
  EXPECT_EQ(d->download.files, 0u);
  // A second relaid version with a changed chunk 2 shares the hot chunk.
  auto c = Put("c", "abX", nullptr, 0, /*relaid=*/true);
  d = Diff(b, c);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->chunks_changed, 1u);
  EXPECT_EQ(d->hot_download.files, 0u);
  EXPECT_EQ(d->download.files, 1u);
}

TEST_F(HistoryTest, DiffOfImagesOfDifferentSizes) {
  auto a = Put("a", "ab", nullptr, 100);  // 4196 bytes: chunk 1 is 100 bytes of 'b'
  auto b = Put("b", "abc0");              // 4 full chunks
  auto d = Diff(a, b);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->chunks_a, 2u);
  EXPECT_EQ(d->chunks_b, 4u);
  EXPECT_EQ(d->chunks_unchanged, 1u);  // chunk 0
  EXPECT_EQ(d->chunks_changed, 1u);    // chunk 1: 100 bytes of b, then 4096
  EXPECT_EQ(d->chunks_added, 1u);      // chunk 2: absent -> c
  // Chunk 3 (absent -> zero) is in no count but its bytes changed.
  std::vector<ByteRange> want = {{kCs, 3 * kCs}};
  EXPECT_EQ(d->ranges, want);
  auto back = Diff(b, a);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->chunks_removed, 1u);
  EXPECT_EQ(back->ranges, want);  // in the larger image's extent
}

TEST_F(HistoryTest, DiffRefusesDifferentChunkSizes) {
  auto a = Put("a", "ab");
  format::IndexBuilder b(2 * kCs, 2 * kCs, format::Codec::kNone);
  b.set_entry(0, format::ChunkEntry{.hash = {}, .stored_size = 0, .flags = format::kEntryFlagZero});
  auto other = format::Index::Parse(b.Encode(), "other");
  ASSERT_TRUE(other.ok());
  auto d = Diff(a, *other);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("chunk sizes"), std::string::npos) << d.status().message();
}

// ---- Log ----

TEST_F(HistoryTest, LogWalksTheParentChain) {
  auto v1 = Put("v1", "abc");
  auto v2 = Put("v2", "abd", &v1);
  auto v3 = Put("v3", "xbd0", &v2);
  auto log = Log(store_->IndexPath("v3"), fetch::FetchOptions{});
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_EQ(log->versions.size(), 3u);
  EXPECT_EQ(log->stopped, "");
  EXPECT_EQ(log->versions[0].name, "v3");
  EXPECT_EQ(log->versions[1].name, "v2");
  EXPECT_EQ(log->versions[2].name, "v1");
  EXPECT_EQ(log->versions[0].digest, v3.digest());
  EXPECT_EQ(log->versions[0].image_size, 4u * kCs);
  EXPECT_EQ(log->versions[0].stored_bytes, v3.summary().stored_bytes);
  EXPECT_EQ(log->versions[0].created, 1700000000u);
  const uint64_t file = kCs + format::kChunkHeaderSize;
  ASSERT_TRUE(log->versions[0].added && log->versions[1].added && log->versions[2].added);
  EXPECT_EQ(log->versions[0].added->files, 1u);  // x
  EXPECT_EQ(log->versions[0].added->bytes, file);
  EXPECT_EQ(log->versions[1].added->files, 1u);  // d
  EXPECT_EQ(log->versions[2].added->files, 3u);  // the first version: all of it
  EXPECT_EQ(log->versions[2].added->bytes, 3 * file);
}

TEST_F(HistoryTest, LogStopsAtAMissingParent) {
  auto v1 = Put("v1", "abc");
  Put("v2", "abd", &v1);
  ASSERT_TRUE(store_->RemoveIndex("v1").ok());
  auto log = Log(store_->IndexPath("v2"), fetch::FetchOptions{});
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_EQ(log->versions.size(), 1u);
  EXPECT_FALSE(log->versions[0].added.has_value());
  EXPECT_NE(log->stopped.find("not found"), std::string::npos) << log->stopped;
  EXPECT_NE(log->stopped.find("v1.idx"), std::string::npos) << log->stopped;
}

TEST_F(HistoryTest, LogStopsAtAReplacedParent) {
  auto v1 = Put("v1", "abc");
  Put("v2", "abd", &v1);
  Put("v1", "zzz");  // another version under the parent's name
  auto log = Log(store_->IndexPath("v2"), fetch::FetchOptions{});
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->versions.size(), 1u);
  EXPECT_NE(log->stopped.find("not the recorded " + format::ToHex(v1.digest())), std::string::npos)
      << log->stopped;
}

TEST_F(HistoryTest, LogOfAMissingIndexIsAnError) {
  auto log = Log(store_->IndexPath("nope"), fetch::FetchOptions{});
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("nope.idx"), std::string::npos);
}

// ---- Gc ----

TEST_F(HistoryTest, GcRemovesOnlyUnreferencedOldChunks) {
  auto v1 = Put("v1", "abc");
  Put("v2", "abd", &v1);
  AgeChunks(std::time(nullptr) - 7200);
  // A chunk file no index uses, old, and one written just now.
  std::string file;
  ASSERT_TRUE(format::EncodeChunk(Content('o'), format::Codec::kNone, 0, &file).ok());
  bool written;
  ASSERT_TRUE(store_->PutChunk(format::Sha256(Content('o')), file, false, &written).ok());
  AgeChunks(std::time(nullptr) - 7200);
  ASSERT_TRUE(format::EncodeChunk(Content('y'), format::Codec::kNone, 0, &file).ok());
  ASSERT_TRUE(store_->PutChunk(format::Sha256(Content('y')), file, false, &written).ok());
  ASSERT_TRUE(store_->RemoveIndex("v1").ok());  // c is now v1's alone
  GcOptions o;
  o.grace_s = 3600;
  auto rep = Gc(*store_, o);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  std::set<std::string> removed;
  for (const auto& h : rep->chunks_removed) removed.insert(format::ToHex(h));
  EXPECT_EQ(removed, (std::set<std::string>{ChunkHex('c'), ChunkHex('o')}));
  EXPECT_EQ(rep->chunks_total, 6u);
  EXPECT_EQ(rep->chunks_referenced, 3u);
  EXPECT_EQ(rep->chunks_young, 1u);
  EXPECT_EQ(rep->chunk_bytes_removed, 2u * (kCs + format::kChunkHeaderSize));
  EXPECT_EQ(ChunkNames(*store_),
            (std::set<std::string>{ChunkHex('a'), ChunkHex('b'), ChunkHex('d'),
                                   format::ToHex(format::Sha256(Content('y')))}));
  EXPECT_TRUE(rep->indexes_removed.empty());
  EXPECT_EQ(rep->indexes_kept, (std::vector<std::string>{"v2"}));
}

TEST_F(HistoryTest, GcKeepsTheHotChunksOfKeptIndexes_Issue14) {
  Put("v1", "abc", nullptr, 0, /*relaid=*/true);
  AgeChunks(std::time(nullptr) - 7200);
  GcOptions o;
  o.grace_s = 3600;
  auto rep = Gc(*store_, o);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_TRUE(rep->chunks_removed.empty());
  EXPECT_EQ(rep->chunks_referenced, 4u);
  EXPECT_EQ(ChunkNames(*store_),
            (std::set<std::string>{ChunkHex('a'), ChunkHex('b'), ChunkHex('c'), HotHex("abc")}));
  // Once no index names it, the hot chunk goes like any chunk file.
  ASSERT_TRUE(store_->RemoveIndex("v1").ok());
  Put("v2", "abc");
  AgeChunks(std::time(nullptr) - 7200);
  rep = Gc(*store_, o);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  ASSERT_EQ(rep->chunks_removed.size(), 1u);
  EXPECT_EQ(format::ToHex(rep->chunks_removed[0]), HotHex("abc"));
}

TEST_F(HistoryTest, VerifyAndPublishCheckHotChunkFiles_Issue14) {
  auto v1 = Put("v1", "abc", nullptr, 0, /*relaid=*/true);
  auto rep = pack::VerifyStore(*store_, {"v1"}, 1);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->chunks_checked, 4u);
  EXPECT_TRUE(rep->problems.empty());
  EXPECT_TRUE(publish::CheckChunksPresent(*store_, v1, "v1.idx").ok());
  // Without its hot chunk file the store cannot serve v1.
  bool removed = false;
  ASSERT_TRUE(store_->RemoveChunk(format::Sha256(HotContent("abc")), INT64_MAX, &removed).ok());
  ASSERT_TRUE(removed);
  rep = pack::VerifyStore(*store_, {"v1"}, 1);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  ASSERT_EQ(rep->problems.size(), 1u);
  EXPECT_EQ(rep->problems[0].what, "missing");
  EXPECT_EQ(rep->problems[0].hash, HotHex("abc"));
  EXPECT_NE(rep->problems[0].detail.find("v1.idx hot chunk 0"), std::string::npos)
      << rep->problems[0].detail;
  Status st = publish::CheckChunksPresent(*store_, v1, "v1.idx");
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  EXPECT_NE(st.message().find("1 of 4 chunk files"), std::string::npos) << st.ToString();
}

TEST_F(HistoryTest, GcDryRunRemovesNothing) {
  auto v1 = Put("v1", "abc");
  Put("v2", "abd", &v1);
  auto v2 = LoadStoreIndex(*store_, "v2");
  Put("v3", "xbd", &v2);
  AgeChunks(1000);
  const auto before = ChunkNames(*store_);
  GcOptions o;
  o.keep_last = 1;
  o.dry_run = true;
  auto rep = Gc(*store_, o);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->indexes_removed, (std::vector<std::string>{"v1", "v2"}));
  EXPECT_EQ(rep->chunks_removed.size(), 2u);  // c and a
  EXPECT_EQ(ChunkNames(*store_), before);
  EXPECT_TRUE(Exists("v1.idx") && Exists("v2.idx") && Exists("v3.idx"));
}

TEST_F(HistoryTest, GcKeepLastFollowsEachHistory) {
  auto v1 = Put("v1", "abc");
  auto v2 = Put("v2", "abd", &v1);
  Put("v3", "xbd", &v2);
  auto o1 = Put("other1", "pq");
  Put("other2", "pr", &o1);
  ASSERT_TRUE(WriteTestFile(tmp_.Join("store/v1.idx.sig"), "sig"));
  AgeChunks(1000);
  GcOptions o;
  o.keep_last = 2;
  auto rep = Gc(*store_, o);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->roots, (std::vector<std::string>{"other2", "v3"}));
  EXPECT_EQ(rep->indexes_removed, (std::vector<std::string>{"v1"}));
  EXPECT_EQ(rep->indexes_kept, (std::vector<std::string>{"other1", "other2", "v2", "v3"}));
  EXPECT_FALSE(Exists("v1.idx"));
  EXPECT_FALSE(Exists("v1.idx.sig"));
  // c was v1's alone.
  ASSERT_EQ(rep->chunks_removed.size(), 1u);
  EXPECT_EQ(format::ToHex(rep->chunks_removed[0]), ChunkHex('c'));
  EXPECT_EQ(rep->index_bytes_removed, v1.bytes().size() + 3);
}

TEST_F(HistoryTest, GcKeepLastStartsAtTheChannels) {
  auto v1 = Put("v1", "abc");
  auto v2 = Put("v2", "abd", &v1);
  Put("v3", "xbd", &v2);
  ASSERT_TRUE(WriteTestFile(tmp_.Join("store/stable.channel"), "points at v2"));
  AgeChunks(1000);
  GcOptions o;
  o.keep_last = 1;
  std::vector<std::string> asked;
  o.channel_index = [&](const std::string& path) -> Result<std::string> {
    asked.push_back(path);
    return std::string("v2.idx");
  };
  auto rep = Gc(*store_, o);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(asked, (std::vector<std::string>{tmp_.Join("store/stable.channel")}));
  EXPECT_EQ(rep->roots, (std::vector<std::string>{"v2"}));
  EXPECT_EQ(rep->indexes_removed, (std::vector<std::string>{"v1", "v3"}));
  std::set<std::string> removed;
  for (const auto& h : rep->chunks_removed) removed.insert(format::ToHex(h));
  EXPECT_EQ(removed, (std::set<std::string>{ChunkHex('c'), ChunkHex('x')}));
}

TEST_F(HistoryTest, GcRefusesAChannelPointingOutsideTheStore) {
  Put("v1", "abc");
  ASSERT_TRUE(WriteTestFile(tmp_.Join("store/stable.channel"), "x"));
  AgeChunks(1000);
  GcOptions o;
  o.keep_last = 1;
  o.channel_index = [](const std::string&) -> Result<std::string> {
    return std::string("gone.idx");
  };
  auto rep = Gc(*store_, o);
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.status().message().find("gone.idx"), std::string::npos);
  EXPECT_TRUE(Exists("v1.idx"));
  EXPECT_EQ(ChunkNames(*store_).size(), 3u);
  // A channel reader's error refuses too, and names the channel.
  o.channel_index = [](const std::string&) -> Result<std::string> {
    return Status::Corruption("bad signature");
  };
  rep = Gc(*store_, o);
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.status().message().find("stable.channel"), std::string::npos);
  EXPECT_NE(rep.status().message().find("bad signature"), std::string::npos);
}

TEST_F(HistoryTest, GcRefusesACorruptIndex) {
  Put("v1", "abc");
  Put("v2", "xyz");
  AgeChunks(1000);
  std::string bytes = hloop::testing::ReadTestFile(tmp_.Join("store/v2.idx"));
  bytes[200] ^= 1;
  ASSERT_TRUE(WriteTestFile(tmp_.Join("store/v2.idx"), bytes));
  auto rep = Gc(*store_, GcOptions{});
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.status().message().find("v2.idx"), std::string::npos) << rep.status().message();
  EXPECT_NE(rep.status().message().find("gc refused"), std::string::npos);
  EXPECT_EQ(ChunkNames(*store_).size(), 6u);
}

TEST_F(HistoryTest, GcDeletesIndexesBeforeChunks) {
  auto v1 = Put("v1", "abc");
  Put("v2", "xbd", &v1);
  AgeChunks(1000);
  std::vector<std::string> seen;  // at each deletion: does v1.idx exist?
  GcOptions o;
  o.keep_last = 1;
  o.before_delete = [&] { seen.push_back(Exists("v1.idx") ? "v1" : "-"); };
  auto rep = Gc(*store_, o);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  // One index, then a and c: by then the index naming them is gone.
  EXPECT_EQ(seen, (std::vector<std::string>{"v1", "-", "-"}));
}

TEST(LocalStoreRemoveTest, RemoveChunkKeepsAFileRewrittenSinceListed) {
  ScopedTempDir tmp;
  auto s = store::LocalStore::Open(tmp.Join("s"), true);
  ASSERT_TRUE(s.ok());
  std::string file;
  ASSERT_TRUE(format::EncodeChunk(Content('a'), format::Codec::kNone, 0, &file).ok());
  const format::Hash h = format::Sha256(Content('a'));
  bool written, removed;
  ASSERT_TRUE(s->PutChunk(h, file, false, &written).ok());
  ASSERT_TRUE(s->RemoveChunk(h, std::time(nullptr) - 60, &removed).ok());
  EXPECT_FALSE(removed);
  EXPECT_TRUE(s->HasChunk(h));
  ASSERT_TRUE(s->RemoveChunk(h, std::time(nullptr) + 60, &removed).ok());
  EXPECT_TRUE(removed);
  EXPECT_FALSE(s->HasChunk(h));
  ASSERT_TRUE(s->RemoveChunk(h, std::time(nullptr) + 60, &removed).ok());  // gone: fine
  EXPECT_FALSE(removed);
  auto files = s->ListChunkFiles();
  ASSERT_TRUE(files.ok());
  EXPECT_TRUE(files->empty());
}

}  // namespace
}  // namespace hloop::history
