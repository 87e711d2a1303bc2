#include "disk/open_image.h"

#include <algorithm>
#include <cstdint>

#include "disk/profile.h"
#include "disk/profile_format.h"
#include "fetch/checked_get.h"
#include "fetch/http_source.h"
#include "util/file.h"
#include "util/log.h"

namespace hloop::disk {

namespace {

// Size limits of the small files fetched to open an image (a bigger one is
// refused before it is read whole; the index's is in disk/resolve.cc).
constexpr uint64_t kMaxMirrorListBytes = 64 << 10;
// A profile: a header and comments, then a line of up to three numbers (at
// most 48 bytes) per range read; at worst one range per 4 KiB block, but the
// limit stops growing at 2^20 lines (48 MiB), a read of 4 GiB in scattered
// blocks, far beyond a boot's ~8,000 blocks.
uint64_t MaxProfileBytes(const format::Index& index) {
  const uint64_t blocks = (index.image_size() + kProfileBlockSize - 1) / kProfileBlockSize;
  return (64 << 10) + std::min<uint64_t>(blocks, uint64_t(1) << 20) * 48;
}

// The small files next to the image, read from a local directory: once,
// and refused before being read whole when larger than `max_size`.
MetaGet LocalMetaGet(const fetch::Location& loc) {
  return [base = loc.base](const std::string& rel, uint64_t max_size, int, const BodyCheck& check,
                           std::string* out) -> Status {
    auto bytes = ReadFileLimited(base + rel, max_size ? max_size : SIZE_MAX - 1);
    if (!bytes.ok()) return bytes.status();
    Status ok = check(*bytes);
    if (!ok.ok()) return ok;
    *out = std::move(bytes.value());
    return Status::Ok();
  };
}

// How messages name the small file `rel`.
std::string WhatIs(const std::string& rel) {
  if (IsChannelName(rel)) return "a channel";
  if (rel.size() > 4 && rel.compare(rel.size() - 4, 4, ".sig") == 0) return "a signature";
  return "an index";
}

// The small files next to the image, fetched through `engine` with the
// retries, back-off and failover of chunks; a body that fails its check is
// fetched again (fetch::GetChecked).
MetaGet EngineMetaGet(fetch::FetchEngine* engine) {
  return [engine](const std::string& rel, uint64_t max_size, int attempts, const BodyCheck& check,
                  std::string* out) -> Status {
    fetch::Request request{.rel = rel, .max_size = max_size, .what = WhatIs(rel)};
    if (attempts > 0) request.max_attempts = attempts;
    return fetch::GetChecked(*engine, std::move(request), check, out);
  };
}

// Attempts for the files that open an image: reads may wait for a server
// without limit, but opening should say soon that there is nothing to open.
int OpenAttempts(const fetch::FetchOptions& options) {
  return options.max_attempts == 0 ? 6 : options.max_attempts;
}

Result<Resolved> ResolveWith(const fetch::Location& loc, const fetch::FetchOptions& options,
                             const TrustOptions& trust, cache::DiskCache* cache,
                             fetch::FetchEngine* engine) {
  std::unique_ptr<fetch::FetchEngine> own;
  if (loc.kind == fetch::Location::Kind::kHttp && !engine) {
    own = std::make_unique<fetch::FetchEngine>(loc.base, options);
    engine = own.get();
  }
  MetaGet get = engine ? EngineMetaGet(engine) : LocalMetaGet(loc);
  return Resolve(loc, trust, cache, get, OpenAttempts(options));
}

// NAME.mirrors next to the index: fetched from the index's server (cached
// like the index, so an offline start keeps its mirrors). Absent is fine.
void AddListedMirrors(fetch::FetchEngine& engine, const fetch::Location& loc,
                      cache::DiskCache* cache) {
  const std::string rel = fetch::StemOf(loc.index_name) + ".mirrors";
  const std::string url = loc.base + rel;
  std::string text;
  Status st = fetch::GetChecked(
      engine,
      fetch::Request{.rel = rel,
                     .max_attempts = 2,
                     .mirror = 0,
                     .max_size = kMaxMirrorListBytes,
                     .what = "a mirror list"},
      [&](const std::string& body) { return fetch::ParseMirrorList(body, url).status(); }, &text);
  if (st.IsNotFound()) return;
  if (!st.ok() && !st.IsUnavailable()) {
    LogWarn("mirror list: " + st.message() + "; going on without it");
    return;
  }
  if (!st.ok()) {
    auto cached = cache ? cache->GetUrlCopy(url) : Result<std::string>(st);
    if (!cached.ok()) {
      LogWarn("mirror list: " + st.message() + "; going on without it");
      return;
    }
    text = std::move(cached.value());
  } else if (cache) {
    Status put = cache->PutUrlCopy(url, text);
    if (!put.ok()) LogWarn("could not cache the mirror list: " + put.ToString());
  }
  auto list = fetch::ParseMirrorList(text, url);
  if (!list.ok()) {
    LogWarn(list.status().message() + "; ignoring the mirror list");
    return;
  }
  std::vector<std::string> known;
  for (const auto& m : engine.mirror_stats()) known.push_back(m.base);
  for (const auto& spec : *list) {
    if (std::find(known.begin(), known.end(), spec.base) != known.end()) continue;
    known.push_back(spec.base);
    engine.AddMirror(spec);
  }
}

// The slots to prefetch for a profile, if any (ProfileSlots: in order of
// first read, hot chunks of a relaid-out index included): the one asked for
// (an error if it cannot be read), else NAME.profile next to the index
// (quietly absent; a bad one is a warning).
Result<std::optional<std::vector<uint64_t>>> LoadProfile(const OpenOptions& options,
                                                         const fetch::Location& loc,
                                                         const std::string& index_rel,
                                                         fetch::FetchEngine* engine,
                                                         const format::Index& index) {
  std::string text, origin;
  if (!options.profile.empty()) {
    origin = options.profile;
    fetch::FetchOptions opts = options.fetch;
    if (opts.max_attempts == 0) opts.max_attempts = 6;
    auto bytes = fetch::FetchUrlChecked(
        options.profile, opts,
        [&](const std::string& body) { return ParseProfile(body, options.profile).status(); },
        MaxProfileBytes(index), "a profile");
    if (!bytes.ok()) return bytes.status().Annotate("profile");
    text = std::move(bytes.value());
  } else {
    if (options.no_profile) return std::optional<std::vector<uint64_t>>();
    // Beside the index (which a channel may name in another directory).
    const size_t slash = index_rel.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : index_rel.substr(0, slash + 1);
    const std::string rel = dir + fetch::StemOf(index_rel.substr(dir.size())) + ".profile";
    origin = loc.base + rel;
    Status st;
    if (engine) {
      st = fetch::GetChecked(
          *engine,
          fetch::Request{.rel = rel,
                         .max_attempts = 2,
                         .max_size = MaxProfileBytes(index),
                         .what = "a profile"},
          [&](const std::string& body) { return ParseProfile(body, origin).status(); }, &text);
    } else {
      auto bytes = ReadFile(origin);
      st = bytes.status();
      if (bytes.ok()) text = std::move(bytes.value());
    }
    if (st.IsNotFound()) return std::optional<std::vector<uint64_t>>();
    if (st.IsCorruption() || st.code() == Status::Code::kInvalidArgument) {  // failed its check
      LogWarn(st.message() + "; ignoring the profile");
      return std::optional<std::vector<uint64_t>>();
    }
    if (!st.ok()) {
      LogWarn("profile: " + st.message() + "; going on without it");
      return std::optional<std::vector<uint64_t>>();
    }
  }
  auto profile = ParseProfile(text, origin);
  if (!profile.ok()) {
    if (!options.profile.empty()) return profile.status();
    LogWarn(profile.status().message() + "; ignoring the profile");
    return std::optional<std::vector<uint64_t>>();
  }
  std::vector<uint64_t> slots = ProfileSlots(*profile, index);
  LogInfo("profile " + origin + " (version " + std::to_string(profile->version) +
          "): prefetching " + std::to_string(slots.size()) + " chunks");
  return std::optional<std::vector<uint64_t>>(std::move(slots));
}

}  // namespace

Result<format::Index> LoadIndex(const std::string& url, const fetch::FetchOptions& options,
                                cache::DiskCache* cache) {
  auto r = ResolveUrl(url, options, TrustOptions{}, cache);
  if (!r.ok()) return r.status();
  return std::move(r->index);
}

Result<Resolved> ResolveUrl(const std::string& url, const fetch::FetchOptions& options,
                            const TrustOptions& trust, cache::DiskCache* cache) {
  auto loc = fetch::ParseLocation(url);
  if (!loc.ok()) return loc.status();
  return ResolveWith(*loc, options, trust, cache, nullptr);
}

Result<ImageVersion> CheckLatestVersion(const std::string& url, const fetch::FetchOptions& options,
                                        const TrustOptions& trust) {
  auto loc = fetch::ParseLocation(url);
  if (!loc.ok()) return loc.status();
  fetch::FetchOptions quick = options;
  quick.max_attempts = 1;
  if (quick.io_timeout_s == 0 || quick.io_timeout_s > 5) quick.io_timeout_s = 5;
  std::unique_ptr<fetch::FetchEngine> engine;
  if (loc->kind == fetch::Location::Kind::kHttp)
    engine = std::make_unique<fetch::FetchEngine>(loc->base, quick);
  MetaGet get = engine ? EngineMetaGet(engine.get()) : LocalMetaGet(*loc);
  return LatestVersion(*loc, trust, get);
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
  std::unique_ptr<fetch::Source> source;
  fetch::FetchEngine* engine = nullptr;
  Result<Resolved> resolved = Status::IOError("index not loaded");
  if (loc->kind == fetch::Location::Kind::kFile) {
    if (!options.mirrors.empty())
      return Status::InvalidArgument(
          "--mirror needs an http:// or https:// index URL, not a local path");
    resolved = ResolveWith(*loc, options.fetch, options.trust, cache.get(), nullptr);
    if (!resolved.ok()) return resolved.status();
    auto s = fetch::OpenSource(*loc, options.fetch);
    if (!s.ok()) return s.status();
    source = std::move(s.value());
  } else {
    auto e = std::make_unique<fetch::FetchEngine>(options.fetch);
    engine = e.get();
    engine->AddMirror(fetch::MirrorSpec{loc->base});
    for (const auto& m : options.mirrors) {
      if (m.base != loc->base) engine->AddMirror(m);
    }
    if (options.mirror_list) AddListedMirrors(*engine, *loc, cache.get());
    // Measure every mirror's round trip while the index loads.
    engine->Probe(loc->index_name, 3);
    resolved = ResolveWith(*loc, options.fetch, options.trust, cache.get(), engine);
    if (!resolved.ok()) return resolved.status();
    source = std::make_unique<fetch::HttpSource>(std::move(e));
  }
  ImageVersion version = std::move(resolved->version);
  const std::string& index_rel = resolved->index_rel;
  auto profile = LoadProfile(options, *loc, index_rel, engine, resolved->index);
  if (!profile.ok()) return profile.status();
  auto device = std::make_unique<ImageDevice>(std::move(resolved->index), std::move(source),
                                              std::move(cache), options.image);
  device->set_version(std::move(version));
  if (!options.record_profile.empty()) device->StartRecording(options.record_profile);
  if (profile->has_value()) device->StartPrefetch(std::move(**profile));
  return device;
}

std::string ImageName(const format::Index& index, const std::string& url) {
  if (!index.meta().name.empty()) return index.meta().name;
  auto loc = fetch::ParseLocation(url);
  return loc.ok() ? fetch::StemOf(loc->index_name) : "image";
}

}  // namespace hloop::disk
