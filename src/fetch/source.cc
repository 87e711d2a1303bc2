#include "fetch/source.h"

#include <charconv>

#include "fetch/http_source.h"
#include "util/file.h"

namespace hloop::fetch {

namespace {

// Files in a local directory (file:// URLs and plain paths).
class FileSource : public Source {
 public:
  explicit FileSource(std::string base) : base_(std::move(base)) {}
  using Source::Get;
  Status Get(const std::string& rel, uint64_t expected_size, Priority, std::string* out,
             int* origin) override {
    if (origin) *origin = 0;
    auto data = ReadFile(base_ + rel);
    if (!data.ok()) return data.status();
    if (expected_size && data->size() != expected_size)
      return Status::Corruption(Describe(rel) + ": is " + std::to_string(data->size()) +
                                " bytes, expected " + std::to_string(expected_size));
    *out = std::move(data.value());
    return Status::Ok();
  }
  std::string Describe(const std::string& rel) const override { return base_ + rel; }

 private:
  std::string base_;
};

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

}  // namespace

Result<MirrorSpec> ParseMirrorSpec(const std::string& text) {
  std::string t = Trim(text);
  MirrorSpec spec;
  std::string url = t, options;
  // Options after '#' (never sent), or after whitespace in a mirrors file.
  size_t cut = t.find_first_of("# \t");
  if (cut != std::string::npos) {
    url = t.substr(0, cut);
    options = t.substr(cut + 1);
  }
  if (!url.starts_with("http://") && !url.starts_with("https://"))
    return Status::InvalidArgument("mirror '" + t + "': must be an http:// or https:// URL");
  if (url.find('/', url.find("://") + 3) == std::string::npos) url += '/';
  if (url.back() != '/') {
    // "http://host/dir/name.idx" names the index; its directory is the mirror.
    size_t slash = url.rfind('/');
    if (url.ends_with(".idx"))
      url.resize(slash + 1);
    else
      url += '/';
  }
  if (url.find_first_of("?") != std::string::npos)
    return Status::InvalidArgument("mirror '" + t + "': a base URL cannot have a query string");
  spec.base = url;
  size_t pos = 0;
  while (pos <= options.size()) {
    size_t end = options.find_first_of(", \t", pos);
    if (end == std::string::npos) end = options.size();
    std::string opt = options.substr(pos, end - pos);
    pos = end + 1;
    if (opt.empty()) continue;
    if (opt == "http2") {
      spec.http2 = true;
    } else if (opt.starts_with("connections=")) {
      std::string_view v(opt);
      v.remove_prefix(12);
      unsigned n = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || p != v.data() + v.size() || n < 1 || n > 256)
        return Status::InvalidArgument("mirror '" + t + "': connections must be 1 to 256");
      spec.connections = n;
    } else {
      return Status::InvalidArgument("mirror '" + t + "': unknown option '" + opt +
                                     "' (known: http2, connections=N)");
    }
  }
  return spec;
}

Result<std::vector<MirrorSpec>> ParseMirrorList(const std::string& text, const std::string& what) {
  std::vector<MirrorSpec> out;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = Trim(std::string_view(text).substr(pos, nl - pos));
    pos = nl + 1;
    line_no++;
    if (line.empty() || line[0] == '#') continue;
    auto spec = ParseMirrorSpec(line);
    if (!spec.ok()) return spec.status().Annotate(what + " line " + std::to_string(line_no));
    out.push_back(std::move(spec.value()));
  }
  return out;
}

Result<std::unique_ptr<Source>> OpenSource(const Location& loc, const FetchOptions& options) {
  if (loc.kind == Location::Kind::kFile) return std::unique_ptr<Source>(new FileSource(loc.base));
  return std::unique_ptr<Source>(new HttpSource(std::make_unique<FetchEngine>(loc.base, options)));
}

}  // namespace hloop::fetch
