#include "format/index.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "util/bytes.h"

namespace hloop::format {

bool IsValidChunkSize(uint64_t s) {
  return s >= kMinChunkSize && s <= kMaxChunkSize && (s & (s - 1)) == 0;
}

namespace {

const uint8_t* U8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

void AppendRecord(std::string* out, uint16_t type, uint16_t flags, const std::string& value) {
  uint8_t h[kMetaRecordHeaderSize];
  PutU16(h, type);
  PutU16(h + 2, flags);
  PutU32(h + 4, uint32_t(value.size()));
  out->append(reinterpret_cast<char*>(h), sizeof h);
  out->append(value);
}

Status ParseMeta(const uint8_t* p, uint64_t len, const ParseOptions& options, uint64_t image_size,
                 IndexMeta* meta, Layout* layout) {
  bool have_layout = false;
  uint64_t pos = 0;
  while (pos < len) {
    if (len - pos < kMetaRecordHeaderSize) return Status::Corruption("metadata record truncated");
    uint16_t type = GetU16(p + pos);
    uint16_t flags = GetU16(p + pos + 2);
    uint32_t vlen = GetU32(p + pos + 4);
    pos += kMetaRecordHeaderSize;
    if (vlen > len - pos) return Status::Corruption("metadata record overruns the index");
    if (type == kMetaExtents && options.extents) {
      if (have_layout) return Status::Corruption("two extents records");
      have_layout = true;
      auto parsed = ParseLayout(p + pos, vlen, image_size);
      if (!parsed.ok()) return parsed.status();
      *layout = std::move(parsed.value());
      pos += vlen;
      continue;
    }
    std::string value(reinterpret_cast<const char*>(p + pos), vlen);
    pos += vlen;
    switch (type) {
      case kMetaName: meta->name = value; break;
      case kMetaTool: meta->tool = value; break;
      case kMetaCreated:
        if (vlen != 8) return Status::Corruption("creation time record has the wrong length");
        meta->created = GetU64(reinterpret_cast<const uint8_t*>(value.data()));
        break;
      case kMetaParent: {
        if (vlen < kHashSize) return Status::Corruption("parent record too short");
        Hash h;
        std::memcpy(h.data(), value.data(), kHashSize);
        meta->parent_digest = h;
        meta->parent_name = value.substr(kHashSize);
        break;
      }
      default:
        if (flags & kMetaFlagCritical)
          return Status::Unsupported("index needs a newer hloop (critical metadata record type " +
                                     std::to_string(type) + ")");
        break;  // unknown, not critical: skip
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Index> Index::Parse(std::string bytes, const std::string& origin, ParseOptions options) {
  auto fail = [&](Status st) { return st.Annotate("index " + origin); };
  const size_t n = bytes.size();
  if (n >= 1 && (bytes[0] == '<' || bytes.compare(0, 15, "<!DOCTYPE html>") == 0 ||
                 (n >= 5 && bytes.compare(0, 5, "\n<htm") == 0)))
    return fail(Status::Corruption("got an HTML page, not an hloop index"));
  if (n < kIndexHeaderSize + kIndexTrailerSize)
    return fail(Status::Corruption("truncated (" + std::to_string(n) + " bytes)"));
  const uint8_t* p = U8(bytes);
  if (std::memcmp(p + kHdrMagic, kIndexMagic, sizeof kIndexMagic) != 0)
    return fail(Status::Corruption("bad magic: not an hloop index"));
  uint16_t version = GetU16(p + kHdrVersion);
  if (version != kIndexVersion)
    return fail(Status::Unsupported("index version " + std::to_string(version) +
                                    " (this hloop reads version " + std::to_string(kIndexVersion) +
                                    ")"));
  Index ix;
  uint16_t header_size = GetU16(p + kHdrHeaderSize);
  ix.image_size_ = GetU64(p + kHdrImageSize);
  ix.chunk_size_ = GetU32(p + kHdrChunkSize);
  uint8_t codec = p[kHdrCodec];
  uint8_t hash_algo = p[kHdrHashAlgo];
  uint8_t entry_size = p[kHdrEntrySize];
  ix.chunk_count_ = GetU64(p + kHdrChunkCount);
  ix.table_offset_ = GetU64(p + kHdrTableOffset);
  uint64_t meta_offset = GetU64(p + kHdrMetaOffset);
  uint64_t meta_length = GetU64(p + kHdrMetaLength);
  ix.summary_.stored_bytes = GetU64(p + kHdrStoredBytes);
  ix.summary_.unique_chunks = GetU64(p + kHdrUniqueChunks);
  ix.summary_.zero_chunks = GetU64(p + kHdrZeroChunks);

  if (header_size != kIndexHeaderSize) return fail(Status::Corruption("bad header size"));
  if (!IsValidChunkSize(ix.chunk_size_))
    return fail(Status::Corruption("bad chunk size " + std::to_string(ix.chunk_size_)));
  if (codec > uint8_t(Codec::kZlib))
    return fail(Status::Corruption("unknown codec " + std::to_string(codec)));
  ix.codec_ = Codec(codec);
  if (hash_algo != uint8_t(HashAlgo::kSha256))
    return fail(Status::Unsupported("unknown hash algorithm " + std::to_string(hash_algo)));
  if (entry_size != kIndexEntrySize) return fail(Status::Corruption("bad entry size"));
  if (ix.image_size_ > kMaxImageSize) return fail(Status::Corruption("absurd image size"));
  if (ix.chunk_count_ != ChunkCount(ix.image_size_, ix.chunk_size_))
    return fail(Status::Corruption("chunk count does not match image and chunk size"));
  if (ix.table_offset_ != kIndexHeaderSize) return fail(Status::Corruption("bad table offset"));
  // chunk_count <= 2^52 / 2^12 = 2^40, so this product cannot overflow.
  uint64_t table_end = ix.table_offset_ + ix.chunk_count_ * kIndexEntrySize;
  if (meta_offset != table_end || meta_length > kMaxMetaLength)
    return fail(Status::Corruption("bad metadata location"));
  if (uint64_t(n) != meta_offset + meta_length + kIndexTrailerSize)
    return fail(Status::Corruption("length is " + std::to_string(n) + " bytes, header implies " +
                                   std::to_string(meta_offset + meta_length + kIndexTrailerSize) +
                                   " (truncated?)"));
  ix.digest_ = Sha256(p, n);
  Hash stored;
  std::memcpy(stored.data(), p + n - kIndexTrailerSize, kHashSize);
  if (Sha256(p, n - kIndexTrailerSize) != stored)
    return fail(Status::Corruption("checksum mismatch"));
  bool reserved_zero = GetU32(p + kHdrFlags) == 0 && p[kHdrEntrySize + 1] == 0;
  for (size_t i = kHdrReserved; i < kIndexHeaderSize; i++) reserved_zero &= p[i] == 0;
  if (!reserved_zero) return fail(Status::Corruption("reserved header fields are not zero"));
  HLOOP_RETURN_IF_ERROR(fail(
      ParseMeta(p + meta_offset, meta_length, options, ix.image_size_, &ix.meta_, &ix.layout_)));
  ix.bytes_ = std::move(bytes);
  // Check every entry once so lookups can trust them. Caches are keyed by
  // hash, so one hash must always mean one length: a hostile index that
  // named the same content with two lengths would have a reader copy past
  // the end of the shorter one.
  std::unordered_map<Hash, uint32_t, HashKey> hot_length;
  for (size_t k = 0; k < ix.layout_.hot.size(); k++) {
    const HotChunk& h = ix.layout_.hot[k];
    auto [it, added] = hot_length.emplace(h.hash, h.raw_size);
    if (!added && it->second != h.raw_size)
      return fail(Status::Corruption("hot chunk " + std::to_string(k) +
                                     " has the hash of another hot chunk of another length"));
  }
  const uint64_t last = ix.chunk_count_ ? ix.chunk_count_ - 1 : 0;
  const bool short_last = ix.chunk_count_ && ix.chunk_length(last) != ix.chunk_size_;
  const ChunkEntry last_entry = ix.chunk_count_ ? ix.entry(last) : ChunkEntry{};
  for (uint64_t i = 0; i < ix.chunk_count_; i++) {
    ChunkEntry e = ix.entry(i);
    if (e.flags & ~kEntryKnownFlags)
      return fail(Status::Corruption("chunk " + std::to_string(i) + " has unknown flags"));
    if (e.zero()) continue;
    if (e.stored_size < kChunkHeaderSize ||
        e.stored_size > kChunkHeaderSize + 2 * uint64_t(kMaxChunkSize))
      return fail(Status::Corruption("chunk " + std::to_string(i) + " has an absurd stored size"));
    if (short_last && i != last && !last_entry.zero() && e.hash == last_entry.hash)
      return fail(Status::Corruption("chunk " + std::to_string(i) +
                                     " has the hash of the short last chunk"));
    if (!hot_length.empty()) {
      auto it = hot_length.find(e.hash);
      if (it != hot_length.end() && it->second != ix.chunk_length(i))
        return fail(Status::Corruption("chunk " + std::to_string(i) +
                                       " has the hash of a hot chunk of another length"));
    }
  }
  return ix;
}

ChunkEntry Index::entry(uint64_t i) const {
  if (i >= chunk_count_) {
    const HotChunk& h = layout_.hot[i - chunk_count_];
    return ChunkEntry{.hash = h.hash, .stored_size = h.stored_size, .flags = 0};
  }
  const uint8_t* p = U8(bytes_) + table_offset_ + i * kIndexEntrySize;
  ChunkEntry e;
  std::memcpy(e.hash.data(), p + kEntHash, kHashSize);
  e.stored_size = GetU32(p + kEntStoredSize);
  e.flags = GetU32(p + kEntFlags);
  return e;
}

uint32_t Index::chunk_length(uint64_t i) const {
  if (i >= chunk_count_) return layout_.hot[i - chunk_count_].raw_size;
  uint64_t start = i * chunk_size_;
  uint64_t left = image_size_ - start;
  return left < chunk_size_ ? uint32_t(left) : chunk_size_;
}

Segment Index::Locate(uint64_t offset) const {
  const auto& ext = layout_.extents;
  // The first extent that starts after `offset`, and the one before it.
  auto next = std::upper_bound(ext.begin(), ext.end(), offset,
                               [](uint64_t o, const ImageExtent& e) { return o < e.image_offset; });
  if (next != ext.begin()) {
    const ImageExtent& e = *std::prev(next);
    if (offset < e.end()) {
      Segment s{.length = e.end() - offset, .zero = e.zero()};
      if (!s.zero) {
        s.slot = chunk_count_ + e.hot;
        s.slot_offset = e.hot_offset + (offset - e.image_offset);
      }
      return s;
    }
  }
  const uint64_t i = offset / chunk_size_;
  uint64_t end = i * chunk_size_ + chunk_length(i);
  if (next != ext.end()) end = std::min(end, next->image_offset);
  Segment s{.length = end - offset, .zero = entry(i).zero()};
  if (!s.zero) {
    s.slot = i;
    s.slot_offset = offset - i * chunk_size_;
  }
  return s;
}

bool Index::TableChunkUsed(uint64_t i) const {
  const uint64_t begin = i * chunk_size_, end = begin + chunk_length(i);
  const auto& ext = layout_.extents;
  auto it = std::upper_bound(ext.begin(), ext.end(), begin,
                             [](uint64_t o, const ImageExtent& e) { return o < e.image_offset; });
  uint64_t covered_to = begin;  // [begin, covered_to) is covered
  if (it != ext.begin() && std::prev(it)->end() > begin) covered_to = std::prev(it)->end();
  for (; it != ext.end() && it->image_offset <= covered_to && covered_to < end; ++it)
    covered_to = std::max(covered_to, it->end());
  return covered_to < end;
}

void Index::SlotsOf(uint64_t offset, uint64_t len, std::vector<uint64_t>* out) const {
  const uint64_t end = std::min(image_size_, offset + len);
  // Table slots only grow along the image (a repeat is the last one seen);
  // hot slots may come back anywhere.
  uint64_t last_table = UINT64_MAX;
  std::unordered_set<uint64_t> hot_seen;
  for (uint64_t pos = offset; pos < end;) {
    const Segment s = Locate(pos);
    pos += s.length;
    if (s.zero) continue;
    if (is_hot(s.slot)) {
      if (hot_seen.insert(s.slot).second) out->push_back(s.slot);
    } else if (s.slot != last_table) {
      last_table = s.slot;
      out->push_back(s.slot);
    }
  }
}

IndexBuilder::IndexBuilder(uint64_t image_size, uint32_t chunk_size, Codec codec)
    : image_size_(image_size),
      chunk_size_(chunk_size),
      codec_(codec),
      entries_(ChunkCount(image_size, chunk_size)) {}

std::string IndexBuilder::Encode() const {
  IndexSummary sum;
  std::set<Hash> seen;
  for (const auto& e : entries_) {
    if (e.zero()) {
      sum.zero_chunks++;
      continue;
    }
    if (seen.insert(e.hash).second) sum.stored_bytes += e.stored_size;
  }
  for (const auto& h : layout_.hot)
    if (seen.insert(h.hash).second) sum.stored_bytes += h.stored_size;
  sum.unique_chunks = seen.size();

  std::string meta;
  if (!meta_.name.empty()) AppendRecord(&meta, kMetaName, 0, meta_.name);
  if (meta_.created) {
    uint8_t t[8];
    PutU64(t, meta_.created);
    AppendRecord(&meta, kMetaCreated, 0, std::string(reinterpret_cast<char*>(t), 8));
  }
  if (!meta_.tool.empty()) AppendRecord(&meta, kMetaTool, 0, meta_.tool);
  if (meta_.parent_digest) {
    std::string v(reinterpret_cast<const char*>(meta_.parent_digest->data()), kHashSize);
    AppendRecord(&meta, kMetaParent, 0, v + meta_.parent_name);
  }
  if (!layout_.empty()) AppendRecord(&meta, kMetaExtents, kMetaFlagCritical, EncodeLayout(layout_));

  uint64_t table_size = entries_.size() * kIndexEntrySize;
  std::string out(kIndexHeaderSize + table_size, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  std::memcpy(p + kHdrMagic, kIndexMagic, sizeof kIndexMagic);
  PutU16(p + kHdrVersion, kIndexVersion);
  PutU16(p + kHdrHeaderSize, kIndexHeaderSize);
  PutU32(p + kHdrFlags, 0);
  PutU64(p + kHdrImageSize, image_size_);
  PutU32(p + kHdrChunkSize, chunk_size_);
  p[kHdrCodec] = uint8_t(codec_);
  p[kHdrHashAlgo] = uint8_t(HashAlgo::kSha256);
  p[kHdrEntrySize] = kIndexEntrySize;
  PutU64(p + kHdrChunkCount, entries_.size());
  PutU64(p + kHdrTableOffset, kIndexHeaderSize);
  PutU64(p + kHdrMetaOffset, kIndexHeaderSize + table_size);
  PutU64(p + kHdrMetaLength, meta.size());
  PutU64(p + kHdrStoredBytes, sum.stored_bytes);
  PutU64(p + kHdrUniqueChunks, sum.unique_chunks);
  PutU64(p + kHdrZeroChunks, sum.zero_chunks);
  uint8_t* t = p + kIndexHeaderSize;
  for (const auto& e : entries_) {
    std::memcpy(t + kEntHash, e.hash.data(), kHashSize);
    PutU32(t + kEntStoredSize, e.stored_size);
    PutU32(t + kEntFlags, e.flags);
    t += kIndexEntrySize;
  }
  out += meta;
  Hash sum_hash = Sha256(out.data(), out.size());
  out.append(reinterpret_cast<const char*>(sum_hash.data()), kHashSize);
  return out;
}

}  // namespace hloop::format
