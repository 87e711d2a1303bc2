// 9P2000.L on the wire: constants, one struct per T and R message (its fields
// in wire order ARE the byte layout), and a bounds-checked decoder and encoder.
// Pure: no I/O, no threads, no allocation beyond the decoded strings.
//
// Every message is `size[4] type[1] tag[2] body`, little-endian, size counting
// itself. Strings are `len[2] bytes`, a qid is `type[1] version[4] path[8]`.
// See /work/shared/docs/formats.md section 4 and diod's protocol.md for the
// semantics; docs/design.md ("9P server") for what hloop does with them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace hloop::p9 {

inline constexpr uint32_t kHeaderSize = 7;     // size[4] type[1] tag[2]
inline constexpr uint32_t kIoHeaderSize = 24;  // P9_IOHDRSZ: iounit = msize - 24
inline constexpr uint32_t kMinMsize = 4096;    // Linux refuses less
inline constexpr uint16_t kNoTag = 0xffff;
inline constexpr uint32_t kNoFid = 0xffffffff;
inline constexpr uint32_t kNoUid = 0xffffffff;  // n_uname absent
inline constexpr size_t kMaxWalkNames = 16;     // P9_MAXWELEM
inline constexpr const char* kProtocolVersion = "9P2000.L";

// qid.type
inline constexpr uint8_t kQidDir = 0x80;
inline constexpr uint8_t kQidSymlink = 0x02;
inline constexpr uint8_t kQidFile = 0x00;

// Tlopen / Tlcreate flags (P9_DOTL_*, octal; Linux x86 values).
inline constexpr uint32_t kDotlAccMode = 03;
inline constexpr uint32_t kDotlWronly = 01;
inline constexpr uint32_t kDotlRdwr = 02;
inline constexpr uint32_t kDotlCreate = 0100;
inline constexpr uint32_t kDotlExcl = 0200;
inline constexpr uint32_t kDotlTrunc = 01000;
inline constexpr uint32_t kDotlAppend = 02000;
inline constexpr uint32_t kDotlNonblock = 04000;
inline constexpr uint32_t kDotlDsync = 010000;
inline constexpr uint32_t kDotlDirect = 040000;
inline constexpr uint32_t kDotlDirectory = 0200000;
inline constexpr uint32_t kDotlNofollow = 0400000;
inline constexpr uint32_t kDotlNoatime = 01000000;
inline constexpr uint32_t kDotlSync = 04000000;

// Tgetattr request_mask / Rgetattr valid.
inline constexpr uint64_t kGetattrBasic = 0x7ff;  // mode..blocks
inline constexpr uint64_t kGetattrBtime = 0x800;
inline constexpr uint64_t kGetattrAll = 0x3fff;

// Tsetattr valid.
inline constexpr uint32_t kSetattrMode = 0x1;
inline constexpr uint32_t kSetattrUid = 0x2;
inline constexpr uint32_t kSetattrGid = 0x4;
inline constexpr uint32_t kSetattrSize = 0x8;
inline constexpr uint32_t kSetattrAtime = 0x10;
inline constexpr uint32_t kSetattrMtime = 0x20;
inline constexpr uint32_t kSetattrCtime = 0x40;
inline constexpr uint32_t kSetattrAtimeSet = 0x80;  // use the given atime, not now
inline constexpr uint32_t kSetattrMtimeSet = 0x100;

// Tlock type and flags, Rlock status.
inline constexpr uint8_t kLockRead = 0;
inline constexpr uint8_t kLockWrite = 1;
inline constexpr uint8_t kLockUnlock = 2;
inline constexpr uint32_t kLockFlagBlock = 1;
inline constexpr uint8_t kLockSuccess = 0;
inline constexpr uint8_t kLockBlocked = 1;
inline constexpr uint8_t kLockError = 2;

// Tunlinkat flags.
inline constexpr uint32_t kAtRemoveDir = 0x200;
// Txattrcreate flags.
inline constexpr uint32_t kXattrCreate = 1;
inline constexpr uint32_t kXattrReplace = 2;

struct Qid {
  uint8_t type = 0;
  uint32_t version = 0;
  uint64_t path = 0;
  bool operator==(const Qid&) const = default;
};

// The messages. Each lists its fields once, in wire order, in Visit(); the
// encoder and the decoder both walk that list. Twalk names and Rwalk qids are
// `n[2]` + n items (n <= 16); read/write/readdir data is `count[4]` + bytes.
#define HLOOP_P9_MESSAGE(Name, id)              \
  static constexpr uint8_t kType = id;          \
  bool operator==(const Name&) const = default; \
  template <class S, class V>                   \
  static void Visit([[maybe_unused]] S& s, [[maybe_unused]] V& v)

struct Rlerror {
  HLOOP_P9_MESSAGE(Rlerror, 7) { v(s.ecode); }
  uint32_t ecode = 0;
};
struct Tstatfs {
  HLOOP_P9_MESSAGE(Tstatfs, 8) { v(s.fid); }
  uint32_t fid = 0;
};
struct Rstatfs {
  HLOOP_P9_MESSAGE(Rstatfs, 9) {
    v(s.type);
    v(s.bsize);
    v(s.blocks);
    v(s.bfree);
    v(s.bavail);
    v(s.files);
    v(s.ffree);
    v(s.fsid);
    v(s.namelen);
  }
  uint32_t type = 0, bsize = 0;
  uint64_t blocks = 0, bfree = 0, bavail = 0, files = 0, ffree = 0, fsid = 0;
  uint32_t namelen = 0;
};
struct Tlopen {
  HLOOP_P9_MESSAGE(Tlopen, 12) {
    v(s.fid);
    v(s.flags);
  }
  uint32_t fid = 0, flags = 0;
};
struct Rlopen {
  HLOOP_P9_MESSAGE(Rlopen, 13) {
    v(s.qid);
    v(s.iounit);
  }
  Qid qid;
  uint32_t iounit = 0;
};
struct Tlcreate {
  HLOOP_P9_MESSAGE(Tlcreate, 14) {
    v(s.fid);
    v(s.name);
    v(s.flags);
    v(s.mode);
    v(s.gid);
  }
  uint32_t fid = 0;
  std::string name;
  uint32_t flags = 0, mode = 0, gid = 0;
};
struct Rlcreate {
  HLOOP_P9_MESSAGE(Rlcreate, 15) {
    v(s.qid);
    v(s.iounit);
  }
  Qid qid;
  uint32_t iounit = 0;
};
struct Tsymlink {
  HLOOP_P9_MESSAGE(Tsymlink, 16) {
    v(s.fid);
    v(s.name);
    v(s.target);
    v(s.gid);
  }
  uint32_t fid = 0;
  std::string name, target;
  uint32_t gid = 0;
};
struct Rsymlink {
  HLOOP_P9_MESSAGE(Rsymlink, 17) { v(s.qid); }
  Qid qid;
};
struct Tmknod {
  HLOOP_P9_MESSAGE(Tmknod, 18) {
    v(s.dfid);
    v(s.name);
    v(s.mode);
    v(s.major);
    v(s.minor);
    v(s.gid);
  }
  uint32_t dfid = 0;
  std::string name;
  uint32_t mode = 0, major = 0, minor = 0, gid = 0;
};
struct Rmknod {
  HLOOP_P9_MESSAGE(Rmknod, 19) { v(s.qid); }
  Qid qid;
};
struct Trename {
  HLOOP_P9_MESSAGE(Trename, 20) {
    v(s.fid);
    v(s.dfid);
    v(s.name);
  }
  uint32_t fid = 0, dfid = 0;
  std::string name;
};
struct Rrename {
  HLOOP_P9_MESSAGE(Rrename, 21) {}
};
struct Treadlink {
  HLOOP_P9_MESSAGE(Treadlink, 22) { v(s.fid); }
  uint32_t fid = 0;
};
struct Rreadlink {
  HLOOP_P9_MESSAGE(Rreadlink, 23) { v(s.target); }
  std::string target;
};
struct Tgetattr {
  HLOOP_P9_MESSAGE(Tgetattr, 24) {
    v(s.fid);
    v(s.request_mask);
  }
  uint32_t fid = 0;
  uint64_t request_mask = 0;
};
struct Rgetattr {
  HLOOP_P9_MESSAGE(Rgetattr, 25) {
    v(s.valid);
    v(s.qid);
    v(s.mode);
    v(s.uid);
    v(s.gid);
    v(s.nlink);
    v(s.rdev);
    v(s.size);
    v(s.blksize);
    v(s.blocks);
    v(s.atime_sec);
    v(s.atime_nsec);
    v(s.mtime_sec);
    v(s.mtime_nsec);
    v(s.ctime_sec);
    v(s.ctime_nsec);
    v(s.btime_sec);
    v(s.btime_nsec);
    v(s.gen);
    v(s.data_version);
  }
  uint64_t valid = 0;
  Qid qid;
  uint32_t mode = 0, uid = 0, gid = 0;
  uint64_t nlink = 0, rdev = 0, size = 0, blksize = 0, blocks = 0;
  uint64_t atime_sec = 0, atime_nsec = 0, mtime_sec = 0, mtime_nsec = 0;
  uint64_t ctime_sec = 0, ctime_nsec = 0, btime_sec = 0, btime_nsec = 0;
  uint64_t gen = 0, data_version = 0;
};
struct Tsetattr {
  HLOOP_P9_MESSAGE(Tsetattr, 26) {
    v(s.fid);
    v(s.valid);
    v(s.mode);
    v(s.uid);
    v(s.gid);
    v(s.size);
    v(s.atime_sec);
    v(s.atime_nsec);
    v(s.mtime_sec);
    v(s.mtime_nsec);
  }
  uint32_t fid = 0, valid = 0, mode = 0, uid = 0, gid = 0;
  uint64_t size = 0, atime_sec = 0, atime_nsec = 0, mtime_sec = 0, mtime_nsec = 0;
};
struct Rsetattr {
  HLOOP_P9_MESSAGE(Rsetattr, 27) {}
};
struct Txattrwalk {
  HLOOP_P9_MESSAGE(Txattrwalk, 30) {
    v(s.fid);
    v(s.newfid);
    v(s.name);
  }
  uint32_t fid = 0, newfid = 0;
  std::string name;  // empty: the list of names
};
struct Rxattrwalk {
  HLOOP_P9_MESSAGE(Rxattrwalk, 31) { v(s.size); }
  uint64_t size = 0;
};
struct Txattrcreate {
  HLOOP_P9_MESSAGE(Txattrcreate, 32) {
    v(s.fid);
    v(s.name);
    v(s.attr_size);
    v(s.flags);
  }
  uint32_t fid = 0;
  std::string name;
  uint64_t attr_size = 0;
  uint32_t flags = 0;
};
struct Rxattrcreate {
  HLOOP_P9_MESSAGE(Rxattrcreate, 33) {}
};
struct Treaddir {
  HLOOP_P9_MESSAGE(Treaddir, 40) {
    v(s.fid);
    v(s.offset);
    v(s.count);
  }
  uint32_t fid = 0;
  uint64_t offset = 0;
  uint32_t count = 0;
};
struct Rreaddir {
  HLOOP_P9_MESSAGE(Rreaddir, 41) { v.Data(s.data); }
  std::string data;
};
struct Tfsync {
  HLOOP_P9_MESSAGE(Tfsync, 50) {
    v(s.fid);
    v(s.datasync);
  }
  uint32_t fid = 0, datasync = 0;
};
struct Rfsync {
  HLOOP_P9_MESSAGE(Rfsync, 51) {}
};
struct Tlock {
  HLOOP_P9_MESSAGE(Tlock, 52) {
    v(s.fid);
    v(s.type);
    v(s.flags);
    v(s.start);
    v(s.length);
    v(s.proc_id);
    v(s.client_id);
  }
  uint32_t fid = 0;
  uint8_t type = 0;
  uint32_t flags = 0;
  uint64_t start = 0, length = 0;  // length 0: to the end of the file
  uint32_t proc_id = 0;
  std::string client_id;
};
struct Rlock {
  HLOOP_P9_MESSAGE(Rlock, 53) { v(s.status); }
  uint8_t status = 0;
};
struct Tgetlock {
  HLOOP_P9_MESSAGE(Tgetlock, 54) {
    v(s.fid);
    v(s.type);
    v(s.start);
    v(s.length);
    v(s.proc_id);
    v(s.client_id);
  }
  uint32_t fid = 0;
  uint8_t type = 0;
  uint64_t start = 0, length = 0;
  uint32_t proc_id = 0;
  std::string client_id;
};
struct Rgetlock {
  HLOOP_P9_MESSAGE(Rgetlock, 55) {
    v(s.type);
    v(s.start);
    v(s.length);
    v(s.proc_id);
    v(s.client_id);
  }
  uint8_t type = 0;
  uint64_t start = 0, length = 0;
  uint32_t proc_id = 0;
  std::string client_id;
};
struct Tlink {
  HLOOP_P9_MESSAGE(Tlink, 70) {
    v(s.dfid);
    v(s.fid);
    v(s.name);
  }
  uint32_t dfid = 0, fid = 0;
  std::string name;
};
struct Rlink {
  HLOOP_P9_MESSAGE(Rlink, 71) {}
};
struct Tmkdir {
  HLOOP_P9_MESSAGE(Tmkdir, 72) {
    v(s.dfid);
    v(s.name);
    v(s.mode);
    v(s.gid);
  }
  uint32_t dfid = 0;
  std::string name;
  uint32_t mode = 0, gid = 0;
};
struct Rmkdir {
  HLOOP_P9_MESSAGE(Rmkdir, 73) { v(s.qid); }
  Qid qid;
};
struct Trenameat {
  HLOOP_P9_MESSAGE(Trenameat, 74) {
    v(s.olddirfid);
    v(s.oldname);
    v(s.newdirfid);
    v(s.newname);
  }
  uint32_t olddirfid = 0;
  std::string oldname;
  uint32_t newdirfid = 0;
  std::string newname;
};
struct Rrenameat {
  HLOOP_P9_MESSAGE(Rrenameat, 75) {}
};
struct Tunlinkat {
  HLOOP_P9_MESSAGE(Tunlinkat, 76) {
    v(s.dirfid);
    v(s.name);
    v(s.flags);
  }
  uint32_t dirfid = 0;
  std::string name;
  uint32_t flags = 0;
};
struct Runlinkat {
  HLOOP_P9_MESSAGE(Runlinkat, 77) {}
};
struct Tversion {
  HLOOP_P9_MESSAGE(Tversion, 100) {
    v(s.msize);
    v(s.version);
  }
  uint32_t msize = 0;
  std::string version;
};
struct Rversion {
  HLOOP_P9_MESSAGE(Rversion, 101) {
    v(s.msize);
    v(s.version);
  }
  uint32_t msize = 0;
  std::string version;
};
struct Tauth {
  HLOOP_P9_MESSAGE(Tauth, 102) {
    v(s.afid);
    v(s.uname);
    v(s.aname);
    v(s.n_uname);
  }
  uint32_t afid = 0;
  std::string uname, aname;
  uint32_t n_uname = kNoUid;
};
struct Rauth {
  HLOOP_P9_MESSAGE(Rauth, 103) { v(s.aqid); }
  Qid aqid;
};
struct Tattach {
  HLOOP_P9_MESSAGE(Tattach, 104) {
    v(s.fid);
    v(s.afid);
    v(s.uname);
    v(s.aname);
    v(s.n_uname);
  }
  uint32_t fid = 0, afid = kNoFid;
  std::string uname, aname;
  uint32_t n_uname = kNoUid;
};
struct Rattach {
  HLOOP_P9_MESSAGE(Rattach, 105) { v(s.qid); }
  Qid qid;
};
struct Tflush {
  HLOOP_P9_MESSAGE(Tflush, 108) { v(s.oldtag); }
  uint16_t oldtag = 0;
};
struct Rflush {
  HLOOP_P9_MESSAGE(Rflush, 109) {}
};
struct Twalk {
  HLOOP_P9_MESSAGE(Twalk, 110) {
    v(s.fid);
    v(s.newfid);
    v(s.names);
  }
  uint32_t fid = 0, newfid = 0;
  std::vector<std::string> names;
};
struct Rwalk {
  HLOOP_P9_MESSAGE(Rwalk, 111) { v(s.qids); }
  std::vector<Qid> qids;
};
struct Tread {
  HLOOP_P9_MESSAGE(Tread, 116) {
    v(s.fid);
    v(s.offset);
    v(s.count);
  }
  uint32_t fid = 0;
  uint64_t offset = 0;
  uint32_t count = 0;
};
struct Rread {
  HLOOP_P9_MESSAGE(Rread, 117) { v.Data(s.data); }
  std::string data;
};
struct Twrite {
  HLOOP_P9_MESSAGE(Twrite, 118) {
    v(s.fid);
    v(s.offset);
    v.Data(s.data);
  }
  uint32_t fid = 0;
  uint64_t offset = 0;
  std::string data;
};
struct Rwrite {
  HLOOP_P9_MESSAGE(Rwrite, 119) { v(s.count); }
  uint32_t count = 0;
};
struct Tclunk {
  HLOOP_P9_MESSAGE(Tclunk, 120) { v(s.fid); }
  uint32_t fid = 0;
};
struct Rclunk {
  HLOOP_P9_MESSAGE(Rclunk, 121) {}
};
struct Tremove {
  HLOOP_P9_MESSAGE(Tremove, 122) { v(s.fid); }
  uint32_t fid = 0;
};
struct Rremove {
  HLOOP_P9_MESSAGE(Rremove, 123) {}
};

#undef HLOOP_P9_MESSAGE

using Body =
    std::variant<Rlerror, Tstatfs, Rstatfs, Tlopen, Rlopen, Tlcreate, Rlcreate, Tsymlink, Rsymlink,
                 Tmknod, Rmknod, Trename, Rrename, Treadlink, Rreadlink, Tgetattr, Rgetattr,
                 Tsetattr, Rsetattr, Txattrwalk, Rxattrwalk, Txattrcreate, Rxattrcreate, Treaddir,
                 Rreaddir, Tfsync, Rfsync, Tlock, Rlock, Tgetlock, Rgetlock, Tlink, Rlink, Tmkdir,
                 Rmkdir, Trenameat, Rrenameat, Tunlinkat, Runlinkat, Tversion, Rversion, Tauth,
                 Rauth, Tattach, Rattach, Tflush, Rflush, Twalk, Rwalk, Tread, Rread, Twrite,
                 Rwrite, Tclunk, Rclunk, Tremove, Rremove>;

struct Message {
  uint16_t tag = 0;
  Body body;
  uint8_t type() const;
  bool operator==(const Message&) const = default;
};

// Why a frame did not decode.
enum class DecodeError {
  kNone = 0,
  kShort,        // fewer than 7 bytes, or the size field disagrees with the frame
  kUnknownType,  // a type this server does not speak (legacy 9P2000 ones included)
  kMalformed,    // a field runs past the end, too many walk names, or bytes left over
};

// The fixed header of a frame. REQUIRES: frame.size() >= kHeaderSize.
struct Header {
  uint32_t size;
  uint8_t type;
  uint16_t tag;
};
Header PeekHeader(std::string_view frame);

// Decodes one whole frame (size field included). Never reads outside `frame`.
// On failure `*out` is unspecified except that out->tag is set when the frame
// had a header (so an Rlerror can answer it).
DecodeError Decode(std::string_view frame, Message* out);

// Encodes a message as a whole frame. False (and *out unspecified) only if a
// field cannot be represented: a string longer than 65535 bytes, more than 16
// walk names or qids, data or a frame longer than 4 GiB.
bool Encode(const Message& m, std::string* out);

// The name of a message type ("Twalk"), or "type N".
std::string TypeName(uint8_t type);

// Rreaddir data: packed entries `qid[13] offset[8] type[1] name[s]`.
struct Dirent {
  Qid qid;
  uint64_t offset = 0;  // cookie for the position after this entry
  uint8_t type = 0;     // DT_* value
  std::string name;
  bool operator==(const Dirent&) const = default;
};
inline constexpr size_t DirentSize(size_t name_len) { return 13 + 8 + 1 + 2 + name_len; }
// REQUIRES: d.name.size() <= 65535.
void AppendDirent(const Dirent& d, std::string* out);
// False if `data` is not a whole number of well-formed entries.
bool ParseDirents(std::string_view data, std::vector<Dirent>* out);

}  // namespace hloop::p9
