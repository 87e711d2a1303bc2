#include "format/chunk_file.h"

#include <cstring>

#include "format/codec.h"
#include "util/bytes.h"

namespace hloop::format {

Status EncodeChunk(std::string_view raw, Codec codec, int level, std::string* file) {
  std::string body;
  HLOOP_RETURN_IF_ERROR(Compress(codec, level, raw, &body));
  if (codec != Codec::kNone && body.size() >= raw.size()) {
    codec = Codec::kNone;
    body.assign(raw);
  }
  file->resize(kChunkHeaderSize);
  auto* p = reinterpret_cast<uint8_t*>(file->data());
  std::memcpy(p + kChkMagic, kChunkMagic, sizeof kChunkMagic);
  p[kChkVersion] = kChunkVersion;
  p[kChkCodec] = uint8_t(codec);
  PutU16(p + kChkReserved, 0);
  PutU32(p + kChkRawSize, uint32_t(raw.size()));
  file->append(body);
  return Status::Ok();
}

Result<ChunkHeader> ParseChunkHeader(std::string_view file) {
  if (file.size() < kChunkHeaderSize)
    return Status::Corruption("chunk file truncated (" + std::to_string(file.size()) + " bytes)");
  auto* p = reinterpret_cast<const uint8_t*>(file.data());
  if (std::memcmp(p + kChkMagic, kChunkMagic, sizeof kChunkMagic) != 0)
    return Status::Corruption("not a chunk file (bad magic)");
  if (p[kChkVersion] != kChunkVersion)
    return Status::Unsupported("chunk file version " + std::to_string(p[kChkVersion]));
  if (GetU16(p + kChkReserved) != 0)
    return Status::Corruption("chunk file has non-zero reserved bytes");
  ChunkHeader h;
  uint8_t codec = p[kChkCodec];
  if (codec > uint8_t(Codec::kZlib))
    return Status::Corruption("chunk file names unknown codec " + std::to_string(codec));
  h.codec = Codec(codec);
  h.raw_size = GetU32(p + kChkRawSize);
  if (h.raw_size > kMaxChunkSize) return Status::Corruption("chunk file claims an absurd raw size");
  return h;
}

Status DecodeChunk(std::string_view file, const Hash& expected, uint32_t expected_size,
                   std::string* out) {
  auto header = ParseChunkHeader(file);
  if (!header.ok()) return header.status();
  if (header->raw_size != expected_size)
    return Status::Corruption("chunk is " + std::to_string(header->raw_size) +
                              " bytes, index says " + std::to_string(expected_size));
  out->resize(expected_size);
  HLOOP_RETURN_IF_ERROR(
      Decompress(header->codec, file.substr(kChunkHeaderSize), out->data(), expected_size));
  Hash got = Sha256(out->data(), out->size());
  if (got != expected)
    return Status::Corruption("hash mismatch: expected " + ToHex(expected) + ", got " + ToHex(got));
  return Status::Ok();
}

}  // namespace hloop::format
