#include "history/log.h"

#include <set>
#include <utility>

#include "fetch/http_source.h"
#include "fetch/url.h"
#include "format/index.h"

namespace hloop::history {

Result<format::Index> ReadIndex(const std::string& url, const fetch::FetchOptions& options) {
  auto bytes = fetch::FetchUrl(url, options);
  if (!bytes.ok()) return bytes.status().Annotate("index " + url);
  return format::Index::Parse(std::move(bytes.value()), url);
}

namespace {

LogVersion Describe(const format::Index& ix, const std::string& url) {
  return LogVersion{.url = url,
                    .name = ix.meta().name,
                    .digest = ix.digest(),
                    .created = ix.meta().created,
                    .image_size = ix.image_size(),
                    .stored_bytes = ix.summary().stored_bytes,
                    .added = std::nullopt};
}
}  // namespace

Result<LogResult> Log(const std::string& url, const fetch::FetchOptions& options) {
  auto loc = fetch::ParseLocation(url);
  if (!loc.ok()) return loc.status();
  auto first = ReadIndex(loc->index_url, options);
  if (!first.ok()) return first.status();
  LogResult out;
  format::Index cur = std::move(first.value());
  std::string cur_url = loc->index_url;
  std::set<format::Hash> seen;
  for (;;) {
    out.versions.push_back(Describe(cur, cur_url));
    seen.insert(cur.digest());
    const format::IndexMeta& m = cur.meta();
    if (!m.parent_digest) {
      out.versions.back().added =
          NewFiles{.files = cur.summary().unique_chunks, .bytes = cur.summary().stored_bytes};
      break;
    }
    const std::string parent_url = loc->base + m.parent_name + format::kIndexSuffix;
    if (m.parent_name.empty() || m.parent_name.find('/') != std::string::npos) {
      out.stopped = "the parent's name '" + m.parent_name + "' does not name an index file";
      break;
    }
    if (seen.count(*m.parent_digest)) {
      out.stopped = "the parent " + parent_url + " is a version already listed (a cycle)";
      break;
    }
    auto parent = ReadIndex(parent_url, options);
    if (!parent.ok()) {
      out.stopped = parent.status().IsNotFound()
                        ? "parent " + parent_url + " not found"
                        : "parent " + parent_url + ": " + parent.status().message();
      break;
    }
    if (parent->digest() != *m.parent_digest) {
      out.stopped = "parent " + parent_url + " has digest " + format::ToHex(parent->digest()) +
                    ", not the recorded " + format::ToHex(*m.parent_digest) +
                    " (replaced by another version)";
      break;
    }
    out.versions.back().added = NewChunkFiles(parent.value(), cur);
    cur = std::move(parent.value());
    cur_url = parent_url;
  }
  return out;
}

}  // namespace hloop::history
