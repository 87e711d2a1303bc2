// ImageBytes: where the image writer (image_writer.h) reads the bytes of the
// image it writes. Two implementations: a file or block device on this
// machine (`hloop pack`), and any BlockDevice, e.g. an overlay over an image
// (`hloop commit`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "blockdev/block_device.h"
#include "util/file.h"
#include "util/status.h"

namespace hloop::writer {

class ImageBytes {
 public:
  virtual ~ImageBytes() = default;
  virtual uint64_t size() const = 0;
  // Reads exactly [offset, offset+len) into buf. REQUIRES: offset + len <= size().
  // Thread-safe: the writer's workers read different ranges at once.
  virtual Status ReadAt(uint64_t offset, size_t len, char* buf) = 0;
  // False when [offset, offset+len) is known to read as the same range of
  // the base image the writer was given (so its index entry can be reused
  // without reading the bytes); true when it may differ. Only asked when
  // the writer has a base. Thread-safe.
  virtual bool MayDiffer(uint64_t /*offset*/, uint64_t /*len*/) { return true; }
};

// A regular file or a block device, read with pread. Nothing is known about
// a base: every range may differ.
class FileBytes : public ImageBytes {
 public:
  // Opens `path` read-only and tells the kernel it is read sequentially.
  static Result<std::unique_ptr<FileBytes>> Open(const std::string& path);

  uint64_t size() const override { return size_; }
  // A file that shrank since Open is an IOError naming the path.
  Status ReadAt(uint64_t offset, size_t len, char* buf) override;

 private:
  FileBytes(std::string path, ScopedFd fd, uint64_t size)
      : path_(std::move(path)), fd_(std::move(fd)), size_(size) {}
  const std::string path_;
  const ScopedFd fd_;
  const uint64_t size_;
};

// Any BlockDevice, which must outlive this. `may_differ`, when given,
// answers MayDiffer (e.g. OverlayDevice::Touches for an overlay whose base
// is the writer's base); without it every range may differ.
class DeviceBytes : public ImageBytes {
 public:
  using MayDifferFn = std::function<bool(uint64_t offset, uint64_t len)>;
  explicit DeviceBytes(BlockDevice& device, MayDifferFn may_differ = nullptr)
      : device_(device), may_differ_(std::move(may_differ)) {}

  uint64_t size() const override { return device_.size(); }
  Status ReadAt(uint64_t offset, size_t len, char* buf) override {
    return device_.Read(offset, len, buf);
  }
  bool MayDiffer(uint64_t offset, uint64_t len) override {
    return !may_differ_ || may_differ_(offset, len);
  }

 private:
  BlockDevice& device_;
  const MayDifferFn may_differ_;
};

}  // namespace hloop::writer
