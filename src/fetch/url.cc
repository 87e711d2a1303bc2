#include "fetch/url.h"

#include <unistd.h>

#include <climits>
#include <cstdlib>

namespace hloop::fetch {

std::string StemOf(const std::string& file_name) {
  std::string s = file_name.substr(file_name.rfind('/') + 1);
  size_t dot = s.rfind('.');
  if (dot != std::string::npos && dot > 0) s.resize(dot);
  return s;
}

Result<Location> ParseLocation(const std::string& url) {
  Location loc;
  std::string rest;
  if (url.starts_with("http://") || url.starts_with("https://")) {
    loc.kind = Location::Kind::kHttp;
    size_t q = url.find_first_of("?#");
    std::string path = url.substr(0, q);
    size_t slash = path.rfind('/');
    if (slash < path.find("://") + 3 || slash == path.size() - 1)
      return Status::InvalidArgument(url + ": URL does not name an index file");
    loc.base = path.substr(0, slash + 1);
    loc.index_name = path.substr(slash + 1);
    loc.index_url = url;
    loc.url = url;
    return loc;
  }
  if (url.find("://") != std::string::npos && !url.starts_with("file://"))
    return Status::InvalidArgument(url +
                                   ": unsupported URL scheme (use http, https, file or a path)");
  std::string path = url.starts_with("file://") ? url.substr(7) : url;
  if (path.empty() || path.back() == '/')
    return Status::InvalidArgument(url + ": does not name an index file");
  if (path[0] != '/') {
    char cwd[PATH_MAX];
    if (!::getcwd(cwd, sizeof cwd)) return Status::IOError("getcwd failed");
    path = std::string(cwd) + "/" + path;
  }
  size_t slash = path.rfind('/');
  loc.kind = Location::Kind::kFile;
  loc.base = path.substr(0, slash + 1);
  loc.index_name = path.substr(slash + 1);
  loc.index_url = path;
  loc.url = url;
  return loc;
}

}  // namespace hloop::fetch
