#include "history/diff.h"

#include <algorithm>
#include <string>

namespace hloop::history {

void ChunkSet::Add(const format::Index& index) {
  files_.reserve(files_.size() + index.summary().unique_chunks);
  // Every slot: the table's chunks and the hot chunks of a layout.
  for (uint64_t i = 0; i < index.slot_count(); i++) {
    const format::ChunkEntry e = index.entry(i);
    if (!e.zero()) files_.push_back({e.hash, e.stored_size});
  }
}

void ChunkSet::Seal() {
  std::sort(files_.begin(), files_.end());
  files_.erase(std::unique(files_.begin(), files_.end(),
                           [](const File& x, const File& y) { return x.hash == y.hash; }),
               files_.end());
}

bool ChunkSet::Contains(const format::Hash& h) const {
  auto it = std::lower_bound(files_.begin(), files_.end(), File{h, 0});
  return it != files_.end() && it->hash == h;
}

NewFiles NewChunkFiles(const format::Index& from, const format::Index& to) {
  const ChunkSet have(from), want(to);
  // Both sorted: one merge walk.
  NewFiles out;
  auto h = have.files().begin();
  const auto h_end = have.files().end();
  for (const ChunkSet::File& f : want.files()) {
    while (h != h_end && h->hash < f.hash) ++h;
    if (h != h_end && h->hash == f.hash) continue;
    out.files++;
    out.bytes += f.stored_size;
  }
  return out;
}

namespace {
enum class Kind { kAbsent, kZero, kData };
Kind KindOf(const format::Index& ix, uint64_t i, format::ChunkEntry* e) {
  if (i >= ix.chunk_count()) return Kind::kAbsent;
  *e = ix.entry(i);
  return e->zero() ? Kind::kZero : Kind::kData;
}
}  // namespace

Result<DiffResult> Diff(const format::Index& a, const format::Index& b) {
  if (a.chunk_size() != b.chunk_size())
    return Status::InvalidArgument(
        "the indexes have different chunk sizes (" + std::to_string(a.chunk_size()) + " and " +
        std::to_string(b.chunk_size()) + " bytes): their chunks do not line up");
  DiffResult d;
  d.chunks_a = a.chunk_count();
  d.chunks_b = b.chunk_count();
  const uint64_t cs = a.chunk_size();
  const uint64_t extent = std::max(a.image_size(), b.image_size());
  const uint64_t n = std::max(d.chunks_a, d.chunks_b);
  for (uint64_t i = 0; i < n; i++) {
    format::ChunkEntry ea, eb;
    const Kind ka = KindOf(a, i, &ea), kb = KindOf(b, i, &eb);
    bool differs;
    if (ka == Kind::kData && kb == Kind::kData) {
      // The hash covers the length too: a short last chunk differs from a full one.
      differs = ea.hash != eb.hash;
      if (differs) {
        d.chunks_changed++;
      } else {
        d.chunks_unchanged++;
      }
    } else if (kb == Kind::kData) {
      d.chunks_added++;
      differs = true;
    } else if (ka == Kind::kData) {
      d.chunks_removed++;
      differs = true;
    } else {
      // Zero against absent, or zero chunks of different lengths (the last).
      differs = ka != kb || (ka == Kind::kZero && a.chunk_length(i) != b.chunk_length(i));
      if (!differs) d.chunks_unchanged++;
    }
    if (!differs) continue;
    const uint64_t off = i * cs, len = std::min(cs, extent - off);
    if (!d.ranges.empty() && d.ranges.back().offset + d.ranges.back().length == off) {
      d.ranges.back().length += len;
    } else {
      d.ranges.push_back({off, len});
    }
    d.bytes_changed += len;
  }
  d.download = NewChunkFiles(a, b);
  d.layout_a = !a.layout().empty();
  d.layout_b = !b.layout().empty();
  d.hot_chunks_a = a.layout().hot.size();
  d.hot_chunks_b = b.layout().hot.size();
  if (d.layout_b) {
    const ChunkSet have(a);
    std::vector<format::Hash> counted;
    for (const format::HotChunk& h : b.layout().hot) {
      if (have.Contains(h.hash) ||
          std::find(counted.begin(), counted.end(), h.hash) != counted.end())
        continue;
      counted.push_back(h.hash);
      d.hot_download.files++;
      d.hot_download.bytes += h.stored_size;
    }
  }
  return d;
}

}  // namespace hloop::history
