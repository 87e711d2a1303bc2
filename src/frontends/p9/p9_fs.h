// The file-system side of the 9P server: what a view implements so that the
// server can export it. The views live in their own module (p9fs): DirFs (a
// host directory, frontends/p9fs/p9_dirfs.h) and ExtFs (the ext2/3/4 file
// system inside an image, read-only, frontends/p9fs/p9_extfs.h). This module
// (p9: protocol, sessions, server) knows them only through this interface.
//
// Every operation returns 0 or a Linux errno value, which the server sends
// back in Rlerror unchanged (ENOENT, EEXIST, EROFS...). ENOENT means a name
// that does not exist in the view, and a view returns it directly; a Status
// from a view's storage (a BlockDevice read) becomes an errno through
// util/status_errno.h, where a missing chunk (kNotFound) is EIO, as in FUSE.
//
// A Node is what one fid refers to: a file, plus what the fid has done with it
// (opened it, made it an xattr reader or writer). The server keeps a Node per
// fid and drops it at Tclunk. Thread safety: a backend's methods may be called
// from several threads at once, on different nodes and on the same node (two
// reads in flight on one fid), so a Node guards its own mutable state.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "frontends/p9/p9_proto.h"

namespace hloop::p9 {

class Node {
 public:
  virtual ~Node() = default;

  // Fixed for the node's life (Lcreate switches the node to the new file and
  // changes it).
  virtual Qid qid() = 0;

  // Looks up one name below this directory. `name` comes from the client and
  // is checked here: no '/', no NUL; ".." never rises above the export root.
  // The new node is unopened and not yet attached to any fid.
  virtual int Walk(const std::string& name, std::shared_ptr<Node>* out) = 0;
  // A new unopened node for the same file (Twalk with no names).
  virtual std::shared_ptr<Node> Clone() = 0;

  // Tlopen. `flags` are P9_DOTL flags (p9_proto.h).
  virtual int Open(uint32_t flags) = 0;
  // Tlcreate: creates `name` in this directory and opens it; from now on this
  // node is the new file.
  virtual int Create(const std::string& name, uint32_t flags, uint32_t mode, uint32_t gid,
                     Qid* qid) = 0;
  // Up to `count` bytes at `offset` (fewer only at the end). Works on opened
  // files and on xattr readers (Txattrwalk).
  virtual int Read(uint64_t offset, uint32_t count, std::string* data) = 0;
  virtual int Write(uint64_t offset, const std::string& data, uint32_t* written) = 0;
  // Entries from `offset` (0, or a cookie from an earlier entry) whose packed
  // size (DirentSize) totals at most `budget` bytes. REQUIRES: opened.
  virtual int ReadDir(uint64_t offset, uint32_t budget, std::vector<Dirent>* out) = 0;

  virtual int GetAttr(Rgetattr* attr) = 0;
  virtual int SetAttr(const Tsetattr& req) = 0;
  virtual int StatFs(Rstatfs* out) = 0;
  virtual int ReadLink(std::string* target) = 0;

  // Make an entry in this directory. `gid` is the group the client asks for.
  virtual int Mkdir(const std::string& name, uint32_t mode, uint32_t gid, Qid* qid) = 0;
  virtual int Symlink(const std::string& name, const std::string& target, uint32_t gid,
                      Qid* qid) = 0;
  virtual int Mknod(const std::string& name, uint32_t mode, uint32_t major, uint32_t minor,
                    uint32_t gid, Qid* qid) = 0;
  // A hard link `name` in this directory to `target`'s file.
  virtual int Link(Node& target, const std::string& name) = 0;
  // Trename: moves this node's file to `name` in `dir`.
  virtual int Rename(Node& dir, const std::string& name) = 0;
  // Trenameat, this node being the old directory.
  virtual int RenameAt(const std::string& oldname, Node& newdir, const std::string& newname) = 0;
  // flags: 0 or kAtRemoveDir.
  virtual int UnlinkAt(const std::string& name, uint32_t flags) = 0;
  // Tremove: removes this node's file.
  virtual int Remove() = 0;
  virtual int Fsync(bool datasync) = 0;

  // POSIX byte-range locks; `*status` is a kLock* status.
  virtual int Lock(const Tlock& req, uint8_t* status) = 0;
  virtual int GetLock(const Tgetlock& req, Rgetlock* out) = 0;

  // Txattrwalk: a new node whose Read() returns the value of `name` (or the
  // NUL-separated list of names when `name` is empty); `*size` is its length.
  virtual int XattrWalk(const std::string& name, std::shared_ptr<Node>* out, uint64_t* size) = 0;
  // Txattrcreate: this node becomes a sink for `size` bytes of value, set
  // at Clunk (size 0: remove the attribute).
  virtual int XattrCreate(const std::string& name, uint64_t size, uint32_t flags) = 0;

  // Tclunk (also Tremove and a closed connection): finish what the fid was
  // doing, e.g. set a pending xattr. The node is dropped afterwards whatever
  // this returns.
  virtual int Clunk() = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Tattach: the root of the export, for the user `uid` (kNoUid if the client
  // named no known user). Files this user creates are owned as DirFs's header
  // explains.
  virtual int Attach(uint32_t uid, std::shared_ptr<Node>* root) = 0;
  // Whether every change is refused with EROFS.
  virtual bool read_only() const = 0;
};

}  // namespace hloop::p9
