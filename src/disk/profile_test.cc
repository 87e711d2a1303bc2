#include "disk/profile.h"

#include <gtest/gtest.h>

#include "disk/profile_format.h"
#include "format/codec.h"

namespace hloop::disk {
namespace {

TEST(ProfileTest, ParsesChunksInOrderWithoutDuplicatesOrOutOfRange) {
  auto p = ParseProfile("hloop-profile 1\n# image abc\n0 5\n3 2\n7 5\n9 100\n12 0\n", 10, "p");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(*p, (std::vector<uint64_t>{5, 2, 0}));
}

TEST(ProfileTest, RejectsWhatIsNotAProfileAndNamesTheLine) {
  EXPECT_FALSE(ParseProfile("", 10, "p").ok());
  EXPECT_FALSE(ParseProfile("hloop-profile 2\n0 1\n", 10, "p").ok());
  auto bad = ParseProfile("hloop-profile 1\n0 1\n5 x\n", 10, "boot.profile");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("boot.profile: line 3"), std::string::npos)
      << bad.status().message();
  EXPECT_FALSE(ParseProfile("hloop-profile 1\n-1 1\n", 10, "p").ok());
  EXPECT_FALSE(ParseProfile("hloop-profile 1\n1 99999999999999999999999\n", 10, "p").ok());
  EXPECT_FALSE(ParseProfile("hloop-profile 1\n" + std::string(5000, '1') + " 1\n", 10, "p").ok());
}

TEST(ProfileTest, AcceptsCrlfAndAMissingFinalNewline) {
  auto p = ParseProfile("hloop-profile 1\r\n0 1\r\n4 3", 10, "p");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(*p, (std::vector<uint64_t>{1, 3}));
}

TEST(ProfileTest, RefusesAnotherVersionNamingBoth) {
  auto v2 = ParseProfile("hloop-profile 2\n0 1\n", 10, "new.profile");
  ASSERT_FALSE(v2.ok());
  EXPECT_EQ(v2.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(v2.status().message().find(
                "new.profile: line 1: profile format version 2, this hloop reads version 1"),
            std::string::npos)
      << v2.status().message();
  for (const char* first : {"hloop-profile", "hloop-profile ", "hloop-profile 01",
                            "hloop-profile 1 ", "hloop-profil 1", "#hloop-profile 1"}) {
    auto bad = ParseProfile(std::string(first) + "\n0 1\n", 10, "p");
    ASSERT_FALSE(bad.ok()) << first;
    EXPECT_NE(bad.status().message().find("not an hloop profile"), std::string::npos)
        << bad.status().message();
  }
}

TEST(ProfileTest, FormatRoundTripsThroughParse) {
  format::IndexBuilder b(10 * 4096, 4096, format::Codec::kNone);
  for (uint64_t i = 0; i < 10; i++) {
    format::ChunkEntry e;
    e.flags = format::kEntryFlagZero;
    b.set_entry(i, e);
  }
  auto index = format::Index::Parse(b.Encode(), "t.idx");
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  std::string text = FormatProfile(*index, {{0, 7}, {3, 2}, {12, 9}});
  EXPECT_EQ(
      text.rfind(std::string(kProfileMagic) + " " + std::to_string(kProfileVersion) + "\n", 0), 0u)
      << text;
  EXPECT_NE(
      text.find("\n# image " + format::ToHex(index->digest()) + " chunk-size 4096 chunks 10\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("\n3 2\n"), std::string::npos) << text;
  auto chunks = ParseProfile(text, 10, "p");
  ASSERT_TRUE(chunks.ok()) << chunks.status().ToString();
  EXPECT_EQ(*chunks, (std::vector<uint64_t>{7, 2, 9}));
}

}  // namespace
}  // namespace hloop::disk
