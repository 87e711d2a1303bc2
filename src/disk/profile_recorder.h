// ProfileRecorder: notes which chunks are read, first read first, with the
// time since recording started, and writes the list as a boot profile
// (profile.h, docs/format.md) for ProfilePrefetcher to replay.
//
// Thread model: thread-safe. Until Start() OnRead costs one atomic load;
// after it, one lock, mu_, per read.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
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

  // Starts recording the first read of each non-zero chunk from now on.
  // Save() writes the profile to `save_to` (if not empty).
  void Start(std::string save_to) EXCLUDES(mu_);
  // A read of image bytes [offset, offset + len).
  void OnRead(uint64_t offset, uint64_t len) EXCLUDES(mu_);
  // The profile recorded so far, in the format of docs/format.md.
  std::string Text() EXCLUDES(mu_);
  // Writes Text() atomically to the path given to Start(); nothing to do
  // without one.
  Status Save() EXCLUDES(mu_);
  uint64_t recorded() EXCLUDES(mu_);

 private:
  const format::Index& index_;
  std::atomic<bool> recording_{false};
  Mutex mu_;
  std::chrono::steady_clock::time_point start_ GUARDED_BY(mu_);
  std::string save_to_ GUARDED_BY(mu_);
  std::vector<bool> seen_ GUARDED_BY(mu_);  // per chunk: read since Start()
  std::vector<ProfileEntry> recorded_ GUARDED_BY(mu_);
};

}  // namespace hloop::disk
