#include "frontends/nbd/nbd_proto.h"

#include <cstdio>

#include "util/bytes.h"

namespace hloop::nbd {

namespace {

void AppendU16(std::string* out, uint16_t v) {
  uint8_t b[2];
  PutBE16(b, v);
  out->append(reinterpret_cast<char*>(b), 2);
}
void AppendU32(std::string* out, uint32_t v) {
  uint8_t b[4];
  PutBE32(b, v);
  out->append(reinterpret_cast<char*>(b), 4);
}
void AppendU64(std::string* out, uint64_t v) {
  uint8_t b[8];
  PutBE64(b, v);
  out->append(reinterpret_cast<char*>(b), 8);
}

// Reads big-endian fields and length-prefixed strings from option data,
// never past its end: every getter fails once the data runs out.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool U16(uint16_t* v) {
    if (left() < 2) return false;
    *v = GetBE16(ptr());
    pos_ += 2;
    return true;
  }
  bool U32(uint32_t* v) {
    if (left() < 4) return false;
    *v = GetBE32(ptr());
    pos_ += 4;
    return true;
  }
  // A u32 length then that many bytes, at most kMaxStringLength.
  bool String(std::string* s) {
    uint32_t n;
    if (!U32(&n) || n > kMaxStringLength || n > left()) return false;
    s->assign(data_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  size_t left() const { return data_.size() - pos_; }

 private:
  const uint8_t* ptr() const { return reinterpret_cast<const uint8_t*>(data_.data()) + pos_; }
  std::string_view data_;
  size_t pos_ = 0;
};

std::string Hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

bool IsWriteCommand(uint16_t type) {
  return type == kCmdWrite || type == kCmdTrim || type == kCmdWriteZeroes;
}

// The command flags each command accepts. FUA is valid on every command
// (the spec: "the server MUST accept all commands with this bit set");
// it only matters for those that write.
uint16_t AllowedFlags(uint16_t type, const Transmission& t) {
  uint16_t allowed = kCmdFlagFua;
  if (type == kCmdRead && t.structured) allowed |= kCmdFlagDf;
  if (type == kCmdWriteZeroes) allowed |= kCmdFlagNoHole;  // FAST_ZERO is not offered
  if (type == kCmdBlockStatus) allowed |= kCmdFlagReqOne;
  return allowed;
}

}  // namespace

std::string EncodeGreeting() {
  std::string out;
  AppendU64(&out, kNbdMagic);
  AppendU64(&out, kOptMagic);
  AppendU16(&out, kFlagFixedNewstyle | kFlagNoZeroes);
  return out;
}

Result<OptionHeader> ParseOptionHeader(const uint8_t* p) {
  uint64_t magic = GetBE64(p);
  if (magic != kOptMagic) return Status::Corruption("bad option magic");
  return OptionHeader{GetBE32(p + 8), GetBE32(p + 12)};
}

Result<InfoRequest> ParseInfoRequest(std::string_view data) {
  Reader r(data);
  InfoRequest req;
  uint16_t n;
  if (!r.String(&req.name) || !r.U16(&n))
    return Status::InvalidArgument("malformed INFO/GO request");
  // Each request is 2 bytes: the count must match what is left exactly.
  if (r.left() != size_t(n) * 2)
    return Status::InvalidArgument("INFO/GO request count does not match its length");
  req.infos.resize(n);
  for (uint16_t& info : req.infos) r.U16(&info);
  return req;
}

Result<MetaContextRequest> ParseMetaContextRequest(std::string_view data) {
  Reader r(data);
  MetaContextRequest req;
  uint32_t n;
  if (!r.String(&req.name) || !r.U32(&n))
    return Status::InvalidArgument("malformed meta context request");
  // Each query takes at least its 4-byte length: a count beyond what the
  // data can hold is refused before anything is reserved for it.
  if (n > r.left() / 4)
    return Status::InvalidArgument("meta context query count exceeds the option's length");
  for (uint32_t i = 0; i < n; i++) {
    std::string q;
    if (!r.String(&q)) return Status::InvalidArgument("malformed meta context query");
    req.queries.push_back(std::move(q));
  }
  if (r.left() != 0) return Status::InvalidArgument("trailing bytes after meta context queries");
  return req;
}

void AppendOptionReply(std::string* out, uint32_t option, uint32_t type, std::string_view data) {
  AppendU64(out, kOptReplyMagic);
  AppendU32(out, option);
  AppendU32(out, type);
  AppendU32(out, uint32_t(data.size()));
  out->append(data);
}

std::string ServerReplyData(std::string_view export_name) {
  std::string out;
  AppendU32(&out, uint32_t(export_name.size()));
  out.append(export_name);
  return out;
}

std::string MetaContextReplyData(uint32_t id, std::string_view name) {
  std::string out;
  AppendU32(&out, id);
  out.append(name);
  return out;
}

std::string InfoExportData(uint64_t size, uint16_t transmission_flags) {
  std::string out;
  AppendU16(&out, kInfoExport);
  AppendU64(&out, size);
  AppendU16(&out, transmission_flags);
  return out;
}

std::string InfoNameData(std::string_view name) {
  std::string out;
  AppendU16(&out, kInfoName);
  out.append(name);
  return out;
}

std::string InfoBlockSizeData(uint32_t minimum, uint32_t preferred, uint32_t maximum) {
  std::string out;
  AppendU16(&out, kInfoBlockSize);
  AppendU32(&out, minimum);
  AppendU32(&out, preferred);
  AppendU32(&out, maximum);
  return out;
}

std::string ExportNameReply(uint64_t size, uint16_t transmission_flags, bool no_zeroes) {
  std::string out;
  AppendU64(&out, size);
  AppendU16(&out, transmission_flags);
  if (!no_zeroes) out.append(kExportNameZeroes, '\0');
  return out;
}

std::string EncodeOption(uint32_t option, std::string_view data) {
  std::string out;
  AppendU64(&out, kOptMagic);
  AppendU32(&out, option);
  AppendU32(&out, uint32_t(data.size()));
  out.append(data);
  return out;
}

std::string EncodeInfoRequest(const InfoRequest& r) {
  std::string out;
  AppendU32(&out, uint32_t(r.name.size()));
  out.append(r.name);
  AppendU16(&out, uint16_t(r.infos.size()));
  for (uint16_t i : r.infos) AppendU16(&out, i);
  return out;
}

std::string EncodeMetaContextRequest(const MetaContextRequest& r) {
  std::string out;
  AppendU32(&out, uint32_t(r.name.size()));
  out.append(r.name);
  AppendU32(&out, uint32_t(r.queries.size()));
  for (const std::string& q : r.queries) {
    AppendU32(&out, uint32_t(q.size()));
    out.append(q);
  }
  return out;
}

Result<Request> ParseRequest(const uint8_t* p) {
  if (GetBE32(p) != kRequestMagic) return Status::Corruption("bad request magic");
  Request r;
  r.flags = GetBE16(p + 4);
  r.type = GetBE16(p + 6);
  r.cookie = GetBE64(p + 8);
  r.offset = GetBE64(p + 16);
  r.length = GetBE32(p + 24);
  return r;
}

std::string EncodeRequest(const Request& r) {
  std::string out;
  AppendU32(&out, kRequestMagic);
  AppendU16(&out, r.flags);
  AppendU16(&out, r.type);
  AppendU64(&out, r.cookie);
  AppendU64(&out, r.offset);
  AppendU32(&out, r.length);
  return out;
}

Check CheckRequest(const Request& r, const Transmission& t) {
  const std::string what = CommandName(r.type);
  switch (r.type) {
    case kCmdRead:
    case kCmdWrite:
    case kCmdFlush:
    case kCmdTrim:
    case kCmdCache:
    case kCmdWriteZeroes:
    case kCmdBlockStatus: break;
    default: return {kEinval, "unknown command " + std::to_string(r.type)};
  }
  if (r.flags & ~AllowedFlags(r.type, t))
    return {kEinval, what + ": unsupported flags " + Hex(r.flags)};
  if (r.type == kCmdBlockStatus && !t.base_allocation)
    return {kEinval, "BLOCK_STATUS without a negotiated metadata context"};
  // The payload limit comes before the read-only check so that a WRITE
  // too large to read is always refused the same way (and the connection
  // closed: its payload cannot be skipped).
  if ((r.type == kCmdRead || r.type == kCmdWrite) && r.length > kMaxPayload)
    return {t.structured ? kEoverflow : kEinval, what + " of " + std::to_string(r.length) +
                                                     " bytes exceeds the maximum of " +
                                                     std::to_string(kMaxPayload)};
  if (IsWriteCommand(r.type) && !t.writable) return {kEperm, what + " on a read-only export"};
  if (r.type == kCmdFlush) return {};  // offset and length are reserved
  if (r.offset > t.size || r.length > t.size - r.offset) {
    // Past the end: writes get ENOSPC, everything else EINVAL (the spec).
    uint32_t err = (r.type == kCmdWrite || r.type == kCmdWriteZeroes) ? kEnospc : kEinval;
    return {err, what + " of " + std::to_string(r.length) + " bytes at " +
                     std::to_string(r.offset) + " is past the end of the export (" +
                     std::to_string(t.size) + " bytes)"};
  }
  if (r.type == kCmdBlockStatus && r.length == 0) return {kEinval, "BLOCK_STATUS of 0 bytes"};
  return {};
}

void AppendSimpleReply(std::string* out, uint32_t error, uint64_t cookie) {
  AppendU32(out, kSimpleReplyMagic);
  AppendU32(out, error);
  AppendU64(out, cookie);
}

void AppendChunkHeader(std::string* out, uint16_t flags, uint16_t type, uint64_t cookie,
                       uint32_t length) {
  AppendU32(out, kStructuredReplyMagic);
  AppendU16(out, flags);
  AppendU16(out, type);
  AppendU64(out, cookie);
  AppendU32(out, length);
}

void AppendDataChunkHeader(std::string* out, uint16_t flags, uint64_t cookie, uint64_t offset,
                           uint32_t data_length) {
  AppendChunkHeader(out, flags, kReplyOffsetData, cookie, data_length + 8);
  AppendU64(out, offset);
}

void AppendHoleChunk(std::string* out, uint16_t flags, uint64_t cookie, uint64_t offset,
                     uint32_t length) {
  AppendChunkHeader(out, flags, kReplyOffsetHole, cookie, 12);
  AppendU64(out, offset);
  AppendU32(out, length);
}

void AppendNoneChunk(std::string* out, uint64_t cookie) {
  AppendChunkHeader(out, kReplyFlagDone, kReplyNone, cookie, 0);
}

void AppendErrorChunk(std::string* out, uint64_t cookie, uint32_t error, std::string_view message) {
  message = message.substr(0, kMaxStringLength);
  AppendChunkHeader(out, kReplyFlagDone, kReplyError, cookie, uint32_t(6 + message.size()));
  AppendU32(out, error);
  AppendU16(out, uint16_t(message.size()));
  out->append(message);
}

void AppendBlockStatusChunk(std::string* out, uint16_t flags, uint64_t cookie, uint32_t context_id,
                            const std::vector<BlockStatusExtent>& extents) {
  AppendChunkHeader(out, flags, kReplyBlockStatus, cookie, uint32_t(4 + 8 * extents.size()));
  AppendU32(out, context_id);
  for (const BlockStatusExtent& e : extents) {
    AppendU32(out, e.length);
    AppendU32(out, e.flags);
  }
}

Result<SimpleReply> ParseSimpleReply(const uint8_t* p) {
  if (GetBE32(p) != kSimpleReplyMagic) return Status::Corruption("bad simple reply magic");
  return SimpleReply{GetBE32(p + 4), GetBE64(p + 8)};
}

Result<ChunkHeader> ParseChunkHeader(const uint8_t* p) {
  if (GetBE32(p) != kStructuredReplyMagic) return Status::Corruption("bad structured reply magic");
  return ChunkHeader{GetBE16(p + 4), GetBE16(p + 6), GetBE64(p + 8), GetBE32(p + 16)};
}

std::string CommandName(uint16_t type) {
  switch (type) {
    case kCmdRead: return "READ";
    case kCmdWrite: return "WRITE";
    case kCmdDisc: return "DISC";
    case kCmdFlush: return "FLUSH";
    case kCmdTrim: return "TRIM";
    case kCmdCache: return "CACHE";
    case kCmdWriteZeroes: return "WRITE_ZEROES";
    case kCmdBlockStatus: return "BLOCK_STATUS";
    default: return "command " + std::to_string(type);
  }
}

}  // namespace hloop::nbd
