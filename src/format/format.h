// Every constant of hloop's on-disk formats, in one place. The byte-level
// description is docs/format.md; keep the two in step.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hloop::format {

// ---- Index file (NAME.idx) ----
inline constexpr char kIndexMagic[8] = {'H', 'L', 'O', 'O', 'P', 'I', 'D', 'X'};
inline constexpr uint16_t kIndexVersion = 1;
inline constexpr size_t kIndexHeaderSize = 128;
inline constexpr size_t kIndexEntrySize = 40;
inline constexpr size_t kIndexTrailerSize = 32;  // SHA-256 of all bytes before it

// Header field offsets.
inline constexpr size_t kHdrMagic = 0;
inline constexpr size_t kHdrVersion = 8;
inline constexpr size_t kHdrHeaderSize = 10;
inline constexpr size_t kHdrFlags = 12;
inline constexpr size_t kHdrImageSize = 16;
inline constexpr size_t kHdrChunkSize = 24;
inline constexpr size_t kHdrCodec = 28;
inline constexpr size_t kHdrHashAlgo = 29;
inline constexpr size_t kHdrEntrySize = 30;
inline constexpr size_t kHdrChunkCount = 32;
inline constexpr size_t kHdrTableOffset = 40;
inline constexpr size_t kHdrMetaOffset = 48;
inline constexpr size_t kHdrMetaLength = 56;
inline constexpr size_t kHdrStoredBytes = 64;
inline constexpr size_t kHdrUniqueChunks = 72;
inline constexpr size_t kHdrZeroChunks = 80;
inline constexpr size_t kHdrReserved = 88;  // 88..127, like flags and byte 31: zero in version 1

// Entry field offsets.
inline constexpr size_t kEntHash = 0;
inline constexpr size_t kEntStoredSize = 32;
inline constexpr size_t kEntFlags = 36;
inline constexpr uint32_t kEntryFlagZero = 1u << 0;  // all zeros; no chunk file
inline constexpr uint32_t kEntryKnownFlags = kEntryFlagZero;

// Metadata records: u16 type, u16 flags, u32 length, value.
inline constexpr size_t kMetaRecordHeaderSize = 8;
inline constexpr uint16_t kMetaFlagCritical = 1u << 0;  // reader must understand it
enum MetaType : uint16_t {
  kMetaName = 1,     // UTF-8 image name
  kMetaCreated = 2,  // u64 seconds since the epoch
  kMetaParent = 3,   // 32-byte digest of the parent index, then its UTF-8 name
  kMetaTool = 4,     // UTF-8 "hloop <version>"
  kMetaExtents = 5,  // critical: the layout (format/layout.h)
};

// The EXTENTS record's value: a header, the hot chunks, the extents.
inline constexpr size_t kLayoutHeaderSize = 8;
inline constexpr size_t kLayHotCount = 0;     // u32
inline constexpr size_t kLayExtentCount = 4;  // u32
inline constexpr size_t kHotEntrySize = 40;
inline constexpr size_t kHotHash = 0;         // 32 bytes: SHA-256 of the raw content
inline constexpr size_t kHotStoredSize = 32;  // u32: size of the chunk file
inline constexpr size_t kHotRawSize = 36;     // u32: length of the raw content
inline constexpr size_t kExtentEntrySize = 20;
inline constexpr size_t kExtImageOffset = 0;  // u64
inline constexpr size_t kExtLength = 8;       // u32
inline constexpr size_t kExtHot = 12;         // u32: hot chunk number, 0xFFFFFFFF: zeros
inline constexpr size_t kExtHotOffset = 16;   // u32: offset in the hot chunk's raw content

// Sizes the reader accepts.
inline constexpr uint32_t kMinChunkSize = 4 * 1024;
inline constexpr uint32_t kMaxChunkSize = 4 * 1024 * 1024;
inline constexpr uint32_t kDefaultChunkSize = 256 * 1024;
inline constexpr uint64_t kMaxImageSize = uint64_t(1) << 52;  // 4 PiB
inline constexpr uint64_t kMaxMetaLength = 16 * 1024 * 1024;

// ---- Hashes ----
enum class HashAlgo : uint8_t { kSha256 = 1 };
inline constexpr size_t kHashSize = 32;

// ---- Codecs ----
enum class Codec : uint8_t { kNone = 0, kZstd = 1, kZlib = 2 };

// ---- Chunk file (chunks/ab/abcdef...) ----
inline constexpr char kChunkMagic[4] = {'H', 'L', 'C', 'K'};
inline constexpr uint8_t kChunkVersion = 1;
inline constexpr size_t kChunkHeaderSize = 12;
inline constexpr size_t kChkMagic = 0;
inline constexpr size_t kChkVersion = 4;
inline constexpr size_t kChkCodec = 5;
inline constexpr size_t kChkReserved = 6;  // u16, zero
inline constexpr size_t kChkRawSize = 8;   // u32 uncompressed length

// Directory holding chunk files, relative to the store root / index URL.
inline constexpr const char* kChunkDir = "chunks";
inline constexpr const char* kIndexSuffix = ".idx";

}  // namespace hloop::format
