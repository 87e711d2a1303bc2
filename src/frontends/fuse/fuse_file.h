// FUSE front end: shows a BlockDevice as one regular file in a directory,
// usable with `losetup` and `mount -o loop`. The file is read-only unless the
// device can write (an overlay): then write(2) goes to Write, fsync(2) to
// Flush, fallocate(2) punching a hole or zeroing a range (what a loop
// device's discard does) to Trim or WriteZeroes. Its size never changes.
//
// Thread model: libfuse's multi-threaded loop calls the device's Read() and
// Write() from several threads at once; the device is thread-safe, this
// layer keeps no mutable state after mounting.
#pragma once

#include <functional>
#include <string>

#include "disk/block_device.h"
#include "util/status.h"

namespace hloop::frontends {

struct FuseOptions {
  std::string mountpoint;
  std::string file_name;     // the one file shown
  // Runs once the mount is live, e.g. to tell a waiting parent process.
  std::function<void()> on_ready;
  bool allow_other = true;   // other users (and root's losetup) may open it
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

// Mounts, serves requests until unmounted or until SIGINT/SIGTERM/SIGHUP
// (which unmount cleanly), then returns. `device` must outlive the call.
Status ServeFuse(disk::BlockDevice& device, const FuseOptions& options);

}  // namespace hloop::frontends
