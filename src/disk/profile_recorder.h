// ProfileRecorder: notes which 4 KiB blocks of the image are read, first
// read first, with the time since recording started, and writes them as a
// boot profile of version 2 (profile.h, docs/format.md) for
// ProfilePrefetcher to replay and `hloop relayout` to pack.
//
// Memory: a bitset per chunk touched since Start() (chunk_size / 4 KiB
// bits, in a hash map: no bitmap of the whole image, which for 1 TiB would
// be 268M bits), plus one entry (24 bytes) per run of new blocks a read
// found; consecutive new blocks of one read, or of reads in the same
// millisecond, make one entry.
//
// Thread model: thread-safe. Until Start() OnRead costs one atomic load;
// after it, one lock, mu_, per read.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "disk/profile.h"
#include "format/index.h"
#include "util/mutex.h"

namespace hloop::disk {

class ProfileRecorder {
 public:
  // `index` must outlive this.
  explicit ProfileRecorder(const format::Index& index);
  ProfileRecorder(const ProfileRecorder&) = delete;
  ProfileRecorder& operator=(const ProfileRecorder&) = delete;

  // Starts recording, from now on, the first read of each 4 KiB block that
  // does not read as zeros (Index::Locate; zeros cost nothing to fetch).
  // Save() writes the profile to `save_to` (if not empty).
  void Start(std::string save_to) EXCLUDES(mu_);
  // A read of image bytes [offset, offset + len).
  void OnRead(uint64_t offset, uint64_t len) EXCLUDES(mu_);
  // The profile recorded so far, in the format of docs/format.md.
  std::string Text() EXCLUDES(mu_);
  // Writes Text() atomically to the path given to Start(); nothing to do
  // without one.
  Status Save() EXCLUDES(mu_);
  // The number of 4 KiB blocks recorded so far (the image's last, partial
  // block counts as one).
  uint64_t recorded() EXCLUDES(mu_);

 private:
  // Marks block `block` seen; false if it already was.
  bool See(uint64_t block) REQUIRES(mu_);

  const format::Index& index_;
  const uint64_t blocks_per_chunk_;
  std::atomic<bool> recording_{false};
  Mutex mu_;
  std::chrono::steady_clock::time_point start_ GUARDED_BY(mu_);
  std::string save_to_ GUARDED_BY(mu_);
  // Per chunk touched since Start(): which of its blocks were read, a bit
  // each, blocks_per_chunk_ bits.
  std::unordered_map<uint64_t, std::vector<uint64_t>> seen_ GUARDED_BY(mu_);
  std::vector<ProfileEntry> recorded_ GUARDED_BY(mu_);
  uint64_t blocks_ GUARDED_BY(mu_) = 0;
};

}  // namespace hloop::disk
