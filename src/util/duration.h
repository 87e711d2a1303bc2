// Durations as people write them on a command line: "30s", "15m", "12h", "7d".
#pragma once

#include <cstdint>
#include <string_view>

#include "util/status.h"

namespace hloop {

// A positive whole number followed by one unit: s (seconds), m (minutes),
// h (hours) or d (days). Returns seconds. Anything else (no unit, another
// unit, a sign, a fraction, zero unless `allow_zero`, more than 100 years)
// is InvalidArgument naming the text and the accepted form.
Result<int64_t> ParseDuration(std::string_view text, bool allow_zero = false);

}  // namespace hloop
