// Opening an image by the URL of its index: fetch the index (falling back to
// the copy in the disk cache when the server cannot be reached), then build
// the ImageDevice over the right Source.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cache/disk_cache.h"
#include "disk/image_device.h"
#include "fetch/source.h"
#include "fetch/url.h"
#include "format/index.h"

namespace hloop::disk {

struct OpenOptions {
  fetch::FetchOptions fetch;
  std::optional<cache::DiskCacheOptions> cache;  // none: no disk cache
  ImageOptions image;
  // Mirrors besides the index's own server, and whether to add those listed
  // in NAME.mirrors next to the index.
  std::vector<fetch::MirrorSpec> mirrors;
  bool mirror_list = true;
  // Boot profile to prefetch: a path or URL; empty: NAME.profile next to
  // the index if there is one, unless no_profile.
  std::string profile;
  bool no_profile = false;
  // Record the chunks read into this file (written when the device closes).
  std::string record_profile;
};

// Fetches and parses the index at `url`. With a cache, a good index is saved
// there, and used when the server is unavailable (never when it answers that
// the index does not exist, nor when what it sends is corrupt).
Result<format::Index> LoadIndex(const std::string& url, const fetch::FetchOptions& options,
                                cache::DiskCache* cache);

Result<std::unique_ptr<ImageDevice>> OpenImage(const std::string& url, const OpenOptions& options);

// The name the image is shown under: the name recorded in the index, or the
// index file's name without its extension.
std::string ImageName(const format::Index& index, const std::string& url);

}  // namespace hloop::disk
