// A libext2fs I/O channel over an hloop BlockDevice: libext2fs reads an
// image's metadata (superblock, group descriptors, inodes, directories,
// extent trees, xattr blocks) through the device, so only the chunks it
// touches are fetched. Read-only: every write fails with EXT2_ET_RO_FILSYS.
//
// libext2fs opens a channel by name (ext2fs_open2's first argument, handed to
// the io_manager's open()); there is no way to pass a pointer. So a device is
// registered under a generated name ("hloop-dev:N") while an ExtIoName lives,
// and open() looks that name up. The channel then holds its own reference to
// the device: the name is only needed while ext2fs_open2 runs.
//
// Thread safety: the registry is thread-safe. A channel is used by libext2fs
// only, which its caller serializes (p9_extfs.cc holds one mutex around every
// libext2fs call).
#pragma once

#include <memory>
#include <string>

#include "blockdev/block_device.h"
#include "util/status.h"

struct struct_io_manager;  // <ext2fs/ext2_io.h>

namespace hloop::p9 {

// The io_manager to pass to ext2fs_open2 with an ExtIoName's name().
struct struct_io_manager* ExtIoManager();

class ExtIoName {
 public:
  explicit ExtIoName(std::shared_ptr<BlockDevice> device);
  ~ExtIoName();  // unregisters the name; channels already open keep working
  ExtIoName(const ExtIoName&) = delete;
  ExtIoName& operator=(const ExtIoName&) = delete;

  const std::string& name() const { return name_; }
  // Why the last failed device read of a channel opened by this name failed
  // (Ok if none did). libext2fs only passes on an errcode; this keeps the
  // device's own message ("chunk 12 from http://...: ...").
  Status last_error() const;

  struct Entry;  // the device and its last error, shared with open channels

 private:
  std::string name_;
  std::shared_ptr<Entry> entry_;
};

}  // namespace hloop::p9
