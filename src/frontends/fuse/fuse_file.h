// FUSE front end: shows a BlockDevice as one regular file in a directory,
// usable with `losetup` and `mount -o loop`. The file is read-only unless the
// device can write (an overlay): then write(2) goes to Write, fsync(2) to
// Flush, fallocate(2) punching a hole or zeroing a range (what a loop
// device's discard does) to Trim or WriteZeroes. Its size never changes.
//
// Thread model: libfuse's multi-threaded loop calls the device's Read() and
// Write() from several threads at once; the device is thread-safe, this
// layer keeps no mutable state after mounting.
//
// Signals: the mount takes none itself (libfuse's handlers are not used).
// The process blocks SIGINT/SIGTERM/SIGHUP with server::StopSignals, whose
// callback calls FuseMount::Stop(); once Run() has returned, shutdown work
// (flushing an overlay, writing a recorded profile) cannot be cut short by
// another signal.
#pragma once

#include <pthread.h>

#include <functional>
#include <memory>
#include <string>

#include "blockdev/block_device.h"
#include "util/mutex.h"
#include "util/status.h"
#include "util/thread_annotations.h"

struct fuse;

namespace hloop::fuse {

struct FuseOptions {
  std::string mountpoint;
  std::string file_name;  // the one file shown
  // Runs once the mount is live, e.g. to tell a waiting parent process.
  std::function<void()> on_ready;
  bool allow_other = true;  // other users (and root's losetup) may open it
  unsigned max_threads = 16;
  // The kernel's read-ahead for the mount, in KiB (0: leave the kernel's
  // default, 128 KiB). FUSE cannot ask for more than that at mount time, so
  // it is raised through /sys/class/bdi after mounting (needs root).
  unsigned readahead_kb = 4096;
  bool debug = false;
  // If set, the mount's root answers getxattr("user.hloop.stats") with this
  // (JSON; `hloop stats MOUNTPOINT` reads it).
  std::function<std::string()> stats;
};

// The extended attribute of a mount's root that holds its statistics.
inline constexpr const char* kStatsXattr = "user.hloop.stats";

// One mount, with the Listen / Run / Stop shape of the servers: Mount(),
// Run() until unmounted (umount, fusermount -u) or Stop(), then it unmounts.
class FuseMount {
 public:
  // `device` must outlive the mount.
  FuseMount(BlockDevice& device, FuseOptions options);
  // Unmounts if Run() did not.
  ~FuseMount();
  FuseMount(const FuseMount&) = delete;
  FuseMount& operator=(const FuseMount&) = delete;

  Status Mount() EXCLUDES(mu_);
  // Serves requests until the file system is unmounted or Stop() is called,
  // then unmounts. REQUIRES: Mount() succeeded.
  Status Run() EXCLUDES(mu_);
  // Ends Run(): at once if it has not started its loop, otherwise once the
  // loop has noticed (libfuse's loop is woken by SIGUSR2 sent to Run()'s
  // thread, whose handler does nothing). Returns when Run()'s loop has
  // ended or will not start. Any thread but Run()'s; more than once.
  void Stop() EXCLUDES(mu_);

 private:
  struct State;

  BlockDevice& device_;
  const FuseOptions options_;
  std::unique_ptr<State> state_;
  ::fuse* fuse_ = nullptr;  // from Mount() until unmounted

  Mutex mu_;
  CondVar cv_;  // looping_ became false
  bool stop_requested_ GUARDED_BY(mu_) = false;
  bool looping_ GUARDED_BY(mu_) = false;  // Run() is in libfuse's loop
  pthread_t loop_thread_ GUARDED_BY(mu_) = {};
};

}  // namespace hloop::fuse
