// Durations and times as people write and read them: "30s", "15m", "12h",
// "7d" on a command line; "2026-12-04 17:20:00 UTC" and "2 h 5 min" in output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace hloop {

// A positive whole number followed by one unit: s (seconds), m (minutes),
// h (hours) or d (days). Returns seconds. Anything else (no unit, another
// unit, a sign, a fraction, zero unless `allow_zero`, more than 100 years)
// is InvalidArgument naming the text and the accepted form.
Result<int64_t> ParseDuration(std::string_view text, bool allow_zero = false);

// "2026-12-04 17:20:00 UTC" for seconds since the epoch; "unknown" for 0.
std::string FormatUtc(int64_t seconds);
// How long `seconds` is, roughly: "45 s", "12 min", "3 h 5 min", "2 days 4 h".
// A negative length is shown as its absolute value.
std::string FormatAge(int64_t seconds);

}  // namespace hloop
