// ExtFs: the files of an ext2, ext3 or ext4 file system inside a BlockDevice
// (an hloop image), exported read-only over 9P (`hloop 9p --image URL`).
//
// libext2fs reads the file system through an I/O channel on the device
// (p9_extfs_io.h), so only the chunks holding what a client touches are
// fetched: the superblock and group descriptors at open, then the inodes,
// directories and extent trees walked, and the data read.
//
// Thread model: libext2fs is not thread-safe, so every call into it on the
// open file system holds that file system's one mutex. File data does not go through libext2fs: a
// read maps its logical blocks to physical ones under the mutex (an extent file's whole map is
// loaded once per fid; an ext2/ext3 block-mapped file is mapped block by block with ext2fs_bmap2),
// then reads the device WITHOUT the mutex, so reads on many fids fetch their chunks in parallel.
// Metadata reads (lookups, directory blocks, xattrs) are serialized. Lock order: a node's own mutex
// (its open state and extent map) and the file system's mutex are never held together.
//
// What is served: the whole file system from its root inode (".." of the root
// is the root); regular files (holes and unwritten extents read as zeros,
// inline data too), directories, symbolic links (fast, slow and inline),
// device nodes, FIFOs and sockets as attributes only (opening them is
// EOPNOTSUPP, as in DirFs), extended attributes (ENODATA when absent, as the
// host's getxattr says). Every change is EROFS. Encrypted files cannot be
// opened (EOPNOTSUPP): without the key there is nothing sensible to serve.
// Locks: read locks are granted; write locks fail with EBADF, as fcntl does on
// a descriptor opened read-only (and as DirFs's --read-only export answers).
//
// The image must not change while it is served (hloop images never do): the
// file system is read as it is, without replaying its journal.
#pragma once

#include <memory>
#include <string>

#include "blockdev/block_device.h"
#include "frontends/p9/p9_fs.h"
#include "util/status.h"

namespace hloop::p9 {

// Thread-safe (see p9_fs.h).
class ExtFs : public FileSystem {
 public:
  // Opens the file system on `device` read-only; `name` (the image's URL)
  // names it in messages. Fails with "NAME: no ext2/3/4 file system (bad
  // magic)", libext2fs's message (unsupported features, corrupt superblock),
  // the device's error, or when the file system needs journal recovery or is
  // larger than the device (a truncated image).
  static Result<std::shared_ptr<ExtFs>> Open(std::shared_ptr<BlockDevice> device,
                                             const std::string& name);

  int Attach(uint32_t uid, std::shared_ptr<Node>* root) override;
  bool read_only() const override { return true; }

  struct Shared;  // the open file system and its mutex, shared by every node

 private:
  explicit ExtFs(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  std::shared_ptr<Shared> shared_;
};

}  // namespace hloop::p9
