// BlockDevice: a byte-addressed device of fixed size, the one thing every
// front end (FUSE, NBD, 9P) sees. Shaped after nbdkit's plugin interface:
// a read-only device implements size() and Read(); a writable one (the
// copy-on-write overlay) also Write, Flush, Trim and WriteZeroes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "util/status.h"

namespace hloop {

// A run of the device: `length` bytes that are either data or all zeros
// (a hole: reading it costs nothing).
struct Extent {
  uint64_t length = 0;
  bool zero = false;
};

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;
  virtual uint64_t size() const = 0;
  virtual bool can_write() const { return false; }
  // Reads [offset, offset+len) into buf. REQUIRES: offset + len <= size().
  // Every method is thread-safe in every implementation.
  virtual Status Read(uint64_t offset, size_t len, char* buf) = 0;
  // Writes; `fua`: durable before returning, as if followed by Flush.
  virtual Status Write(uint64_t /*offset*/, size_t /*len*/, const char* /*buf*/,
                       bool /*fua*/ = false) {
    return Status::Unsupported("read-only device");
  }
  // Makes every completed write durable (survives a crash of this process
  // and of the machine).
  virtual Status Flush() { return Status::Ok(); }
  // The range reads as zeros afterwards (TRIM, WRITE_ZEROES).
  virtual Status WriteZeroes(uint64_t /*offset*/, uint64_t /*len*/, bool /*fua*/ = false) {
    return Status::Unsupported("read-only device");
  }
  virtual Status Trim(uint64_t offset, uint64_t len, bool fua = false) {
    return WriteZeroes(offset, len, fua);
  }
  // A hint that [offset, offset+len) will be read soon (NBD CACHE): start
  // fetching it in the background. Never fails.
  virtual void Prefetch(uint64_t /*offset*/, uint64_t /*len*/) {}
  // The extents covering [offset, offset+len), in order, summing to at
  // least `len` (the last may run past it). REQUIRES: offset < size().
  virtual Result<std::vector<Extent>> Extents(uint64_t offset, uint64_t len) {
    (void)offset;
    return std::vector<Extent>{Extent{len, false}};
  }
};

}  // namespace hloop
