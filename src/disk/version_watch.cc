#include "disk/version_watch.h"

#include <ctime>

#include "disk/open_image.h"

namespace hloop::disk {

VersionWatch::VersionWatch(ImageVersion served, fetch::FetchOptions options, TrustOptions trust,
                           int interval_s)
    : served_(std::move(served)),
      options_(std::move(options)),
      trust_(std::move(trust)),
      interval_s_(interval_s) {}

nlohmann::json VersionWatch::Json() {
  if (!served_.channel) return nullptr;
  MutexLock lock(&mu_);
  const int64_t now = int64_t(std::time(nullptr));
  if (checked_at_ && now - checked_at_ < interval_s_) return last_;
  auto latest = CheckLatestVersion(served_.url, options_, trust_);
  checked_at_ = now;
  if (!latest.ok()) {
    last_ = {{"error", latest.status().ToString()}, {"checked_at", now}};
  } else {
    last_ = {{"sequence", latest->sequence},
             {"index", latest->index_name},
             {"digest", format::ToHex(latest->digest)},
             {"newer", latest->sequence > served_.sequence && latest->digest != served_.digest},
             {"checked_at", now}};
  }
  return last_;
}

nlohmann::json VersionJson(const ImageVersion& v) {
  nlohmann::json j = {
      {"url", v.url},
      {"index", v.index_name},
      {"index_url", v.index_url},
      {"digest", format::ToHex(v.digest)},
      {"authenticated", v.authenticated},
      {"key_id", v.key_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(v.key_id)},
      {"offline", v.offline},
      {"channel", nullptr}};
  if (v.channel)
    j["channel"] = {{"name", v.channel_name},
                    {"sequence", v.sequence},
                    {"issued_at", v.issued_at},
                    {"expires_at", v.expires_at}};
  return j;
}

}  // namespace hloop::disk
