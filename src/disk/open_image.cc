#include "disk/open_image.h"

#include <algorithm>

#include "fetch/http_source.h"
#include "util/log.h"

namespace hloop::disk {

Result<format::Index> LoadIndex(const std::string& url, const fetch::FetchOptions& options,
                                cache::DiskCache* cache) {
  // With a cached copy to fall back on, do not make the user wait through
  // every retry of a server that is down.
  // Reads may wait for a server without limit, but opening an image should
  // say soon that there is nothing to open.
  fetch::FetchOptions opts = options;
  if (opts.max_attempts == 0) opts.max_attempts = 6;
  if (cache && cache->GetIndex(url).ok()) opts.max_attempts = std::min(opts.max_attempts, 2);
  auto bytes = fetch::FetchUrl(url, opts);
  if (!bytes.ok()) {
    if (cache && bytes.status().IsUnavailable()) {
      auto cached = cache->GetIndex(url);
      if (cached.ok()) {
        LogWarn(bytes.status().message() + "; using the cached copy of the index");
        return format::Index::Parse(std::move(cached.value()), url + " (cached)");
      }
    }
    return bytes.status().Annotate("index " + url);
  }
  auto index = format::Index::Parse(std::move(bytes.value()), url);
  if (index.ok() && cache) {
    Status st = cache->PutIndex(url, index->bytes());
    if (!st.ok()) LogWarn("could not cache the index: " + st.ToString());
  }
  return index;
}

Result<std::unique_ptr<ImageDevice>> OpenImage(const std::string& url, const OpenOptions& options) {
  auto loc = fetch::ParseLocation(url);
  if (!loc.ok()) return loc.status();
  std::unique_ptr<cache::DiskCache> cache;
  if (options.cache) {
    auto c = cache::DiskCache::Open(*options.cache);
    if (!c.ok()) return c.status().Annotate("cache");
    cache = std::move(c.value());
  }
  auto index = LoadIndex(url, options.fetch, cache.get());
  if (!index.ok()) return index.status();
  auto source = fetch::OpenSource(*loc, options.fetch);
  if (!source.ok()) return source.status();
  return std::make_unique<ImageDevice>(std::move(index.value()), std::move(source.value()),
                                       std::move(cache), options.image);
}

std::string ImageName(const format::Index& index, const std::string& url) {
  if (!index.meta().name.empty()) return index.meta().name;
  auto loc = fetch::ParseLocation(url);
  return loc.ok() ? fetch::StemOf(loc->index_name) : "image";
}

}  // namespace hloop::disk
