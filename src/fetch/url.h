// Locations of indexes and of the chunk files next to them.
#pragma once

#include <string>

#include "util/status.h"

namespace hloop::fetch {

struct Location {
  enum class Kind { kFile, kHttp };
  Kind kind = Kind::kFile;
  // For kFile an absolute directory path; for kHttp a URL. Ends with '/'.
  std::string base;
  std::string index_name;  // "name.idx"
  std::string index_url;   // base + index_name (for kFile, a path to read)
  std::string url;         // as given: how messages and caches name it
};

// Accepts http://, https://, file:// and plain paths. InvalidArgument for
// other schemes or a location without a file name.
Result<Location> ParseLocation(const std::string& url);

// Image name for an index file name: "debian.idx" -> "debian".
std::string StemOf(const std::string& file_name);

}  // namespace hloop::fetch
