#include "disk/profile.h"

#include <charconv>
#include <string_view>

namespace hloop::disk {

namespace {
constexpr std::string_view kMagic = "hloop-profile 1";
constexpr size_t kMaxLine = 4096;

bool ParseNumber(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}
}  // namespace

Result<std::vector<uint64_t>> ParseProfile(const std::string& text, uint64_t chunk_count,
                                           const std::string& origin) {
  std::vector<uint64_t> out;
  std::vector<bool> seen(size_t(std::min<uint64_t>(chunk_count, uint64_t(1) << 32)), false);
  std::string_view rest(text);
  uint64_t line_no = 0;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    line_no++;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto bad = [&](const std::string& why) {
      return Status::InvalidArgument(origin + ": line " + std::to_string(line_no) + ": " + why);
    };
    if (line.size() > kMaxLine) return bad("line too long");
    if (line_no == 1) {
      if (line != kMagic) return bad("not an hloop profile (expected '" + std::string(kMagic) + "')");
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.find(' ');
    if (space == std::string_view::npos) return bad("expected 'MILLISECONDS CHUNK'");
    uint64_t ms, chunk;
    if (!ParseNumber(line.substr(0, space), &ms) || !ParseNumber(line.substr(space + 1), &chunk))
      return bad("expected 'MILLISECONDS CHUNK'");
    if (chunk >= seen.size() || seen[size_t(chunk)]) continue;
    seen[size_t(chunk)] = true;
    out.push_back(chunk);
  }
  if (line_no == 0) return Status::InvalidArgument(origin + ": empty file, not an hloop profile");
  return out;
}

}  // namespace hloop::disk
