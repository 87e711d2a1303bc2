#include "format/index.h"

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "util/bytes.h"

namespace hloop::format {
namespace {

constexpr uint32_t k4K = 4096;

Hash HashOf(uint64_t i) { return Sha256("chunk " + std::to_string(i)); }

ChunkEntry Entry(uint64_t i, uint32_t stored) {
  ChunkEntry e;
  e.hash = HashOf(i);
  e.stored_size = stored;
  return e;
}

ChunkEntry ZeroEntry() {
  ChunkEntry e;
  e.flags = kEntryFlagZero;
  return e;
}

uint8_t* U8(std::string& s) { return reinterpret_cast<uint8_t*>(s.data()); }

// Recomputes the trailer after the bytes before it were tampered with, so
// that the checks behind the checksum are exercised.
void Reseal(std::string* b) {
  b->resize(b->size() - kIndexTrailerSize);
  Hash h = Sha256(*b);
  b->append(reinterpret_cast<const char*>(h.data()), h.size());
}

// Inserts a metadata record at the front or the back of the metadata area.
void InsertMetaRecord(std::string* b, uint16_t type, uint16_t flags, const std::string& value,
                      bool at_front) {
  uint64_t off = GetU64(U8(*b) + kHdrMetaOffset), len = GetU64(U8(*b) + kHdrMetaLength);
  uint8_t h[kMetaRecordHeaderSize];
  PutU16(h, type);
  PutU16(h + 2, flags);
  PutU32(h + 4, uint32_t(value.size()));
  std::string rec(reinterpret_cast<char*>(h), sizeof h);
  rec += value;
  b->insert(at_front ? off : off + len, rec);
  PutU64(U8(*b) + kHdrMetaLength, len + rec.size());
  Reseal(b);
}

// 10000 bytes in 4 KiB chunks: 0 = data, 1 = zeros, 2 = short data chunk.
std::string SmallIndex(bool with_meta = true) {
  IndexBuilder b(10000, k4K, Codec::kZstd);
  b.set_entry(0, Entry(0, 1000));
  b.set_entry(1, ZeroEntry());
  b.set_entry(2, Entry(2, 900));
  if (with_meta) {
    b.meta().name = "small";
    b.meta().created = 1700000000;
    b.meta().tool = "hloop test";
  }
  return b.Encode();
}

Result<Index> Parse(std::string bytes) { return Index::Parse(std::move(bytes), "test.idx"); }

// Parse must fail with `code`, and name the index and `what` in its message.
void ExpectRejected(const std::string& bytes, Status::Code code, const std::string& what) {
  auto r = Parse(bytes);
  ASSERT_FALSE(r.ok()) << "accepted; expected failure about '" << what << "'";
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_NE(r.status().message().find("test.idx"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().message();
}

TEST(IndexTest, RoundTripsEntriesAndGeometry) {
  std::string bytes = SmallIndex();
  auto r = Parse(bytes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Index& ix = r.value();
  EXPECT_EQ(ix.image_size(), 10000u);
  EXPECT_EQ(ix.chunk_size(), k4K);
  EXPECT_EQ(ix.chunk_count(), 3u);
  EXPECT_EQ(ix.codec(), Codec::kZstd);
  EXPECT_EQ(ix.entry(0).hash, HashOf(0));
  EXPECT_EQ(ix.entry(0).stored_size, 1000u);
  EXPECT_FALSE(ix.entry(0).zero());
  EXPECT_TRUE(ix.entry(1).zero());
  EXPECT_EQ(ix.entry(1).flags, kEntryFlagZero);
  EXPECT_EQ(ix.entry(1).stored_size, 0u);
  EXPECT_EQ(ix.entry(2).hash, HashOf(2));
  EXPECT_EQ(ix.entry(2).stored_size, 900u);
  EXPECT_EQ(ix.bytes(), bytes);
  EXPECT_EQ(ix.digest(), Sha256(bytes));
}

TEST(IndexTest, RoundTripsMeta) {
  IndexBuilder b(3 * k4K, k4K, Codec::kZlib);
  for (uint64_t i = 0; i < 3; i++) b.set_entry(i, Entry(i, 100));
  b.meta().name = "debian-12 ✓";
  b.meta().created = 0x123456789abcull;
  b.meta().tool = "hloop 9.9.9";
  b.meta().parent_digest = Sha256("parent");
  b.meta().parent_name = "debian-11";
  auto r = Parse(b.Encode());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const IndexMeta& m = r->meta();
  EXPECT_EQ(m.name, "debian-12 ✓");
  EXPECT_EQ(m.created, 0x123456789abcull);
  EXPECT_EQ(m.tool, "hloop 9.9.9");
  ASSERT_TRUE(m.parent_digest.has_value());
  EXPECT_EQ(*m.parent_digest, Sha256("parent"));
  EXPECT_EQ(m.parent_name, "debian-11");
  EXPECT_EQ(r->codec(), Codec::kZlib);
}

TEST(IndexTest, RoundTripsWithoutMeta) {
  auto r = Parse(SmallIndex(/*with_meta=*/false));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->meta().name, "");
  EXPECT_EQ(r->meta().created, 0u);
  EXPECT_EQ(r->meta().tool, "");
  EXPECT_FALSE(r->meta().parent_digest.has_value());
}

TEST(IndexTest, ParentWithEmptyName) {
  IndexBuilder b(k4K, k4K, Codec::kNone);
  b.set_entry(0, Entry(0, 100));
  b.meta().parent_digest = Sha256("p");
  auto r = Parse(b.Encode());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->meta().parent_digest.has_value());
  EXPECT_EQ(*r->meta().parent_digest, Sha256("p"));
  EXPECT_EQ(r->meta().parent_name, "");
}

TEST(IndexTest, SummaryCountsDistinctChunksOnce) {
  IndexBuilder b(6 * k4K, k4K, Codec::kZstd);
  b.set_entry(0, Entry(10, 100));
  b.set_entry(1, Entry(20, 200));
  b.set_entry(2, Entry(10, 100));  // duplicate of 0
  b.set_entry(3, ZeroEntry());
  b.set_entry(4, ZeroEntry());
  b.set_entry(5, Entry(30, 300));
  auto r = Parse(b.Encode());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->summary().stored_bytes, 600u);
  EXPECT_EQ(r->summary().unique_chunks, 3u);
  EXPECT_EQ(r->summary().zero_chunks, 2u);
}

TEST(IndexTest, ChunkLengthOfShortLastChunk) {
  auto r = Parse(SmallIndex());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->chunk_length(0), k4K);
  EXPECT_EQ(r->chunk_length(1), k4K);
  EXPECT_EQ(r->chunk_length(2), 10000u - 2 * k4K);
}

TEST(IndexTest, ImageSizesThatAreNotMultiplesOfTheChunkSize) {
  for (uint64_t size : {uint64_t(1), uint64_t(4095), uint64_t(4096), uint64_t(4097),
                        uint64_t(3 * 8192 + 1), uint64_t(5 * 8192 - 1), uint64_t(1) << 20}) {
    SCOPED_TRACE(size);
    IndexBuilder b(size, 8192, Codec::kZstd);
    ASSERT_EQ(b.chunk_count(), (size + 8191) / 8192);
    for (uint64_t i = 0; i < b.chunk_count(); i++) b.set_entry(i, Entry(i, 50));
    auto r = Parse(b.Encode());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->image_size(), size);
    EXPECT_EQ(r->chunk_count(), b.chunk_count());
    uint64_t total = 0;
    for (uint64_t i = 0; i < r->chunk_count(); i++) {
      EXPECT_GT(r->chunk_length(i), 0u);
      EXPECT_LE(r->chunk_length(i), 8192u);
      if (i + 1 < r->chunk_count()) {
        EXPECT_EQ(r->chunk_length(i), 8192u);
      }
      total += r->chunk_length(i);
    }
    EXPECT_EQ(total, size);
  }
}

TEST(IndexTest, OneChunkImage) {
  IndexBuilder b(100, k4K, Codec::kZstd);
  ASSERT_EQ(b.chunk_count(), 1u);
  b.set_entry(0, Entry(7, 50));
  auto r = Parse(b.Encode());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->chunk_count(), 1u);
  EXPECT_EQ(r->chunk_length(0), 100u);
  EXPECT_EQ(r->entry(0).hash, HashOf(7));
}

TEST(IndexTest, EmptyImage) {
  IndexBuilder b(0, k4K, Codec::kZstd);
  EXPECT_EQ(b.chunk_count(), 0u);
  b.meta().name = "empty";
  std::string bytes = b.Encode();
  auto r = Parse(bytes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->image_size(), 0u);
  EXPECT_EQ(r->chunk_count(), 0u);
  EXPECT_EQ(r->meta().name, "empty");
  EXPECT_EQ(r->summary().unique_chunks, 0u);
  EXPECT_EQ(bytes.size(), kIndexHeaderSize + 8 + 5 + kIndexTrailerSize);
}

TEST(IndexTest, LayoutMatchesFormatConstants) {
  std::string b = SmallIndex(false);
  ASSERT_EQ(b.size(), kIndexHeaderSize + 3 * kIndexEntrySize + kIndexTrailerSize);
  EXPECT_EQ(std::memcmp(b.data(), kIndexMagic, 8), 0);
  EXPECT_EQ(GetU16(U8(b) + kHdrVersion), kIndexVersion);
  EXPECT_EQ(GetU64(U8(b) + kHdrImageSize), 10000u);
  EXPECT_EQ(GetU32(U8(b) + kHdrChunkSize), k4K);
  EXPECT_EQ(GetU64(U8(b) + kHdrChunkCount), 3u);
  const uint8_t* e1 = U8(b) + kIndexHeaderSize + kIndexEntrySize;
  EXPECT_EQ(GetU32(e1 + kEntFlags), kEntryFlagZero);
  Hash trailer;
  std::memcpy(trailer.data(), b.data() + b.size() - 32, 32);
  EXPECT_EQ(trailer, Sha256(b.data(), b.size() - 32));
}

TEST(IndexTest, RejectsBadMagic) {
  std::string b = SmallIndex();
  b[0] = 'X';
  Reseal(&b);
  ExpectRejected(b, Status::Code::kCorruption, "magic");
  std::string zeros(400, '\0');
  ExpectRejected(zeros, Status::Code::kCorruption, "magic");
}

TEST(IndexTest, RejectsUnknownVersion) {
  for (uint16_t v : {0, 2, 0xffff}) {
    std::string b = SmallIndex();
    PutU16(U8(b) + kHdrVersion, v);
    Reseal(&b);
    ExpectRejected(b, Status::Code::kUnsupported, "version " + std::to_string(v));
  }
}

TEST(IndexTest, RejectsEveryTruncation) {
  const std::string b = SmallIndex();
  for (size_t n = 0; n < b.size(); n++) {
    auto r = Parse(b.substr(0, n));
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted";
    if (!r.ok()) {
      EXPECT_TRUE(r.status().IsCorruption()) << n << ": " << r.status().ToString();
    }
  }
}

TEST(IndexTest, TruncationMessagesSayTruncated) {
  const std::string b = SmallIndex();
  for (size_t n : {size_t(0), size_t(10), kIndexHeaderSize, b.size() - 1, b.size() - 40}) {
    ExpectRejected(b.substr(0, n), Status::Code::kCorruption, "truncated");
  }
}

TEST(IndexTest, RejectsTrailingGarbage) {
  std::string b = SmallIndex();
  b += "x";
  EXPECT_FALSE(Parse(b).ok());
  b = SmallIndex();
  b.append(4096, '\0');
  EXPECT_FALSE(Parse(b).ok());
}

TEST(IndexTest, RejectsEverySingleByteFlip) {
  const std::string good = SmallIndex();
  ASSERT_TRUE(Parse(good).ok());
  for (size_t pos = 0; pos < good.size(); pos++) {
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      std::string b = good;
      b[pos] = char(b[pos] ^ mask);
      auto r = Parse(b);
      EXPECT_FALSE(r.ok()) << "flip of byte " << pos << " with mask " << int(mask) << " accepted";
    }
  }
}

TEST(IndexTest, RejectsChecksumMismatch) {
  std::string b = SmallIndex();
  // A byte of the metadata (the name): everything else still adds up.
  size_t meta = GetU64(U8(b) + kHdrMetaOffset);
  b[meta + kMetaRecordHeaderSize] ^= 1;
  ExpectRejected(b, Status::Code::kCorruption, "checksum");
  b = SmallIndex();
  b.back() ^= 1;  // the trailer itself
  ExpectRejected(b, Status::Code::kCorruption, "checksum");
  b = SmallIndex();
  b[kIndexHeaderSize + 5] ^= 1;  // a hash in the table
  ExpectRejected(b, Status::Code::kCorruption, "checksum");
}

TEST(IndexTest, RejectsHtmlPage) {
  std::string page =
      "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
      "<body><h1>Not Found</h1><p>The requested URL was not found on this "
      "server.</p></body></html>\n";
  page.append(400, ' ');
  ExpectRejected(page, Status::Code::kCorruption, "HTML");
  ExpectRejected("<html><body>Moved</body></html>", Status::Code::kCorruption, "HTML");
}

TEST(IndexTest, RejectsAbsurdChunkSize) {
  for (uint32_t cs : {0u, 1u, 512u, 4095u, 5000u, 8192u + 4096u, 8u << 20, 1u << 31, 0xffffffffu}) {
    SCOPED_TRACE(cs);
    std::string b = SmallIndex();
    PutU32(U8(b) + kHdrChunkSize, cs);
    Reseal(&b);
    ExpectRejected(b, Status::Code::kCorruption, "chunk size");
  }
}

TEST(IndexTest, RejectsAbsurdImageSize) {
  for (uint64_t size : {kMaxImageSize + 1, uint64_t(1) << 60, ~uint64_t(0)}) {
    SCOPED_TRACE(size);
    std::string b = SmallIndex();
    PutU64(U8(b) + kHdrImageSize, size);
    // Keep the chunk count consistent so only the size itself is wrong.
    PutU64(U8(b) + kHdrChunkCount, ChunkCount(size, k4K));
    Reseal(&b);
    ExpectRejected(b, Status::Code::kCorruption, "image size");
  }
}

TEST(IndexTest, RejectsChunkCountThatDoesNotMatchSizes) {
  std::string b = SmallIndex();
  PutU64(U8(b) + kHdrImageSize, 20000);  // would need 5 chunks; table has 3
  Reseal(&b);
  ExpectRejected(b, Status::Code::kCorruption, "chunk count");
  b = SmallIndex();
  PutU64(U8(b) + kHdrChunkCount, 1000000);
  Reseal(&b);
  ExpectRejected(b, Status::Code::kCorruption, "chunk count");
}

TEST(IndexTest, RejectsBadHeaderFields) {
  struct Case {
    const char* what;
    std::function<void(uint8_t*)> tamper;
    Status::Code code;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"header size", [](uint8_t* p) { PutU16(p + kHdrHeaderSize, 64); }, Status::Code::kCorruption,
       "header size"},
      {"entry size", [](uint8_t* p) { p[kHdrEntrySize] = 32; }, Status::Code::kCorruption,
       "entry size"},
      {"codec", [](uint8_t* p) { p[kHdrCodec] = 3; }, Status::Code::kCorruption, "codec"},
      {"hash algo", [](uint8_t* p) { p[kHdrHashAlgo] = 2; }, Status::Code::kUnsupported, "hash"},
      {"table offset", [](uint8_t* p) { PutU64(p + kHdrTableOffset, 256); },
       Status::Code::kCorruption, "table offset"},
      {"meta offset",
       [](uint8_t* p) { PutU64(p + kHdrMetaOffset, GetU64(p + kHdrMetaOffset) + 1); },
       Status::Code::kCorruption, "metadata"},
      {"meta length", [](uint8_t* p) { PutU64(p + kHdrMetaLength, kMaxMetaLength + 1); },
       Status::Code::kCorruption, "metadata"},
      {"meta length overflow", [](uint8_t* p) { PutU64(p + kHdrMetaLength, ~uint64_t(0) - 100); },
       Status::Code::kCorruption, "metadata"},
      {"reserved", [](uint8_t* p) { p[100] = 1; }, Status::Code::kCorruption, "reserved"},
      {"last reserved", [](uint8_t* p) { p[127] = 0x80; }, Status::Code::kCorruption, "reserved"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    std::string b = SmallIndex();
    c.tamper(U8(b));
    Reseal(&b);
    ExpectRejected(b, c.code, c.message);
  }
}

// docs/format.md: header byte 31 and the flags at 12..15 are reserved and
// must be 0, and "What a reader checks" lists "reserved header bytes zero".
// The checksum covers them, so only a resealed index gets this far.
TEST(IndexTest, RejectsNonZeroReservedByte31AndHeaderFlags) {
  {
    std::string b = SmallIndex();
    U8(b)[31] = 1;
    Reseal(&b);
    EXPECT_FALSE(Parse(b).ok()) << "header byte 31 set";
  }
  for (uint32_t flags : {1u, 0x80000000u}) {
    std::string b = SmallIndex();
    PutU32(U8(b) + kHdrFlags, flags);
    Reseal(&b);
    EXPECT_FALSE(Parse(b).ok()) << "header flags " << flags;
  }
}

TEST(IndexTest, RejectsMetaLengthThatDisagreesWithFileLength) {
  std::string b = SmallIndex();
  PutU64(U8(b) + kHdrMetaLength, GetU64(U8(b) + kHdrMetaLength) + 8);
  Reseal(&b);
  ExpectRejected(b, Status::Code::kCorruption, "length");
}

TEST(IndexTest, UnknownCriticalMetaRecordIsUnsupported) {
  std::string b = SmallIndex();
  InsertMetaRecord(&b, 999, kMetaFlagCritical, "future", /*at_front=*/false);
  ExpectRejected(b, Status::Code::kUnsupported, "999");
}

TEST(IndexTest, UnknownNonCriticalMetaRecordIsSkipped) {
  std::string b = SmallIndex();
  InsertMetaRecord(&b, 999, 0, "something new", /*at_front=*/true);
  InsertMetaRecord(&b, 1000, 0x8000, "", /*at_front=*/false);
  auto r = Parse(b);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // The records after the skipped one were still read.
  EXPECT_EQ(r->meta().name, "small");
  EXPECT_EQ(r->meta().created, 1700000000u);
  EXPECT_EQ(r->meta().tool, "hloop test");
}

TEST(IndexTest, RejectsMalformedMetaRecords) {
  {
    std::string b = SmallIndex();
    InsertMetaRecord(&b, kMetaCreated, 0, "1234", true);  // 4 bytes, not 8
    ExpectRejected(b, Status::Code::kCorruption, "creation time");
  }
  {
    std::string b = SmallIndex();
    InsertMetaRecord(&b, kMetaParent, 0, std::string(31, 'p'), true);
    ExpectRejected(b, Status::Code::kCorruption, "parent");
  }
  {
    // A record whose length runs past the metadata area.
    std::string b = SmallIndex();
    InsertMetaRecord(&b, kMetaName, 0, "abc", false);
    uint64_t off = GetU64(U8(b) + kHdrMetaOffset), len = GetU64(U8(b) + kHdrMetaLength);
    PutU32(U8(b) + off + len - 3 - 4, 4);
    Reseal(&b);
    ExpectRejected(b, Status::Code::kCorruption, "overruns");
  }
  {
    // Three stray bytes: less than a record header.
    std::string b = SmallIndex();
    uint64_t off = GetU64(U8(b) + kHdrMetaOffset), len = GetU64(U8(b) + kHdrMetaLength);
    b.insert(off + len, "abc");
    PutU64(U8(b) + kHdrMetaLength, len + 3);
    Reseal(&b);
    ExpectRejected(b, Status::Code::kCorruption, "truncated");
  }
}

TEST(IndexTest, RejectsEntryWithUnknownFlags) {
  for (uint32_t flags : {2u, 3u, 0x80000000u}) {
    SCOPED_TRACE(flags);
    std::string b = SmallIndex();
    PutU32(U8(b) + kIndexHeaderSize + 2 * kIndexEntrySize + kEntFlags, flags);
    Reseal(&b);
    ExpectRejected(b, Status::Code::kCorruption, "chunk 2 has unknown flags");
  }
}

TEST(IndexTest, RejectsEntryWithAbsurdStoredSize) {
  for (uint32_t stored : {0u, uint32_t(kChunkHeaderSize - 1), 100u << 20, 0xffffffffu}) {
    SCOPED_TRACE(stored);
    std::string b = SmallIndex();
    PutU32(U8(b) + kIndexHeaderSize + kEntStoredSize, stored);
    Reseal(&b);
    ExpectRejected(b, Status::Code::kCorruption, "chunk 0 has an absurd stored size");
  }
}

TEST(IndexTest, LargeIndexParsesAndLooksUp) {
  // 1 Mi chunks of 4 KiB: a 4 GiB image, a 40 MiB index.
  const uint64_t n = uint64_t(1) << 20;
  IndexBuilder b(n * k4K - 123, k4K, Codec::kZstd);
  ASSERT_EQ(b.chunk_count(), n);
  for (uint64_t i = 0; i < n; i++) {
    ChunkEntry e;
    if (i % 7 == 3) {
      e.flags = kEntryFlagZero;
    } else {
      uint64_t v = i;
      std::memcpy(e.hash.data(), &v, sizeof v);
      e.hash[31] = 0xa5;
      e.stored_size = uint32_t(100 + i % 4000);
    }
    b.set_entry(i, e);
  }
  std::string bytes = b.Encode();
  ASSERT_EQ(bytes.size(), kIndexHeaderSize + n * kIndexEntrySize + kIndexTrailerSize);
  auto r = Parse(std::move(bytes));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->chunk_count(), n);
  EXPECT_EQ(r->chunk_length(n - 1), k4K - 123);
  uint64_t zeros = 0;
  for (uint64_t i = 0; i < n; i++) zeros += (i % 7 == 3);
  EXPECT_EQ(r->summary().zero_chunks, zeros);
  EXPECT_EQ(r->summary().unique_chunks, n - zeros);
  for (uint64_t i : {uint64_t(0), uint64_t(1), uint64_t(3), uint64_t(12345), n / 2, n - 2, n - 1}) {
    ChunkEntry e = r->entry(i);
    if (i % 7 == 3) {
      EXPECT_TRUE(e.zero()) << i;
      continue;
    }
    uint64_t v;
    std::memcpy(&v, e.hash.data(), sizeof v);
    EXPECT_EQ(v, i) << i;
    EXPECT_EQ(e.stored_size, 100 + i % 4000) << i;
    EXPECT_FALSE(e.zero()) << i;
  }
}

TEST(IndexTest, ValidChunkSizes) {
  EXPECT_TRUE(IsValidChunkSize(4096));
  EXPECT_TRUE(IsValidChunkSize(256 * 1024));
  EXPECT_TRUE(IsValidChunkSize(4 << 20));
  EXPECT_FALSE(IsValidChunkSize(0));
  EXPECT_FALSE(IsValidChunkSize(2048));
  EXPECT_FALSE(IsValidChunkSize(8 << 20));
  EXPECT_FALSE(IsValidChunkSize(5000));
  EXPECT_EQ(ChunkCount(0, 4096), 0u);
  EXPECT_EQ(ChunkCount(1, 4096), 1u);
  EXPECT_EQ(ChunkCount(4096, 4096), 1u);
  EXPECT_EQ(ChunkCount(4097, 4096), 2u);
}

TEST(HashTest, Sha256KnownAnswerAndText) {
  EXPECT_EQ(ToHex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ToHex(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Hash h;
  ASSERT_TRUE(ParseHash(ToHex(Sha256("abc")), &h));
  EXPECT_EQ(h, Sha256("abc"));
  EXPECT_FALSE(ParseHash("abc", &h));
  EXPECT_EQ(ChunkPath(Sha256("abc")),
            "chunks/ba/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256Stream s;
  s.Update("a", 1);
  s.Update("bc", 2);
  EXPECT_EQ(s.Finish(), Sha256("abc"));
}

// ---- The EXTENTS record (format/layout.h) ----

// 10000 bytes in 4 KiB chunks (chunk 1 is zero), with two hot chunks:
//   [100, 5000)   hot 0 at 0     crosses the edge of chunks 0 and 1
//   [5000, 5100)  zeros          a zero range between two hot ranges
//   [5100, 5200)  hot 0 at 4900
//   [9000, 10000) hot 1 at 10    the image's last, partial block
Layout TestLayout() {
  Layout l;
  l.hot.push_back(HotChunk{HashOf(100), 3000, 5000});
  l.hot.push_back(HotChunk{HashOf(101), 500, 2000});
  l.extents.push_back(ImageExtent{100, 4900, 0, 0});
  l.extents.push_back(ImageExtent{5000, 100, kExtentZero, 0});
  l.extents.push_back(ImageExtent{5100, 100, 0, 4900});
  l.extents.push_back(ImageExtent{9000, 1000, 1, 10});
  return l;
}

std::string LayoutIndex(const Layout& layout) {
  IndexBuilder b(10000, k4K, Codec::kZstd);
  b.set_entry(0, Entry(0, 1000));
  b.set_entry(1, ZeroEntry());
  b.set_entry(2, Entry(2, 900));
  b.meta().name = "hot";
  b.set_layout(layout);
  return b.Encode();
}

TEST(IndexLayoutTest, RoundTripsAndNumbersHotSlotsAfterTheTable) {
  auto r = Parse(LayoutIndex(TestLayout()));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->layout(), TestLayout());
  EXPECT_TRUE(r->has_extents());
  EXPECT_EQ(r->chunk_count(), 3u);
  EXPECT_EQ(r->slot_count(), 5u);
  EXPECT_TRUE(r->is_hot(3));
  EXPECT_FALSE(r->is_hot(2));
  EXPECT_EQ(r->entry(3).hash, HashOf(100));
  EXPECT_EQ(r->entry(3).stored_size, 3000u);
  EXPECT_FALSE(r->entry(3).zero());
  EXPECT_EQ(r->chunk_length(3), 5000u);
  EXPECT_EQ(r->chunk_length(4), 2000u);
  // Hot chunks count in the summary like any chunk file.
  EXPECT_EQ(r->summary().unique_chunks, 4u);
  EXPECT_EQ(r->summary().stored_bytes, 1000u + 900 + 3000 + 500);
  EXPECT_EQ(r->meta().name, "hot");
}

// Reads image bytes [0, size) through Locate, one segment at a time, and
// returns "slot@offset+len" or "zero+len" per segment.
std::vector<std::string> Walk(const Index& ix, uint64_t from, uint64_t to) {
  std::vector<std::string> out;
  for (uint64_t pos = from; pos < to;) {
    Segment s = ix.Locate(pos);
    EXPECT_GT(s.length, 0u);
    uint64_t n = std::min(s.length, to - pos);
    out.push_back(s.zero ? "zero+" + std::to_string(n)
                         : std::to_string(s.slot) + "@" + std::to_string(s.slot_offset) + "+" +
                               std::to_string(n));
    pos += n;
  }
  return out;
}

TEST(IndexLayoutTest, LocateReadsEveryBoundaryRight) {
  auto r = Parse(LayoutIndex(TestLayout()));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Index& ix = *r;
  // The whole image: table, hot across the chunk edge, zeros, hot, the
  // zero chunk 1 after the extents, chunk 2, then the last partial block.
  EXPECT_EQ(Walk(ix, 0, 10000),
            (std::vector<std::string>{"0@0+100", "3@0+4900", "zero+100", "3@4900+100", "zero+2992",
                                      "2@0+808", "4@10+1000"}));
  // Unaligned reads that start inside an extent, or inside a table stretch.
  EXPECT_EQ(Walk(ix, 4000, 4200), (std::vector<std::string>{"3@3900+200"}));
  EXPECT_EQ(Walk(ix, 50, 150), (std::vector<std::string>{"0@50+50", "3@0+50"}));
  EXPECT_EQ(Walk(ix, 5150, 5250), (std::vector<std::string>{"3@4950+50", "zero+50"}));
  EXPECT_EQ(Walk(ix, 9999, 10000), (std::vector<std::string>{"4@1009+1"}));
  // A table stretch ends at the next extent, even inside a chunk.
  EXPECT_EQ(ix.Locate(8192).length, 808u);
  std::vector<uint64_t> slots;
  ix.SlotsOf(0, 10000, &slots);
  EXPECT_EQ(slots, (std::vector<uint64_t>{0, 3, 2, 4}));
}

TEST(IndexLayoutTest, TableChunkUsedWhenAnyByteIsNotCovered) {
  Layout l = TestLayout();
  auto r = Parse(LayoutIndex(l));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->TableChunkUsed(0));  // [0, 100) is not covered
  EXPECT_TRUE(r->TableChunkUsed(1));
  EXPECT_TRUE(r->TableChunkUsed(2));
  // Cover chunk 0 and chunk 2 entirely, with several touching extents.
  l.extents.insert(l.extents.begin(), ImageExtent{0, 100, kExtentZero, 0});
  l.extents.back() = ImageExtent{8192, 808, kExtentZero, 0};
  l.extents.push_back(ImageExtent{9000, 1000, 1, 10});
  auto c = Parse(LayoutIndex(l));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->TableChunkUsed(0));
  EXPECT_TRUE(c->TableChunkUsed(1));  // [5200, 8192) is not covered
  EXPECT_FALSE(c->TableChunkUsed(2));
}

TEST(IndexLayoutTest, AnOlderReaderRefusesTheIndexClearly) {
  // A reader of index version 1 without the EXTENTS record must refuse,
  // not read the table alone: the critical flag says so.
  auto r = Index::Parse(LayoutIndex(TestLayout()), "test.idx", ParseOptions{.extents = false});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnsupported);
  EXPECT_NE(r.status().message().find("index needs a newer hloop"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("test.idx"), std::string::npos);
  // The bytes say so too: the record is type 5 with the CRITICAL flag.
  std::string b = LayoutIndex(TestLayout());
  EXPECT_NE(b.find(std::string("\x05\x00\x01\x00", 4)), std::string::npos);
}

TEST(IndexLayoutTest, RejectsMalformedLayouts) {
  auto reject = [](Layout l, const std::string& what) {
    SCOPED_TRACE(what);
    ExpectRejected(LayoutIndex(l), Status::Code::kCorruption, what);
  };
  Layout l = TestLayout();
  l.extents[1].image_offset = 4990;
  reject(l, "overlaps");
  l = TestLayout();
  std::swap(l.extents[0], l.extents[3]);
  reject(l, "overlaps or precedes");
  l = TestLayout();
  l.extents[3].length = 1001;
  reject(l, "ends past the image");
  l = TestLayout();
  l.extents[2].hot = 2;
  reject(l, "does not exist");
  l = TestLayout();
  l.extents[2].hot_offset = 4901;
  reject(l, "ends past its hot chunk");
  l = TestLayout();
  l.extents[1].hot_offset = 7;
  reject(l, "zero range with an offset");
  l = TestLayout();
  l.extents[0].length = 0;
  reject(l, "is empty");
  l = TestLayout();
  l.hot[1].raw_size = 0;
  reject(l, "absurd length");
  l = TestLayout();
  l.hot[0].stored_size = 3;
  reject(l, "absurd stored size");
  // Counts that disagree with the record's length.
  std::string value = EncodeLayout(TestLayout());
  std::string b = SmallIndex();
  InsertMetaRecord(&b, kMetaExtents, kMetaFlagCritical, value.substr(0, value.size() - 1), false);
  ExpectRejected(b, Status::Code::kCorruption, "counts imply");
  b = SmallIndex();
  InsertMetaRecord(&b, kMetaExtents, kMetaFlagCritical, "1234567", false);
  ExpectRejected(b, Status::Code::kCorruption, "truncated");
  // Two records.
  b = LayoutIndex(TestLayout());
  InsertMetaRecord(&b, kMetaExtents, kMetaFlagCritical, value, true);
  ExpectRejected(b, Status::Code::kCorruption, "two extents records");
}

TEST(IndexLayoutTest, RejectsOneHashWithTwoLengths) {
  // Caches are keyed by hash: a hash named with two lengths would let a
  // reader copy past the end of the shorter content.
  Layout l = TestLayout();
  l.hot[1].hash = l.hot[0].hash;  // 2000 and 5000 bytes
  ExpectRejected(LayoutIndex(l), Status::Code::kCorruption, "another hot chunk of another length");
  l = TestLayout();
  l.hot[1].hash = HashOf(0);  // table chunk 0 is 4096 bytes, hot chunk 1 is 2000
  ExpectRejected(LayoutIndex(l), Status::Code::kCorruption, "hot chunk of another length");
  // The same hash with the same length is fine (identical content).
  l = TestLayout();
  l.hot[1] = HotChunk{HashOf(0), 1000, k4K};
  l.extents[3] = ImageExtent{9000, 1000, 1, 10};
  EXPECT_TRUE(Parse(LayoutIndex(l)).ok());
  // Without a layout: the short last chunk's hash on a full chunk.
  IndexBuilder b(10000, k4K, Codec::kZstd);
  b.set_entry(0, Entry(2, 1000));
  b.set_entry(1, ZeroEntry());
  b.set_entry(2, Entry(2, 900));
  ExpectRejected(b.Encode(), Status::Code::kCorruption, "hash of the short last chunk");
}

TEST(IndexLayoutTest, AnIndexWithoutExtentsLocatesByTheTable) {
  auto r = Parse(SmallIndex());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_extents());
  EXPECT_EQ(r->slot_count(), 3u);
  EXPECT_EQ(Walk(*r, 0, 10000), (std::vector<std::string>{"0@0+4096", "zero+4096", "2@0+1808"}));
  EXPECT_EQ(Walk(*r, 4095, 4097), (std::vector<std::string>{"0@4095+1", "zero+1"}));
  EXPECT_EQ(r->bytes().find(std::string("\x05\x00\x01\x00", 4)), std::string::npos);
}

}  // namespace
}  // namespace hloop::format
