// BlockDevice: a byte-addressed device of fixed size, the one thing every
// front end (FUSE, NBD, 9P) sees. Shaped after nbdkit's plugin interface.
#pragma once

#include <cstddef>
#include <cstdint>

#include "util/status.h"

namespace hloop::disk {

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;
  virtual uint64_t size() const = 0;
  virtual bool can_write() const { return false; }
  // Reads [offset, offset+len) into buf. REQUIRES: offset + len <= size().
  // Thread-safe in every implementation.
  virtual Status Read(uint64_t offset, size_t len, char* buf) = 0;
  virtual Status Write(uint64_t /*offset*/, size_t /*len*/, const char* /*buf*/) {
    return Status::Unsupported("read-only device");
  }
  virtual Status Flush() { return Status::Ok(); }
};

}  // namespace hloop::disk
