#include "disk/profile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "disk/profile_format.h"
#include "format/codec.h"
#include "format/format.h"

namespace hloop::disk {
namespace {

constexpr uint64_t kB = kProfileBlockSize;  // 4096

std::vector<ProfileEntry> V1(std::initializer_list<std::pair<uint64_t, uint64_t>> ms_chunk) {
  std::vector<ProfileEntry> out;
  for (auto [ms, chunk] : ms_chunk)
    out.push_back(ProfileEntry{.ms = ms, .offset = chunk, .length = 1});
  return out;
}

// An index of `size` bytes in chunks of `chunk_size`; chunk i is zeros when
// zero(i); with `layout` (REQUIRES: valid for the image).
format::Index MakeIndex(uint64_t size, uint32_t chunk_size,
                        const std::function<bool(uint64_t)>& zero, format::Layout layout = {}) {
  format::IndexBuilder b(size, chunk_size, format::Codec::kNone);
  for (uint64_t i = 0; i < b.chunk_count(); i++) {
    format::ChunkEntry e;
    if (zero(i)) {
      e.flags = format::kEntryFlagZero;
    } else {
      e.hash = format::Sha256("chunk " + std::to_string(i));
      e.stored_size = chunk_size;
    }
    b.set_entry(i, e);
  }
  b.set_layout(std::move(layout));
  auto index = format::Index::Parse(b.Encode(), "t.idx");
  EXPECT_TRUE(index.ok()) << index.status().ToString();
  return std::move(index.value());
}

format::Index NoZeros(uint64_t size, uint32_t chunk_size = 4096) {
  return MakeIndex(size, chunk_size, [](uint64_t) { return false; });
}

Profile V2(std::vector<ProfileEntry> entries) { return Profile{.version = 2, .entries = entries}; }

// ---- Parsing ----

TEST(ProfileTest, ParsesVersion2RangesInTheFilesOrder) {
  auto p = ParseProfile(
      "hloop-profile 2\n# image abc chunk-size 262144 image-size 1\n# comment\n\n3 0 8192\n"
      "57 10485760 4096\n60 0 4096\n",
      "p");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->version, 2u);
  EXPECT_EQ(p->entries,
            (std::vector<ProfileEntry>{
                {.ms = 3, .offset = 0, .length = 8192},
                {.ms = 57, .offset = 10485760, .length = 4096},
                {.ms = 60, .offset = 0, .length = 4096},  // kept: the parser knows no image
            }));
}

TEST(ProfileTest, ReadsVersion1ChunkNumbersAsOneChunkRanges) {
  auto p = ParseProfile("hloop-profile 1\n# image abc\n0 5\n3 2\n7 5\n9 100\n12 0\n", "p");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->version, 1u);
  EXPECT_EQ(p->entries, V1({{0, 5}, {3, 2}, {7, 5}, {9, 100}, {12, 0}}));
  // Replayed on 10 chunks: in order, without duplicates or chunks past the end.
  format::Index index = NoZeros(10 * 4096);
  EXPECT_EQ(ProfileSlots(*p, index), (std::vector<uint64_t>{5, 2, 0}));
  EXPECT_EQ(ProfileByteRanges(*p, index),
            (std::vector<ByteRange>{{5 * 4096, 4096}, {2 * 4096, 4096}, {0, 4096}}));
}

TEST(ProfileTest, Version1ChunksBecomeTheirBytesInTheIndexsChunkSize) {
  auto p = ParseProfile("hloop-profile 1\n1 3\n2 1\n", "p");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  // 64 KiB chunks; chunk 3 is the image's last, short one.
  format::Index index = NoZeros(3 * 65536 + 1000, 65536);
  EXPECT_EQ(ProfileByteRanges(*p, index),
            (std::vector<ByteRange>{{3 * 65536, 1000}, {65536, 65536}}));
}

TEST(ProfileTest, RejectsWhatIsNotAProfileAndNamesTheLine) {
  EXPECT_FALSE(ParseProfile("", "p").ok());
  auto bad = ParseProfile("hloop-profile 2\n0 0 4096\n5 x 4096\n", "boot.profile");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(
      bad.status().message().find("boot.profile: line 3: expected 'MILLISECONDS OFFSET LENGTH'"),
      std::string::npos)
      << bad.status().message();
  auto bad1 = ParseProfile("hloop-profile 1\n0 1\n5 x\n", "old.profile");
  ASSERT_FALSE(bad1.ok());
  EXPECT_NE(bad1.status().message().find("old.profile: line 3: expected 'MILLISECONDS CHUNK'"),
            std::string::npos)
      << bad1.status().message();
  EXPECT_FALSE(ParseProfile("hloop-profile 1\n-1 1\n", "p").ok());
  EXPECT_FALSE(ParseProfile("hloop-profile 1\n1 99999999999999999999999\n", "p").ok());
  EXPECT_FALSE(ParseProfile("hloop-profile 1\n" + std::string(5000, '1') + " 1\n", "p").ok());
  EXPECT_FALSE(ParseProfile("hloop-profile 2\n" + std::string(5000, '1') + " 0 4096\n", "p").ok());
}

TEST(ProfileTest, RejectsBadLinesOfEachVersion) {
  struct Case {
    const char* text;
    const char* why;
  };
  for (const Case& c : std::vector<Case>{
           {"hloop-profile 2\n1 4097 4096\n", "line 2: offset 4097 is not a multiple of 4096"},
           {"hloop-profile 2\n1 100 4096\n", "line 2: offset 100 is not a multiple of 4096"},
           {"hloop-profile 2\n1 4096 0\n", "line 2: length 0"},
           {"hloop-profile 2\n1 18446744073709547520 8192\n", "line 2: range past 2^64"},
           {"hloop-profile 2\n1 4096\n", "line 2: expected 'MILLISECONDS OFFSET LENGTH'"},
           {"hloop-profile 2\n1 0 4096 7\n", "line 2: expected 'MILLISECONDS OFFSET LENGTH'"},
           {"hloop-profile 2\n1  0 4096\n", "line 2: expected 'MILLISECONDS OFFSET LENGTH'"},
           {"hloop-profile 2\n1 0 4096 \n", "line 2: expected 'MILLISECONDS OFFSET LENGTH'"},
           {"hloop-profile 2\n1 0 -4096\n", "line 2: expected 'MILLISECONDS OFFSET LENGTH'"},
           {"hloop-profile 2\n1 0 +4096\n", "line 2: expected 'MILLISECONDS OFFSET LENGTH'"},
           {"hloop-profile 1\n0 1 2\n", "line 2: expected 'MILLISECONDS CHUNK'"},
           {"hloop-profile 1\n0\n", "line 2: expected 'MILLISECONDS CHUNK'"},
           {"hloop-profile 1\n0 1 \n", "line 2: expected 'MILLISECONDS CHUNK'"},
       }) {
    auto p = ParseProfile(c.text, "p");
    ASSERT_FALSE(p.ok()) << c.text;
    EXPECT_EQ(p.status().code(), Status::Code::kInvalidArgument) << c.text;
    EXPECT_EQ(p.status().message(), std::string("p: ") + c.why) << c.text;
  }
  // The largest range that fits: accepted (ProfileByteRanges clips it).
  EXPECT_TRUE(ParseProfile("hloop-profile 2\n1 18446744073709547520 4095\n", "p").ok());
}

TEST(ProfileTest, AcceptsAPartialLengthForTheImagesLastBlock) {
  // A LENGTH that is not whole blocks is what a range ending at the image's
  // end has; the parser cannot tell where that is and accepts it.
  auto p = ParseProfile("hloop-profile 2\n1 36864 3996\n", "p");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->entries, (std::vector<ProfileEntry>{{.ms = 1, .offset = 36864, .length = 3996}}));
  format::Index index = NoZeros(10 * kB - 100);
  EXPECT_EQ(ProfileByteRanges(*p, index), (std::vector<ByteRange>{{9 * kB, kB - 100}}));
  EXPECT_EQ(ProfileSlots(*p, index), (std::vector<uint64_t>{9}));
}

TEST(ProfileTest, AcceptsCrlfAndAMissingFinalNewline) {
  auto p = ParseProfile("hloop-profile 1\r\n0 1\r\n4 3", "p");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->entries, V1({{0, 1}, {4, 3}}));
  auto p2 = ParseProfile("hloop-profile 2\r\n0 4096 4096\r\n4 0 8192", "p");
  ASSERT_TRUE(p2.ok()) << p2.status().ToString();
  EXPECT_EQ(p2->entries, (std::vector<ProfileEntry>{{.ms = 0, .offset = 4096, .length = 4096},
                                                    {.ms = 4, .offset = 0, .length = 8192}}));
}

TEST(ProfileTest, RefusesAnotherVersionNamingBoth) {
  for (const char* version : {"3", "0", "17"}) {
    auto v = ParseProfile(std::string("hloop-profile ") + version + "\n0 1\n", "new.profile");
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(
        v.status().message().find(std::string("new.profile: line 1: profile format version ") +
                                  version + ", this hloop reads versions 1 and 2"),
        std::string::npos)
        << v.status().message();
  }
  for (const char* first : {"hloop-profile", "hloop-profile ", "hloop-profile 01",
                            "hloop-profile 02", "hloop-profile 1 ", "hloop-profile 2 ",
                            "hloop-profil 2", "#hloop-profile 2", "HLOOP-PROFILE 2"}) {
    auto bad = ParseProfile(std::string(first) + "\n0 1\n", "p");
    ASSERT_FALSE(bad.ok()) << first;
    EXPECT_NE(bad.status().message().find("not an hloop profile (expected 'hloop-profile 2')"),
              std::string::npos)
        << bad.status().message();
  }
}

TEST(ProfileTest, FormatRoundTripsThroughParse) {
  format::Index index = MakeIndex(10 * 4096 - 100, 4096, [](uint64_t) { return true; });
  const std::vector<ProfileEntry> entries = {{.ms = 0, .offset = 7 * kB, .length = 2 * kB},
                                             {.ms = 3, .offset = 2 * kB, .length = kB},
                                             {.ms = 12, .offset = 9 * kB, .length = kB - 100}};
  std::string text = FormatProfile(index, entries);
  EXPECT_EQ(
      text.rfind(std::string(kProfileMagic) + " " + std::to_string(kProfileVersion) + "\n", 0), 0u)
      << text;
  EXPECT_EQ(text.rfind("hloop-profile 2\n", 0), 0u) << text;
  EXPECT_NE(text.find("\n# image " + format::ToHex(index.digest()) +
                      " chunk-size 4096 image-size 40860\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\n# ms-since-start offset length: image bytes first read, in 4096-byte "
                      "blocks, in order\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\n3 8192 4096\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n12 36864 3996\n"), std::string::npos) << text;
  auto p = ParseProfile(text, "p");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->version, kProfileVersion);
  EXPECT_EQ(p->entries, entries);
}

// ---- Replay through an index ----

TEST(ProfileTest, ByteRangesCutOverlapsToTheBytesNotYetSeen) {
  format::Index index = NoZeros(16 * kB);
  Profile p = V2({
      {.ms = 0, .offset = 1 * kB, .length = 2 * kB},   // [1, 3)
      {.ms = 1, .offset = 0, .length = 2 * kB},        // [0, 2): only [0, 1) is new
      {.ms = 2, .offset = 2 * kB, .length = 3 * kB},   // [2, 5): [3, 5) is new
      {.ms = 3, .offset = 0, .length = 5 * kB},        // all seen: nothing
      {.ms = 4, .offset = 7 * kB, .length = 1 * kB},   // [7, 8)
      {.ms = 5, .offset = 4 * kB, .length = 6 * kB},   // [4, 10): [5, 7) and [8, 10)
      {.ms = 6, .offset = 12 * kB, .length = 1 * kB},  // [12, 13)
      {.ms = 7, .offset = 13 * kB, .length = 1 * kB},  // [13, 14): starts where the last ended
  });
  EXPECT_EQ(ProfileByteRanges(p, index), (std::vector<ByteRange>{
                                             {1 * kB, 2 * kB},
                                             {0, 1 * kB},
                                             {3 * kB, 2 * kB},
                                             {7 * kB, 1 * kB},
                                             {5 * kB, 2 * kB},
                                             {8 * kB, 2 * kB},
                                             {12 * kB, 2 * kB},
                                         }));
  EXPECT_EQ(ProfileSlots(p, index), (std::vector<uint64_t>{1, 2, 0, 3, 4, 7, 5, 6, 8, 9, 12, 13}));
}

TEST(ProfileTest, ByteRangesCutPartialBlocksAndUnalignedOverlaps) {
  // In memory a profile may hold any ranges: cutting works to the byte.
  format::Index index = NoZeros(4 * kB);
  Profile p = V2({{.ms = 0, .offset = 100, .length = 50},
                  {.ms = 0, .offset = 0, .length = 200},
                  {.ms = 0, .offset = 120, .length = 0}});
  EXPECT_EQ(ProfileByteRanges(p, index), (std::vector<ByteRange>{{100, 50}, {0, 100}, {150, 50}}));
}

TEST(ProfileTest, ByteRangesAreClippedToTheImage) {
  format::Index index = NoZeros(10 * kB - 100);
  Profile p = V2({
      {.ms = 0, .offset = 10 * kB, .length = kB},                  // past the end: dropped
      {.ms = 0, .offset = 9 * kB, .length = kB},                   // the last, partial block
      {.ms = 0, .offset = 8 * kB, .length = UINT64_MAX - 8 * kB},  // clipped, then cut
      {.ms = 0, .offset = UINT64_MAX - kB + 1, .length = kB - 1},
  });
  EXPECT_EQ(ProfileByteRanges(p, index),
            (std::vector<ByteRange>{{9 * kB, kB - 100}, {8 * kB, kB}}));
}

TEST(ProfileTest, ByteRangesDropWhatReadsAsZeros) {
  // Table zeros: chunks 1 and 3 of 4 KiB.
  format::Index table = MakeIndex(6 * kB, 4096, [](uint64_t i) { return i == 1 || i == 3; });
  Profile p =
      V2({{.ms = 0, .offset = 0, .length = 5 * kB}, {.ms = 1, .offset = 3 * kB, .length = 3 * kB}});
  EXPECT_EQ(ProfileByteRanges(p, table),
            (std::vector<ByteRange>{{0, kB}, {2 * kB, kB}, {4 * kB, 2 * kB}}));
  EXPECT_EQ(ProfileSlots(p, table), (std::vector<uint64_t>{0, 2, 4, 5}));
  // A profile of nothing but zeros replays as nothing.
  EXPECT_TRUE(ProfileByteRanges(V2({{.ms = 0, .offset = kB, .length = kB}}), table).empty());
  EXPECT_TRUE(ProfileSlots(*ParseProfile("hloop-profile 1\n0 3\n", "p"), table).empty());

  // Zero extents: [5000, 5100) inside a hot range reads as zeros.
  format::Layout layout;
  layout.hot.push_back(format::HotChunk{format::Sha256("hot 0"), 3000, 5000});
  layout.extents.push_back(format::ImageExtent{100, 4900, 0, 0});
  layout.extents.push_back(format::ImageExtent{5000, 100, format::kExtentZero, 0});
  layout.extents.push_back(format::ImageExtent{5100, 100, 0, 4900});
  format::Index hot = MakeIndex(
      3 * kB, 4096, [](uint64_t) { return false; }, layout);
  EXPECT_EQ(ProfileByteRanges(V2({{.ms = 0, .offset = kB, .length = kB}}), hot),
            (std::vector<ByteRange>{{kB, 5000 - kB}, {5100, 2 * kB - 5100}}));
}

// 16 chunks of 4 KiB; hot chunk 0 (slot 16) holds image chunks 8-9 then 2,
// hot chunk 1 (slot 17) holds chunk 12, and chunk 14 is zeros by an extent.
format::Index RelaidOut() {
  format::Layout layout;
  layout.hot.push_back(format::HotChunk{format::Sha256("hot 0"), 5000, 3 * 4096});
  layout.hot.push_back(format::HotChunk{format::Sha256("hot 1"), 2000, 4096});
  layout.extents.push_back(format::ImageExtent{2 * kB, uint32_t(kB), 0, uint32_t(2 * kB)});
  layout.extents.push_back(format::ImageExtent{8 * kB, uint32_t(2 * kB), 0, 0});
  layout.extents.push_back(format::ImageExtent{12 * kB, uint32_t(kB), 1, 0});
  layout.extents.push_back(format::ImageExtent{14 * kB, uint32_t(kB), format::kExtentZero, 0});
  return MakeIndex(
      16 * kB, 4096, [](uint64_t) { return false; }, layout);
}

TEST(ProfileTest, SlotsOfARelaidOutIndexWalkTheHotChunksInOrder) {
  format::Index index = RelaidOut();
  ASSERT_EQ(index.slot_count(), 18u);
  Profile p = V2({
      {.ms = 0, .offset = 12 * kB, .length = kB},      // hot 1
      {.ms = 1, .offset = 8 * kB, .length = 2 * kB},   // hot 0
      {.ms = 2, .offset = 2 * kB, .length = kB},       // hot 0 again: once
      {.ms = 3, .offset = 5 * kB, .length = kB},       // table chunk 5
      {.ms = 4, .offset = 14 * kB, .length = kB},      // zeros: nothing
      {.ms = 5, .offset = 11 * kB, .length = 3 * kB},  // 11, (12 seen), 13
  });
  EXPECT_EQ(ProfileSlots(p, index), (std::vector<uint64_t>{17, 16, 5, 11, 13}));
  EXPECT_EQ(ProfileByteRanges(p, index), (std::vector<ByteRange>{{12 * kB, kB},
                                                                 {8 * kB, 2 * kB},
                                                                 {2 * kB, kB},
                                                                 {5 * kB, kB},
                                                                 {11 * kB, kB},
                                                                 {13 * kB, kB}}));
  // A version 1 profile (chunk numbers) replays on the new layout too.
  auto v1 = ParseProfile("hloop-profile 1\n0 9\n1 0\n2 8\n3 14\n", "p");
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(ProfileSlots(*v1, index), (std::vector<uint64_t>{16, 0}));
}

TEST(ProfileTest, ByteRangesOfABigScatteredProfileReadEachByteOnce) {
  // 2^18 single blocks (1 GiB in 4 MiB chunks) in a scattered order, then
  // the whole image again: each block once, nothing from the second pass.
  // A quadratic cut (each range against all before it) would take minutes.
  const uint64_t blocks = uint64_t(1) << 18;
  format::Index index = NoZeros(blocks * kB, format::kMaxChunkSize);
  Profile p;
  for (uint64_t i = 0; i < blocks; i++)
    p.entries.push_back(ProfileEntry{.ms = i, .offset = (i * 40503) % blocks * kB, .length = kB});
  p.entries.push_back(ProfileEntry{.ms = blocks, .offset = 0, .length = blocks * kB});
  std::vector<ByteRange> ranges = ProfileByteRanges(p, index);
  // 40503 is odd, so the draws are a permutation, and not 1, so no draw
  // starts where the one before ended: nothing merges.
  ASSERT_EQ(ranges.size(), blocks);
  EXPECT_EQ(ranges[1].offset, 40503 * kB);
  std::sort(ranges.begin(), ranges.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  for (uint64_t i = 0; i < blocks; i++) ASSERT_EQ(ranges[i], (ByteRange{i * kB, kB})) << i;
  EXPECT_EQ(ProfileSlots(p, index).size(), index.chunk_count());
}

}  // namespace
}  // namespace hloop::disk
