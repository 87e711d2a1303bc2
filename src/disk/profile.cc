#include "disk/profile.h"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <map>
#include <string_view>

#include "disk/profile_format.h"

namespace hloop::disk {

namespace {

bool ParseNumber(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string FirstLine(uint32_t version) {
  return std::string(kProfileMagic) + " " + std::to_string(version);
}

// Checks line 1: the magic and a version this code reads, into *version.
// Empty: fine; else what is wrong.
std::string CheckFirstLine(std::string_view line, uint32_t* version) {
  for (uint32_t v : {kProfileVersionChunks, kProfileVersion}) {
    if (line == FirstLine(v)) {
      *version = v;
      return "";
    }
  }
  uint64_t other;
  if (line.size() > kProfileMagic.size() && line.substr(0, kProfileMagic.size()) == kProfileMagic &&
      line[kProfileMagic.size()] == ' ' &&
      ParseNumber(line.substr(kProfileMagic.size() + 1), &other) &&
      other != kProfileVersionChunks && other != kProfileVersion)
    return "profile format version " + std::to_string(other) + ", this hloop reads versions " +
           std::to_string(kProfileVersionChunks) + " and " + std::to_string(kProfileVersion);
  return "not an hloop profile (expected '" + FirstLine(kProfileVersion) + "')";
}

// Splits `line` at single spaces into exactly `n` decimal numbers.
bool ParseFields(std::string_view line, size_t n, uint64_t* out) {
  for (size_t k = 0; k < n; k++) {
    const size_t space = k + 1 < n ? line.find(' ') : std::string_view::npos;
    if (k + 1 < n && space == std::string_view::npos) return false;
    if (!ParseNumber(line.substr(0, space), &out[k])) return false;
    line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  }
  return true;
}

// The parts of the image seen so far: disjoint intervals [first, second),
// merged when they touch. Take() is O(log n) plus the intervals it merges,
// so a profile of n ranges costs O(n log n) however they overlap.
class SeenBytes {
 public:
  // Appends the parts of [a, b) not seen yet to `gaps`, in ascending order,
  // and marks [a, b) seen.
  void Take(uint64_t a, uint64_t b, std::vector<ByteRange>* gaps) {
    auto it = seen_.upper_bound(a);
    if (it != seen_.begin() && std::prev(it)->second >= a) --it;
    uint64_t lo = a, hi = b, pos = a;
    while (it != seen_.end() && it->first <= b) {
      if (it->first > pos) gaps->push_back(ByteRange{.offset = pos, .length = it->first - pos});
      pos = std::max(pos, it->second);
      lo = std::min(lo, it->first);
      hi = std::max(hi, it->second);
      it = seen_.erase(it);
    }
    if (pos < b) gaps->push_back(ByteRange{.offset = pos, .length = b - pos});
    seen_.emplace(lo, hi);
  }

 private:
  std::map<uint64_t, uint64_t> seen_;
};

// Appends the parts of image bytes [a, b) that do not read as zeros to
// `out`, merging a part into the range before it when they touch.
// REQUIRES: b <= index.image_size().
void AppendNotZero(const format::Index& index, uint64_t a, uint64_t b,
                   std::vector<ByteRange>* out) {
  for (uint64_t pos = a; pos < b;) {
    const format::Segment seg = index.Locate(pos);
    const uint64_t n = std::min(seg.length, b - pos);
    if (n == 0) break;  // cannot happen below the image's end; never loop
    if (!seg.zero) {
      if (!out->empty() && out->back().offset + out->back().length == pos)
        out->back().length += n;
      else
        out->push_back(ByteRange{.offset = pos, .length = n});
    }
    pos += n;
  }
}

}  // namespace

Result<Profile> ParseProfile(const std::string& text, const std::string& origin) {
  Profile profile;
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
      std::string why = CheckFirstLine(line, &profile.version);
      if (!why.empty()) return bad(why);
      continue;
    }
    if (line.empty() || line[0] == kProfileComment) continue;
    if (profile.version == kProfileVersionChunks) {
      uint64_t f[2];
      if (!ParseFields(line, 2, f)) return bad("expected 'MILLISECONDS CHUNK'");
      profile.entries.push_back(ProfileEntry{.ms = f[0], .offset = f[1], .length = 1});
      continue;
    }
    uint64_t f[3];
    if (!ParseFields(line, 3, f)) return bad("expected 'MILLISECONDS OFFSET LENGTH'");
    if (f[1] % kProfileBlockSize != 0)
      return bad("offset " + std::to_string(f[1]) + " is not a multiple of " +
                 std::to_string(kProfileBlockSize));
    if (f[2] == 0) return bad("length 0");
    if (f[2] > UINT64_MAX - f[1]) return bad("range past 2^64");
    profile.entries.push_back(ProfileEntry{.ms = f[0], .offset = f[1], .length = f[2]});
  }
  if (line_no == 0) return Status::InvalidArgument(origin + ": empty file, not an hloop profile");
  return profile;
}

std::string FormatProfile(const format::Index& index, const std::vector<ProfileEntry>& entries) {
  std::string out = FirstLine(kProfileVersion) + "\n";
  out += std::string(1, kProfileComment) + " image " + format::ToHex(index.digest()) +
         " chunk-size " + std::to_string(index.chunk_size()) + " image-size " +
         std::to_string(index.image_size()) + "\n";
  out += std::string(1, kProfileComment) +
         " ms-since-start offset length: image bytes first read, in " +
         std::to_string(kProfileBlockSize) + "-byte blocks, in order\n";
  for (const auto& e : entries)
    out += std::to_string(e.ms) + " " + std::to_string(e.offset) + " " + std::to_string(e.length) +
           "\n";
  return out;
}

std::vector<ByteRange> ProfileByteRanges(const Profile& profile, const format::Index& index) {
  const uint64_t size = index.image_size();
  SeenBytes seen;
  std::vector<ByteRange> out, gaps;
  for (const ProfileEntry& e : profile.entries) {
    uint64_t a, b;
    if (profile.version == kProfileVersionChunks) {
      if (e.offset >= index.chunk_count()) continue;  // also keeps the product below 2^64
      a = e.offset * index.chunk_size();
      b = std::min(size, a + index.chunk_size());
    } else {
      if (e.length == 0 || e.offset >= size) continue;
      a = e.offset;
      b = a + std::min(e.length, size - a);
    }
    gaps.clear();
    seen.Take(a, b, &gaps);
    for (const ByteRange& g : gaps) AppendNotZero(index, g.offset, g.offset + g.length, &out);
  }
  return out;
}

std::vector<uint64_t> ProfileSlots(const Profile& profile, const format::Index& index) {
  std::vector<bool> seen(index.slot_count(), false);
  std::vector<uint64_t> slots, of_range;
  for (const ByteRange& r : ProfileByteRanges(profile, index)) {
    of_range.clear();
    index.SlotsOf(r.offset, r.length, &of_range);
    for (uint64_t s : of_range) {
      if (s >= seen.size() || seen[s]) continue;
      seen[s] = true;
      slots.push_back(s);
    }
  }
  return slots;
}

}  // namespace hloop::disk
