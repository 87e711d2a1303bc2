// Chunk compression: zstd (default), zlib (as in the source papers), none.
#pragma once

#include <string>
#include <string_view>

#include "format/format.h"
#include "util/status.h"

namespace hloop::format {

Result<Codec> ParseCodec(const std::string& name);
const char* CodecName(Codec c);
// The level used when none is given.
int DefaultLevel(Codec c);

// Compresses `raw` with `codec` at `level` into `out` (replacing it).
// Thread-safe: keeps a per-thread compression context.
Status Compress(Codec codec, int level, std::string_view raw, std::string* out);
// Decompresses `data` into exactly `raw_size` bytes at `out`. Corruption if the
// stream is malformed or decodes to any other length.
Status Decompress(Codec codec, std::string_view data, char* out, size_t raw_size);

}  // namespace hloop::format
