// Boot profiles (the papers' DLAHEAD): the image bytes a boot read, in the
// order it first read them, with the time of each read. Text, one range per
// line; the constants are in profile_format.h, the format in docs/format.md.
//
// Version 2 (written now) lists byte ranges in 4 KiB blocks, so a relayout
// (`hloop relayout`) can pack exactly the blocks read; version 1 (still
// read) listed chunk numbers. Both turn into image byte ranges through an
// index (ProfileByteRanges), and into the slots a prefetch fetches
// (ProfileSlots), so a profile recorded on one layout of an image replays on
// another.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/index.h"
#include "format/layout.h"
#include "util/status.h"

namespace hloop::disk {

// Image bytes [offset, offset + length).
using ByteRange = format::ByteRange;

// One line of a profile: `ms` milliseconds after recording started, the
// image bytes [offset, offset + length) were first read (version 2), or
// chunk `offset` was (version 1, length 1).
struct ProfileEntry {
  uint64_t ms = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const ProfileEntry&) const = default;
};

struct Profile {
  uint32_t version = 2;
  // v2: image byte ranges; v1: chunk numbers as ranges in units of chunks
  // (offset = chunk number, length = 1). In the file's order, as written:
  // repeats and ranges past the image's end are kept (ProfileByteRanges
  // drops them), since the parser does not know the image.
  std::vector<ProfileEntry> entries;
};

// Parses a profile of either version. InvalidArgument, naming `origin` and
// the line, for text that is not a profile, has a version this code does not
// read, or has a bad line (not the version's numbers, an OFFSET that is not
// a multiple of 4096, a LENGTH of 0, a range past 2^64).
Result<Profile> ParseProfile(const std::string& text, const std::string& origin);

// A version 2 profile of `entries` (in order) recorded on `index`, with
// comment lines naming the index for people. REQUIRES: entries as the
// format says (offsets aligned, lengths > 0).
std::string FormatProfile(const format::Index& index, const std::vector<ProfileEntry>& entries);

// The image byte ranges of `profile` read through `index`, in order of first
// read, each byte once (a range already seen in part is cut to the part not
// yet seen), clipped to the image, without ranges that read as zeros
// (Locate says zero). v1 chunk numbers become their chunks' byte ranges
// (chunk_size of `index`). A range that starts where the one before it
// ended is merged into it. O(n log n) in the profile's ranges, plus one
// Locate per chunk or extent the ranges cover.
std::vector<ByteRange> ProfileByteRanges(const Profile& profile, const format::Index& index);

// The slots (index.h) holding those bytes, in that order, each once: what a
// prefetch of the profile fetches. On a relaid-out index this walks the hot
// chunks in order.
std::vector<uint64_t> ProfileSlots(const Profile& profile, const format::Index& index);

}  // namespace hloop::disk
