// Human sizes: "256K", "2G", "1.5M" <-> bytes (binary units).
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace hloop {

// Accepts an integer or decimal with an optional K/M/G/T suffix (optionally
// followed by "iB" or "B"); units are powers of 1024.
Result<uint64_t> ParseSize(const std::string& text);
// "256.0 KiB", "1.50 GiB", "12 B".
std::string FormatSize(uint64_t bytes);
// Durations: an integer with an optional unit s, m, h or d ("90s", "24h",
// "7d"; a bare number is seconds) -> seconds.
Result<uint64_t> ParseDuration(const std::string& text);

}  // namespace hloop
