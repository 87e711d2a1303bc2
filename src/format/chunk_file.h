// Chunk files: a 12-byte header (magic, version, codec, raw length) followed
// by the compressed bytes. The file is named by the SHA-256 of the raw
// (uncompressed) content; see docs/format.md.
#pragma once

#include <string>
#include <string_view>

#include "format/format.h"
#include "format/hash.h"
#include "util/status.h"

namespace hloop::format {

struct ChunkHeader {
  Codec codec = Codec::kNone;
  uint32_t raw_size = 0;
};

// Builds a chunk file for `raw`. Falls back to codec none when compression
// would not make the file smaller. Thread-safe.
Status EncodeChunk(std::string_view raw, Codec codec, int level, std::string* file);

// Parses and checks the header of a chunk file.
Result<ChunkHeader> ParseChunkHeader(std::string_view file);

// Decodes a chunk file into `out` (resized to the raw length) and checks that
// the raw content hashes to `expected` and is `expected_size` bytes long.
// Corruption (naming both hashes) on any mismatch; `out` must then not be used.
Status DecodeChunk(std::string_view file, const Hash& expected, uint32_t expected_size,
                   std::string* out);

}  // namespace hloop::format
