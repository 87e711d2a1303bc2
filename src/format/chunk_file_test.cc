#include "format/chunk_file.h"

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "format/codec.h"
#include "testing/temp_dir.h"
#include "util/bytes.h"

namespace hloop::format {
namespace {

using hloop::testing::FirstDifference;
using hloop::testing::RandomBytes;

// Compressible but not trivial: words with varying numbers.
std::string TextBytes(size_t n) {
  std::string s;
  for (uint64_t i = 0; s.size() < n; i++)
    s += "block " + std::to_string(i * 7919 % 1000) + " of the disk; ";
  s.resize(n);
  return s;
}

uint8_t* U8(std::string& s) { return reinterpret_cast<uint8_t*>(s.data()); }

std::string Encode(const std::string& raw, Codec codec) {
  std::string file;
  Status st = EncodeChunk(raw, codec, DefaultLevel(codec), &file);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return file;
}

Status Decode(const std::string& file, const std::string& raw, std::string* out) {
  return DecodeChunk(file, Sha256(raw), uint32_t(raw.size()), out);
}

class ChunkRoundTripTest : public ::testing::TestWithParam<Codec> {};

TEST_P(ChunkRoundTripTest, CompressibleDataRoundTrips) {
  const Codec codec = GetParam();
  for (size_t n : {size_t(1), size_t(100), size_t(4096), size_t(4097), size_t(256 * 1024),
                   size_t(kMaxChunkSize)}) {
    SCOPED_TRACE(n);
    std::string raw = TextBytes(n);
    std::string file = Encode(raw, codec);
    auto h = ParseChunkHeader(file);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    EXPECT_EQ(h->raw_size, n);
    if (n >= 4096) {
      // Worth compressing: the requested codec is kept and the file shrinks.
      EXPECT_EQ(h->codec, codec);
      if (codec != Codec::kNone) {
        EXPECT_LT(file.size(), n / 2);
      }
    }
    if (h->codec == Codec::kNone) {
      EXPECT_EQ(file.size(), kChunkHeaderSize + n);
    }
    std::string out = "junk";
    ASSERT_TRUE(Decode(file, raw, &out).ok());
    EXPECT_EQ(FirstDifference(out, raw), "");
  }
}

TEST_P(ChunkRoundTripTest, IncompressibleDataIsStoredAsNone) {
  for (size_t n : {size_t(1), size_t(4096), size_t(256 * 1024)}) {
    SCOPED_TRACE(n);
    std::string raw = RandomBytes(n, n);
    std::string file = Encode(raw, GetParam());
    auto h = ParseChunkHeader(file);
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->codec, Codec::kNone);
    EXPECT_EQ(file.size(), kChunkHeaderSize + n);
    EXPECT_EQ(FirstDifference(file.substr(kChunkHeaderSize), raw), "");
    std::string out;
    ASSERT_TRUE(Decode(file, raw, &out).ok());
    EXPECT_EQ(FirstDifference(out, raw), "");
  }
}

TEST_P(ChunkRoundTripTest, EmptyChunkRoundTrips) {
  std::string file = Encode("", GetParam());
  auto h = ParseChunkHeader(file);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->raw_size, 0u);
  std::string out = "junk";
  ASSERT_TRUE(Decode(file, "", &out).ok());
  EXPECT_EQ(out, "");
}

TEST_P(ChunkRoundTripTest, EverySingleByteFlipIsRejectedOrHarmless) {
  std::string raw = TextBytes(4096);
  raw.replace(1000, 300, RandomBytes(300, 9));  // some entropy, still compressible
  const std::string good = Encode(raw, GetParam());
  std::string out;
  ASSERT_TRUE(Decode(good, raw, &out).ok());
  for (size_t pos = 0; pos < good.size(); pos++) {
    // The reserved bytes have their own test (RejectsNonZeroReservedBytes).
    if (pos == kChkReserved || pos == kChkReserved + 1) continue;
    for (uint8_t mask : {0x01, 0xff}) {
      std::string bad = good;
      bad[pos] = char(bad[pos] ^ mask);
      Status st = Decode(bad, raw, &out);
      // A compressed stream may carry bits the decoder ignores; flipping one
      // is harmless as long as the output is exactly right. Any byte that
      // matters (header, stored payload, anything that changes the output)
      // must be rejected.
      if (st.ok()) {
        EXPECT_TRUE(pos >= kChunkHeaderSize && GetParam() != Codec::kNone)
            << "flip of byte " << pos << " (mask " << int(mask) << ") accepted";
        EXPECT_EQ(FirstDifference(out, raw), "") << "flip of byte " << pos << " gave wrong bytes";
      }
    }
  }
}

TEST_P(ChunkRoundTripTest, EveryTruncationIsRejected) {
  std::string raw = TextBytes(8192);
  const std::string good = Encode(raw, GetParam());
  std::string out;
  for (size_t n = 0; n < good.size(); n++) {
    Status st = Decode(good.substr(0, n), raw, &out);
    EXPECT_FALSE(st.ok()) << "prefix of " << n << " bytes accepted";
    if (!st.ok()) {
      EXPECT_TRUE(st.IsCorruption()) << n << ": " << st.ToString();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Codecs, ChunkRoundTripTest,
                         ::testing::Values(Codec::kZstd, Codec::kZlib, Codec::kNone),
                         [](const auto& info) { return std::string(CodecName(info.param)); });

TEST(ChunkFileTest, HeaderLayout) {
  std::string raw = TextBytes(10000);
  std::string file = Encode(raw, Codec::kZstd);
  EXPECT_EQ(std::memcmp(file.data(), kChunkMagic, 4), 0);
  EXPECT_EQ(U8(file)[kChkVersion], kChunkVersion);
  EXPECT_EQ(U8(file)[kChkCodec], uint8_t(Codec::kZstd));
  EXPECT_EQ(GetU16(U8(file) + kChkReserved), 0);
  EXPECT_EQ(GetU32(U8(file) + kChkRawSize), 10000u);
}

TEST(ChunkFileTest, RejectsBadMagic) {
  std::string file = Encode(TextBytes(5000), Codec::kZstd);
  file[1] = 'X';
  auto h = ParseChunkHeader(file);
  ASSERT_FALSE(h.ok());
  EXPECT_TRUE(h.status().IsCorruption());
  EXPECT_NE(h.status().message().find("magic"), std::string::npos);
  std::string out;
  EXPECT_TRUE(Decode(file, TextBytes(5000), &out).IsCorruption());
  // An HTML error page served in place of a chunk.
  EXPECT_TRUE(ParseChunkHeader("<html><body>404</body></html>").status().IsCorruption());
}

TEST(ChunkFileTest, RejectsTruncatedHeader) {
  std::string file = Encode(TextBytes(5000), Codec::kZstd);
  for (size_t n = 0; n < kChunkHeaderSize; n++) {
    auto h = ParseChunkHeader(std::string_view(file).substr(0, n));
    ASSERT_FALSE(h.ok()) << n;
    EXPECT_TRUE(h.status().IsCorruption());
    EXPECT_NE(h.status().message().find("truncated"), std::string::npos);
  }
}

TEST(ChunkFileTest, RejectsUnknownVersion) {
  std::string file = Encode(TextBytes(5000), Codec::kZstd);
  U8(file)[kChkVersion] = 2;
  auto h = ParseChunkHeader(file);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), Status::Code::kUnsupported);
}

TEST(ChunkFileTest, RejectsUnknownCodecByte) {
  for (uint8_t c : {3, 7, 0xff}) {
    std::string file = Encode(TextBytes(5000), Codec::kZstd);
    U8(file)[kChkCodec] = c;
    auto h = ParseChunkHeader(file);
    ASSERT_FALSE(h.ok()) << int(c);
    EXPECT_TRUE(h.status().IsCorruption());
    EXPECT_NE(h.status().message().find("codec"), std::string::npos);
    std::string out;
    EXPECT_TRUE(Decode(file, TextBytes(5000), &out).IsCorruption());
  }
}

// Reserved bytes must be zero in version 1 (format.h), as the index's are:
// a file with them set was written by something else and must not be trusted.
TEST(ChunkFileTest, RejectsNonZeroReservedBytes) {
  std::string raw = TextBytes(5000);
  std::string file = Encode(raw, Codec::kZstd);
  PutU16(U8(file) + kChkReserved, 1);
  EXPECT_FALSE(ParseChunkHeader(file).ok());
  std::string out;
  EXPECT_FALSE(Decode(file, raw, &out).ok());
}

TEST(ChunkFileTest, RejectsAbsurdRawSize) {
  for (uint32_t size : {kMaxChunkSize + 1, 1u << 31, 0xffffffffu}) {
    std::string file = Encode(TextBytes(5000), Codec::kZstd);
    PutU32(U8(file) + kChkRawSize, size);
    auto h = ParseChunkHeader(file);
    ASSERT_FALSE(h.ok()) << size;
    EXPECT_TRUE(h.status().IsCorruption());
    std::string out;
    EXPECT_TRUE(DecodeChunk(file, Sha256(TextBytes(5000)), size, &out).IsCorruption());
  }
}

TEST(ChunkFileTest, WrongExpectedHashNamesBothHashes) {
  std::string raw = TextBytes(5000);
  std::string file = Encode(raw, Codec::kZstd);
  Hash wrong = Sha256("something else");
  std::string out;
  Status st = DecodeChunk(file, wrong, 5000, &out);
  ASSERT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find(ToHex(wrong)), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(ToHex(Sha256(raw))), std::string::npos) << st.message();
}

TEST(ChunkFileTest, WrongExpectedSizeIsCorruption) {
  std::string raw = TextBytes(5000);
  for (Codec codec : {Codec::kZstd, Codec::kZlib, Codec::kNone}) {
    std::string file = Encode(raw, codec);
    std::string out;
    EXPECT_TRUE(DecodeChunk(file, Sha256(raw), 4999, &out).IsCorruption());
    EXPECT_TRUE(DecodeChunk(file, Sha256(raw), 5001, &out).IsCorruption());
    EXPECT_TRUE(DecodeChunk(file, Sha256(raw), 0, &out).IsCorruption());
  }
}

// The header and the index agree on a smaller size than the stream really
// holds (a lying server): decoding must fail without writing past the end.
TEST(ChunkFileTest, StreamLongerThanClaimedIsRejected) {
  std::string raw = TextBytes(8192);
  for (Codec codec : {Codec::kZstd, Codec::kZlib, Codec::kNone}) {
    SCOPED_TRACE(CodecName(codec));
    std::string file = Encode(raw, codec);
    PutU32(U8(file) + kChkRawSize, 4096);
    std::string out;
    Status st = DecodeChunk(file, Sha256(raw.substr(0, 4096)), 4096, &out);
    EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  }
}

TEST(CodecTest, DecompressNeverWritesPastRawSize) {
  std::string raw = TextBytes(64 * 1024);
  for (Codec codec : {Codec::kZstd, Codec::kZlib, Codec::kNone}) {
    SCOPED_TRACE(CodecName(codec));
    std::string compressed;
    ASSERT_TRUE(Compress(codec, DefaultLevel(codec), raw, &compressed).ok());
    for (size_t claimed : {size_t(0), size_t(1), size_t(4096), raw.size() - 1}) {
      // Canary bytes after the claimed end; ASan also checks the heap block.
      std::vector<char> buf(claimed + 64, '\x5c');
      Status st = Decompress(codec, compressed, buf.data(), claimed);
      EXPECT_TRUE(st.IsCorruption()) << claimed << ": " << st.ToString();
      for (size_t i = claimed; i < buf.size(); i++) {
        ASSERT_EQ(buf[i], '\x5c') << "byte " << i << " past raw_size " << claimed << " written";
      }
    }
    std::vector<char> exact(raw.size());
    ASSERT_TRUE(Decompress(codec, compressed, exact.data(), exact.size()).ok());
    EXPECT_EQ(FirstDifference(std::string(exact.begin(), exact.end()), raw), "");
  }
}

TEST(CodecTest, DecompressShorterStreamThanClaimedIsCorruption) {
  std::string raw = TextBytes(4096);
  for (Codec codec : {Codec::kZstd, Codec::kZlib, Codec::kNone}) {
    std::string compressed;
    ASSERT_TRUE(Compress(codec, DefaultLevel(codec), raw, &compressed).ok());
    std::vector<char> buf(8192);
    EXPECT_TRUE(Decompress(codec, compressed, buf.data(), buf.size()).IsCorruption())
        << CodecName(codec);
  }
}

TEST(CodecTest, GarbageStreamIsCorruption) {
  std::string junk = RandomBytes(1000, 5);
  std::vector<char> buf(4096);
  EXPECT_TRUE(Decompress(Codec::kZstd, junk, buf.data(), buf.size()).IsCorruption());
  EXPECT_TRUE(Decompress(Codec::kZlib, junk, buf.data(), buf.size()).IsCorruption());
  EXPECT_TRUE(Decompress(Codec::kZstd, "", buf.data(), buf.size()).IsCorruption());
  EXPECT_TRUE(Decompress(Codec::kZlib, "", buf.data(), buf.size()).IsCorruption());
}

TEST(CodecTest, UnknownCodecIsRejected) {
  std::vector<char> buf(16);
  EXPECT_TRUE(Decompress(Codec(9), "abc", buf.data(), 3).IsCorruption());
  std::string out;
  EXPECT_FALSE(Compress(Codec(9), 0, "abc", &out).ok());
  EXPECT_FALSE(EncodeChunk("abc", Codec(9), 0, &out).ok());
}

TEST(CodecTest, NamesRoundTrip) {
  for (Codec c : {Codec::kZstd, Codec::kZlib, Codec::kNone}) {
    auto parsed = ParseCodec(CodecName(c));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed.value(), c);
  }
  auto bad = ParseCodec("lz4");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(ParseCodec("").ok());
  EXPECT_FALSE(ParseCodec("ZSTD").ok());
}

TEST(CodecTest, CompressionLevelsAllDecode) {
  std::string raw = TextBytes(100000);
  for (int level : {1, 3, 19}) {
    std::string c;
    ASSERT_TRUE(Compress(Codec::kZstd, level, raw, &c).ok());
    std::string out(raw.size(), '\0');
    ASSERT_TRUE(Decompress(Codec::kZstd, c, out.data(), out.size()).ok());
    EXPECT_EQ(FirstDifference(out, raw), "");
  }
  for (int level : {1, 6, 9}) {
    std::string c;
    ASSERT_TRUE(Compress(Codec::kZlib, level, raw, &c).ok());
    std::string out(raw.size(), '\0');
    ASSERT_TRUE(Decompress(Codec::kZlib, c, out.data(), out.size()).ok());
    EXPECT_EQ(FirstDifference(out, raw), "");
  }
}

}  // namespace
}  // namespace hloop::format
