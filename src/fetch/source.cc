#include "fetch/source.h"

#include "fetch/http_source.h"
#include "util/file.h"

namespace hloop::fetch {

namespace {

// Files in a local directory (file:// URLs and plain paths).
class FileSource : public Source {
 public:
  explicit FileSource(std::string base) : base_(std::move(base)) {}
  Status Get(const std::string& rel, uint64_t expected_size, Priority, std::string* out) override {
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

}  // namespace

Result<std::unique_ptr<Source>> OpenSource(const Location& loc, const FetchOptions& options) {
  if (loc.kind == Location::Kind::kFile) return std::unique_ptr<Source>(new FileSource(loc.base));
  return std::unique_ptr<Source>(new HttpSource(loc.base, options));
}

}  // namespace hloop::fetch
