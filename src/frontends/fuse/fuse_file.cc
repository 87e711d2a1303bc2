#define FUSE_USE_VERSION 314
#include "frontends/fuse/fuse_file.h"

#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <linux/falloc.h>
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <vector>

#include "util/log.h"
#include "util/no_throw.h"
#include "util/status_errno.h"

namespace hloop::fuse {

namespace {

struct Context {
  BlockDevice* device;
  std::string name;  // "/" + file name
  time_t mtime;
  std::function<std::string()> stats;
};

Context* Ctx() { return static_cast<Context*>(fuse_get_context()->private_data); }

// libfuse is C: no exception may unwind through it. Every operation is
// registered as Guarded<Op>, which turns one into EIO (Init cannot throw).
template <auto Op, class... Args>
int Guarded(Args... args) {
  return CallNoThrow("fuse", -EIO, [&] { return Op(args...); });
}

void* Init(fuse_conn_info* conn, fuse_config* cfg) {
  // Nothing changes the image under a mount but writes through this very
  // mount, which go through the kernel's page cache (write-through: no
  // writeback cache), so the kernel may keep pages across opens.
  cfg->kernel_cache = 1;
  cfg->entry_timeout = cfg->attr_timeout = 3600;
  cfg->use_ino = 1;
  conn->max_readahead = UINT_MAX;  // the kernel caps it; see RaiseReadAhead
  return fuse_get_context()->private_data;
}

int GetAttr(const char* path, struct stat* st, fuse_file_info*) {
  Context* c = Ctx();
  std::memset(st, 0, sizeof *st);
  st->st_mtime = st->st_ctime = st->st_atime = c->mtime;
  if (std::strcmp(path, "/") == 0) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    st->st_ino = 1;
    return 0;
  }
  if (c->name == path) {
    st->st_mode = S_IFREG | (c->device->can_write() ? 0644 : 0444);
    st->st_nlink = 1;
    st->st_ino = 2;
    st->st_size = off_t(c->device->size());
    st->st_blksize = 4096;
    st->st_blocks = off_t((c->device->size() + 511) / 512);
    return 0;
  }
  return -ENOENT;
}

int ReadDir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info*,
            fuse_readdir_flags) {
  if (std::strcmp(path, "/") != 0) return -ENOTDIR;
  fill(buf, ".", nullptr, 0, fuse_fill_dir_flags(0));
  fill(buf, "..", nullptr, 0, fuse_fill_dir_flags(0));
  fill(buf, Ctx()->name.c_str() + 1, nullptr, 0, fuse_fill_dir_flags(0));
  return 0;
}

int Open(const char* path, fuse_file_info* fi) {
  Context* c = Ctx();
  if (c->name != path) return -ENOENT;
  if ((fi->flags & O_ACCMODE) != O_RDONLY && !c->device->can_write()) return -EROFS;
  fi->keep_cache = 1;
  return 0;
}

int Read(const char* path, char* buf, size_t size, off_t off, fuse_file_info*) {
  Context* c = Ctx();
  if (c->name != path) return -ENOENT;
  uint64_t dev_size = c->device->size();
  if (off < 0) return -EINVAL;
  if (uint64_t(off) >= dev_size) return 0;
  size = size_t(std::min<uint64_t>(size, dev_size - uint64_t(off)));
  Status st = c->device->Read(uint64_t(off), size, buf);
  if (!st.ok()) {
    LogError("read of " + std::to_string(size) + " bytes at " + std::to_string(off) + ": " +
             st.ToString());
    return -ErrnoFromStatus(st);
  }
  return int(size);
}

int Write(const char* path, const char* buf, size_t size, off_t off, fuse_file_info*) {
  Context* c = Ctx();
  if (c->name != path) return -ENOENT;
  if (!c->device->can_write()) return -EROFS;
  uint64_t dev_size = c->device->size();
  if (off < 0) return -EINVAL;
  // The file has the image's size: no write goes past its end.
  if (size > 0 && uint64_t(off) >= dev_size) return -ENOSPC;
  size = size_t(std::min<uint64_t>(size, dev_size - uint64_t(off)));
  Status st = c->device->Write(uint64_t(off), size, buf);
  if (!st.ok()) {
    LogError("write of " + std::to_string(size) + " bytes at " + std::to_string(off) + ": " +
             st.ToString());
    return -ErrnoFromStatus(st);
  }
  return int(size);
}

int Fsync(const char* path, int /*datasync*/, fuse_file_info*) {
  Context* c = Ctx();
  if (c->name != path) return -ENOENT;
  Status st = c->device->Flush();
  if (!st.ok()) {
    LogError("fsync: " + st.ToString());
    return -ErrnoFromStatus(st);
  }
  return 0;
}

// close(2): nothing to do. Writes are already in the device; durability is
// what fsync asks for, as with any file.
int FlushOnClose(const char* path, fuse_file_info*) { return Ctx()->name == path ? 0 : -ENOENT; }

// The size is fixed: truncate(2) and O_TRUNC are refused unless they change
// nothing.
int Truncate(const char* path, off_t size, fuse_file_info*) {
  Context* c = Ctx();
  if (c->name != path) return -ENOENT;
  if (!c->device->can_write()) return -EROFS;
  return uint64_t(size) == c->device->size() ? 0 : -EPERM;
}

int Fallocate(const char* path, int mode, off_t off, off_t len, fuse_file_info*) {
  Context* c = Ctx();
  if (c->name != path) return -ENOENT;
  if (!c->device->can_write()) return -EROFS;
  if (off < 0 || len <= 0) return -EINVAL;
  const uint64_t dev_size = c->device->size();
  if (uint64_t(off) >= dev_size) return mode & FALLOC_FL_KEEP_SIZE ? 0 : -ENOSPC;
  const uint64_t n = std::min<uint64_t>(uint64_t(len), dev_size - uint64_t(off));
  Status st;
  if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
    st = c->device->Trim(uint64_t(off), n);
  } else if ((mode & ~FALLOC_FL_KEEP_SIZE) == FALLOC_FL_ZERO_RANGE) {
    st = c->device->WriteZeroes(uint64_t(off), n);
  } else if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
    // Plain allocation: the space is the overlay's business; only growing
    // the file is impossible.
    return (mode & FALLOC_FL_KEEP_SIZE) || uint64_t(off) + uint64_t(len) <= dev_size ? 0 : -ENOSPC;
  } else {
    return -EOPNOTSUPP;
  }
  if (!st.ok()) {
    LogError("fallocate mode " + std::to_string(mode) + " at " + std::to_string(off) + ": " +
             st.ToString());
    return -ErrnoFromStatus(st);
  }
  return 0;
}

int StatFs(const char*, struct statvfs* sv) {
  std::memset(sv, 0, sizeof *sv);
  sv->f_bsize = sv->f_frsize = 4096;
  sv->f_blocks = (Ctx()->device->size() + 4095) / 4096;
  sv->f_files = 2;
  sv->f_namemax = 255;
  return 0;
}

int GetXattr(const char* path, const char* name, char* value, size_t size) {
  Context* c = Ctx();
  if (std::strcmp(path, "/") != 0 || !c->stats || std::strcmp(name, kStatsXattr) != 0)
    return -ENODATA;
  std::string text = c->stats();
  if (size == 0) return int(text.size());
  if (size < text.size()) return -ERANGE;
  std::memcpy(value, text.data(), text.size());
  return int(text.size());
}

int ListXattr(const char* path, char* list, size_t size) {
  Context* c = Ctx();
  if (std::strcmp(path, "/") != 0 || !c->stats) return 0;
  size_t len = std::strlen(kStatsXattr) + 1;
  if (size == 0) return int(len);
  if (size < len) return -ERANGE;
  std::memcpy(list, kStatsXattr, len);
  return int(len);
}

// "0:52" for the mount at `mountpoint`, from /proc/self/mountinfo (asking the
// file system itself would need the FUSE loop to be running already).
std::string MountDevice(const std::string& mountpoint) {
  char real[PATH_MAX];
  if (!::realpath(mountpoint.c_str(), real)) return "";
  std::ifstream in("/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    f >> id >> parent >> dev >> root >> point;
    // mountinfo escapes spaces and the like as \040: compare escaped forms.
    std::string want;
    for (char ch : std::string(real)) {
      if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\\') {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\%03o", unsigned(static_cast<unsigned char>(ch)));
        want += buf;
      } else {
        want += ch;
      }
    }
    if (point == want) found = dev;  // the last one is the top mount
  }
  return found;
}

void RaiseReadAhead(const std::string& mountpoint, unsigned kb) {
  std::string dev = MountDevice(mountpoint);
  std::string path = "/sys/class/bdi/" + dev + "/read_ahead_kb";
  std::ofstream out(path);
  if (dev.empty() || !(out << kb << "\n") || !out.flush())
    LogInfo("could not set the kernel read-ahead of " + mountpoint + " (" + path +
            "); reads stay at 128 KiB");
}

// SIGUSR2 wakes Run()'s thread out of libfuse's loop (see Stop()).
constexpr int kWakeSignal = SIGUSR2;
extern "C" void OnWakeSignal(int) {}

}  // namespace

struct FuseMount::State {
  Context ctx;
  fuse_session* session = nullptr;
};

FuseMount::FuseMount(BlockDevice& device, FuseOptions options)
    : device_(device), options_(std::move(options)) {}

FuseMount::~FuseMount() {
  if (fuse_) {
    fuse_unmount(fuse_);
    fuse_destroy(fuse_);
  }
}

Status FuseMount::Mount() {
  if (options_.file_name.empty() || options_.file_name.find('/') != std::string::npos)
    return Status::InvalidArgument("bad file name '" + options_.file_name + "'");
  state_ = std::make_unique<State>();
  state_->ctx = Context{&device_, "/" + options_.file_name, std::time(nullptr), options_.stats};
  fuse_operations ops{};
  ops.init = Init;
  ops.getattr = Guarded<GetAttr>;
  ops.readdir = Guarded<ReadDir>;
  ops.open = Guarded<Open>;
  ops.read = Guarded<Read>;
  ops.statfs = Guarded<StatFs>;
  if (device_.can_write()) {
    ops.write = Guarded<Write>;
    ops.fsync = Guarded<Fsync>;
    ops.flush = Guarded<FlushOnClose>;
    ops.truncate = Guarded<Truncate>;
    ops.fallocate = Guarded<Fallocate>;
  }
  ops.getxattr = Guarded<GetXattr>;
  ops.listxattr = Guarded<ListXattr>;

  std::string mount_opts = "default_permissions,fsname=hloop,subtype=hloop";
  if (!device_.can_write()) mount_opts = "ro," + mount_opts;
  std::vector<std::string> argv_s = {"hloop", "-o", mount_opts};
  if (options_.allow_other) argv_s.insert(argv_s.end(), {"-o", "allow_other"});
  if (options_.debug) argv_s.push_back("-d");
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(int(argv.size()), argv.data());
  // fuse_new may add arguments, which makes libfuse copy the list: free it
  // on every way out (LeakSanitizer caught it at unmount).
  struct ArgsFree {
    fuse_args* a;
    ~ArgsFree() { fuse_opt_free_args(a); }
  } args_free{&args};

  ::fuse* f = fuse_new(&args, &ops, sizeof ops, &state_->ctx);
  if (!f) return Status::IOError("cannot set up FUSE (is /dev/fuse there?)");
  if (fuse_mount(f, options_.mountpoint.c_str()) != 0) {
    fuse_destroy(f);
    return Status::IOError("cannot mount FUSE at " + options_.mountpoint);
  }
  fuse_ = f;
  state_->session = fuse_get_session(f);
  if (options_.readahead_kb) RaiseReadAhead(options_.mountpoint, options_.readahead_kb);
  if (options_.on_ready) options_.on_ready();
  return Status::Ok();
}

Status FuseMount::Run() {
  struct sigaction wake {};
  wake.sa_handler = OnWakeSignal;
  sigemptyset(&wake.sa_mask);
  ::sigaction(kWakeSignal, &wake, nullptr);
  sigset_t wake_set;
  sigemptyset(&wake_set);
  sigaddset(&wake_set, kWakeSignal);
  pthread_sigmask(SIG_UNBLOCK, &wake_set, nullptr);
  int rc = 0;
  bool loop;
  {
    MutexLock lock(&mu_);
    loop = !stop_requested_;
    looping_ = loop;
    loop_thread_ = pthread_self();
  }
  if (loop) {
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, options_.max_threads);
    fuse_loop_cfg_set_clone_fd(cfg, 0);
    rc = fuse_loop_mt(fuse_, cfg);
    fuse_loop_cfg_destroy(cfg);
    {
      MutexLock lock(&mu_);
      looping_ = false;
    }
    cv_.SignalAll();
  }
  fuse_unmount(fuse_);
  fuse_destroy(fuse_);
  fuse_ = nullptr;
  if (rc != 0) return Status::IOError("FUSE loop ended with an error (" + std::to_string(rc) + ")");
  return Status::Ok();
}

void FuseMount::Stop() {
  MutexLock lock(&mu_);
  stop_requested_ = true;
  if (!looping_) return;
  fuse_session_exit(state_->session);
  // libfuse's loop checks for the exit between waits; a signal interrupts
  // its wait. Sent again until the loop has ended: one that arrives just
  // before the wait begins is lost.
  while (looping_) {
    pthread_kill(loop_thread_, kWakeSignal);
    cv_.WaitUntil(&mu_, std::chrono::steady_clock::now() + std::chrono::milliseconds(50));
  }
}

}  // namespace hloop::fuse
