// Checking a store: every chunk an index needs is present and hashes right.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "store/local_store.h"
#include "util/status.h"

namespace hloop::pack {

struct VerifyProblem {
  std::string what;  // "missing" or "corrupt"
  std::string hash;
  std::string detail;  // which index and chunk number, or why it is corrupt
};

struct VerifyReport {
  uint64_t indexes = 0;
  uint64_t chunks_checked = 0;
  uint64_t bytes_checked = 0;
  std::vector<VerifyProblem> problems;
};

// Checks `index_names` (all indexes in the store when empty; then also every
// chunk file present, referenced or not). Index files that do not parse are
// reported as problems too. Uses `threads` threads (0: one per core).
Result<VerifyReport> VerifyStore(const store::LocalStore& store,
                                 const std::vector<std::string>& index_names, unsigned threads);

}  // namespace hloop::pack
