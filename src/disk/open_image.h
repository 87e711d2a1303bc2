// Opening an image by the URL of its index or of a channel: resolve and
// verify the index (disk/resolve.h; falling back to the copies in the disk
// cache when no server can be reached), then build the ImageDevice over the
// right Source. This is the one code path every front end opens images by.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cache/disk_cache.h"
#include "disk/image_device.h"
#include "disk/resolve.h"
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
  // Which keys to trust, and how strictly (disk/resolve.h).
  TrustOptions trust;
};

// Fetches and parses the index at `url`. With a cache, a good index is saved
// there, and used when the server is unavailable (never when it answers that
// the index does not exist, nor when what it sends is corrupt).
Result<format::Index> LoadIndex(const std::string& url, const fetch::FetchOptions& options,
                                cache::DiskCache* cache);
// Resolves `url` (an index or a channel) to a verified index, as OpenImage
// does, without opening the image (`hloop info`).
Result<Resolved> ResolveUrl(const std::string& url, const fetch::FetchOptions& options,
                            const TrustOptions& trust, cache::DiskCache* cache);
// Which version the channel `url` names now (for `hloop stats`): one quick
// attempt, verified like at open, nothing recorded.
Result<ImageVersion> CheckLatestVersion(const std::string& url, const fetch::FetchOptions& options,
                                        const TrustOptions& trust);

Result<std::unique_ptr<ImageDevice>> OpenImage(const std::string& url, const OpenOptions& options);

// The name the image is shown under: the name recorded in the index, or the
// index file's name without its extension.
std::string ImageName(const format::Index& index, const std::string& url);

}  // namespace hloop::disk
