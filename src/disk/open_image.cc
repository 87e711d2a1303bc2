#include "disk/open_image.h"

#include <algorithm>

#include "disk/profile.h"
#include "fetch/checked_get.h"
#include "fetch/http_source.h"
#include "util/file.h"
#include "util/log.h"

namespace hloop::disk {

namespace {

// Size limits of the small files fetched to open an image (a bigger one is
// refused before it is read whole). An index holds 48 bytes or so per chunk:
// 1 GiB is an image of some 20 million chunks.
constexpr uint64_t kMaxIndexBytes = uint64_t(1) << 30;
constexpr uint64_t kMaxMirrorListBytes = 64 << 10;
// A profile: a header and comments, then a line of two numbers per chunk.
uint64_t MaxProfileBytes(uint64_t chunks) { return (64 << 10) + chunks * 48; }

// Reads the index with `fetch` (which takes a number of attempts, and sets
// *index to the copy that parsed), falling back on the cached copy when the
// servers cannot be reached.
using Fetcher = std::function<Status(int max_attempts, std::optional<format::Index>* index)>;

// The check of a fetched index: it parses; the parsed index goes to *index.
fetch::BodyCheck IndexCheck(const std::string& url, std::optional<format::Index>* index) {
  return [url, index](const std::string& body) {
    auto ix = format::Index::Parse(body, url);
    if (!ix.ok()) return ix.status();
    index->emplace(std::move(ix.value()));
    return Status::Ok();
  };
}

Result<format::Index> LoadIndexWith(const std::string& url, const fetch::FetchOptions& options,
                                    cache::DiskCache* cache, const Fetcher& fetch) {
  // Reads may wait for a server without limit, but opening an image should
  // say soon that there is nothing to open; with a cached copy to fall back
  // on, do not make the user wait through every retry of a server that is down.
  int attempts = options.max_attempts == 0 ? 6 : options.max_attempts;
  if (cache && cache->GetUrlCopy(url).ok()) attempts = std::min(attempts, 2);
  std::optional<format::Index> index;
  Status fetched = fetch(attempts, &index);
  if (!fetched.ok()) {
    if (cache && fetched.IsUnavailable()) {
      auto cached = cache->GetUrlCopy(url);
      if (cached.ok()) {
        LogWarn(fetched.message() + "; using the cached copy of the index");
        return format::Index::Parse(std::move(cached.value()), url + " (cached)");
      }
    }
    return fetched.Annotate("index " + url);
  }
  if (cache) {
    Status st = cache->PutUrlCopy(url, index->bytes());
    if (!st.ok()) LogWarn("could not cache the index: " + st.ToString());
  }
  return std::move(*index);
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

// The profile to prefetch, if any: the one asked for (an error if it cannot
// be read), else NAME.profile next to the index (quietly absent).
Result<std::optional<std::vector<uint64_t>>> LoadProfile(const OpenOptions& options,
                                                         const fetch::Location& loc,
                                                         fetch::FetchEngine* engine,
                                                         const format::Index& index) {
  std::string text, origin;
  if (!options.profile.empty()) {
    origin = options.profile;
    fetch::FetchOptions opts = options.fetch;
    if (opts.max_attempts == 0) opts.max_attempts = 6;
    auto bytes = fetch::FetchUrlChecked(
        options.profile, opts,
        [&](const std::string& body) {
          return ParseProfile(body, index.chunk_count(), options.profile).status();
        },
        MaxProfileBytes(index.chunk_count()), "a profile");
    if (!bytes.ok()) return bytes.status().Annotate("profile");
    text = std::move(bytes.value());
  } else {
    if (options.no_profile) return std::optional<std::vector<uint64_t>>();
    const std::string rel = fetch::StemOf(loc.index_name) + ".profile";
    origin = loc.base + rel;
    Status st;
    if (engine) {
      st = fetch::GetChecked(
          *engine,
          fetch::Request{.rel = rel,
                         .max_attempts = 2,
                         .max_size = MaxProfileBytes(index.chunk_count()),
                         .what = "a profile"},
          [&](const std::string& body) {
            return ParseProfile(body, index.chunk_count(), origin).status();
          },
          &text);
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
  auto chunks = ParseProfile(text, index.chunk_count(), origin);
  if (!chunks.ok()) {
    if (!options.profile.empty()) return chunks.status();
    LogWarn(chunks.status().message() + "; ignoring the profile");
    return std::optional<std::vector<uint64_t>>();
  }
  LogInfo("profile " + origin + ": prefetching " + std::to_string(chunks->size()) + " chunks");
  return std::optional<std::vector<uint64_t>>(std::move(chunks.value()));
}

}  // namespace

Result<format::Index> LoadIndex(const std::string& url, const fetch::FetchOptions& options,
                                cache::DiskCache* cache) {
  return LoadIndexWith(url, options, cache, [&](int attempts, std::optional<format::Index>* index) {
    fetch::FetchOptions opts = options;
    opts.max_attempts = attempts;
    return fetch::FetchUrlChecked(url, opts, IndexCheck(url, index), kMaxIndexBytes, "an index")
        .status();
  });
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
  Result<format::Index> index = Status::IOError("index not loaded");
  if (loc->kind == fetch::Location::Kind::kFile) {
    if (!options.mirrors.empty())
      return Status::InvalidArgument(
          "--mirror needs an http:// or https:// index URL, not a local path");
    index = LoadIndex(url, options.fetch, cache.get());
    if (!index.ok()) return index.status();
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
    const std::string rel = loc->index_name;
    index = LoadIndexWith(url, options.fetch, cache.get(),
                          [&](int attempts, std::optional<format::Index>* ix) {
                            std::string bytes;
                            return fetch::GetChecked(*engine,
                                                     fetch::Request{.rel = rel,
                                                                    .max_attempts = attempts,
                                                                    .max_size = kMaxIndexBytes,
                                                                    .what = "an index"},
                                                     IndexCheck(url, ix), &bytes);
                          });
    if (!index.ok()) return index.status();
    source = std::make_unique<fetch::HttpSource>(std::move(e));
  }
  auto profile = LoadProfile(options, *loc, engine, *index);
  if (!profile.ok()) return profile.status();
  auto device = std::make_unique<ImageDevice>(std::move(index.value()), std::move(source),
                                              std::move(cache), options.image);
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
