// Boot profiles (the papers' DLAHEAD): the chunks a boot read, in the order
// it first read them, with the time of each read. Text, one chunk per line;
// the format is in docs/format.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace hloop::disk {

// The chunk numbers of a profile, in order, without duplicates and without
// numbers >= chunk_count (a profile made on another version of the image is
// still useful). InvalidArgument, naming `origin` and the line, for text
// that is not a profile.
Result<std::vector<uint64_t>> ParseProfile(const std::string& text, uint64_t chunk_count,
                                           const std::string& origin);

}  // namespace hloop::disk
