#include "fetch/http_source.h"

#include "util/file.h"

namespace hloop::fetch {

void HttpSource::Estimate(double* rtt_s, double* bytes_per_s) {
  // The healthy mirror with the lowest round trip is where most work goes.
  *rtt_s = -1;
  *bytes_per_s = -1;
  for (const MirrorStats& m : engine_->mirror_stats()) {
    if (m.set_aside || m.base_rtt_s < 0) continue;
    if (*rtt_s < 0 || m.base_rtt_s < *rtt_s) {
      *rtt_s = m.base_rtt_s;
      *bytes_per_s = m.bytes_per_s;
    }
  }
}

Result<std::string> FetchUrl(const std::string& url, const FetchOptions& options) {
  auto loc = ParseLocation(url);
  if (!loc.ok()) return loc.status();
  if (loc->kind == Location::Kind::kFile) return ReadFile(loc->index_url);
  FetchEngine engine("", options);
  std::string out;
  HLOOP_RETURN_IF_ERROR(engine.Get(url, 0, Priority::kDemand, &out));
  return out;
}

}  // namespace hloop::fetch
