// Whether the channel an image was opened from now names a newer version
// (`hloop stats`): a mounted file system keeps the version it started with,
// but its user should see that an update is waiting.
#pragma once

#include <nlohmann/json.hpp>

#include "disk/image_version.h"
#include "disk/resolve.h"
#include "fetch/source.h"
#include "util/mutex.h"

namespace hloop::disk {

// Thread-safe. Json() fetches the channel again at most every
// `interval_s` seconds (one quick attempt); between checks it repeats the
// last answer.
class VersionWatch {
 public:
  VersionWatch(ImageVersion served, fetch::FetchOptions options, TrustOptions trust,
               int interval_s = 5);
  // Null when the image was not opened from a channel; else
  // {"sequence", "index", "digest", "newer", "checked_at"} of what the
  // channel names now, or {"error", "checked_at"} when the check failed.
  nlohmann::json Json() EXCLUDES(mu_);

 private:
  const ImageVersion served_;
  const fetch::FetchOptions options_;
  const TrustOptions trust_;
  const int interval_s_;
  Mutex mu_;
  int64_t checked_at_ GUARDED_BY(mu_) = 0;
  nlohmann::json last_ GUARDED_BY(mu_);
};

// The version fields of `hloop stats --json` and `hloop info --json`.
nlohmann::json VersionJson(const ImageVersion& v);

}  // namespace hloop::disk
