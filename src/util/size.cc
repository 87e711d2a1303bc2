#include "util/size.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace hloop {

Result<uint64_t> ParseSize(const std::string& text) {
  const char* s = text.c_str();
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s, &end);
  if (end == s || errno != 0 || v < 0 || !std::isfinite(v))
    return Status::InvalidArgument("not a size: '" + text + "'");
  std::string unit(end);
  for (auto& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  // "K", "KB", "KiB" are all KiB; a bare "B" means bytes.
  bool scaled = !unit.empty() && std::string_view("KMGT").find(unit[0]) != std::string_view::npos;
  if (scaled && (unit.substr(1) == "IB" || unit.substr(1) == "B")) unit.resize(1);
  double mult = 1;
  if (unit.empty() || unit == "B")
    mult = 1;
  else if (unit == "K")
    mult = 1024.0;
  else if (unit == "M")
    mult = 1024.0 * 1024;
  else if (unit == "G")
    mult = 1024.0 * 1024 * 1024;
  else if (unit == "T")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else
    return Status::InvalidArgument("unknown size unit in '" + text + "' (use K, M, G or T)");
  double bytes = v * mult;
  if (bytes > 9.0e18) return Status::InvalidArgument("size too large: '" + text + "'");
  return uint64_t(std::llround(bytes));
}

std::string FormatSize(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    u++;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", (unsigned long long)bytes);
  else
    std::snprintf(buf, sizeof buf, v < 10 ? "%.2f %s" : "%.1f %s", v, kUnits[u]);
  return buf;
}

}  // namespace hloop
