// OverlayDevice: a writable BlockDevice made of a read-only base device (the
// ImageDevice of one image version) and an overlay file that keeps every
// block written, at 4 KiB granularity (nbdkit's cow filter, made persistent
// and crash-safe; layout in overlay_file.h and docs/format.md).
//
// Reads of written blocks come from the overlay file, of zeroed blocks from
// nowhere, the rest from the base. Writes of any alignment are split into an
// unaligned head, an aligned body and an unaligned tail; a partial block
// that is not yet in the overlay is first read from the base (read-modify-
// write). Nothing is ever written to the base, its store or its cache.
//
// Durability: a write reaches the page cache of the overlay file; Flush()
// (and a write with fua) makes every write completed before it survive a
// crash of the process or of the machine. A crash may lose writes not yet
// flushed, block by block, as a disk may: a block new to the overlay then
// reads as it did before; one already in it (changed in place) as before or
// after. Never anything else: the map on disk only names data that is there.
//
// Thread model: every method may be called from many threads at once.
// Writes to blocks in different 64 KiB groups proceed in parallel (a lock
// per group, striped); the block map has its own short-held mutex; flushes
// run one at a time. Lock order: a stripe (several in ascending order), or
// flush_mu_, before map_mu_; never a stripe and flush_mu_ together.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blockdev/block_device.h"
#include "format/hash.h"
#include "overlay/overlay_file.h"
#include "util/file.h"
#include "util/mutex.h"
#include "util/status.h"

namespace hloop::overlay {

// The image version an overlay belongs to.
struct BaseIdentity {
  format::Hash digest{};  // format::Index::digest() of its index
  std::string name;       // for people (messages, `hloop overlay info`)
};

struct OverlayOptions {
  // Create the file when it does not exist (bound to the given base).
  bool create = true;
  // Accept a base whose digest differs from the one recorded in the file.
  // The image size must still match.
  bool force = false;
};

struct OverlayStats {
  uint64_t data_blocks = 0;  // blocks whose data the overlay holds
  uint64_t zero_blocks = 0;  // blocks written as zeros
};

class OverlayDevice : public BlockDevice {
 public:
  // Opens (or creates) the overlay at `path` over `base`, which must outlive
  // the device. An existing overlay must have been made on `base_id.digest`
  // (unless options.force) and for base.size() bytes.
  static Result<std::unique_ptr<OverlayDevice>> Open(const std::string& path, BlockDevice& base,
                                                     const BaseIdentity& base_id,
                                                     const OverlayOptions& options);
  // Flushes (best effort; a failure is logged).
  ~OverlayDevice() override;
  OverlayDevice(const OverlayDevice&) = delete;
  OverlayDevice& operator=(const OverlayDevice&) = delete;

  uint64_t size() const override { return header_.image_size; }
  bool can_write() const override { return true; }
  Status Read(uint64_t offset, size_t len, char* buf) override;
  Status Write(uint64_t offset, size_t len, const char* buf, bool fua = false) override;
  Status Flush() override EXCLUDES(flush_mu_, map_mu_);
  // Whole blocks become zero blocks (their data, if any, is punched out of
  // the file); partial blocks at either end are written with zeros.
  Status WriteZeroes(uint64_t offset, uint64_t len, bool fua = false) override;
  // Passed to the base.
  void Prefetch(uint64_t offset, uint64_t len) override;
  // Zero blocks are holes, blocks with data are data, the rest is whatever
  // the base says.
  Result<std::vector<Extent>> Extents(uint64_t offset, uint64_t len) override;

  const Header& header() const { return header_; }
  const std::string& path() const { return path_; }
  OverlayStats stats() EXCLUDES(map_mu_);
  // The state of block b right now (flushed or not). REQUIRES: b < block count.
  BlockState state(uint64_t b) EXCLUDES(map_mu_);
  // Whether any block of [offset, offset+len) differs from the base.
  bool Touches(uint64_t offset, uint64_t len) EXCLUDES(map_mu_);

 private:
  OverlayDevice(std::string path, ScopedFd fd, Header header, std::vector<uint8_t> map,
                MapCounts counts, BlockDevice& base);

  // A lock on every block group that [first, last] (blocks) touches, taken in
  // ascending order so that two writers never deadlock.
  class RangeLock;
  static constexpr unsigned kStripes = 256;
  static constexpr unsigned kGroupShift = 4;  // 16 blocks (64 KiB) share a stripe

  // Writes bytes [offset, offset+len) of block b, which it covers only in
  // part: with `buf` null, zeros. REQUIRES: the block's stripe is held.
  Status WritePartialLocked(uint64_t b, uint64_t offset, size_t len, const char* buf);
  // Writes whole blocks [first, last] with `buf` (null: zero blocks).
  Status WriteWhole(uint64_t first, uint64_t last, const char* buf);
  Status WriteRange(uint64_t offset, uint64_t len, const char* buf);
  // Records the new state of blocks [first, last] in the map (memory only;
  // Flush writes it). Call after their data is in the file.
  void SetStates(uint64_t first, uint64_t last, BlockState s) EXCLUDES(map_mu_);
  uint64_t BlockEnd(uint64_t b) const {
    return std::min<uint64_t>((b + 1) * kBlockSize, header_.image_size);
  }
  uint64_t DataPos(uint64_t image_offset) const { return header_.data_offset + image_offset; }

  const std::string path_;
  const ScopedFd fd_;
  const Header header_;
  BlockDevice& base_;

  // Taken before map_mu_ (which the analysis cannot see through the array).
  std::array<Mutex, kStripes> stripes_;

  Mutex flush_mu_ ACQUIRED_BEFORE(map_mu_);  // one Flush at a time; held for its whole length
  Mutex map_mu_;
  std::vector<uint8_t> map_ GUARDED_BY(map_mu_);          // the current map, in the file's encoding
  std::vector<uint8_t> dirty_pages_ GUARDED_BY(map_mu_);  // 1 for map pages not yet written
  MapCounts counts_ GUARDED_BY(map_mu_);

  // Bumped after every write that reached the file; a flush with nothing new
  // to sync is free.
  std::atomic<uint64_t> writes_{0};
  uint64_t flushed_writes_ GUARDED_BY(flush_mu_) = 0;
  bool broken_ GUARDED_BY(flush_mu_) = false;  // a sync failed; no flush can succeed
};

}  // namespace hloop::overlay
