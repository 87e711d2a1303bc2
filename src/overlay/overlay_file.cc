#include "overlay/overlay_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/bytes.h"
#include "util/file.h"

namespace hloop::overlay {

namespace {

uint64_t RoundUp(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

uint64_t MapLengthFor(uint64_t block_count) {
  return std::max<uint64_t>(
      kMapPageSize,
      RoundUp((block_count + kBlocksPerMapByte - 1) / kBlocksPerMapByte, kMapPageSize));
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Header MakeHeader(uint64_t image_size, const format::Hash& base_digest, std::string base_name,
                  uint64_t created) {
  Header h;
  h.image_size = image_size;
  h.block_count = (image_size + kBlockSize - 1) / kBlockSize;
  h.map_offset = kHeaderSize;
  h.map_length = MapLengthFor(h.block_count);
  h.data_offset = h.map_offset + h.map_length;
  h.created = created;
  h.base_digest = base_digest;
  if (base_name.size() > kMaxBaseName) base_name.resize(kMaxBaseName);
  h.base_name = std::move(base_name);
  return h;
}

std::string EncodeHeader(const Header& h) {
  std::string out(kHeaderSize, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  std::memcpy(p + kHdrMagic, kOverlayMagic, sizeof kOverlayMagic);
  PutU16(p + kHdrVersion, kOverlayVersion);
  PutU16(p + kHdrHeaderSize, uint16_t(kHeaderSize));
  PutU32(p + kHdrBlockSize, kBlockSize);
  PutU64(p + kHdrImageSize, h.image_size);
  PutU64(p + kHdrBlockCount, h.block_count);
  PutU64(p + kHdrMapOffset, h.map_offset);
  PutU64(p + kHdrMapLength, h.map_length);
  PutU64(p + kHdrDataOffset, h.data_offset);
  PutU64(p + kHdrCreated, h.created);
  std::memcpy(p + kHdrBaseDigest, h.base_digest.data(), h.base_digest.size());
  const size_t name_len = std::min(h.base_name.size(), kMaxBaseName);
  PutU16(p + kHdrBaseNameLen, uint16_t(name_len));
  std::memcpy(p + kHdrBaseName, h.base_name.data(), name_len);
  format::Hash sum = format::Sha256(p, kHdrChecksum);
  std::memcpy(p + kHdrChecksum, sum.data(), sum.size());
  return out;
}

Result<Header> ParseHeader(std::string_view bytes, const std::string& origin) {
  auto bad = [&](const std::string& why) {
    return Status::Corruption("overlay " + origin + ": " + why);
  };
  if (bytes.size() < kHeaderSize) return bad("shorter than its header");
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  if (std::memcmp(p + kHdrMagic, kOverlayMagic, sizeof kOverlayMagic) != 0)
    return bad("not an hloop overlay (bad magic)");
  if (GetU16(p + kHdrVersion) != kOverlayVersion)
    return Status::Unsupported(
        "overlay " + origin + ": version " + std::to_string(GetU16(p + kHdrVersion)) +
        " (this hloop reads version " + std::to_string(kOverlayVersion) + ")");
  format::Hash sum = format::Sha256(p, kHdrChecksum);
  if (std::memcmp(sum.data(), p + kHdrChecksum, sum.size()) != 0)
    return bad("header checksum mismatch");
  if (GetU16(p + kHdrHeaderSize) != kHeaderSize) return bad("bad header size");
  if (GetU32(p + kHdrBlockSize) != kBlockSize) return bad("block size is not 4096");
  if (GetU16(p + kHdrFlags) != 0) return bad("unknown flags");
  Header h;
  h.image_size = GetU64(p + kHdrImageSize);
  h.block_count = GetU64(p + kHdrBlockCount);
  h.map_offset = GetU64(p + kHdrMapOffset);
  h.map_length = GetU64(p + kHdrMapLength);
  h.data_offset = GetU64(p + kHdrDataOffset);
  h.created = GetU64(p + kHdrCreated);
  std::memcpy(h.base_digest.data(), p + kHdrBaseDigest, h.base_digest.size());
  if (h.image_size > kMaxImageSize) return bad("image size too large");
  if (h.block_count != (h.image_size + kBlockSize - 1) / kBlockSize)
    return bad("block count does not match the image size");
  if (h.map_offset != kHeaderSize || h.map_length != MapLengthFor(h.block_count) ||
      h.data_offset != h.map_offset + h.map_length)
    return bad("map or data area not where the sizes put them");
  size_t name_len = GetU16(p + kHdrBaseNameLen);
  if (name_len > kMaxBaseName) return bad("base name too long");
  h.base_name.assign(bytes.data() + kHdrBaseName, name_len);
  for (size_t i = kHdrBaseName + name_len; i < kHdrChecksum; i++)
    if (p[i] != 0) return bad("reserved header bytes are not zero");
  return h;
}

Result<MapCounts> CheckMap(const std::vector<uint8_t>& map, const Header& h,
                           const std::string& origin) {
  if (map.size() != h.map_length)
    return Status::Corruption("overlay " + origin + ": short block map");
  MapCounts c;
  const uint64_t full_bytes = h.block_count / kBlocksPerMapByte;
  for (uint64_t i = 0; i < h.map_length; i++) {
    uint8_t v = map[i];
    if (v == 0) continue;
    // Entries past the last block must be zero (kBase).
    unsigned entries = i < full_bytes    ? kBlocksPerMapByte
                       : i == full_bytes ? unsigned(h.block_count % kBlocksPerMapByte)
                                         : 0;
    for (unsigned e = 0; e < kBlocksPerMapByte; e++) {
      unsigned s = (v >> (2 * e)) & 3;
      if (s == 0) continue;
      if (e >= entries || s == 3)
        return Status::Corruption("overlay " + origin + ": invalid block map entry for block " +
                                  std::to_string(i * kBlocksPerMapByte + e));
      if (BlockState(s) == BlockState::kData)
        c.data_blocks++;
      else
        c.zero_blocks++;
    }
  }
  return c;
}

Status CreateOverlayFile(const std::string& path, const Header& h) {
  std::string tmp = TempNameFor(path);
  ScopedFd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno(errno, "overlay " + tmp);
  auto fail = [&](Status st) {
    ::unlink(tmp.c_str());
    return st.Annotate("create overlay " + path);
  };
  std::string header = EncodeHeader(h);
  Status st = WriteFull(fd.get(), header.data(), header.size());
  if (!st.ok()) return fail(st);
  // The map starts all zero (every block from the base) and the data area
  // is a hole: ftruncate allocates neither.
  if (::ftruncate(fd.get(), off_t(h.file_size())) != 0)
    return fail(
        Status::FromErrno(errno, "size the file to " + std::to_string(h.file_size()) + " bytes"));
  if (::fsync(fd.get()) != 0) return fail(Status::FromErrno(errno, "fsync"));
  // link() rather than rename(): fails if someone created `path` meanwhile.
  if (::link(tmp.c_str(), path.c_str()) != 0)
    return fail(Status::FromErrno(errno, "link to " + path));
  ::unlink(tmp.c_str());
  ScopedFd dir(::open(DirOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid() && ::fsync(dir.get()) != 0)
    return Status::FromErrno(errno, "fsync the directory of " + path);
  return Status::Ok();
}

Result<OverlayInfo> InspectOverlay(const std::string& path) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, "overlay " + path);
  struct stat sb;
  if (::fstat(fd.get(), &sb) != 0) return Status::FromErrno(errno, "overlay " + path);
  std::string header(kHeaderSize, '\0');
  size_t got = 0;
  HLOOP_RETURN_IF_ERROR(PreadFull(fd.get(), header.data(), header.size(), 0, &got));
  header.resize(got);
  auto h = ParseHeader(header, path);
  if (!h.ok()) return h.status();
  if (uint64_t(sb.st_size) != h->file_size())
    return Status::Corruption("overlay " + path + ": " + std::to_string(sb.st_size) +
                              " bytes, expected " + std::to_string(h->file_size()) +
                              " (truncated or extended)");
  std::vector<uint8_t> map(h->map_length);
  HLOOP_RETURN_IF_ERROR(PreadFull(fd.get(), map.data(), map.size(), h->map_offset, &got));
  map.resize(got);
  auto counts = CheckMap(map, *h, path);
  if (!counts.ok()) return counts.status();
  OverlayInfo info;
  info.header = std::move(h.value());
  info.counts = *counts;
  info.file_size = uint64_t(sb.st_size);
  info.allocated_bytes = uint64_t(sb.st_blocks) * 512;
  return info;
}

}  // namespace hloop::overlay
