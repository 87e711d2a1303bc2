#include "fetch/http_source.h"

#include "util/file.h"

namespace hloop::fetch {

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
