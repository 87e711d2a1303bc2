#include "writer/layout_writer.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <unordered_set>

#include "format/chunk_file.h"
#include "format/hash.h"
#include "util/bytes.h"

namespace hloop::writer {

namespace {

// Disjoint, merged intervals: start -> end.
using IntervalSet = std::map<uint64_t, uint64_t>;

void Insert(IntervalSet* set, uint64_t a, uint64_t b) {
  auto it = set->upper_bound(a);
  if (it != set->begin() && std::prev(it)->second >= a) {
    --it;
    a = it->first;
  }
  while (it != set->end() && it->first <= b) {
    b = std::max(b, it->second);
    it = set->erase(it);
  }
  (*set)[a] = b;
}

// The parts of [a, b) not in `set`, appended to `out` in order.
void Subtract(const IntervalSet& set, uint64_t a, uint64_t b, std::vector<format::ByteRange>* out) {
  auto it = set.upper_bound(a);
  if (it != set.begin() && std::prev(it)->second > a) --it;
  while (a < b) {
    if (it != set.end() && it->first <= a) {
      a = std::max(a, it->second);
      ++it;
      continue;
    }
    const uint64_t until = it != set.end() ? std::min(b, it->first) : b;
    out->push_back({a, until - a});
    a = until;
  }
}

// Builds the hot chunks and extents as the plan's bytes stream in.
class HotStream {
 public:
  HotStream(uint32_t chunk_size, store::LocalStore& store, format::Codec codec, int level,
            LayoutSummary* sum)
      : chunk_size_(chunk_size), store_(store), codec_(codec), level_(level), sum_(sum) {}

  // Whether the record has room for one more hot chunk and `extents` more.
  bool Room(uint64_t extents) const {
    const uint64_t bytes = format::kLayoutHeaderSize +
                           (layout_.hot.size() + 1) * format::kHotEntrySize +
                           (layout_.extents.size() + extents) * format::kExtentEntrySize;
    return bytes + kMetaReserve <= format::kMaxMetaLength;
  }

  // Appends image bytes [offset, offset + data.size()) to the hot chunks.
  Status Append(uint64_t offset, std::string_view data) {
    while (!data.empty()) {
      const size_t n = std::min<size_t>(data.size(), chunk_size_ - buf_.size());
      AddExtent(format::ImageExtent{offset, uint32_t(n), uint32_t(layout_.hot.size()),
                                    uint32_t(buf_.size())});
      buf_.append(data.substr(0, n));
      sum_->hot_raw_bytes += n;
      data.remove_prefix(n);
      offset += n;
      if (buf_.size() == chunk_size_) HLOOP_RETURN_IF_ERROR(Flush());
    }
    return Status::Ok();
  }

  void AppendZero(uint64_t offset, uint64_t length) {
    AddExtent(format::ImageExtent{offset, uint32_t(length), format::kExtentZero, 0});
  }

  // Writes the last, short hot chunk; returns the layout, extents sorted by
  // image offset and merged where they continue each other.
  Result<format::Layout> Finish() {
    if (!buf_.empty()) HLOOP_RETURN_IF_ERROR(Flush());
    auto& ext = layout_.extents;
    std::sort(ext.begin(), ext.end(),
              [](const format::ImageExtent& a, const format::ImageExtent& b) {
                return a.image_offset < b.image_offset;
              });
    std::vector<format::ImageExtent> merged;
    for (const auto& e : ext) {
      if (!merged.empty()) {
        auto& p = merged.back();
        const bool continues = p.end() == e.image_offset && p.hot == e.hot &&
                               (e.zero() || p.hot_offset + p.length == e.hot_offset) &&
                               uint64_t(p.length) + e.length <= UINT32_MAX;
        if (continues) {
          p.length += e.length;
          continue;
        }
      }
      merged.push_back(e);
    }
    ext = std::move(merged);
    for (const auto& e : ext) {
      sum_->mapped_bytes += e.length;
      if (e.zero()) sum_->zero_extents++;
    }
    sum_->extents = ext.size();
    sum_->hot_chunks = layout_.hot.size();
    return std::move(layout_);
  }

 private:
  // Room left for the rest of the metadata (name, parent, tool...).
  static constexpr uint64_t kMetaReserve = 64 * 1024;

  void AddExtent(const format::ImageExtent& e) {
    auto& ext = layout_.extents;
    if (!ext.empty()) {
      auto& p = ext.back();
      if (p.end() == e.image_offset && p.hot == e.hot &&
          (e.zero() || p.hot_offset + p.length == e.hot_offset) &&
          uint64_t(p.length) + e.length <= UINT32_MAX) {
        p.length += e.length;
        return;
      }
    }
    ext.push_back(e);
  }

  Status Flush() {
    format::HotChunk h;
    h.hash = format::Sha256(buf_.data(), buf_.size());
    h.raw_size = uint32_t(buf_.size());
    h.stored_size = store_.ChunkFileSize(h.hash);
    if (h.stored_size != 0) {
      // Shared with an earlier version: fresh again for gc's grace period.
      (void)store_.TouchChunk(h.hash);
    } else {
      HLOOP_RETURN_IF_ERROR(format::EncodeChunk(buf_, codec_, level_, &file_));
      bool written = false;
      HLOOP_RETURN_IF_ERROR(store_.PutChunk(h.hash, file_, /*durable=*/false, &written));
      h.stored_size = written ? uint32_t(file_.size()) : store_.ChunkFileSize(h.hash);
      if (h.stored_size == 0)
        return Status::IOError(store_.ChunkFilePath(h.hash) + " vanished after writing");
      if (written) {
        sum_->hot_new++;
        sum_->hot_bytes_new += h.stored_size;
      }
    }
    if (distinct_.insert(h.hash).second) sum_->hot_stored_bytes += h.stored_size;
    layout_.hot.push_back(h);
    buf_.clear();
    return Status::Ok();
  }

  const uint32_t chunk_size_;
  store::LocalStore& store_;
  const format::Codec codec_;
  const int level_;
  LayoutSummary* const sum_;
  format::Layout layout_;
  std::unordered_set<format::Hash, format::HashKey> distinct_;  // hot chunks' hashes
  std::string buf_, file_;
};

}  // namespace

void AddToPlan(const std::vector<format::ByteRange>& ranges, uint64_t image_size,
               LayoutPlan* plan) {
  IntervalSet have;
  for (const auto& r : plan->ranges) Insert(&have, r.offset, r.end());
  for (const auto& r : ranges) {
    if (r.offset >= image_size || r.length == 0) continue;
    const uint64_t end = std::min(image_size, r.offset + std::min(r.length, image_size));
    Subtract(have, r.offset, end, &plan->ranges);
    Insert(&have, r.offset, end);
  }
}

LayoutPlan PlanFromLayout(const format::Index& index) {
  LayoutPlan plan;
  plan.keep_zero_blocks = true;
  std::vector<format::ImageExtent> hot;
  for (const auto& e : index.layout().extents) {
    if (e.zero())
      plan.zero_ranges.push_back({e.image_offset, e.length});
    else
      hot.push_back(e);
  }
  std::sort(hot.begin(), hot.end(), [](const format::ImageExtent& a, const format::ImageExtent& b) {
    return a.hot != b.hot ? a.hot < b.hot : a.hot_offset < b.hot_offset;
  });
  for (const auto& e : hot) {
    if (!plan.ranges.empty() && plan.ranges.back().end() == e.image_offset)
      plan.ranges.back().length += e.length;
    else
      plan.ranges.push_back({e.image_offset, e.length});
  }
  return plan;
}

Result<format::Layout> WriteLayout(ImageBytes& bytes, const std::vector<format::ChunkEntry>& table,
                                   uint32_t chunk_size, const LayoutPlan& plan,
                                   store::LocalStore& store, format::Codec codec, int level,
                                   LayoutSummary* sum) {
  const uint64_t size = bytes.size();
  auto table_zero = [&](uint64_t offset) { return table[offset / chunk_size].zero(); };
  HotStream hot(chunk_size, store, codec, level, sum);
  std::string block;
  bool full = false;
  for (const auto& r : plan.ranges) {
    if (r.offset >= size) continue;
    const uint64_t end = std::min(size, r.end());
    // Block by block: a block that reads as zeros costs nothing, and a
    // block is the unit a profile records.
    for (uint64_t pos = r.offset; pos < end;) {
      const uint64_t n = std::min(end, (pos / kLayoutBlock + 1) * kLayoutBlock) - pos;
      if (full || !hot.Room(2)) {
        full = true;
        sum->dropped_bytes += n;
        pos += n;
        continue;
      }
      if (!plan.keep_zero_blocks && table_zero(pos)) {
        pos += n;
        continue;
      }
      block.resize(n);
      HLOOP_RETURN_IF_ERROR(bytes.ReadAt(pos, n, block.data()));
      if (!plan.keep_zero_blocks && IsAllZero(block))
        hot.AppendZero(pos, n);
      else
        HLOOP_RETURN_IF_ERROR(hot.Append(pos, block));
      pos += n;
    }
  }
  for (const auto& z : plan.zero_ranges) {
    if (z.offset >= size || full) continue;
    const uint64_t end = std::min(size, z.end());
    for (uint64_t pos = z.offset; pos < end;) {
      const uint64_t n = std::min(end, (pos / kLayoutBlock + 1) * kLayoutBlock) - pos;
      if (!table_zero(pos) && hot.Room(1)) {
        block.resize(n);
        HLOOP_RETURN_IF_ERROR(bytes.ReadAt(pos, n, block.data()));
        if (IsAllZero(block)) hot.AppendZero(pos, n);
      }
      pos += n;
    }
  }
  return hot.Finish();
}

}  // namespace hloop::writer
