// Boot profiles (the papers' DLAHEAD): the chunks a boot read, in the order
// it first read them, with the time of each read. Text, one chunk per line;
// the constants are in profile_format.h, the format in docs/format.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/index.h"
#include "util/status.h"

namespace hloop::disk {

// One line of a profile: chunk `chunk` was first read `ms` milliseconds
// after recording started.
struct ProfileEntry {
  uint64_t ms = 0;
  uint64_t chunk = 0;
};

// The chunk numbers of a profile, in order, without duplicates and without
// numbers >= chunk_count (a profile made on another version of the image is
// still useful). InvalidArgument, naming `origin` and the line, for text
// that is not a profile or has a version this code does not read.
Result<std::vector<uint64_t>> ParseProfile(const std::string& text, uint64_t chunk_count,
                                           const std::string& origin);

// A profile of `entries` (in order) recorded on `index`, with comment
// lines naming the index for people.
std::string FormatProfile(const format::Index& index, const std::vector<ProfileEntry>& entries);

}  // namespace hloop::disk
