#include "frontends/p9fs/p9_dirfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>

#include "util/file.h"
#include "util/mutex.h"

namespace hloop::p9 {

namespace {

constexpr size_t kMaxXattrSize = 65536;  // XATTR_SIZE_MAX

// A file's O_PATH descriptor (or, after Tlcreate, a duplicate of the open
// one) and what never changes about it. Shared by the nodes that refer to it;
// closed when the last one goes, never while a request uses it.
struct PathFd {
  ScopedFd fd;
  dev_t dev = 0;
  ino_t ino = 0;
  mode_t type = 0;  // S_IFMT bits
  Qid qid;
  bool is_dir() const { return S_ISDIR(type); }
  bool is_link() const { return S_ISLNK(type); }
};
using PathRef = std::shared_ptr<const PathFd>;

// A name the client asks to look up or create: one component, nothing else.
int CheckName(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return EINVAL;
  if (name.find('/') != std::string::npos || name.find('\0') != std::string::npos) return EINVAL;
  if (name.size() > NAME_MAX) return ENAMETOOLONG;
  return 0;
}

// Opens `name` (one checked component) beneath `dirfd` without following a
// symbolic link anywhere. Without openat2 (kernels before 5.6) a single
// component opened with O_NOFOLLOW is just as confined.
int OpenBeneath(int dirfd, const std::string& name, int flags, mode_t mode) {
  static std::atomic<bool> have_openat2{true};
  flags |= O_CLOEXEC | O_NOFOLLOW;
  if (have_openat2.load(std::memory_order_relaxed)) {
    open_how how{};
    how.flags = uint64_t(flags);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;
    long fd = ::syscall(SYS_openat2, dirfd, name.c_str(), &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS) return int(fd);
    have_openat2 = false;
  }
  return ::openat(dirfd, name.c_str(), flags, mode);
}

// "/proc/self/fd/N": opening it reaches exactly the file `fd` refers to,
// without resolving any path again.
std::string ProcPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

int StatFd(int fd, struct stat* st) {
  return ::fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
}

uint8_t QidType(mode_t mode) {
  if (S_ISDIR(mode)) return kQidDir;
  if (S_ISLNK(mode)) return kQidSymlink;
  return kQidFile;
}

// P9_DOTL open flags to host ones; -1 for an impossible access mode. Flags
// that make no sense here (CREATE and EXCL in Tlopen, DIRECT, NOATIME,
// NONBLOCK, NOFOLLOW: nothing is followed anyway) are dropped.
int HostOpenFlags(uint32_t f) {
  int host;
  switch (f & kDotlAccMode) {
    case 0: host = O_RDONLY; break;
    case kDotlWronly: host = O_WRONLY; break;
    case kDotlRdwr: host = O_RDWR; break;
    default: return -1;
  }
  if (f & kDotlTrunc) host |= O_TRUNC;
  if (f & kDotlAppend) host |= O_APPEND;
  if (f & kDotlDsync) host |= O_DSYNC;
  if (f & kDotlSync) host |= O_SYNC;
  if (f & kDotlDirectory) host |= O_DIRECTORY;
  return host | O_CLOEXEC | O_NOCTTY;
}

bool Changes(uint32_t f) { return (f & kDotlAccMode) != 0 || (f & kDotlTrunc) != 0; }

int ToFlockType(uint8_t type) {
  switch (type) {
    case kLockRead: return F_RDLCK;
    case kLockWrite: return F_WRLCK;
    case kLockUnlock: return F_UNLCK;
    default: return -1;
  }
}

}  // namespace

struct DirFs::Shared {
  PathRef root;
  bool read_only = false;
  bool as_root = false;  // chown what is created

  // qid.path: the inode number on the export's file system; other file
  // systems mounted inside get a device number in the top 16 bits.
  uint64_t QidPath(dev_t dev, ino_t ino) {
    uint64_t idx;
    {
      MutexLock lock(&mu);
      idx = devs.try_emplace(dev, devs.size()).first->second;
    }
    return idx == 0 ? uint64_t(ino) : (idx << 48) ^ uint64_t(ino);
  }
  // Takes `fd` (closed on failure).
  int NewPath(int fd, PathRef* out) {
    if (fd < 0) return errno;
    auto p = std::make_shared<PathFd>();
    p->fd = ScopedFd(fd);
    struct stat st;
    if (int e = StatFd(fd, &st)) return e;
    p->dev = st.st_dev;
    p->ino = st.st_ino;
    p->type = st.st_mode & S_IFMT;
    p->qid = {QidType(st.st_mode), 0, QidPath(st.st_dev, st.st_ino)};
    *out = std::move(p);
    return 0;
  }
  bool IsRoot(const PathFd& p) const { return p.dev == root->dev && p.ino == root->ino; }

  Mutex mu;
  std::map<dev_t, uint64_t> devs GUARDED_BY(mu);
};

namespace {

using Shared = DirFs::Shared;

class DirNode : public Node {
 public:
  DirNode(std::shared_ptr<Shared> fs, uint32_t uid, PathRef path, PathRef parent, std::string name)
      : fs_(std::move(fs)),
        uid_(uid),
        path_(std::move(path)),
        parent_(std::move(parent)),
        name_(std::move(name)) {}

  Qid qid() override { return Path()->qid; }

  int Walk(const std::string& name, std::shared_ptr<Node>* out) override {
    PathRef p = Path();
    if (!p->is_dir()) return ENOTDIR;
    if (name == ".") {
      *out = Clone();
      return 0;
    }
    if (name == "..") {
      if (fs_->IsRoot(*p)) {
        *out = std::make_shared<DirNode>(fs_, uid_, fs_->root, nullptr, "");
        return 0;
      }
      // Not the root, so its parent is inside. The parent's own parent and
      // name are unknown: such a node cannot be renamed or removed (EBUSY).
      PathRef up;
      if (int e = fs_->NewPath(::openat(p->fd.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC), &up))
        return e;
      *out = std::make_shared<DirNode>(fs_, uid_, std::move(up), nullptr, "");
      return 0;
    }
    if (int e = CheckName(name)) return e;
    PathRef child;
    if (int e = fs_->NewPath(OpenBeneath(p->fd.get(), name, O_PATH, 0), &child)) return e;
    *out = std::make_shared<DirNode>(fs_, uid_, std::move(child), p, name);
    return 0;
  }

  std::shared_ptr<Node> Clone() override {
    MutexLock lock(&mu_);
    return std::make_shared<DirNode>(fs_, uid_, path_, parent_, name_);
  }

  int Open(uint32_t flags) override {
    MutexLock lock(&mu_);
    if (open_.valid() || xattr_ != Xattr::kNone) return EINVAL;
    if (fs_->read_only && Changes(flags)) return EROFS;
    if (path_->is_link()) return ELOOP;
    if (!path_->is_dir() && !S_ISREG(path_->type)) return EOPNOTSUPP;  // devices, FIFOs, sockets
    if (path_->is_dir() && (flags & kDotlAccMode) != 0) return EISDIR;
    if (!path_->is_dir() && (flags & kDotlDirectory)) return ENOTDIR;
    int host = HostOpenFlags(flags);
    if (host < 0) return EINVAL;
    int fd = ::open(ProcPath(path_->fd.get()).c_str(), host);
    if (fd < 0) return errno;
    open_ = ScopedFd(fd);
    return 0;
  }

  int Create(const std::string& name, uint32_t flags, uint32_t mode, uint32_t gid,
             Qid* qid) override {
    if (fs_->read_only) return EROFS;
    if (int e = CheckName(name)) return e;
    MutexLock lock(&mu_);
    if (open_.valid() || xattr_ != Xattr::kNone) return EINVAL;
    if (!path_->is_dir()) return ENOTDIR;
    int host = HostOpenFlags(flags & ~kDotlDirectory);
    if (host < 0) return EINVAL;
    int dir = path_->fd.get();
    int fd = OpenBeneath(dir, name, host | O_CREAT | O_EXCL, mode & 07777);
    bool created = fd >= 0;
    if (fd < 0 && errno == EEXIST && !(flags & kDotlExcl)) {
      // An existing file: open it only if it is a regular one (never a FIFO
      // that would block, a device or a link).
      PathRef existing;
      if (int e = fs_->NewPath(OpenBeneath(dir, name, O_PATH, 0), &existing)) return e;
      if (existing->is_link()) return ELOOP;
      if (existing->is_dir()) return EISDIR;
      if (!S_ISREG(existing->type)) return EEXIST;
      fd = ::open(ProcPath(existing->fd.get()).c_str(), host);
    }
    if (fd < 0) return errno;
    ScopedFd opened(fd);
    if (created && fs_->as_root) (void)!::fchown(fd, uid_t(uid_), gid_t(gid));  // best effort
    PathRef np;
    if (int e = fs_->NewPath(::fcntl(fd, F_DUPFD_CLOEXEC, 0), &np)) return e;
    parent_ = path_;
    path_ = np;
    name_ = name;
    open_ = std::move(opened);
    *qid = np->qid;
    return 0;
  }

  int Read(uint64_t offset, uint32_t count, std::string* data) override {
    int fd;
    {
      MutexLock lock(&mu_);
      if (xattr_ == Xattr::kReader) {
        if (offset < xattr_value_.size())
          *data = xattr_value_.substr(size_t(offset), count);
        else
          data->clear();
        return 0;
      }
      if (!open_.valid()) return EBADF;
      if (path_->is_dir()) return EISDIR;
      fd = open_.get();  // stays open while this node lives
    }
    data->resize(count);
    size_t got = 0;
    while (got < count) {
      ssize_t n = ::pread(fd, data->data() + got, count - got, off_t(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno;
      if (n == 0) break;
      got += size_t(n);
    }
    data->resize(got);
    return 0;
  }

  int Write(uint64_t offset, const std::string& data, uint32_t* written) override {
    int fd;
    {
      MutexLock lock(&mu_);
      if (xattr_ == Xattr::kWriter) {
        if (offset > xattr_size_ || data.size() > xattr_size_ - offset) return ENOSPC;
        if (xattr_value_.size() < offset + data.size())
          xattr_value_.resize(size_t(offset + data.size()));
        xattr_value_.replace(size_t(offset), data.size(), data);
        *written = uint32_t(data.size());
        return 0;
      }
      if (fs_->read_only) return EROFS;
      if (!open_.valid()) return EBADF;
      fd = open_.get();
    }
    ssize_t n;
    do n = ::pwrite(fd, data.data(), data.size(), off_t(offset));
    while (n < 0 && errno == EINTR);
    if (n < 0) return errno;
    *written = uint32_t(n);
    return 0;
  }

  int ReadDir(uint64_t offset, uint32_t budget, std::vector<Dirent>* out) override {
    MutexLock lock(&mu_);  // the seek and the reads go together
    if (!open_.valid()) return EBADF;
    if (!path_->is_dir()) return ENOTDIR;
    int fd = open_.get();
    if (::lseek(fd, off_t(offset), SEEK_SET) < 0) return errno;
    bool at_root = fs_->IsRoot(*path_);
    size_t used = 0;
    char buf[32768];
    for (;;) {
      ssize_t n = ::getdents64(fd, buf, sizeof buf);
      if (n < 0) return errno;
      if (n == 0) return 0;  // the end
      for (ssize_t pos = 0; pos < n;) {
        const auto* d = reinterpret_cast<const struct dirent64*>(buf + pos);
        pos += d->d_reclen;
        Dirent e;
        e.name = d->d_name;
        e.offset = uint64_t(d->d_off);
        e.type = d->d_type;
        if (e.name == "." || (e.name == ".." && at_root)) {
          e.qid = path_->qid;  // the root's ".." is the root: nothing above it shows
        } else {
          e.qid = {e.type == DT_DIR   ? kQidDir
                   : e.type == DT_LNK ? kQidSymlink
                                      : kQidFile,
                   0, fs_->QidPath(path_->dev, d->d_ino)};
        }
        if (used + DirentSize(e.name.size()) > budget) return out->empty() ? EINVAL : 0;
        used += DirentSize(e.name.size());
        out->push_back(std::move(e));
      }
    }
  }

  int GetAttr(Rgetattr* a) override {
    PathRef p = Path();
    struct statx sx;
    if (::statx(p->fd.get(), "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW,
                STATX_BASIC_STATS | STATX_BTIME, &sx) != 0)
      return errno;
    a->valid = kGetattrBasic | ((sx.stx_mask & STATX_BTIME) ? kGetattrBtime : 0);
    a->qid = p->qid;
    a->mode = sx.stx_mode;
    a->uid = sx.stx_uid;
    a->gid = sx.stx_gid;
    a->nlink = sx.stx_nlink;
    a->rdev = makedev(sx.stx_rdev_major, sx.stx_rdev_minor);
    a->size = sx.stx_size;
    a->blksize = sx.stx_blksize;
    a->blocks = sx.stx_blocks;
    a->atime_sec = uint64_t(sx.stx_atime.tv_sec);
    a->atime_nsec = sx.stx_atime.tv_nsec;
    a->mtime_sec = uint64_t(sx.stx_mtime.tv_sec);
    a->mtime_nsec = sx.stx_mtime.tv_nsec;
    a->ctime_sec = uint64_t(sx.stx_ctime.tv_sec);
    a->ctime_nsec = sx.stx_ctime.tv_nsec;
    a->btime_sec = uint64_t(sx.stx_btime.tv_sec);
    a->btime_nsec = sx.stx_btime.tv_nsec;
    return 0;
  }

  int SetAttr(const Tsetattr& r) override {
    if (fs_->read_only) return EROFS;
    PathRef p = Path();
    std::string proc = ProcPath(p->fd.get());
    if (r.valid & kSetattrMode) {
      if (p->is_link()) return EOPNOTSUPP;
      if (::chmod(proc.c_str(), r.mode & 07777) != 0) return errno;
    }
    if (r.valid & (kSetattrUid | kSetattrGid)) {
      uid_t uid = (r.valid & kSetattrUid) ? uid_t(r.uid) : uid_t(-1);
      gid_t gid = (r.valid & kSetattrGid) ? gid_t(r.gid) : gid_t(-1);
      if (::fchownat(p->fd.get(), "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
        return errno;
    }
    if (r.valid & kSetattrSize) {
      if (p->is_dir()) return EISDIR;
      if (!S_ISREG(p->type)) return EINVAL;
      if (r.size > uint64_t(INT64_MAX)) return EFBIG;
      if (::truncate(proc.c_str(), off_t(r.size)) != 0) return errno;
    }
    if (r.valid & (kSetattrAtime | kSetattrMtime)) {
      struct timespec ts[2];
      ts[0] = TimeArg(r.valid, kSetattrAtime, kSetattrAtimeSet, r.atime_sec, r.atime_nsec);
      ts[1] = TimeArg(r.valid, kSetattrMtime, kSetattrMtimeSet, r.mtime_sec, r.mtime_nsec);
      if (p->is_link()) {  // the magic link would lead to the link's target
        PathRef parent;
        std::string name;
        if (int e = Located(&parent, &name)) return e;
        if (::utimensat(parent->fd.get(), name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) return errno;
      } else if (::utimensat(AT_FDCWD, proc.c_str(), ts, 0) != 0) {
        return errno;
      }
    }
    return 0;
  }

  int StatFs(Rstatfs* out) override {
    struct statfs s;
    if (::fstatfs(Path()->fd.get(), &s) != 0) return errno;
    out->type = uint32_t(s.f_type);
    out->bsize = uint32_t(s.f_bsize);
    out->blocks = s.f_blocks;
    out->bfree = s.f_bfree;
    out->bavail = s.f_bavail;
    out->files = s.f_files;
    out->ffree = s.f_ffree;
    uint32_t fsid[2];
    std::memcpy(fsid, &s.f_fsid, sizeof fsid);
    out->fsid = uint64_t(fsid[0]) | uint64_t(fsid[1]) << 32;
    out->namelen = uint32_t(s.f_namelen);
    return 0;
  }

  int ReadLink(std::string* target) override {
    PathRef p = Path();
    if (!p->is_link()) return EINVAL;
    char buf[PATH_MAX];
    ssize_t n = ::readlinkat(p->fd.get(), "", buf, sizeof buf);
    if (n < 0) return errno;
    target->assign(buf, size_t(n));
    return 0;
  }

  int Mkdir(const std::string& name, uint32_t mode, uint32_t gid, Qid* qid) override {
    PathRef dir;
    if (int e = CheckChange(name, &dir)) return e;
    if (::mkdirat(dir->fd.get(), name.c_str(), mode & 07777) != 0) return errno;
    return Created(*dir, name, gid, qid);
  }

  int Symlink(const std::string& name, const std::string& target, uint32_t gid, Qid* qid) override {
    PathRef dir;
    if (int e = CheckChange(name, &dir)) return e;
    // The target is only data: it is never followed here.
    if (target.empty() || target.find('\0') != std::string::npos) return EINVAL;
    if (target.size() >= PATH_MAX) return ENAMETOOLONG;
    if (::symlinkat(target.c_str(), dir->fd.get(), name.c_str()) != 0) return errno;
    return Created(*dir, name, gid, qid);
  }

  int Mknod(const std::string& name, uint32_t mode, uint32_t, uint32_t, uint32_t gid,
            Qid* qid) override {
    PathRef dir;
    if (int e = CheckChange(name, &dir)) return e;
    mode_t type = mode & S_IFMT;
    if (type == S_IFCHR || type == S_IFBLK) return EPERM;  // never a host device node
    if (type != 0 && type != S_IFREG && type != S_IFIFO && type != S_IFSOCK) return EINVAL;
    if (::mknodat(dir->fd.get(), name.c_str(), (type ? type : S_IFREG) | (mode & 07777), 0) != 0)
      return errno;
    return Created(*dir, name, gid, qid);
  }

  int Link(Node& target, const std::string& name) override {
    PathRef dir;
    if (int e = CheckChange(name, &dir)) return e;
    auto* t = dynamic_cast<DirNode*>(&target);
    if (!t || t->fs_ != fs_) return EXDEV;
    PathRef tp = t->Path();
    if (tp->is_dir()) return EPERM;
    // Needs CAP_DAC_READ_SEARCH; without it, link the node's name instead.
    if (::linkat(tp->fd.get(), "", dir->fd.get(), name.c_str(), AT_EMPTY_PATH) == 0) return 0;
    if (errno != ENOENT && errno != EPERM) return errno;
    PathRef parent;
    std::string tname;
    if (int e = t->Located(&parent, &tname)) return e;
    return ::linkat(parent->fd.get(), tname.c_str(), dir->fd.get(), name.c_str(), 0) == 0 ? 0
                                                                                          : errno;
  }

  int Rename(Node& dir, const std::string& name) override {
    if (fs_->read_only) return EROFS;
    if (int e = CheckName(name)) return e;
    auto* d = dynamic_cast<DirNode*>(&dir);
    if (!d || d->fs_ != fs_) return EXDEV;
    PathRef to = d->Path();  // before taking mu_: `dir` may be this node
    if (!to->is_dir()) return ENOTDIR;
    PathRef parent;
    std::string old;
    if (int e = Located(&parent, &old)) return e;
    if (::renameat(parent->fd.get(), old.c_str(), to->fd.get(), name.c_str()) != 0) return errno;
    MutexLock lock(&mu_);
    parent_ = to;
    name_ = name;
    return 0;
  }

  int RenameAt(const std::string& oldname, Node& newdir, const std::string& newname) override {
    PathRef from;
    if (int e = CheckChange(oldname, &from)) return e;
    if (int e = CheckName(newname)) return e;
    auto* d = dynamic_cast<DirNode*>(&newdir);
    if (!d || d->fs_ != fs_) return EXDEV;
    PathRef to = d->Path();
    if (!to->is_dir()) return ENOTDIR;
    return ::renameat(from->fd.get(), oldname.c_str(), to->fd.get(), newname.c_str()) == 0 ? 0
                                                                                           : errno;
  }

  int UnlinkAt(const std::string& name, uint32_t flags) override {
    PathRef dir;
    if (int e = CheckChange(name, &dir)) return e;
    if (flags & ~kAtRemoveDir) return EINVAL;
    int host = (flags & kAtRemoveDir) ? AT_REMOVEDIR : 0;
    return ::unlinkat(dir->fd.get(), name.c_str(), host) == 0 ? 0 : errno;
  }

  int Remove() override {
    if (fs_->read_only) return EROFS;
    PathRef p = Path();
    PathRef parent;
    std::string name;
    if (int e = Located(&parent, &name)) return e;
    return ::unlinkat(parent->fd.get(), name.c_str(), p->is_dir() ? AT_REMOVEDIR : 0) == 0 ? 0
                                                                                           : errno;
  }

  int Fsync(bool datasync) override {
    int fd = OpenFd();
    if (fd < 0) return EBADF;
    return (datasync ? ::fdatasync(fd) : ::fsync(fd)) == 0 ? 0 : errno;
  }

  int Lock(const Tlock& r, uint8_t* status) override {
    int fd = OpenFd();
    if (fd < 0) return EBADF;
    struct flock fl {};
    if (int e = MakeFlock(r.type, r.start, r.length, &fl)) return e;
    // Open-file-description locks: two fids (two opens) conflict even though
    // both belong to this one process.
    if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) {
      *status = kLockSuccess;
    } else if (errno == EAGAIN || errno == EACCES) {
      *status = kLockBlocked;  // the client retries if it wants to wait
    } else {
      return errno;
    }
    return 0;
  }

  int GetLock(const Tgetlock& r, Rgetlock* out) override {
    int fd = OpenFd();
    if (fd < 0) return EBADF;
    struct flock fl {};
    if (int e = MakeFlock(r.type, r.start, r.length, &fl)) return e;
    if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return errno;
    out->client_id = r.client_id;
    if (fl.l_type == F_UNLCK) {
      out->type = kLockUnlock;
      out->start = r.start;
      out->length = r.length;
      out->proc_id = r.proc_id;
    } else {
      out->type = fl.l_type == F_RDLCK ? kLockRead : kLockWrite;
      out->start = uint64_t(fl.l_start);
      out->length = uint64_t(fl.l_len);
      out->proc_id = 0;  // the holder is another fid, not a process here
    }
    return 0;
  }

  int XattrWalk(const std::string& name, std::shared_ptr<Node>* out, uint64_t* size) override {
    if (name.find('\0') != std::string::npos) return EINVAL;
    if (name.size() > XATTR_NAME_MAX) return ERANGE;
    PathRef p = Path();
    std::string value;
    if (p->is_link()) {  // the magic link would lead to the target; links have none here
      if (!name.empty()) return ENODATA;
    } else {
      std::string proc = ProcPath(p->fd.get());
      for (int attempt = 0;; attempt++) {  // the value may grow between the two calls
        ssize_t n = name.empty() ? ::listxattr(proc.c_str(), nullptr, 0)
                                 : ::getxattr(proc.c_str(), name.c_str(), nullptr, 0);
        if (n < 0) return errno;
        value.resize(std::min(size_t(n), kMaxXattrSize));
        n = name.empty() ? ::listxattr(proc.c_str(), value.data(), value.size())
                         : ::getxattr(proc.c_str(), name.c_str(), value.data(), value.size());
        if (n >= 0) {
          value.resize(size_t(n));
          break;
        }
        if (errno != ERANGE || attempt == 3) return errno;
      }
    }
    auto node = std::static_pointer_cast<DirNode>(Clone());
    *size = value.size();
    {
      MutexLock lock(&node->mu_);  // nobody else has it yet; for the GUARDED_BY rule
      node->xattr_ = Xattr::kReader;
      node->xattr_value_ = std::move(value);
    }
    *out = std::move(node);
    return 0;
  }

  int XattrCreate(const std::string& name, uint64_t size, uint32_t flags) override {
    if (fs_->read_only) return EROFS;
    if (name.empty() || name.find('\0') != std::string::npos) return EINVAL;
    if (name.size() > XATTR_NAME_MAX) return ERANGE;
    if (name.rfind("user.", 0) != 0 && name != "system.posix_acl_access" &&
        name != "system.posix_acl_default")
      return EOPNOTSUPP;
    if (size > kMaxXattrSize) return E2BIG;
    if (flags & ~(kXattrCreate | kXattrReplace)) return EINVAL;
    MutexLock lock(&mu_);
    if (path_->is_link()) return EPERM;
    if (open_.valid() || xattr_ != Xattr::kNone) return EINVAL;
    xattr_ = Xattr::kWriter;
    xattr_name_ = name;
    xattr_size_ = size;
    xattr_flags_ =
        (flags & kXattrCreate ? XATTR_CREATE : 0) | (flags & kXattrReplace ? XATTR_REPLACE : 0);
    return 0;
  }

  int Clunk() override {
    MutexLock lock(&mu_);
    if (xattr_ != Xattr::kWriter) return 0;
    xattr_ = Xattr::kNone;
    if (xattr_value_.size() != xattr_size_)
      return EINVAL;  // the client wrote less than it announced
    std::string proc = ProcPath(path_->fd.get());
    int rc = xattr_size_ == 0 ? ::removexattr(proc.c_str(), xattr_name_.c_str())
                              : ::setxattr(proc.c_str(), xattr_name_.c_str(), xattr_value_.data(),
                                           xattr_value_.size(), xattr_flags_);
    return rc == 0 ? 0 : errno;
  }

 private:
  enum class Xattr { kNone, kReader, kWriter };

  PathRef Path() {
    MutexLock lock(&mu_);
    return path_;
  }
  int OpenFd() {
    MutexLock lock(&mu_);
    return open_.valid() ? open_.get() : -1;
  }
  // For an entry to be made or changed in this directory.
  int CheckChange(const std::string& name, PathRef* dir) {
    if (fs_->read_only) return EROFS;
    if (int e = CheckName(name)) return e;
    *dir = Path();
    return (*dir)->is_dir() ? 0 : ENOTDIR;
  }
  // This node's parent and name, checked to still lead to this file (another
  // client may have renamed it). The root and nodes reached by ".." have none.
  int Located(PathRef* parent, std::string* name) {
    MutexLock lock(&mu_);
    if (!parent_) return EBUSY;
    struct stat st;
    if (::fstatat(parent_->fd.get(), name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return errno;
    if (st.st_dev != path_->dev || st.st_ino != path_->ino) return ESTALE;
    *parent = parent_;
    *name = name_;
    return 0;
  }
  // Gives a new entry its owner and returns its qid.
  int Created(const PathFd& dir, const std::string& name, uint32_t gid, Qid* qid) {
    PathRef p;
    if (int e = fs_->NewPath(OpenBeneath(dir.fd.get(), name, O_PATH, 0), &p)) return e;
    // Best effort: some file systems (vfat) refuse owners.
    if (fs_->as_root)
      (void)!::fchownat(p->fd.get(), "", uid_t(uid_), gid_t(gid),
                        AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
    *qid = p->qid;
    return 0;
  }
  static struct timespec TimeArg(uint32_t valid, uint32_t bit, uint32_t set_bit, uint64_t sec,
                                 uint64_t nsec) {
    if (!(valid & bit)) return {0, UTIME_OMIT};
    if (!(valid & set_bit)) return {0, UTIME_NOW};
    return {time_t(sec), long(nsec % 1000000000)};
  }
  static int MakeFlock(uint8_t type, uint64_t start, uint64_t length, struct flock* fl) {
    int t = ToFlockType(type);
    if (t < 0 || start > uint64_t(INT64_MAX)) return EINVAL;
    fl->l_type = short(t);
    fl->l_whence = SEEK_SET;
    fl->l_start = off_t(start);
    fl->l_len = length > uint64_t(INT64_MAX) - start ? 0 : off_t(length);  // 0: to the end
    fl->l_pid = 0;
    return 0;
  }

  const std::shared_ptr<Shared> fs_;
  const uint32_t uid_;  // the attaching user: owner of what this fid creates
  Mutex mu_;
  PathRef path_ GUARDED_BY(mu_);
  PathRef parent_ GUARDED_BY(mu_);    // null: root, or reached by ".."
  std::string name_ GUARDED_BY(mu_);  // the name in parent_
  ScopedFd open_ GUARDED_BY(mu_);     // set once, closed only by the destructor
  Xattr xattr_ GUARDED_BY(mu_) = Xattr::kNone;
  std::string xattr_value_ GUARDED_BY(mu_);
  std::string xattr_name_ GUARDED_BY(mu_);
  uint64_t xattr_size_ GUARDED_BY(mu_) = 0;
  int xattr_flags_ GUARDED_BY(mu_) = 0;
};

}  // namespace

Result<std::shared_ptr<DirFs>> DirFs::Open(const std::string& dir, const DirFsOptions& options) {
  if (::access("/proc/self/fd", X_OK) != 0)
    return Status::Unsupported("9P export of " + dir + ": needs /proc mounted");
  auto shared = std::make_shared<Shared>();
  shared->read_only = options.read_only;
  shared->as_root = ::geteuid() == 0;
  int fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, dir);
  if (int e = shared->NewPath(fd, &shared->root)) return Status::FromErrno(e, dir);
  return std::shared_ptr<DirFs>(new DirFs(std::move(shared)));
}

int DirFs::Attach(uint32_t uid, std::shared_ptr<Node>* root) {
  *root = std::make_shared<DirNode>(shared_, uid, shared_->root, nullptr, "");
  return 0;
}

bool DirFs::read_only() const { return shared_->read_only; }

}  // namespace hloop::p9
