#include "util/duration.h"

#include <cstdio>
#include <ctime>
#include <string>

namespace hloop {

Result<int64_t> ParseDuration(std::string_view text, bool allow_zero) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("duration '" + std::string(text) + "': " + why +
                                   " (expected a positive number and a unit: 30s, 15m, 12h, 7d)");
  };
  if (text.size() < 2) return bad("too short");
  int64_t unit = 0;
  switch (text.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return bad("no unit");
  }
  constexpr int64_t kMax = int64_t(100) * 366 * 86400;  // a bound no expiry needs to pass
  int64_t n = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return bad("not a whole number");
    n = n * 10 + (c - '0');
    if (n * unit > kMax) return bad("more than 100 years");
  }
  if (n == 0 && !allow_zero) return bad("zero");
  return n * unit;
}

std::string FormatUtc(int64_t seconds) {
  if (seconds == 0) return "unknown";
  const time_t t = time_t(seconds);
  struct tm tm;
  char buf[64];
  if (!gmtime_r(&t, &tm) || !std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm))
    return std::to_string(seconds);
  return buf;
}

std::string FormatAge(int64_t seconds) {
  const long long s = seconds < 0 ? -(long long)seconds : (long long)seconds;
  char buf[64];
  if (s < 120) {
    std::snprintf(buf, sizeof buf, "%lld s", s);
  } else if (s < 2 * 3600) {
    std::snprintf(buf, sizeof buf, "%lld min", s / 60);
  } else if (s < 2 * 86400) {
    std::snprintf(buf, sizeof buf, "%lld h %lld min", s / 3600, s % 3600 / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld days %lld h", s / 86400, s % 86400 / 3600);
  }
  return buf;
}

}  // namespace hloop
