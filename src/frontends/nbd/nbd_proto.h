// The NBD wire protocol as hloop speaks it: constants, and pure functions
// that encode and decode its messages and check requests. No I/O, no
// threads, so every malformed input can be tested (nbd_proto_test.cc) and
// fuzzed (fuzz/fuzz_nbd.cc) without sockets. docs/nbd.md describes the
// subset served, byte by byte; the protocol itself is NetworkBlockDevice's
// doc/proto.md. Every integer on the wire is big-endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace hloop::nbd {

// ---- Handshake (fixed newstyle) -------------------------------------------

inline constexpr uint64_t kNbdMagic = 0x4e42444d41474943;       // "NBDMAGIC"
inline constexpr uint64_t kOptMagic = 0x49484156454f5054;       // "IHAVEOPT"
inline constexpr uint64_t kOptReplyMagic = 0x0003e889045565a9;  // option replies

// Handshake flags (server, u16) and client flags (u32).
inline constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
inline constexpr uint16_t kFlagNoZeroes = 1 << 1;
inline constexpr uint32_t kClientFixedNewstyle = 1 << 0;
inline constexpr uint32_t kClientNoZeroes = 1 << 1;

// Options.
inline constexpr uint32_t kOptExportName = 1;
inline constexpr uint32_t kOptAbort = 2;
inline constexpr uint32_t kOptList = 3;
inline constexpr uint32_t kOptStartTls = 5;
inline constexpr uint32_t kOptInfo = 6;
inline constexpr uint32_t kOptGo = 7;
inline constexpr uint32_t kOptStructuredReply = 8;
inline constexpr uint32_t kOptListMetaContext = 9;
inline constexpr uint32_t kOptSetMetaContext = 10;
inline constexpr uint32_t kOptExtendedHeaders = 11;

// Option reply types; errors have bit 31 set.
inline constexpr uint32_t kRepAck = 1;
inline constexpr uint32_t kRepServer = 2;
inline constexpr uint32_t kRepInfo = 3;
inline constexpr uint32_t kRepMetaContext = 4;
inline constexpr uint32_t kRepErrUnsup = 0x80000001;
inline constexpr uint32_t kRepErrPolicy = 0x80000002;
inline constexpr uint32_t kRepErrInvalid = 0x80000003;
inline constexpr uint32_t kRepErrShutdown = 0x80000007;
inline constexpr uint32_t kRepErrTooBig = 0x80000009;

// NBD_INFO_* types carried in kRepInfo replies.
inline constexpr uint16_t kInfoExport = 0;
inline constexpr uint16_t kInfoName = 1;
inline constexpr uint16_t kInfoDescription = 2;
inline constexpr uint16_t kInfoBlockSize = 3;

// Transmission flags (u16).
inline constexpr uint16_t kFlagHasFlags = 1 << 0;
inline constexpr uint16_t kFlagReadOnly = 1 << 1;
inline constexpr uint16_t kFlagSendFlush = 1 << 2;
inline constexpr uint16_t kFlagSendFua = 1 << 3;
inline constexpr uint16_t kFlagSendTrim = 1 << 5;
inline constexpr uint16_t kFlagSendWriteZeroes = 1 << 6;
inline constexpr uint16_t kFlagSendDf = 1 << 7;
inline constexpr uint16_t kFlagCanMultiConn = 1 << 8;
inline constexpr uint16_t kFlagSendCache = 1 << 10;

// The one metadata context served, and the id it gets once selected.
inline constexpr std::string_view kBaseAllocation = "base:allocation";
inline constexpr uint32_t kBaseAllocationId = 1;
// base:allocation status flags.
inline constexpr uint32_t kStateHole = 1 << 0;
inline constexpr uint32_t kStateZero = 1 << 1;

// Sizes and limits.
inline constexpr size_t kGreetingSize = 18;      // magic, magic, u16 flags
inline constexpr size_t kOptionHeaderSize = 16;  // magic, u32 option, u32 length
inline constexpr size_t kExportNameZeroes = 124;
inline constexpr size_t kMaxStringLength = 4096;  // names, queries (the spec's MUST)
// Option data beyond this is refused (ERR_TOO_BIG) and the connection
// closed: no real option comes near it, and skipping a client's claimed
// 4 GB is not worth reading.
inline constexpr uint32_t kMaxOptionLength = 64 * 1024;

// Block sizes advertised with NBD_INFO_BLOCK_SIZE: any alignment works,
// 4 KiB is best, and one READ or WRITE carries at most 32 MiB (the Linux
// client's largest request).
inline constexpr uint32_t kMinBlockSize = 1;
inline constexpr uint32_t kPreferredBlockSize = 4096;
inline constexpr uint32_t kMaxPayload = 32 * 1024 * 1024;

// ---- Transmission ----------------------------------------------------------

inline constexpr uint32_t kRequestMagic = 0x25609513;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698;
inline constexpr uint32_t kStructuredReplyMagic = 0x668e33ef;
inline constexpr size_t kRequestSize = 28;
inline constexpr size_t kSimpleReplySize = 16;
inline constexpr size_t kStructuredChunkHeaderSize = 20;

// Commands.
inline constexpr uint16_t kCmdRead = 0;
inline constexpr uint16_t kCmdWrite = 1;
inline constexpr uint16_t kCmdDisc = 2;
inline constexpr uint16_t kCmdFlush = 3;
inline constexpr uint16_t kCmdTrim = 4;
inline constexpr uint16_t kCmdCache = 5;
inline constexpr uint16_t kCmdWriteZeroes = 6;
inline constexpr uint16_t kCmdBlockStatus = 7;

// Command flags.
inline constexpr uint16_t kCmdFlagFua = 1 << 0;
inline constexpr uint16_t kCmdFlagNoHole = 1 << 1;
inline constexpr uint16_t kCmdFlagDf = 1 << 2;
inline constexpr uint16_t kCmdFlagReqOne = 1 << 3;
inline constexpr uint16_t kCmdFlagFastZero = 1 << 4;

// Structured reply chunk flags and types.
inline constexpr uint16_t kReplyFlagDone = 1 << 0;
inline constexpr uint16_t kReplyNone = 0;
inline constexpr uint16_t kReplyOffsetData = 1;
inline constexpr uint16_t kReplyOffsetHole = 2;
inline constexpr uint16_t kReplyBlockStatus = 5;  // the spec's value (nbd.h of old said 3)
inline constexpr uint16_t kReplyError = 0x8001;
inline constexpr uint16_t kReplyErrorOffset = 0x8002;

// Error values: fixed by the protocol, whatever the host's errno numbers.
inline constexpr uint32_t kEperm = 1;
inline constexpr uint32_t kEio = 5;
inline constexpr uint32_t kEnomem = 12;
inline constexpr uint32_t kEinval = 22;
inline constexpr uint32_t kEnospc = 28;
inline constexpr uint32_t kEoverflow = 75;
inline constexpr uint32_t kEnotsup = 95;
inline constexpr uint32_t kEshutdown = 108;

// ---- Handshake messages ----------------------------------------------------

struct OptionHeader {
  uint32_t option = 0;
  uint32_t length = 0;  // of the data that follows
};

// NBD_OPT_INFO and NBD_OPT_GO data: u32 name length, name, u16 count,
// count x u16 info type.
struct InfoRequest {
  std::string name;
  std::vector<uint16_t> infos;
};

// NBD_OPT_{LIST,SET}_META_CONTEXT data: u32 name length, name, u32 count,
// count x (u32 length, query).
struct MetaContextRequest {
  std::string name;
  std::vector<std::string> queries;
};

// Server side. The handshake's first 18 bytes.
std::string EncodeGreeting();
// Decodes the 16 bytes before every option's data. Corruption on a bad
// magic. The length is not limited here (see kMaxOptionLength).
// REQUIRES: `p` holds kOptionHeaderSize bytes.
Result<OptionHeader> ParseOptionHeader(const uint8_t* p);
Result<InfoRequest> ParseInfoRequest(std::string_view data);
Result<MetaContextRequest> ParseMetaContextRequest(std::string_view data);
// Appends one option reply: magic, option, type, u32 length, data.
void AppendOptionReply(std::string* out, uint32_t option, uint32_t type,
                       std::string_view data = {});
// Reply data of kRepServer (one export), kRepMetaContext and kRepInfo.
std::string ServerReplyData(std::string_view export_name);
std::string MetaContextReplyData(uint32_t id, std::string_view name);
std::string InfoExportData(uint64_t size, uint16_t transmission_flags);
std::string InfoNameData(std::string_view name);
std::string InfoBlockSizeData(uint32_t minimum, uint32_t preferred, uint32_t maximum);
// What NBD_OPT_EXPORT_NAME is answered with: size, flags, 124 zeroes
// unless the client negotiated NO_ZEROES.
std::string ExportNameReply(uint64_t size, uint16_t transmission_flags, bool no_zeroes);

// Client side (tests, fuzz corpus).
std::string EncodeOption(uint32_t option, std::string_view data);
std::string EncodeInfoRequest(const InfoRequest& r);
std::string EncodeMetaContextRequest(const MetaContextRequest& r);

// ---- Transmission messages -------------------------------------------------

struct Request {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t cookie = 0;  // echoed verbatim in the reply
  uint64_t offset = 0;
  uint32_t length = 0;
};

// Decodes a request header. Corruption on a bad magic; anything else
// (unknown commands, flags, ranges) is for CheckRequest.
// REQUIRES: `p` holds kRequestSize bytes.
Result<Request> ParseRequest(const uint8_t* p);
std::string EncodeRequest(const Request& r);  // client side

// What one connection negotiated about its export, as far as checking and
// answering requests needs it.
struct Transmission {
  uint64_t size = 0;
  bool writable = false;         // false: READ_ONLY was advertised
  bool structured = false;       // structured replies negotiated
  bool base_allocation = false;  // base:allocation selected (BLOCK_STATUS)
};

// The NBD error a request must be answered with instead of being run, or
// 0 when it may run. `message` says why, for the client (structured error
// chunks) and the log. DISC is not a request to check.
struct Check {
  uint32_t error = 0;
  std::string message;
};
Check CheckRequest(const Request& r, const Transmission& t);

// Replies. Simple: magic, u32 error, u64 cookie (data follows for a
// successful simple READ).
void AppendSimpleReply(std::string* out, uint32_t error, uint64_t cookie);
// Structured chunk header: magic, u16 flags, u16 type, u64 cookie, u32
// payload length.
void AppendChunkHeader(std::string* out, uint16_t flags, uint16_t type, uint64_t cookie,
                       uint32_t length);
// OFFSET_DATA header: the chunk header plus the u64 offset; `data_length`
// bytes of data must follow. REQUIRES: 0 < data_length <= 2^32 - 9.
void AppendDataChunkHeader(std::string* out, uint16_t flags, uint64_t cookie, uint64_t offset,
                           uint32_t data_length);
// OFFSET_HOLE: `length` (> 0) bytes at `offset` read as zeros.
void AppendHoleChunk(std::string* out, uint16_t flags, uint64_t cookie, uint64_t offset,
                     uint32_t length);
void AppendNoneChunk(std::string* out, uint64_t cookie);  // NONE with DONE
// ERROR with DONE: u32 error, u16 message length, message (cut to fit).
void AppendErrorChunk(std::string* out, uint64_t cookie, uint32_t error, std::string_view message);
// BLOCK_STATUS: u32 context id, then (u32 length, u32 flags) per extent.
struct BlockStatusExtent {
  uint32_t length = 0;
  uint32_t flags = 0;
};
void AppendBlockStatusChunk(std::string* out, uint16_t flags, uint64_t cookie, uint32_t context_id,
                            const std::vector<BlockStatusExtent>& extents);

// Client side decoding of replies (tests).
struct SimpleReply {
  uint32_t error = 0;
  uint64_t cookie = 0;
};
struct ChunkHeader {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t cookie = 0;
  uint32_t length = 0;
};
// REQUIRES: `p` holds kSimpleReplySize / kStructuredChunkHeaderSize bytes.
Result<SimpleReply> ParseSimpleReply(const uint8_t* p);
Result<ChunkHeader> ParseChunkHeader(const uint8_t* p);

// "READ", "WRITE", ... or "command 42", for messages.
std::string CommandName(uint16_t type);

}  // namespace hloop::nbd
