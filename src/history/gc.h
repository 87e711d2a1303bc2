// Garbage collection of a local store: a mark-and-sweep.
//
// 1. Every index in the store is read; one that cannot be read or parsed
//    makes gc refuse (its chunks could not be marked).
// 2. With keep_last = N, index files (NAME.idx and NAME.idx.sig) are deleted
//    unless they are among the last N versions of a history: a root and its
//    PARENT chain (PARENT_NAME.idx in the store, with the recorded digest),
//    N versions long. The roots are the indexes the store's channels
//    (STORE/*.channel) point at; in a store without channels, every index no
//    other index names as its parent (the newest version of each history).
//    Without keep_last no index is deleted.
// 3. Every chunk file that no remaining index references and whose mtime is
//    older than the grace period is removed.
//
// Crash safety: indexes are the roots, so they go first, each with one
// unlink; a chunk file is removed only when no index left in the store names
// it. A kill at any point leaves every remaining index complete.
//
// Grace: a pack or commit in progress writes its chunk files before its
// index, so they look unreferenced until it ends; their fresh mtimes protect
// them. A chunk file a writer finds already in the store is reused without a
// new mtime, so do not run gc (without a grace period covering it) while a
// writer reuses chunks of versions gc is deleting.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "format/hash.h"
#include "store/local_store.h"
#include "util/status.h"

namespace hloop::history {

// Given the path of a channel file, the path of the index it points at,
// relative to the store (say "debian-v3.idx"). Supplied by the caller, who
// knows the channel format (the trust module).
using ChannelIndexFn = std::function<Result<std::string>(const std::string& channel_path)>;

struct GcOptions {
  // Keep the last N versions of each history (N >= 1); unset: delete no index.
  std::optional<uint32_t> keep_last;
  // Unreferenced chunk files younger than this are kept.
  int64_t grace_s = 24 * 3600;
  // Report what would be removed, remove nothing.
  bool dry_run = false;
  // Required when keep_last is set and the store has channel files.
  ChannelIndexFn channel_index;
  // Test only: called before each deletion (to kill gc in the middle).
  std::function<void()> before_delete;
  // "Now", seconds since the epoch; 0: the clock.
  int64_t now = 0;
};

struct GcReport {
  std::vector<std::string> roots;            // index names the histories start from
  std::vector<std::string> indexes_kept;     // names, sorted
  std::vector<std::string> indexes_removed;  // names, sorted (or to remove, with dry_run)
  uint64_t index_bytes_removed = 0;          // their .idx and .idx.sig files
  uint64_t chunks_total = 0;                 // chunk files in the store before gc
  uint64_t chunks_referenced = 0;            // of those, named by a remaining index
  uint64_t chunks_young = 0;                 // unreferenced but within the grace period: kept
  std::vector<format::Hash> chunks_removed;  // sorted (or to remove, with dry_run)
  uint64_t chunk_bytes_removed = 0;
  bool dry_run = false;
};

Result<GcReport> Gc(store::LocalStore& store, const GcOptions& options);

}  // namespace hloop::history
