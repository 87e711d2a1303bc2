#include "util/duration.h"

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

}  // namespace hloop
