// libFuzzer target: decoding a chunk file from an untrusted server never
// crashes or overruns, whatever its header claims.
#include <cstddef>
#include <cstdint>
#include <string>

#include "format/chunk_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view file(reinterpret_cast<const char*>(data), size);
  auto header = hloop::format::ParseChunkHeader(file);
  hloop::format::Hash h{};
  std::string out;
  uint32_t raw = header.ok() ? header->raw_size : 4096;
  hloop::Status st = hloop::format::DecodeChunk(file, h, raw, &out);
  (void)st;
  return 0;
}
