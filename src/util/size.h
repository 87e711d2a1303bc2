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

}  // namespace hloop
