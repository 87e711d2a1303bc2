// The overlay file: a persistent copy-on-write layer over one image version,
// laid out like User-Mode Linux's COW file (a header, a block map, then the
// data of block b at a fixed place, in a sparse file). docs/format.md
// ("Overlay file") has the bytes and the order in which they reach the disk;
// the constants live here and nowhere else.
//
//   0                     header, 4096 bytes (written once, at creation)
//   map_offset = 4096     block map: 2 bits per 4 KiB block, in 4 KiB pages
//   data_offset           block b's 4096 bytes at data_offset + b * 4096
//
// Pure encoding plus the two whole-file operations that need no device
// (creation, inspection). OverlayDevice does the reading and writing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "format/hash.h"
#include "util/status.h"

namespace hloop::overlay {

inline constexpr char kOverlayMagic[8] = {'H', 'L', 'O', 'O', 'P', 'C', 'O', 'W'};
inline constexpr uint16_t kOverlayVersion = 1;
inline constexpr uint32_t kHeaderSize = 4096;
inline constexpr uint32_t kBlockSize = 4096;    // the overlay's granularity
inline constexpr uint32_t kMapPageSize = 4096;  // the map is written in pages of this size
inline constexpr uint32_t kBlocksPerMapByte = 4;
inline constexpr uint64_t kBlocksPerMapPage =
    uint64_t(kMapPageSize) * kBlocksPerMapByte;  // 64 MiB of image
inline constexpr size_t kMaxBaseName = 1024;
// Image sizes an overlay accepts (the index's limit).
inline constexpr uint64_t kMaxImageSize = uint64_t(1) << 52;

// Header field offsets (all integers little-endian).
inline constexpr size_t kHdrMagic = 0;         // 8 bytes "HLOOPCOW"
inline constexpr size_t kHdrVersion = 8;       // u16
inline constexpr size_t kHdrHeaderSize = 10;   // u16, 4096
inline constexpr size_t kHdrBlockSize = 12;    // u32, 4096
inline constexpr size_t kHdrImageSize = 16;    // u64
inline constexpr size_t kHdrBlockCount = 24;   // u64 = ceil(image_size / 4096)
inline constexpr size_t kHdrMapOffset = 32;    // u64 = 4096
inline constexpr size_t kHdrMapLength = 40;    // u64
inline constexpr size_t kHdrDataOffset = 48;   // u64
inline constexpr size_t kHdrCreated = 56;      // u64 seconds since the epoch
inline constexpr size_t kHdrBaseDigest = 64;   // 32 bytes: digest of the base index
inline constexpr size_t kHdrBaseNameLen = 96;  // u16
inline constexpr size_t kHdrFlags = 98;        // u16, 0 (reserved)
inline constexpr size_t kHdrBaseName = 100;    // base_name_length bytes of UTF-8; then zeros
inline constexpr size_t kHdrChecksum = kHeaderSize - 32;  // SHA-256 of bytes [0, 4064)

// What the map says about one block. Two bits; 3 is invalid.
enum class BlockState : uint8_t {
  kBase = 0,  // never written: read the base image
  kData = 1,  // the overlay holds the block's data
  kZero = 2,  // written as zeros (WRITE_ZEROES, TRIM); no data kept
};

struct Header {
  uint64_t image_size = 0;
  uint64_t block_count = 0;
  uint64_t map_offset = 0;
  uint64_t map_length = 0;
  uint64_t data_offset = 0;
  uint64_t created = 0;
  format::Hash base_digest{};
  std::string base_name;

  // Where the data area ends: the overlay file's exact size.
  uint64_t file_size() const { return data_offset + block_count * kBlockSize; }
};

// The header of a new overlay over an image of `image_size` bytes whose
// index has `base_digest`. REQUIRES: image_size <= kMaxImageSize.
Header MakeHeader(uint64_t image_size, const format::Hash& base_digest, std::string base_name,
                  uint64_t created);
std::string EncodeHeader(const Header& h);
// Checks magic, version, sizes, offsets and the checksum. `origin` names the
// file in messages.
Result<Header> ParseHeader(std::string_view bytes, const std::string& origin);

// The packed map: block b's state in bits 2*(b%4)..2*(b%4)+1 of byte b/4.
inline BlockState GetState(const uint8_t* map, uint64_t b) {
  return BlockState((map[b / kBlocksPerMapByte] >> (2 * (b % kBlocksPerMapByte))) & 3);
}
inline void SetState(uint8_t* map, uint64_t b, BlockState s) {
  uint8_t& byte = map[b / kBlocksPerMapByte];
  const unsigned shift = 2 * unsigned(b % kBlocksPerMapByte);
  byte = uint8_t((byte & ~(3u << shift)) | (unsigned(s) << shift));
}

struct MapCounts {
  uint64_t data_blocks = 0;
  uint64_t zero_blocks = 0;
};
// Checks a map read from disk (map_length bytes): no entry is 3 and the
// bits past block_count are zero. Counts the blocks in each state.
Result<MapCounts> CheckMap(const std::vector<uint8_t>& map, const Header& h,
                           const std::string& origin);

// Creates an empty overlay at `path` (which must not exist) atomically: a
// temporary file gets the header, an all-zero map and a sparse data area,
// is fsynced and renamed into place, and the directory is fsynced. So an
// overlay either does not exist or is complete.
Status CreateOverlayFile(const std::string& path, const Header& h);

// What `hloop overlay info` prints.
struct OverlayInfo {
  Header header;
  MapCounts counts;
  uint64_t file_size = 0;        // apparent size
  uint64_t allocated_bytes = 0;  // what the sparse file occupies on disk
};
// Reads the header and the map of the overlay at `path`; needs no base.
Result<OverlayInfo> InspectOverlay(const std::string& path);

}  // namespace hloop::overlay
