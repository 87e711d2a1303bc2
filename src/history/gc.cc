#include "history/gc.h"

#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <set>
#include <utility>

#include "format/format.h"
#include "format/index.h"
#include "history/diff.h"

namespace hloop::history {

namespace {

using Indexes = std::map<std::string, format::Index>;  // by name

constexpr const char* kCannotMark = "the chunks it uses cannot be marked (repair or remove it)";

Result<Indexes> ReadAll(const store::LocalStore& store) {
  auto names = store.ListIndexes();
  if (!names.ok()) return names.status();
  Indexes out;
  for (const std::string& name : names.value()) {
    auto bytes = store.ReadIndex(name);
    if (!bytes.ok())
      return Status::Corruption("gc refused: " + store.IndexPath(name) + ": " +
                                bytes.status().message() + "; " + kCannotMark);
    auto ix = format::Index::Parse(std::move(bytes.value()), store.IndexPath(name));
    if (!ix.ok())
      return Status::Corruption("gc refused: " + ix.status().message() + "; " + kCannotMark);
    out.emplace(name, std::move(ix.value()));
  }
  return out;
}

// The parent of `ix` in the store, if it is there with the recorded digest.
const std::string* ParentOf(const Indexes& all, const format::Index& ix) {
  const auto& m = ix.meta();
  if (!m.parent_digest) return nullptr;
  auto it = all.find(m.parent_name);
  if (it == all.end() || it->second.digest() != *m.parent_digest) return nullptr;
  return &it->first;
}

Result<std::vector<std::string>> Roots(const store::LocalStore& store, const Indexes& all,
                                       const GcOptions& options) {
  auto channels = store.ListTopFiles(".channel");
  if (!channels.ok()) return channels.status();
  std::vector<std::string> roots;
  if (channels->empty()) {
    std::set<std::string> parents;
    for (const auto& [name, ix] : all)
      if (const std::string* p = ParentOf(all, ix)) parents.insert(*p);
    for (const auto& [name, ix] : all)
      if (!parents.count(name)) roots.push_back(name);
    return roots;
  }
  const std::string suffix = format::kIndexSuffix;
  for (const std::string& c : channels.value()) {
    const std::string path = store.root() + "/" + c;
    if (!options.channel_index)
      return Status::Unsupported("channel " + path + ": no reader for channel files");
    auto rel = options.channel_index(path);
    if (!rel.ok()) return rel.status().Annotate("gc refused: channel " + path);
    const std::string& r = rel.value();
    std::string name = r.ends_with(suffix) ? r.substr(0, r.size() - suffix.size()) : "";
    if (name.empty() || name.find('/') != std::string::npos || !all.count(name))
      return Status::NotFound("gc refused: channel " + path + " points at '" + r +
                              "', which is not an index in the store");
    roots.push_back(name);
  }
  return roots;
}

int64_t FileSize(const std::string& path) {
  struct stat sb;
  return ::stat(path.c_str(), &sb) == 0 ? int64_t(sb.st_size) : 0;
}

}  // namespace

Result<GcReport> Gc(store::LocalStore& store, const GcOptions& options) {
  if (options.keep_last && *options.keep_last == 0)
    return Status::InvalidArgument("keep-last must be at least 1");
  if (options.grace_s < 0) return Status::InvalidArgument("the grace period cannot be negative");
  const int64_t now = options.now ? options.now : int64_t(std::time(nullptr));
  GcReport rep;
  rep.dry_run = options.dry_run;
  auto all = ReadAll(store);
  if (!all.ok()) return all.status();

  // Mark the indexes to keep.
  std::set<std::string> keep;
  if (!options.keep_last) {
    for (const auto& [name, ix] : *all) keep.insert(name);
  } else {
    auto roots = Roots(store, *all, options);
    if (!roots.ok()) return roots.status();
    rep.roots = roots.value();
    for (const std::string& root : rep.roots) {
      const std::string* cur = &root;
      for (uint32_t n = 0; cur && n < *options.keep_last; n++) {
        keep.insert(*cur);
        cur = ParentOf(*all, all->at(*cur));
      }
    }
  }
  // Mark the chunks of the indexes kept. Nothing is deleted yet, so a
  // failure up to here leaves the store as it was.
  ChunkSet marked;
  for (const auto& [name, ix] : *all) {
    if (keep.count(name)) {
      rep.indexes_kept.push_back(name);
      marked.Add(ix);
    } else {
      rep.indexes_removed.push_back(name);
    }
  }
  marked.Seal();
  auto chunks = store.ListChunkFiles();
  if (!chunks.ok()) return chunks.status();

  // Sweep: indexes first (the roots), then chunk files.
  for (const std::string& name : rep.indexes_removed) {
    const std::string path = store.IndexPath(name);
    rep.index_bytes_removed += FileSize(path) + FileSize(path + ".sig");
    if (options.dry_run) continue;
    if (options.before_delete) options.before_delete();
    HLOOP_RETURN_IF_ERROR(store.RemoveIndex(name));
  }
  rep.chunks_total = chunks->size();
  const int64_t not_after = now - options.grace_s;
  for (const store::ChunkFileInfo& f : chunks.value()) {
    if (marked.Contains(f.hash)) {
      rep.chunks_referenced++;
      continue;
    }
    if (f.mtime > not_after) {
      rep.chunks_young++;
      continue;
    }
    bool removed = true;
    if (!options.dry_run) {
      if (options.before_delete) options.before_delete();
      HLOOP_RETURN_IF_ERROR(store.RemoveChunk(f.hash, not_after, &removed));
    }
    if (removed) {
      rep.chunks_removed.push_back(f.hash);
      rep.chunk_bytes_removed += f.size;
    } else {
      rep.chunks_young++;  // rewritten since it was listed
    }
  }
  return rep;
}

}  // namespace hloop::history
