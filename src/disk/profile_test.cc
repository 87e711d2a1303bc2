#include "disk/profile.h"

#include <gtest/gtest.h>

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
  EXPECT_NE(bad.status().message().find("boot.profile: line 3"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(ParseProfile("hloop-profile 1\n-1 1\n", 10, "p").ok());
  EXPECT_FALSE(ParseProfile("hloop-profile 1\n1 99999999999999999999999\n", 10, "p").ok());
  EXPECT_FALSE(ParseProfile("hloop-profile 1\n" + std::string(5000, '1') + " 1\n", 10, "p").ok());
}

TEST(ProfileTest, AcceptsCrlfAndAMissingFinalNewline) {
  auto p = ParseProfile("hloop-profile 1\r\n0 1\r\n4 3", 10, "p");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(*p, (std::vector<uint64_t>{1, 3}));
}

}  // namespace
}  // namespace hloop::disk
