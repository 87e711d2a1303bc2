// The index: what a client needs to read an image. Maps chunk numbers to
// content hashes; see docs/format.md for the byte layout.
//
// An Index owns the encoded bytes and decodes entries on demand, so loading
// costs one pass (the checksum) and a lookup is O(1) with no allocation: an
// image of 1 TiB in 256 KiB chunks has a 160 MiB index.
//
// Slots: the chunk files an index names are numbered 0 .. slot_count()-1.
// Slots below chunk_count() are the table's (slot i holds image chunk i);
// the ones above are the hot chunks of an EXTENTS record (format/layout.h),
// in order. Every reader fetches, caches and prefetches by slot, and finds
// which slot holds an image byte with Locate().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "format/format.h"
#include "format/hash.h"
#include "format/layout.h"
#include "util/status.h"

namespace hloop::format {

struct ChunkEntry {
  Hash hash{};               // SHA-256 of the raw chunk content
  uint32_t stored_size = 0;  // size of the chunk file; 0 for a zero chunk
  uint32_t flags = 0;
  bool zero() const { return flags & kEntryFlagZero; }
};

struct IndexMeta {
  std::string name;
  uint64_t created = 0;  // seconds since the epoch
  std::string tool;
  std::optional<Hash> parent_digest;  // the index this one was derived from
  std::string parent_name;
};

// A piece of the image as Locate() finds it: `length` bytes that are zeros,
// or bytes [slot_offset, slot_offset + length) of slot `slot`.
struct Segment {
  uint64_t length = 0;
  bool zero = false;
  uint64_t slot = 0;
  uint64_t slot_offset = 0;
};

// Which records an index reader understands (tests emulate older readers).
struct ParseOptions {
  bool extents = true;  // the EXTENTS record
};

struct IndexSummary {
  uint64_t stored_bytes = 0;   // sum of the sizes of the distinct chunk files
  uint64_t unique_chunks = 0;  // distinct non-zero chunks
  uint64_t zero_chunks = 0;
};

class Index {
 public:
  // Parses and fully validates `bytes` (magic, version, sizes, checksum,
  // entries). `origin` (a path or URL) only names the index in messages.
  static Result<Index> Parse(std::string bytes, const std::string& origin,
                             ParseOptions options = {});

  uint64_t image_size() const { return image_size_; }
  uint32_t chunk_size() const { return chunk_size_; }
  uint64_t chunk_count() const { return chunk_count_; }
  Codec codec() const { return codec_; }
  const IndexSummary& summary() const { return summary_; }
  const IndexMeta& meta() const { return meta_; }
  // SHA-256 of the whole index file: its identity.
  const Hash& digest() const { return digest_; }
  const std::string& bytes() const { return bytes_; }

  // REQUIRES: i < slot_count(). For a hot slot: its hash and stored size.
  ChunkEntry entry(uint64_t i) const;
  // Raw length of slot i: chunk_size() except for a short last chunk, and a
  // hot chunk's own length.
  uint32_t chunk_length(uint64_t i) const;

  // The layout: empty without an EXTENTS record.
  const Layout& layout() const { return layout_; }
  bool has_extents() const { return !layout_.extents.empty(); }
  uint64_t slot_count() const { return chunk_count_ + layout_.hot.size(); }
  bool is_hot(uint64_t slot) const { return slot >= chunk_count_; }
  // The piece of the image that starts at `offset` and reads from one place:
  // it ends at the next chunk or extent boundary (or earlier, never later).
  // REQUIRES: offset < image_size(). O(log extents).
  Segment Locate(uint64_t offset) const;
  // Whether any byte of table chunk i is read from its table entry, i.e.
  // not every byte of it is covered by extents. REQUIRES: i < chunk_count().
  bool TableChunkUsed(uint64_t i) const;
  // The slots holding image bytes [offset, offset+len), in order of the
  // image, each once, without zeros; appended to `out`.
  void SlotsOf(uint64_t offset, uint64_t len, std::vector<uint64_t>* out) const;

 private:
  Index() = default;
  std::string bytes_;
  uint64_t image_size_ = 0;
  uint32_t chunk_size_ = 0;
  uint64_t chunk_count_ = 0;
  uint64_t table_offset_ = 0;
  Codec codec_ = Codec::kZstd;
  IndexSummary summary_;
  IndexMeta meta_;
  Layout layout_;
  Hash digest_{};
};

// Assembles a new index. Not thread-safe.
class IndexBuilder {
 public:
  // REQUIRES: chunk_size is a power of two in [kMinChunkSize, kMaxChunkSize].
  IndexBuilder(uint64_t image_size, uint32_t chunk_size, Codec codec);
  uint64_t chunk_count() const { return entries_.size(); }
  void set_entry(uint64_t i, const ChunkEntry& e) { entries_[i] = e; }
  IndexMeta& meta() { return meta_; }
  // REQUIRES: ValidateLayout(layout, image_size) is ok.
  void set_layout(Layout layout) { layout_ = std::move(layout); }
  // Computes the summary from the entries and encodes the file.
  std::string Encode() const;

 private:
  uint64_t image_size_;
  uint32_t chunk_size_;
  Codec codec_;
  std::vector<ChunkEntry> entries_;
  IndexMeta meta_;
  Layout layout_;
};

// How messages name slot i: "chunk 7" for the table's, "hot chunk 2" for
// the third hot chunk. REQUIRES: i < index.slot_count().
inline std::string SlotName(const Index& index, uint64_t i) {
  return index.is_hot(i) ? "hot chunk " + std::to_string(i - index.chunk_count())
                         : "chunk " + std::to_string(i);
}

// Number of chunks of an image: ceil(image_size / chunk_size).
inline uint64_t ChunkCount(uint64_t image_size, uint32_t chunk_size) {
  return (image_size + chunk_size - 1) / chunk_size;
}
bool IsValidChunkSize(uint64_t chunk_size);

}  // namespace hloop::format
