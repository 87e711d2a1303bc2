#include "util/duration.h"

#include <gtest/gtest.h>

namespace hloop {
namespace {

TEST(DurationTest, Accepted) {
  struct {
    const char* text;
    int64_t seconds;
  } cases[] = {{"30s", 30},
               {"15m", 900},
               {"12h", 43200},
               {"7d", 604800},
               {"1s", 1},
               {"0100s", 100},
               {"36500d", 36500LL * 86400}};
  for (const auto& c : cases) {
    auto r = ParseDuration(c.text);
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.status().ToString();
    EXPECT_EQ(r.value(), c.seconds) << c.text;
  }
}

TEST(DurationTest, Refused) {
  for (const char* text : {"", "s", "7", "7w", "-1d", "+1d", "1.5h", "0s", "0d", " 7d", "7d ",
                           "7 d", "7dd", "d7", "99999999999999999999d", "40000d"}) {
    auto r = ParseDuration(text);
    EXPECT_FALSE(r.ok()) << "'" << text << "' accepted as " << (r.ok() ? r.value() : 0);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
      EXPECT_NE(r.status().message().find("30s, 15m, 12h, 7d"), std::string::npos);
    }
  }
}

TEST(FormatTest, TimesAndAges) {
  EXPECT_EQ(FormatUtc(1800000000), "2027-01-15 08:00:00 UTC");
  EXPECT_EQ(FormatUtc(0), "unknown");
  EXPECT_EQ(FormatAge(90), "90 s");
  EXPECT_EQ(FormatAge(-90), "90 s");
  EXPECT_EQ(FormatAge(600), "10 min");
  EXPECT_EQ(FormatAge(3 * 3600 + 5 * 60), "3 h 5 min");
  EXPECT_EQ(FormatAge(2 * 86400 + 4 * 3600), "2 days 4 h");
}

}  // namespace
}  // namespace hloop
