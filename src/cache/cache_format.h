// The disk cache's on-disk format (client side; docs/format.md, "Cache
// directory", describes it byte by byte). Not published, but stable across
// hloop versions: a cache directory written by one version is read by the
// next, or refused with a message naming both versions.
//
//   DIR/format                       "hloop-cache VERSION\n": the version of the layout below
//   DIR/chunks/ab/<hash>             a verified chunk: a cache file header, then its raw content
//   DIR/indexes/<sha256 of URL>.idx  the last good copy of a small file fetched from URL
//                                    (an index, a mirror list)
//
// A directory without DIR/format was made before the file existed; its
// layout is version 1's, and opening it writes the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hloop::cache {

// ---- The directory ----
inline constexpr uint32_t kCacheFormatVersion = 1;
// DIR/<kCacheVersionFile> holds kCacheVersionMagic, one space, the version
// in decimal, and '\n'.
inline constexpr std::string_view kCacheVersionFile = "format";
inline constexpr std::string_view kCacheVersionMagic = "hloop-cache";
inline constexpr std::string_view kCacheChunksDir = "chunks";
// The directory and name suffix of URL copies (named "indexes" since it
// first held only indexes; kept so existing caches still work offline).
inline constexpr std::string_view kCacheUrlCopiesDir = "indexes";
inline constexpr std::string_view kCacheUrlCopySuffix = ".idx";

// ---- A cache file: header, then the raw (decompressed) chunk ----
// All integers little-endian.
inline constexpr char kCacheFileMagic[4] = {'H', 'L', 'C', 'C'};
inline constexpr size_t kCacheFileMagicOffset = 0;     // 4 bytes: kCacheFileMagic
inline constexpr size_t kCacheFileLengthOffset = 4;    // u32: raw content length
inline constexpr size_t kCacheFileSumLowOffset = 8;    // u64: XXH3-128 of the content, low half
inline constexpr size_t kCacheFileSumHighOffset = 16;  // u64: XXH3-128 of the content, high half
inline constexpr size_t kCacheHeaderSize = 24;         // the content starts here

}  // namespace hloop::cache
