#include "pack/packer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "format/chunk_file.h"
#include "format/codec.h"
#include "format/index.h"
#include "pack/verify.h"
#include "testing/store_util.h"
#include "testing/temp_dir.h"

namespace hloop::pack {
namespace {

using format::Codec;
using hloop::testing::ChunkNames;
using hloop::testing::LoadStoreIndex;
using hloop::testing::RandomBytes;
using hloop::testing::ReadTestFile;
using hloop::testing::ScopedTempDir;
using hloop::testing::WriteTestFile;
namespace fs = std::filesystem;

constexpr uint32_t kCs = 4096;

std::string Text(size_t n, int seed) {
  std::string s;
  for (int i = 0; s.size() < n; i++)
    s += "record " + std::to_string(seed) + "/" + std::to_string(i) + "; ";
  s.resize(n);
  return s;
}

class PackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::LocalStore::Open(tmp_.Join("store"), true);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_.emplace(std::move(s.value()));
  }
  store::LocalStore& store() { return *store_; }
  std::string image() const { return tmp_.Join("disk.img"); }

  PackOptions Options(const std::string& name = "disk") {
    PackOptions o;
    o.name = name;
    o.chunk_size = kCs;
    o.threads = 2;
    return o;
  }
  writer::WriteSummary PackOk(const std::string& content, const PackOptions& o) {
    EXPECT_TRUE(WriteTestFile(image(), content));
    auto r = Pack(image(), store(), o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r.value() : writer::WriteSummary();
  }
  format::Index LoadIndex(const std::string& name = "disk") {
    return LoadStoreIndex(store(), name);
  }
  size_t ChunkFiles() { return ChunkNames(store()).size(); }
  // The index describes `content` exactly, and every chunk file decodes.
  void ExpectIndexDescribes(const format::Index& ix, const std::string& content) {
    ASSERT_EQ(ix.image_size(), content.size());
    for (uint64_t i = 0; i < ix.chunk_count(); i++) {
      std::string raw = content.substr(i * ix.chunk_size(), ix.chunk_size());
      format::ChunkEntry e = ix.entry(i);
      if (raw.find_first_not_of('\0') == std::string::npos) {
        EXPECT_TRUE(e.zero()) << i;
        EXPECT_EQ(e.stored_size, 0u) << i;
        continue;
      }
      ASSERT_FALSE(e.zero()) << i;
      ASSERT_EQ(e.hash, format::Sha256(raw)) << i;
      auto file = store().ReadChunk(e.hash);
      ASSERT_TRUE(file.ok()) << i;
      EXPECT_EQ(e.stored_size, file->size()) << i;
      std::string out;
      Status st = format::DecodeChunk(file.value(), e.hash, ix.chunk_length(i), &out);
      EXPECT_TRUE(st.ok()) << i << ": " << st.ToString();
    }
  }

  ScopedTempDir tmp_;
  std::optional<store::LocalStore> store_;
};

TEST_F(PackerTest, PacksAnImageThatReadsBack) {
  std::string content = RandomBytes(10 * kCs, 1) + Text(1234, 1);
  const time_t before = std::time(nullptr);
  writer::WriteSummary sum = PackOk(content, Options());
  EXPECT_EQ(sum.chunks_total, 11u);
  EXPECT_EQ(sum.chunks_unique, 11u);
  EXPECT_EQ(sum.chunks_new, 11u);
  EXPECT_EQ(sum.chunks_zero, 0u);
  EXPECT_EQ(sum.bytes_read, content.size());
  EXPECT_EQ(sum.index_path, store().IndexPath("disk"));
  std::string index_bytes = ReadTestFile(sum.index_path);
  EXPECT_EQ(sum.digest, format::Sha256(index_bytes));
  format::Index ix = LoadIndex();
  ExpectIndexDescribes(ix, content);
  EXPECT_EQ(ix.chunk_size(), kCs);
  EXPECT_EQ(ix.codec(), Codec::kZstd);
  EXPECT_EQ(ix.meta().name, "disk");
  EXPECT_EQ(ix.meta().tool.rfind("hloop ", 0), 0u) << ix.meta().tool;
  EXPECT_GE(ix.meta().created, uint64_t(before));
  EXPECT_LE(ix.meta().created, uint64_t(std::time(nullptr)));
  EXPECT_FALSE(ix.meta().parent_digest.has_value());
  EXPECT_EQ(ix.summary().unique_chunks, 11u);
  EXPECT_EQ(ix.summary().stored_bytes, sum.stored_bytes);
  uint64_t files = 0;
  auto listed = store().ListChunks();
  ASSERT_TRUE(listed.ok());
  for (const auto& h : listed.value()) files += fs::file_size(store().ChunkFilePath(h));
  EXPECT_EQ(sum.stored_bytes, files);
  EXPECT_EQ(sum.bytes_written, files + index_bytes.size());
  EXPECT_EQ(ChunkFiles(), 11u);
}

TEST_F(PackerTest, IdenticalChunksAreStoredOnce) {
  std::string chunk = RandomBytes(kCs, 2);
  std::string content;
  for (int i = 0; i < 8; i++) content += chunk;
  writer::WriteSummary sum = PackOk(content, Options());
  EXPECT_EQ(sum.chunks_total, 8u);
  EXPECT_EQ(sum.chunks_unique, 1u);
  EXPECT_EQ(sum.chunks_new, 1u);
  EXPECT_EQ(ChunkFiles(), 1u);
  format::Index ix = LoadIndex();
  for (uint64_t i = 0; i < 8; i++) {
    EXPECT_EQ(ix.entry(i).hash, format::Sha256(chunk));
    EXPECT_EQ(ix.entry(i).stored_size, kCs + format::kChunkHeaderSize);  // random: stored as is
  }
  EXPECT_EQ(ix.summary().unique_chunks, 1u);
  EXPECT_EQ(ix.summary().stored_bytes, kCs + format::kChunkHeaderSize);
}

TEST_F(PackerTest, ZeroChunksAreNotStored) {
  std::string content = std::string(3 * kCs, '\0') + RandomBytes(kCs, 3) +
                        std::string(2 * kCs, '\0') + Text(kCs, 3) + std::string(500, '\0');
  writer::WriteSummary sum = PackOk(content, Options());
  EXPECT_EQ(sum.chunks_total, 8u);
  EXPECT_EQ(sum.chunks_zero, 6u);
  EXPECT_EQ(sum.chunks_unique, 2u);
  EXPECT_EQ(ChunkFiles(), 2u);
  format::Index ix = LoadIndex();
  ExpectIndexDescribes(ix, content);
  EXPECT_EQ(ix.summary().zero_chunks, 6u);
}

TEST_F(PackerTest, SparseAllZeroImageWritesNoChunks) {
  {
    int fd = ::open(image().c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 64 * kCs + 1), 0);
    ::close(fd);
  }
  auto sum = Pack(image(), store(), Options());
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(sum->chunks_total, 65u);
  EXPECT_EQ(sum->chunks_zero, 65u);
  EXPECT_EQ(sum->chunks_unique, 0u);
  EXPECT_EQ(ChunkFiles(), 0u);
  format::Index ix = LoadIndex();
  for (uint64_t i = 0; i < ix.chunk_count(); i++) EXPECT_TRUE(ix.entry(i).zero());
}

TEST_F(PackerTest, EmptyImagePacks) {
  writer::WriteSummary sum = PackOk("", Options());
  EXPECT_EQ(sum.chunks_total, 0u);
  format::Index ix = LoadIndex();
  EXPECT_EQ(ix.image_size(), 0u);
  EXPECT_EQ(ix.chunk_count(), 0u);
}

TEST_F(PackerTest, RepackOfUnchangedImageAddsNothingAndRecordsParent) {
  std::string content = RandomBytes(6 * kCs, 4);
  writer::WriteSummary first = PackOk(content, Options());
  writer::WriteSummary second = PackOk(content, Options());
  EXPECT_EQ(second.chunks_new, 0u);
  EXPECT_EQ(second.chunks_unique, 6u);
  EXPECT_EQ(second.bytes_written, fs::file_size(store().IndexPath("disk")));
  EXPECT_EQ(second.stored_bytes, first.stored_bytes);
  format::Index ix = LoadIndex();
  ASSERT_TRUE(ix.meta().parent_digest.has_value());
  EXPECT_EQ(*ix.meta().parent_digest, first.digest);
  EXPECT_EQ(ix.meta().parent_name, "disk");
  ExpectIndexDescribes(ix, content);
}

TEST_F(PackerTest, IncrementalRepackStoresOnlyChangedChunks) {
  std::string content = RandomBytes(20 * kCs + 100, 5);
  writer::WriteSummary first = PackOk(content, Options());
  EXPECT_EQ(first.chunks_new, 21u);
  // One byte in chunk 3, an unaligned range across chunks 10 and 11, the tail.
  content[3 * kCs + 77] ^= 1;
  for (size_t i = 11 * kCs - 300; i < 11 * kCs + 300; i++) content[i] = char(i * 31);
  content[content.size() - 1] ^= 0x80;
  writer::WriteSummary second = PackOk(content, Options());
  EXPECT_EQ(second.chunks_new, 4u);
  EXPECT_EQ(second.chunks_unique, 21u);
  EXPECT_EQ(ChunkFiles(), 25u);  // the old versions stay for the old index
  format::Index ix = LoadIndex();
  ExpectIndexDescribes(ix, content);
  ASSERT_TRUE(ix.meta().parent_digest.has_value());
  EXPECT_EQ(*ix.meta().parent_digest, first.digest);
  EXPECT_EQ(ix.meta().parent_name, "disk");
}

TEST_F(PackerTest, ChunksSharedAcrossImagesAreNotRewritten) {
  std::string a = RandomBytes(8 * kCs, 6);
  PackOk(a, Options("a"));
  std::string b = a.substr(0, 4 * kCs) + RandomBytes(4 * kCs, 7);
  writer::WriteSummary sum = PackOk(b, Options("b"));
  EXPECT_EQ(sum.chunks_new, 4u);
  EXPECT_EQ(ChunkFiles(), 12u);
  // Different names: no parent.
  EXPECT_FALSE(LoadIndex("b").meta().parent_digest.has_value());
  auto names = store().ListIndexes();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names.value(), (std::vector<std::string>{"a", "b"}));
}

TEST_F(PackerTest, ChunkSizeOption) {
  std::string content = Text(100000, 8);
  PackOptions o = Options();
  o.chunk_size = 16384;
  PackOk(content, o);
  format::Index ix = LoadIndex();
  EXPECT_EQ(ix.chunk_size(), 16384u);
  EXPECT_EQ(ix.chunk_count(), 7u);
  EXPECT_EQ(ix.chunk_length(6), 100000u - 6 * 16384);
  ExpectIndexDescribes(ix, content);
}

TEST_F(PackerTest, CodecOption) {
  for (Codec codec : {Codec::kZlib, Codec::kNone, Codec::kZstd}) {
    SCOPED_TRACE(format::CodecName(codec));
    // Different content per codec: chunk files are shared by raw hash, whatever the codec.
    std::string content = Text(8 * kCs, 9 + int(codec));
    PackOptions o = Options(std::string("img-") + format::CodecName(codec));
    o.codec = codec;
    o.level = format::DefaultLevel(codec);
    PackOk(content, o);
    format::Index ix = LoadIndex(o.name);
    EXPECT_EQ(ix.codec(), codec);
    ExpectIndexDescribes(ix, content);
    for (uint64_t i = 0; i + 1 < ix.chunk_count(); i++) {
      auto file = store().ReadChunk(ix.entry(i).hash);
      ASSERT_TRUE(file.ok());
      auto h = format::ParseChunkHeader(file.value());
      ASSERT_TRUE(h.ok());
      EXPECT_EQ(h->codec, codec) << i;
      if (codec == Codec::kNone) {
        EXPECT_EQ(file->size(), kCs + format::kChunkHeaderSize);
      } else {
        EXPECT_LT(file->size(), kCs / 2);
      }
    }
  }
}

TEST_F(PackerTest, SingleAndManyThreadsProduceTheSameEntries) {
  std::string content;
  for (int i = 0; i < 40; i++)
    content += (i % 3 == 0) ? std::string(kCs, '\0') : RandomBytes(kCs, 100 + i % 7);
  PackOptions one = Options("one");
  one.threads = 1;
  PackOptions many = Options("many");
  many.threads = 8;
  writer::WriteSummary s1 = PackOk(content, one);
  writer::WriteSummary s8 = PackOk(content, many);
  EXPECT_EQ(s1.chunks_unique, s8.chunks_unique);
  EXPECT_EQ(s8.chunks_new, 0u);
  format::Index a = LoadIndex("one"), b = LoadIndex("many");
  ASSERT_EQ(a.chunk_count(), b.chunk_count());
  for (uint64_t i = 0; i < a.chunk_count(); i++) {
    EXPECT_EQ(a.entry(i).hash, b.entry(i).hash) << i;
    EXPECT_EQ(a.entry(i).stored_size, b.entry(i).stored_size) << i;
    EXPECT_EQ(a.entry(i).flags, b.entry(i).flags) << i;
  }
}

TEST_F(PackerTest, ReportsProgressEndingAtTotal) {
  std::string content = RandomBytes(30 * kCs, 10);
  PackOptions o = Options();
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  o.progress = [&](uint64_t done, uint64_t total) { calls.push_back({done, total}); };
  PackOk(content, o);
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), std::make_pair(uint64_t(content.size()), uint64_t(content.size())));
  for (size_t i = 1; i < calls.size(); i++) EXPECT_LE(calls[i - 1].first, calls[i].first);
}

TEST_F(PackerTest, RejectsInvalidChunkSize) {
  ASSERT_TRUE(WriteTestFile(image(), RandomBytes(10000, 11)));
  for (uint32_t cs : {0u, 1000u, 2048u, 5000u, 4097u, 8u << 20}) {
    PackOptions o = Options();
    o.chunk_size = cs;
    auto r = Pack(image(), store(), o);
    ASSERT_FALSE(r.ok()) << cs;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << cs;
  }
  EXPECT_FALSE(fs::exists(store().IndexPath("disk")));
  EXPECT_EQ(ChunkFiles(), 0u);
}

TEST_F(PackerTest, RejectsBadNames) {
  ASSERT_TRUE(WriteTestFile(image(), RandomBytes(10000, 11)));
  for (const char* name : {"", "a/b", ".hidden", "../up"}) {
    auto r = Pack(image(), store(), Options(name));
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << name;
  }
  EXPECT_TRUE(store().ListIndexes()->empty());
}

TEST_F(PackerTest, MissingImageIsNotFound) {
  auto r = Pack(tmp_.Join("nope.img"), store(), Options());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("nope.img"), std::string::npos);
}

// A crash between the (non-durable) chunk writes and the sync can leave
// empty chunk files; the packer treats an empty file as absent, so a
// re-pack must leave a good chunk file behind, not the empty one.
TEST_F(PackerTest, RepackRepairsEmptyChunkFile) {
  std::string content = RandomBytes(4 * kCs, 12);
  PackOk(content, Options());
  format::Hash h = format::Sha256(content.substr(kCs, kCs));
  ASSERT_EQ(::truncate(store().ChunkFilePath(h).c_str(), 0), 0);
  PackOk(content, Options());
  format::Index ix = LoadIndex();
  ExpectIndexDescribes(ix, content);
  auto report = VerifyStore(store(), {}, 2);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->problems.empty());
}

TEST(VerifyTest, CleanStoreHasNoProblems) {
  ScopedTempDir tmp;
  auto st = store::LocalStore::Open(tmp.Join("store"), true);
  ASSERT_TRUE(WriteTestFile(tmp.Join("img"), RandomBytes(6 * kCs, 13) + std::string(kCs, '\0')));
  PackOptions o;
  o.name = "disk";
  o.chunk_size = kCs;
  ASSERT_TRUE(Pack(tmp.Join("img"), *st, o).ok());
  for (unsigned threads : {1u, 4u}) {
    auto r = VerifyStore(*st, {}, threads);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->indexes, 1u);
    EXPECT_EQ(r->chunks_checked, 6u);
    EXPECT_GT(r->bytes_checked, 6u * kCs);
    EXPECT_TRUE(r->problems.empty());
  }
}

TEST_F(PackerTest, VerifyReportsCorruptAndMissingChunks) {
  std::string content = RandomBytes(8 * kCs, 14);
  PackOk(content, Options());
  format::Hash bad = format::Sha256(content.substr(2 * kCs, kCs));
  format::Hash gone = format::Sha256(content.substr(5 * kCs, kCs));
  std::string file = ReadTestFile(store().ChunkFilePath(bad));
  file[file.size() / 2] ^= 0x01;
  ASSERT_TRUE(WriteTestFile(store().ChunkFilePath(bad), file));
  ASSERT_TRUE(fs::remove(store().ChunkFilePath(gone)));

  for (std::vector<std::string> names :
       {std::vector<std::string>{}, std::vector<std::string>{"disk"}}) {
    auto r = VerifyStore(store(), names, 2);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->indexes, 1u);
    ASSERT_EQ(r->problems.size(), 2u);
    auto by_hash = [&](const format::Hash& h) -> const VerifyProblem* {
      for (const auto& p : r->problems)
        if (p.hash == format::ToHex(h)) return &p;
      return nullptr;
    };
    const VerifyProblem* c = by_hash(bad);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->what, "corrupt");
    EXPECT_NE(c->detail.find("disk.idx chunk 2"), std::string::npos) << c->detail;
    const VerifyProblem* m = by_hash(gone);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->what, "missing");
    EXPECT_NE(m->detail.find("disk.idx chunk 5"), std::string::npos) << m->detail;
  }
}

TEST_F(PackerTest, VerifyChecksUnreferencedChunksOnlyForWholeStore) {
  PackOk(RandomBytes(2 * kCs, 15), Options());
  // A stray, corrupt chunk file no index refers to.
  std::string raw = Text(kCs, 15);
  format::Hash h = format::Sha256(raw);
  std::string file;
  ASSERT_TRUE(format::EncodeChunk(raw, Codec::kZstd, 3, &file).ok());
  file.back() ^= 1;
  bool written;
  ASSERT_TRUE(store().PutChunk(h, file, false, &written).ok());

  auto whole = VerifyStore(store(), {}, 2);
  ASSERT_TRUE(whole.ok());
  ASSERT_EQ(whole->problems.size(), 1u);
  EXPECT_EQ(whole->problems[0].what, "corrupt");
  EXPECT_EQ(whole->problems[0].hash, format::ToHex(h));
  EXPECT_EQ(whole->chunks_checked, 3u);

  auto named = VerifyStore(store(), {"disk"}, 2);
  ASSERT_TRUE(named.ok());
  EXPECT_TRUE(named->problems.empty());
  EXPECT_EQ(named->chunks_checked, 2u);
}

TEST_F(PackerTest, VerifyReportsBadIndexes) {
  PackOk(RandomBytes(2 * kCs, 16), Options());
  ASSERT_TRUE(store().PutIndex("broken", "<!DOCTYPE html><html>oops</html>").ok());
  auto r = VerifyStore(store(), {}, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->indexes, 1u);
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_EQ(r->problems[0].what, "corrupt");
  EXPECT_NE(r->problems[0].detail.find("broken"), std::string::npos) << r->problems[0].detail;

  auto missing = VerifyStore(store(), {"disk", "nope"}, 2);
  ASSERT_TRUE(missing.ok());
  ASSERT_EQ(missing->problems.size(), 1u);
  EXPECT_EQ(missing->problems[0].what, "missing");
  EXPECT_NE(missing->problems[0].detail.find("nope.idx"), std::string::npos);
}

}  // namespace
}  // namespace hloop::pack
