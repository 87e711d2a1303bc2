#include "disk/profile.h"

#include <charconv>
#include <string_view>

#include "disk/profile_format.h"

namespace hloop::disk {

namespace {

bool ParseNumber(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string FirstLine() {
  return std::string(kProfileMagic) + " " + std::to_string(kProfileVersion);
}

// Checks line 1: the magic and a version this code reads. Empty: fine.
std::string CheckFirstLine(std::string_view line) {
  const std::string want = FirstLine();
  if (line == want) return "";
  uint64_t version;
  if (line.size() > kProfileMagic.size() && line.substr(0, kProfileMagic.size()) == kProfileMagic &&
      line[kProfileMagic.size()] == ' ' &&
      ParseNumber(line.substr(kProfileMagic.size() + 1), &version) && version != kProfileVersion)
    return "profile format version " + std::to_string(version) + ", this hloop reads version " +
           std::to_string(kProfileVersion);
  return "not an hloop profile (expected '" + want + "')";
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
    if (line.size() > kProfileMaxLine) return bad("line too long");
    if (line_no == 1) {
      std::string why = CheckFirstLine(line);
      if (!why.empty()) return bad(why);
      continue;
    }
    if (line.empty() || line[0] == kProfileComment) continue;
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

std::string FormatProfile(const format::Index& index, const std::vector<ProfileEntry>& entries) {
  std::string out = FirstLine() + "\n";
  out += std::string(1, kProfileComment) + " image " + format::ToHex(index.digest()) +
         " chunk-size " + std::to_string(index.chunk_size()) + " chunks " +
         std::to_string(index.chunk_count()) + "\n";
  out += std::string(1, kProfileComment) +
         " ms-since-start chunk-number, in the order of first reads\n";
  for (const auto& e : entries) out += std::to_string(e.ms) + " " + std::to_string(e.chunk) + "\n";
  return out;
}

}  // namespace hloop::disk
