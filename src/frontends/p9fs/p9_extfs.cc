#include "frontends/p9fs/p9_extfs.h"

#include <dirent.h>
#include <ext2fs/ext2fs.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "frontends/p9fs/p9_extfs_io.h"
#include "util/log.h"
#include "util/mutex.h"
#include "util/no_throw.h"
#include "util/status_errno.h"

// error_message(): the header has no C++ guards (ext2fs.h includes it inside
// its own extern "C", so this only matters when it comes first).
extern "C" {
#include <et/com_err.h>
}

namespace hloop::p9 {

namespace {

constexpr uint32_t kExtMagic = 0xEF53;   // statfs f_type of ext2, ext3 and ext4
constexpr size_t kMaxXattrSize = 65536;  // XATTR_SIZE_MAX
constexpr size_t kMaxXattrName = 255;    // XATTR_NAME_MAX
// Where ext4 keeps inline data: an xattr that Linux never lists or returns.
constexpr const char* kInlineDataXattr = "system.data";

// An inode as read from the image. It never changes (the image does not), so
// nodes share it and read it without a lock.
struct Inode {
  ext2_ino_t ino = 0;
  ext2_inode_large raw{};

  uint16_t mode() const { return raw.i_mode; }
  uint64_t size() const { return EXT2_I_SIZE(&raw); }
  bool is_dir() const { return S_ISDIR(raw.i_mode); }
  bool has(uint32_t flag) const { return (raw.i_flags & flag) != 0; }
  // libext2fs takes a mutable `ext2_inode*` even to read; a large inode
  // starts with one. Pass a copy so nothing shared is ever written.
  ext2_inode* base() { return reinterpret_cast<ext2_inode*>(&raw); }
};
using InodeRef = std::shared_ptr<const Inode>;

// Whether a large-inode field is present: inodes of 128 bytes have none, and
// larger ones only up to i_extra_isize.
#define HLOOP_HAS_EXTRA(inode, field) \
  inode_includes(EXT2_GOOD_OLD_INODE_SIZE + size_t((inode).raw.i_extra_isize), field)

uint8_t QidType(uint16_t mode) {
  if (S_ISDIR(mode)) return kQidDir;
  if (S_ISLNK(mode)) return kQidSymlink;
  return kQidFile;
}

// qid.version is 0: a file never changes while it is served, so there is no
// version to tell apart (Rgetattr.gen carries i_generation).
Qid QidOf(ext2_ino_t ino, uint16_t mode) { return {QidType(mode), 0, uint64_t(ino)}; }

uint8_t DirentType(int ext2_type) {
  switch (ext2_type) {
    case EXT2_FT_REG_FILE: return DT_REG;
    case EXT2_FT_DIR: return DT_DIR;
    case EXT2_FT_CHRDEV: return DT_CHR;
    case EXT2_FT_BLKDEV: return DT_BLK;
    case EXT2_FT_FIFO: return DT_FIFO;
    case EXT2_FT_SOCK: return DT_SOCK;
    case EXT2_FT_SYMLINK: return DT_LNK;
    default: return DT_UNKNOWN;
  }
}

// ext4 keeps seconds as a signed 32-bit number; in large inodes an "extra"
// word adds two epoch bits above them (dates up to 2446) and nanoseconds.
void DecodeTime(uint32_t seconds, bool has_extra, uint32_t extra, uint64_t* sec, uint64_t* nsec) {
  int64_t s = int32_t(seconds);
  *nsec = 0;
  if (has_extra) {
    s += int64_t(extra & EXT4_EPOCH_MASK) << 32;
    *nsec = std::min<uint64_t>(extra >> EXT4_EPOCH_BITS, 999999999);
  }
  *sec = uint64_t(s);
}

// A device number: the old encoding (major and minor below 256) in
// i_block[0], else Linux's new one in i_block[1].
uint64_t DeviceNumber(const ext2_inode_large& r) {
  if (uint32_t d = r.i_block[0]) return makedev((d >> 8) & 0xff, d & 0xff);
  uint32_t d = r.i_block[1];
  return makedev((d & 0xfff00) >> 8, (d & 0xff) | ((d >> 12) & 0xfff00));
}

// A name the client asks to look up: one component.
int CheckName(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name.find('\0') != std::string::npos)
    return EINVAL;
  if (name.size() > EXT2_NAME_LEN) return ENAMETOOLONG;
  return 0;
}

bool Changes(uint32_t flags) { return (flags & kDotlAccMode) != 0 || (flags & kDotlTrunc) != 0; }

// libext2fs's errcodes are errno values (from the I/O channel) or its own.
int ErrnoOf(errcode_t err) {
  if (err > 0 && err < 4096) return int(err);
  switch (err) {
    case EXT2_ET_FILE_NOT_FOUND: return ENOENT;
    case EXT2_ET_NO_DIRECTORY: return ENOTDIR;
    case EXT2_ET_EA_KEY_NOT_FOUND: return ENODATA;
    case EXT2_ET_NO_MEMORY: return ENOMEM;
    case EXT2_ET_RO_FILSYS: return EROFS;
    default: return EIO;  // corrupt metadata, a bad checksum, a short read
  }
}

// A run of logical blocks [lblk, lblk + count): at physical block pblk on,
// or zeros (a hole or an unwritten extent).
struct Run {
  uint64_t lblk = 0, count = 0, pblk = 0;
  bool zero = false;
};
using ExtentMap = std::vector<Run>;  // sorted by lblk, not overlapping

// Adds one block to `runs`, extending the last run when it continues it.
void AppendBlock(std::vector<Run>* runs, uint64_t lblk, uint64_t pblk, bool zero) {
  if (!runs->empty()) {
    Run& last = runs->back();
    if (last.zero == zero && (zero || last.pblk + last.count == pblk)) {
      last.count++;
      return;
    }
  }
  runs->push_back({lblk, 1, zero ? 0 : pblk, zero});
}

// The runs covering blocks [first, first + count) of an extent-mapped file;
// what no extent covers reads as zeros.
void MapFromExtents(const ExtentMap& map, uint64_t first, uint64_t count, std::vector<Run>* runs) {
  uint64_t pos = first;
  const uint64_t end = first + count;
  auto it = std::partition_point(map.begin(), map.end(),
                                 [&](const Run& r) { return r.lblk + r.count <= pos; });
  while (pos < end) {
    if (it == map.end() || it->lblk >= end) {
      runs->push_back({pos, end - pos, 0, true});
      break;
    }
    if (it->lblk > pos) {
      runs->push_back({pos, it->lblk - pos, 0, true});
      pos = it->lblk;
    }
    uint64_t n = std::min(end, it->lblk + it->count) - pos;
    runs->push_back({pos, n, it->zero ? 0 : it->pblk + (pos - it->lblk), it->zero});
    pos += n;
    ++it;
  }
}

std::string LibraryVersion() {
  const char* version = "?";
  ext2fs_get_library_version(&version, nullptr);
  return version;
}

// Collects directory entries up to a byte budget (their packed size).
struct DirentSink {
  uint32_t budget;
  std::vector<Dirent>* out;
  size_t used = 0;
  bool full = false;  // an entry did not fit: stop
  bool Add(Dirent e) {
    size_t n = DirentSize(e.name.size());
    if (full || used + n > budget) {
      full = true;
      return false;
    }
    used += n;
    out->push_back(std::move(e));
    return true;
  }
};

}  // namespace

struct ExtFs::Shared {
  std::string name;  // the image's URL, for messages
  std::shared_ptr<BlockDevice> device;
  // Fixed once open: read without the mutex.
  uint64_t device_size = 0;
  uint64_t block_size = 0;
  uint64_t blocks = 0;        // in the file system
  bool has_filetype = false;  // directory entries carry the file type
  InodeRef root;

  // Held around every libext2fs call on `fs` (libext2fs is not thread-safe).
  Mutex mu;
  ext2_filsys fs GUARDED_BY(mu) = nullptr;

  ~Shared() {
    if (fs) ext2fs_close_free(&fs);  // read-only: writes nothing
  }

  // Logs what the client will only see as an errno.
  int Failed(ext2_ino_t ino, const std::string& what, errcode_t err) {
    LogWarn(name + ": inode " + std::to_string(ino) + ": " + what + ": " + error_message(err));
    return ErrnoOf(err);
  }
  int Corrupt(ext2_ino_t ino, const std::string& what) {
    LogWarn(name + ": inode " + std::to_string(ino) + ": " + what + " (corrupt file system?)");
    return EIO;
  }

  int ReadInode(ext2_ino_t ino, InodeRef* out) REQUIRES(mu) {
    auto inode = std::make_shared<Inode>();
    inode->ino = ino;
    // Copies only the on-disk inode size: the large fields of a 128-byte
    // inode stay zero, i_extra_isize included.
    errcode_t err = ext2fs_read_inode_full(fs, ino, inode->base(), sizeof inode->raw);
    if (err) return Failed(ino, "reading the inode", err);
    if (inode->raw.i_mode == 0 || inode->raw.i_links_count == 0)
      return Corrupt(ino, "a name leads to a free inode");
    *out = std::move(inode);
    return 0;
  }

  // The whole inline data of `inode` (ext4 inline_data: up to 60 bytes in
  // i_block, the rest in the system.data xattr).
  int InlineData(Inode inode, std::string* out) REQUIRES(mu) {
    size_t size = 0;
    errcode_t err = ext2fs_inline_data_size(fs, inode.ino, &size);
    if (!err) {
      out->assign(std::max<size_t>(size, EXT4_MIN_INLINE_DATA_SIZE), '\0');
      err = ext2fs_inline_data_get(fs, inode.ino, inode.base(), out->data(), &size);
    }
    if (err) return Failed(inode.ino, "inline data", err);
    out->resize(size);
    return 0;
  }
};

namespace {

using Shared = ExtFs::Shared;

class ExtNode : public Node {
 public:
  ExtNode(std::shared_ptr<Shared> fs, InodeRef inode)
      : fs_(std::move(fs)), inode_(std::move(inode)) {}
  // An xattr reader (Txattrwalk) holding `value`.
  ExtNode(std::shared_ptr<Shared> fs, InodeRef inode, std::string value)
      : fs_(std::move(fs)),
        inode_(std::move(inode)),
        xattr_reader_(true),
        xattr_value_(std::move(value)) {}

  Qid qid() override { return QidOf(inode_->ino, inode_->mode()); }

  int Walk(const std::string& name, std::shared_ptr<Node>* out) override {
    if (!inode_->is_dir()) return ENOTDIR;
    if (name == "." || (name == ".." && inode_->ino == EXT2_ROOT_INO)) {  // nothing above the root
      *out = Clone();
      return 0;
    }
    if (int e = CheckName(name)) return e;
    MutexLock lock(&fs_->mu);
    ext2_ino_t child = 0;
    errcode_t err =
        ext2fs_lookup(fs_->fs, inode_->ino, name.data(), int(name.size()), nullptr, &child);
    if (err == EXT2_ET_FILE_NOT_FOUND) return ENOENT;
    if (err) return fs_->Failed(inode_->ino, "looking up a name", err);
    InodeRef found;
    if (int e = fs_->ReadInode(child, &found)) return e;
    *out = std::make_shared<ExtNode>(fs_, std::move(found));
    return 0;
  }

  std::shared_ptr<Node> Clone() override { return std::make_shared<ExtNode>(fs_, inode_); }

  int Open(uint32_t flags) override {
    MutexLock lock(&mu_);
    if (open_ || xattr_reader_) return EINVAL;
    if (Changes(flags)) return EROFS;
    const uint16_t mode = inode_->mode();
    if (S_ISLNK(mode)) return ELOOP;
    if (!S_ISDIR(mode) && !S_ISREG(mode)) return EOPNOTSUPP;  // devices, FIFOs, sockets
    if (!S_ISDIR(mode) && (flags & kDotlDirectory)) return ENOTDIR;
    if (inode_->has(EXT4_ENCRYPT_FL)) return EOPNOTSUPP;
    open_ = true;
    return 0;
  }

  int Read(uint64_t offset, uint32_t count, std::string* data) override {
    if (xattr_reader_) {
      *data =
          offset < xattr_value_.size() ? xattr_value_.substr(size_t(offset), count) : std::string();
      return 0;
    }
    if (!opened()) return EBADF;
    if (inode_->is_dir()) return EISDIR;
    const uint64_t size = inode_->size();
    if (offset >= size || count == 0) {
      data->clear();
      return 0;
    }
    const size_t len = size_t(std::min<uint64_t>(count, size - offset));
    if (inode_->has(EXT4_INLINE_DATA_FL)) return ReadInline(offset, len, data);
    return ReadBlocks(offset, len, data);
  }

  int ReadDir(uint64_t offset, uint32_t budget, std::vector<Dirent>* out) override {
    if (!opened()) return EBADF;
    if (!inode_->is_dir()) return ENOTDIR;
    DirentSink sink{budget, out};
    int e = inode_->has(EXT4_INLINE_DATA_FL) ? ReadDirInline(offset, &sink)
                                             : ReadDirBlocks(offset, &sink);
    if (e) return e;
    return sink.full && out->empty() ? EINVAL : 0;  // not even one entry fits
  }

  int GetAttr(Rgetattr* a) override {
    const Inode& i = *inode_;
    const ext2_inode_large& r = i.raw;
    a->valid = kGetattrBasic;
    a->qid = qid();
    a->mode = r.i_mode;
    a->uid = inode_uid(r);
    a->gid = inode_gid(r);
    a->nlink = r.i_links_count;
    a->rdev = S_ISCHR(r.i_mode) || S_ISBLK(r.i_mode) ? DeviceNumber(r) : 0;
    a->size = i.size();
    a->blksize = fs_->block_size;
    {
      Inode copy = i;
      MutexLock lock(&fs_->mu);
      a->blocks = ext2fs_get_stat_i_blocks(fs_->fs, copy.base());  // 512-byte units
    }
    DecodeTime(r.i_atime, HLOOP_HAS_EXTRA(i, i_atime_extra), r.i_atime_extra, &a->atime_sec,
               &a->atime_nsec);
    DecodeTime(r.i_mtime, HLOOP_HAS_EXTRA(i, i_mtime_extra), r.i_mtime_extra, &a->mtime_sec,
               &a->mtime_nsec);
    DecodeTime(r.i_ctime, HLOOP_HAS_EXTRA(i, i_ctime_extra), r.i_ctime_extra, &a->ctime_sec,
               &a->ctime_nsec);
    if (HLOOP_HAS_EXTRA(i, i_crtime)) {
      DecodeTime(r.i_crtime, HLOOP_HAS_EXTRA(i, i_crtime_extra), r.i_crtime_extra, &a->btime_sec,
                 &a->btime_nsec);
      a->valid |= kGetattrBtime;
    }
    a->gen = r.i_generation;
    return 0;
  }

  int StatFs(Rstatfs* out) override {
    MutexLock lock(&fs_->mu);
    ext2_super_block* sb = fs_->fs->super;
    out->type = kExtMagic;
    out->bsize = uint32_t(fs_->block_size);
    out->blocks = ext2fs_blocks_count(sb);
    out->bfree = ext2fs_free_blocks_count(sb);
    uint64_t reserved = ext2fs_r_blocks_count(sb);
    out->bavail = out->bfree > reserved ? out->bfree - reserved : 0;
    out->files = sb->s_inodes_count;
    out->ffree = sb->s_free_inodes_count;
    // As Linux's ext4_statfs: the two halves of the UUID XORed.
    uint64_t half[2];
    std::memcpy(half, sb->s_uuid, sizeof half);
    out->fsid = half[0] ^ half[1];
    out->namelen = EXT2_NAME_LEN;
    return 0;
  }

  int ReadLink(std::string* target) override {
    if (!S_ISLNK(inode_->mode())) return EINVAL;
    const uint64_t size = inode_->size();
    if (size == 0 || size >= PATH_MAX)
      return fs_->Corrupt(inode_->ino, "symbolic link of " + std::to_string(size) + " bytes");
    if (inode_->has(EXT4_INLINE_DATA_FL)) return ReadInline(0, size_t(size), target);
    Inode copy = *inode_;
    if (ext2fs_is_fast_symlink(copy.base())) {  // the target is in i_block itself
      target->assign(reinterpret_cast<const char*>(inode_->raw.i_block), size_t(size));
      return 0;
    }
    return ReadBlocks(0, size_t(size), target);  // a slow link keeps it in a data block
  }

  int XattrWalk(const std::string& name, std::shared_ptr<Node>* out, uint64_t* size) override {
    if (name.find('\0') != std::string::npos) return EINVAL;
    if (name.size() > kMaxXattrName) return ERANGE;
    std::string value;
    if (int e = XattrValue(name, &value)) return e;
    if (value.size() > kMaxXattrSize) return E2BIG;
    *size = value.size();
    *out = std::make_shared<ExtNode>(fs_, inode_, std::move(value));
    return 0;
  }

  // Nothing is ever open for writing, so no write lock can be taken (EBADF,
  // as fcntl answers for a descriptor opened read-only) and a read lock can
  // never conflict: read locks are granted without being recorded, and
  // Tgetlock always finds the range free.
  int Lock(const Tlock& r, uint8_t* status) override {
    if (!opened()) return EBADF;
    switch (r.type) {
      case kLockRead:
      case kLockUnlock: *status = kLockSuccess; return 0;
      case kLockWrite: return EBADF;
      default: return EINVAL;
    }
  }
  int GetLock(const Tgetlock& r, Rgetlock* out) override {
    if (!opened()) return EBADF;
    if (r.type != kLockRead && r.type != kLockWrite && r.type != kLockUnlock) return EINVAL;
    out->type = kLockUnlock;
    out->start = r.start;
    out->length = r.length;
    out->proc_id = r.proc_id;
    out->client_id = r.client_id;
    return 0;
  }

  int Fsync(bool) override { return opened() ? 0 : EBADF; }
  int Clunk() override { return 0; }

  // Every change: the file system is read-only.
  int Create(const std::string&, uint32_t, uint32_t, uint32_t, Qid*) override { return EROFS; }
  int Write(uint64_t, const std::string&, uint32_t*) override { return EROFS; }
  int SetAttr(const Tsetattr&) override { return EROFS; }
  int Mkdir(const std::string&, uint32_t, uint32_t, Qid*) override { return EROFS; }
  int Symlink(const std::string&, const std::string&, uint32_t, Qid*) override { return EROFS; }
  int Mknod(const std::string&, uint32_t, uint32_t, uint32_t, uint32_t, Qid*) override {
    return EROFS;
  }
  int Link(Node&, const std::string&) override { return EROFS; }
  int Rename(Node&, const std::string&) override { return EROFS; }
  int RenameAt(const std::string&, Node&, const std::string&) override { return EROFS; }
  int UnlinkAt(const std::string&, uint32_t) override { return EROFS; }
  int Remove() override { return EROFS; }
  int XattrCreate(const std::string&, uint64_t, uint32_t) override { return EROFS; }

 private:
  bool opened() {
    MutexLock lock(&mu_);
    return open_;
  }

  // --- File data: map under the lock, read without it.

  // [offset, offset + len) of a file (or a slow symlink) stored in blocks.
  int ReadBlocks(uint64_t offset, size_t len, std::string* data) {
    const uint64_t bs = fs_->block_size;
    std::vector<Run> runs;
    if (int e = MapBlocks(offset / bs, (offset + len - 1) / bs - offset / bs + 1, &runs)) return e;
    // The runs cover whole blocks; cut them to the bytes asked for.
    struct Piece {
      uint64_t at;  // byte on the device; unused for zeros
      size_t len;
      bool zero;
    };
    std::vector<Piece> pieces;
    for (const Run& r : runs) {
      uint64_t start = std::max(offset, r.lblk * bs),
               end = std::min(offset + len, (r.lblk + r.count) * bs);
      if (start >= end) continue;
      Piece p{0, size_t(end - start), r.zero};
      if (!r.zero) {
        if (r.pblk >= fs_->device_size / bs)
          return fs_->Corrupt(inode_->ino, "data block beyond the image");
        p.at = r.pblk * bs + (start - r.lblk * bs);
        if (p.len > fs_->device_size - p.at)
          return fs_->Corrupt(inode_->ino, "data block beyond the image");
      }
      pieces.push_back(p);
    }
    // A fragmented range: let the device fetch the later pieces while this
    // thread reads the first.
    bool first = true;
    for (const Piece& p : pieces) {
      if (p.zero) continue;
      if (!first) fs_->device->Prefetch(p.at, p.len);
      first = false;
    }
    data->assign(len, '\0');
    size_t pos = 0;
    for (const Piece& p : pieces) {
      if (!p.zero) {
        Status st = fs_->device->Read(p.at, p.len, data->data() + pos);
        if (!st.ok()) {
          LogWarn(fs_->name + ": inode " + std::to_string(inode_->ino) + ": " + st.ToString());
          return ErrnoFromStatus(st);
        }
      }
      pos += p.len;
    }
    return 0;
  }

  // The runs covering logical blocks [first, first + count).
  int MapBlocks(uint64_t first, uint64_t count, std::vector<Run>* runs) {
    if (inode_->has(EXT4_EXTENTS_FL)) {
      std::shared_ptr<const ExtentMap> map;
      if (int e = Extents(&map)) return e;
      MapFromExtents(*map, first, count, runs);
      return 0;
    }
    // Block-mapped (ext2, ext3): one ext2fs_bmap2 per block. The indirect
    // blocks it reads come from the device's memory cache after the first.
    Inode copy = *inode_;
    std::vector<char> scratch(3 * fs_->block_size);
    MutexLock lock(&fs_->mu);
    for (uint64_t b = first; b < first + count; b++) {
      blk64_t pblk = 0;
      int flags = 0;
      errcode_t err =
          ext2fs_bmap2(fs_->fs, copy.ino, copy.base(), scratch.data(), 0, b, &flags, &pblk);
      if (err) return fs_->Failed(copy.ino, "mapping block " + std::to_string(b), err);
      AppendBlock(runs, b, pblk, pblk == 0 || (flags & BMAP_RET_UNINIT));
    }
    return 0;
  }

  // The extent map of this file, loaded at the first read through this node:
  // an extent covers up to 32768 blocks, so even large files have few, and
  // later reads map blocks without the lock.
  int Extents(std::shared_ptr<const ExtentMap>* out) {
    {
      MutexLock lock(&mu_);
      if (extents_) {
        *out = extents_;
        return 0;
      }
    }
    auto map = std::make_shared<ExtentMap>();
    {
      Inode copy = *inode_;
      MutexLock lock(&fs_->mu);
      ext2_extent_handle_t h = nullptr;
      errcode_t err = ext2fs_extent_open2(fs_->fs, copy.ino, copy.base(), &h);
      if (err) return fs_->Failed(copy.ino, "opening the extent tree", err);
      ext2fs_extent ext{};
      // EXT2_EXTENT_NEXT walks the whole tree depth first, index nodes
      // included, each of them twice (going down, and back up).
      err = ext2fs_extent_get(h, EXT2_EXTENT_ROOT, &ext);
      while (!err) {
        if ((ext.e_flags & EXT2_EXTENT_FLAGS_LEAF) &&
            !(ext.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT) && ext.e_len)
          map->push_back(
              {ext.e_lblk, ext.e_len, ext.e_pblk, (ext.e_flags & EXT2_EXTENT_FLAGS_UNINIT) != 0});
        err = ext2fs_extent_get(h, EXT2_EXTENT_NEXT, &ext);
      }
      ext2fs_extent_free(h);
      if (err != EXT2_ET_EXTENT_NO_NEXT)
        return fs_->Failed(copy.ino, "reading the extent tree", err);
    }
    // A valid tree lists its leaves in logical order; refuse overlaps rather
    // than serve the wrong bytes.
    for (size_t k = 1; k < map->size(); k++)
      if ((*map)[k].lblk < (*map)[k - 1].lblk + (*map)[k - 1].count)
        return fs_->Corrupt(inode_->ino, "extents out of order");
    MutexLock lock(&mu_);
    if (!extents_) extents_ = std::move(map);
    *out = extents_;
    return 0;
  }

  // [offset, offset + len) of an inline-data file or symlink; bytes the
  // inline data does not hold (up to i_size) read as zeros.
  int ReadInline(uint64_t offset, size_t len, std::string* data) {
    std::string all;
    {
      MutexLock lock(&fs_->mu);
      if (int e = fs_->InlineData(*inode_, &all)) return e;
    }
    data->assign(len, '\0');
    if (offset < all.size())
      all.copy(data->data(), std::min<size_t>(len, all.size() - size_t(offset)), size_t(offset));
    return 0;
  }

  // --- Directories.
  //
  // Cookies: an entry's Rreaddir offset is the byte position in the
  // directory of the entry after it (block * block size + position in the
  // block + rec_len). Positions never change (the image does not), so a
  // cookie stays valid for ever and across fids. Reading from a cookie
  // parses its block from the start and skips the entries before the cookie,
  // so a cookie that is no entry boundary (a hostile client) just resumes at
  // the next entry. Index blocks of hashed (htree) directories look like
  // empty entries and are skipped.

  int ReadDirBlocks(uint64_t from, DirentSink* sink) {
    const uint64_t bs = fs_->block_size;
    const uint64_t blocks = (inode_->size() + bs - 1) / bs;
    if (blocks > fs_->blocks)
      return fs_->Corrupt(inode_->ino, "directory larger than the file system");
    std::vector<char> block(bs), scratch(3 * bs);
    for (uint64_t lblk = from / bs; lblk < blocks && !sink->full; lblk++) {
      Inode copy = *inode_;
      MutexLock lock(&fs_->mu);
      blk64_t pblk = 0;
      int flags = 0;
      errcode_t err =
          ext2fs_bmap2(fs_->fs, copy.ino, copy.base(), scratch.data(), 0, lblk, &flags, &pblk);
      if (err) return fs_->Failed(copy.ino, "mapping directory block " + std::to_string(lblk), err);
      if (pblk == 0) continue;  // a hole: no entries there
      // Checks the block's checksum (metadata_csum) too.
      err = ext2fs_read_dir_block4(fs_->fs, pblk, block.data(), 0, copy.ino);
      if (err) return fs_->Failed(copy.ino, "reading directory block " + std::to_string(lblk), err);
      if (int e = ParseEntries(block.data(), bs, lblk * bs, from, sink)) return e;
    }
    return 0;
  }

  // An inline-data directory: the parent's inode number (4 bytes) and
  // entries in i_block, more entries in the system.data xattr. "." and ".."
  // are not stored: they get cookies 1 and 4, below every entry's position.
  int ReadDirInline(uint64_t from, DirentSink* sink) {
    MutexLock lock(&fs_->mu);
    std::string all;
    if (int e = fs_->InlineData(*inode_, &all)) return e;
    if (all.size() < EXT4_MIN_INLINE_DATA_SIZE)
      return fs_->Corrupt(inode_->ino, "short inline directory");
    uint32_t parent;
    std::memcpy(&parent, all.data(), sizeof parent);
    if (inode_->ino == EXT2_ROOT_INO) parent = EXT2_ROOT_INO;
    if (from < 1 && !sink->Add({qid(), 1, DT_DIR, "."})) return 0;
    if (from < 4 && !sink->Add({QidOf(parent, S_IFDIR), 4, DT_DIR, ".."})) return 0;
    if (int e = ParseEntries(all.data() + 4, EXT4_MIN_INLINE_DATA_SIZE - 4, 4, from, sink))
      return e;
    return ParseEntries(all.data() + EXT4_MIN_INLINE_DATA_SIZE,
                        all.size() - EXT4_MIN_INLINE_DATA_SIZE, EXT4_MIN_INLINE_DATA_SIZE, from,
                        sink);
  }

  // The entries in buf[0, len), which starts at byte `base` of the
  // directory, from position `from` on. Holds fs_->mu because an entry
  // without a file type needs its inode read.
  int ParseEntries(char* buf, size_t len, uint64_t base, uint64_t from, DirentSink* sink)
      REQUIRES(fs_->mu) {
    for (size_t pos = 0; pos < len && !sink->full;) {
      if (len - pos < 8) return fs_->Corrupt(inode_->ino, "directory entry cut short");
      auto* d = reinterpret_cast<ext2_dir_entry*>(buf + pos);
      unsigned rec_len = 0;
      ext2fs_get_rec_len(fs_->fs, d, &rec_len);
      const unsigned name_len = unsigned(ext2fs_dirent_name_len(d));
      if (rec_len < 8 || rec_len % 4 != 0 || rec_len > len - pos || 8 + name_len > rec_len)
        return fs_->Corrupt(inode_->ino,
                            "bad directory entry at byte " + std::to_string(base + pos));
      if (d->inode != 0 && name_len > 0 && base + pos >= from) {
        Dirent e;
        e.name.assign(d->name, name_len);
        e.offset = base + pos + rec_len;
        e.type = fs_->has_filetype ? DirentType(ext2fs_dirent_file_type(d)) : uint8_t(DT_UNKNOWN);
        uint16_t mode = uint16_t(DTTOIF(e.type));
        if (e.type == DT_UNKNOWN) {  // no filetype feature: ask the inode
          InodeRef child;
          if (int err = fs_->ReadInode(d->inode, &child)) return err;
          mode = child->mode();
          e.type = uint8_t(IFTODT(mode));
        }
        e.qid = QidOf(d->inode, mode);
        sink->Add(std::move(e));
      }
      pos += rec_len;
    }
    return 0;
  }

  // --- Extended attributes.

  // The value of `name`, or the NUL-terminated names when `name` is empty.
  int XattrValue(const std::string& name, std::string* value) {
    Inode copy = *inode_;
    MutexLock lock(&fs_->mu);
    ext2_xattr_handle* h = nullptr;
    errcode_t err = ext2fs_xattrs_open(fs_->fs, copy.ino, &h);
    if (err == EXT2_ET_MISSING_EA_FEATURE) return name.empty() ? 0 : ENODATA;  // no xattrs at all
    if (err) return fs_->Failed(copy.ino, "extended attributes", err);
    err = ext2fs_xattrs_read(
        h);  // reads the whole on-disk inode: in-inode xattrs lie past ext2_inode_large
    if (!err && name.empty()) {
      struct Names {
        std::string* out;
        bool failed = false;  // an exception stopped at the callback
      } names{value};
      err = ext2fs_xattrs_iterate(
          h,
          [](char* key, char*, size_t, void* arg) {
            auto* n = static_cast<Names*>(arg);
            n->failed = CallNoThrow("ext2 xattr names", true, [&] {
              if (std::strcmp(key, kInlineDataXattr) != 0)
                n->out->append(key, std::strlen(key) + 1);  // with its NUL
              return false;
            });
            return n->failed ? XATTR_ABORT : 0;
          },
          &names);
      if (!err && names.failed) err = EXT2_ET_NO_MEMORY;
    } else if (!err && name == kInlineDataXattr) {
      err = EXT2_ET_EA_KEY_NOT_FOUND;
    } else if (!err) {
      // POSIX ACLs come back in the xattr format Linux uses, not ext4's.
      void* v = nullptr;
      size_t n = 0;
      err = ext2fs_xattr_get(h, name.c_str(), &v, &n);
      if (!err) {
        value->assign(static_cast<const char*>(v), n);
        ext2fs_free_mem(&v);
      }
    }
    ext2fs_xattrs_close(&h);
    if (err == EXT2_ET_EA_KEY_NOT_FOUND) return ENODATA;
    if (err) return fs_->Failed(copy.ino, "extended attribute " + name, err);
    return 0;
  }

  const std::shared_ptr<Shared> fs_;
  const InodeRef inode_;
  const bool xattr_reader_ = false;
  const std::string xattr_value_;  // an xattr reader's value
  Mutex mu_;
  bool open_ GUARDED_BY(mu_) = false;
  std::shared_ptr<const ExtentMap> extents_ GUARDED_BY(mu_);  // loaded at the first read
};

}  // namespace

Result<std::shared_ptr<ExtFs>> ExtFs::Open(std::shared_ptr<BlockDevice> device,
                                           const std::string& name) {
  static std::once_flag messages;
  std::call_once(messages, [] { initialize_ext2_error_table(); });  // for error_message()
  auto shared = std::make_shared<Shared>();
  shared->name = name;
  shared->device = device;
  shared->device_size = device->size();
  // The superblock is 1024 bytes at byte 1024.
  if (shared->device_size < 2048)
    return Status::Corruption(name + ": no ext2/3/4 file system (only " +
                              std::to_string(shared->device_size) + " bytes)");

  ExtIoName io(device);
  ext2_filsys fs = nullptr;
  // Read-only (no EXT2_FLAG_RW): nothing is written, the journal is not
  // replayed, and features that only matter to writers are accepted.
  errcode_t err =
      ext2fs_open2(io.name().c_str(), nullptr, EXT2_FLAG_64BITS, 0, 0, ExtIoManager(), &fs);
  if (err == EXT2_ET_BAD_MAGIC)
    return Status::Corruption(name + ": no ext2/3/4 file system (bad magic)");
  if (err && !io.last_error().ok())
    return io.last_error().Annotate(name + ": reading the file system");
  if (err == EXT2_ET_UNSUPP_FEATURE || err == EXT2_ET_RO_UNSUPP_FEATURE)
    return Status::Unsupported(name + ": " + error_message(err) + " (libext2fs " +
                               LibraryVersion() + " cannot read it)");
  if (err) return Status::Corruption(name + ": " + error_message(err));
  MutexLock lock(&shared->mu);  // nobody else has it yet; for the GUARDED_BY rule
  shared->fs = fs;              // closed by ~Shared from here on

  ext2_super_block* sb = fs->super;
  if (ext2fs_has_feature_journal_needs_recovery(sb))
    return Status::Unsupported(
        name +
        ": the file system needs journal recovery (it was not cleanly unmounted): "
        "run e2fsck on the image before packing it");
  const uint64_t fs_bytes = ext2fs_blocks_count(sb) * uint64_t(fs->blocksize);
  if (fs_bytes > shared->device_size)
    return Status::Corruption(name + ": the file system is " + std::to_string(fs_bytes) +
                              " bytes but the image only " + std::to_string(shared->device_size) +
                              " (truncated?)");
  if (sb->s_state & EXT2_ERROR_FS)
    LogWarn(name + ": the file system is marked as having errors; serving it anyway");
  shared->block_size = fs->blocksize;
  shared->blocks = ext2fs_blocks_count(sb);
  shared->has_filetype = ext2fs_has_feature_filetype(sb);
  if (shared->ReadInode(EXT2_ROOT_INO, &shared->root) != 0 || !shared->root->is_dir()) {
    Status dev = io.last_error();
    if (!dev.ok()) return dev.Annotate(name + ": reading the root directory");
    return Status::Corruption(name +
                              ": the root directory (inode 2) is unreadable or not a directory");
  }
  return std::shared_ptr<ExtFs>(new ExtFs(std::move(shared)));
}

int ExtFs::Attach(uint32_t, std::shared_ptr<Node>* root) {
  *root = std::make_shared<ExtNode>(shared_, shared_->root);
  return 0;
}

}  // namespace hloop::p9
