// The index: what a client needs to read an image. Maps chunk numbers to
// content hashes; see docs/format.md for the byte layout.
//
// An Index owns the encoded bytes and decodes entries on demand, so loading
// costs one pass (the checksum) and a lookup is O(1) with no allocation: an
// image of 1 TiB in 256 KiB chunks has a 160 MiB index.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "format/format.h"
#include "format/hash.h"
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

struct IndexSummary {
  uint64_t stored_bytes = 0;   // sum of the sizes of the distinct chunk files
  uint64_t unique_chunks = 0;  // distinct non-zero chunks
  uint64_t zero_chunks = 0;
};

class Index {
 public:
  // Parses and fully validates `bytes` (magic, version, sizes, checksum,
  // entries). `origin` (a path or URL) only names the index in messages.
  static Result<Index> Parse(std::string bytes, const std::string& origin);

  uint64_t image_size() const { return image_size_; }
  uint32_t chunk_size() const { return chunk_size_; }
  uint64_t chunk_count() const { return chunk_count_; }
  Codec codec() const { return codec_; }
  const IndexSummary& summary() const { return summary_; }
  const IndexMeta& meta() const { return meta_; }
  // SHA-256 of the whole index file: its identity.
  const Hash& digest() const { return digest_; }
  const std::string& bytes() const { return bytes_; }

  // REQUIRES: i < chunk_count().
  ChunkEntry entry(uint64_t i) const;
  // Raw length of chunk i: chunk_size() except for a short last chunk.
  uint32_t chunk_length(uint64_t i) const;

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
  // Computes the summary from the entries and encodes the file.
  std::string Encode() const;

 private:
  uint64_t image_size_;
  uint32_t chunk_size_;
  Codec codec_;
  std::vector<ChunkEntry> entries_;
  IndexMeta meta_;
};

// Number of chunks of an image: ceil(image_size / chunk_size).
inline uint64_t ChunkCount(uint64_t image_size, uint32_t chunk_size) {
  return (image_size + chunk_size - 1) / chunk_size;
}
bool IsValidChunkSize(uint64_t chunk_size);

}  // namespace hloop::format
