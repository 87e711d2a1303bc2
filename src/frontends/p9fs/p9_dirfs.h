// DirFs: a host directory as a 9P file system (`hloop 9p --export DIR`).
//
// Confinement. The client may be hostile, so nothing outside DIR is ever
// reached:
// - every node holds an O_PATH descriptor of its file, opened relative to its
//   parent's descriptor, one validated name at a time (no '/', no NUL, not
//   "." or ".."), with O_NOFOLLOW and openat2(RESOLVE_BENEATH |
//   RESOLVE_NO_MAGICLINKS); a symbolic link is a node of its own and is never
//   followed: walking below it fails with ENOTDIR, opening it with ELOOP;
// - ".." is resolved from the node's descriptor and stops at the root;
// - every change is an *at() call on a directory node's descriptor with a
//   validated name (AT_SYMLINK_NOFOLLOW where the call follows otherwise);
//   hard links are made only between nodes, which are all inside;
// - files are opened through /proc/self/fd/N of the node (no path is
//   resolved again), and only regular files and directories are opened;
//   device nodes are never created (a guest could make one for a host disk).
// Processes on the host that move directories out of DIR while a client holds
// them are not defended against.
//
// Ownership. Running as root, a created file, directory, node or link is
// chowned to the attaching user's uid (Tattach n_uname) and the gid the client
// sends with the request, so files look as they would on a local disk. Not
// running as root, they belong to the server's user. Permissions are not
// checked as the client's users: the Linux client checks them itself from
// the attributes (access=user), and whoever reaches the server can do what the
// server's user can inside DIR, setuid files included (host users should not
// run programs from an export that is not mounted nosuid). Modes are applied minus the process
// umask
// (`hloop 9p` sets it to 0: the client has already applied its own).
// Extended attributes can be set only in the user. and system.posix_acl_
// namespaces (not security.capability, for instance).
//
// Thread safety: as p9_fs.h says; each node guards its state with its own
// mutex. Lock order: the export's device table mutex (qid paths) is a leaf,
// taken with a node's mutex held or not, and nothing is taken under it.
#pragma once

#include <memory>
#include <string>

#include "frontends/p9/p9_fs.h"
#include "util/status.h"

namespace hloop::p9 {

struct DirFsOptions {
  bool read_only = false;  // refuse every change with EROFS
};

// Thread-safe (see p9_fs.h).
class DirFs : public FileSystem {
 public:
  // Opens `dir` (which must be a directory). Needs /proc mounted.
  static Result<std::shared_ptr<DirFs>> Open(const std::string& dir, const DirFsOptions& options);

  int Attach(uint32_t uid, std::shared_ptr<Node>* root) override;
  bool read_only() const override;

  struct Shared;  // what every node of the export shares (root, options)

 private:
  explicit DirFs(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  std::shared_ptr<Shared> shared_;
};

}  // namespace hloop::p9
