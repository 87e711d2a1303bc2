// The history of an image version: the chain of PARENT records from an index
// back to its first version, as far as the parents can be found.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fetch/source.h"
#include "format/hash.h"
#include "format/index.h"
#include "history/diff.h"
#include "util/status.h"

namespace hloop::history {

struct LogVersion {
  std::string url;   // where its index was read
  std::string name;  // the name recorded in the index (may be empty)
  format::Hash digest{};
  uint64_t created = 0;  // seconds since the epoch; 0: not recorded
  uint64_t image_size = 0;
  uint64_t stored_bytes = 0;  // the index's summary: all its distinct chunk files
  // Chunk files this version has and its parent has not (NewChunkFiles).
  // For a first version (no parent) all of its files; unset when the parent
  // could not be read.
  std::optional<NewFiles> added;
};

struct LogResult {
  std::vector<LogVersion> versions;  // newest first
  // Why the walk stopped: empty when the oldest version has no parent;
  // else what went wrong with the next parent (missing, digest mismatch, ...).
  std::string stopped;
};

// Reads and parses the index at `url` (http(s)://, file:// or a path).
Result<format::Index> ReadIndex(const std::string& url, const fetch::FetchOptions& options);

// Reads the index at `url` (http(s)://, file:// or a path), then each parent
// named by its PARENT record: PARENT_NAME.idx next to it. A parent that
// cannot be fetched or parsed, or whose digest is not the one recorded,
// ends the walk (LogResult::stopped says so); only a failure to read `url`
// itself is an error.
Result<LogResult> Log(const std::string& url, const fetch::FetchOptions& options);

}  // namespace hloop::history
