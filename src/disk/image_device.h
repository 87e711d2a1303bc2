// ImageDevice: the read path from "byte offset in the image" to verified
// bytes, the BlockDevice of an image. It is a ChunkReader (chunk content:
// caches, fetch, verify, the one place concurrent fetches collapse) plus
// stages that each do one job, as nbdkit's filters do:
//
//   ReadStats          counts reads and the time readers wait (read_stats.h)
//   ReadAhead          which chunks to fetch ahead of a sequential reader (read_ahead.h)
//   Clusters           a reader's miss also fetches its neighbours (clusters.h)
//   BackgroundFetcher  the threads that fetch for the two above (background_fetcher.h)
//   ProfileRecorder    notes first reads for a boot profile (profile_recorder.h)
//   ProfilePrefetcher  replays a boot profile (profile_prefetcher.h)
//
// Read() splits a range into the pieces the index maps it to (Index::Locate:
// table chunks, the hot chunks of a relaid-out index, zeros): zeros are
// answered without any I/O, the others come from the ChunkReader by slot;
// each stage is told about the read.
//
// Thread model: every method may be called from many threads. The device
// has no lock of its own; each stage has one, and no stage calls another
// with its lock held, so there is no lock order to keep.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "blockdev/block_device.h"
#include "cache/disk_cache.h"
#include "cache/memory_cache.h"
#include "disk/background_fetcher.h"
#include "disk/chunk_reader.h"
#include "disk/clusters.h"
#include "disk/image_version.h"
#include "disk/profile_prefetcher.h"
#include "disk/profile_recorder.h"
#include "disk/read_ahead.h"
#include "disk/read_stats.h"
#include "fetch/source.h"
#include "format/index.h"

namespace hloop::disk {

struct ImageOptions {
  unsigned workers = 16;  // background fetch threads, one chunk in flight each
  // Window ahead of a sequential reader, in chunks. When adaptive, this is
  // only the start: the window follows the measured bandwidth-delay product
  // of the link, up to readahead_max_chunks.
  unsigned readahead_chunks = 16;
  bool adaptive_readahead = true;
  unsigned readahead_max_chunks = 256;
  // A read that has to go to the network also fetches the other chunks of
  // its aligned cluster of this many bytes (in the background), when the
  // link can carry them within the round trip the read waits anyway: a
  // file system keeps related blocks close, so a scattered reader (a boot)
  // soon wants the neighbours. The cluster follows the link like the
  // read-ahead window (ClusterChunks); 0 or one chunk's size: off.
  uint64_t cluster_max_bytes = uint64_t(1) << 20;
  // Threads fetching a boot profile's chunks (each has one fetch in flight).
  unsigned prefetch_threads = 12;
  uint64_t memory_cache_bytes = uint64_t(64) << 20;
  // A chunk whose content does not match its hash is fetched this many more
  // times before the read fails.
  int corrupt_refetches = 3;
};

struct ImageStats {
  uint64_t reads = 0, bytes_read = 0;
  uint64_t chunks_fetched = 0, bytes_fetched = 0;
  uint64_t memory_hits = 0, disk_hits = 0, zero_reads = 0;
  uint64_t hash_mismatches = 0, readahead_issued = 0;
  uint64_t collapsed = 0;         // misses that joined a fetch of their chunk under way
  uint64_t cluster_issued = 0;    // neighbours fetched because a read missed
  unsigned cluster_chunks = 0;    // the current cluster size (1: off)
  unsigned readahead_window = 0;  // chunks: the current sequential stream's window
  unsigned readahead_max = 0;     // chunks: the most it may grow to (from the link)
  // Readers that had to wait for a chunk from the network: how many, how long.
  uint64_t waits = 0, wait_us_total = 0, wait_us_max = 0;
  // Boot profile: chunks listed, done (fetched or found cached), failed,
  // and chunks first read after their prefetch had finished (useful).
  uint64_t prefetch_total = 0, prefetch_done = 0, prefetch_failed = 0, prefetch_useful = 0;
  uint64_t profile_recorded = 0;  // 4 KiB blocks recorded so far (--record-profile)
};

class ImageDevice : public BlockDevice {
 public:
  // `cache` may be null (no disk cache). The device owns everything.
  ImageDevice(format::Index index, std::unique_ptr<fetch::Source> source,
              std::unique_ptr<cache::DiskCache> cache, ImageOptions options);
  ~ImageDevice() override;
  ImageDevice(const ImageDevice&) = delete;
  ImageDevice& operator=(const ImageDevice&) = delete;

  uint64_t size() const override { return reader_.index().image_size(); }
  Status Read(uint64_t offset, size_t len, char* buf) override;
  // Zero chunks are holes; everything else is data.
  Result<std::vector<Extent>> Extents(uint64_t offset, uint64_t len) override;
  // Fetches the chunks of the range in the background at read-ahead
  // priority (NBD CACHE).
  void Prefetch(uint64_t offset, uint64_t len) override;

  // Makes sure chunk i is in the disk cache (or, without one, just fetches
  // and verifies it). Used by `hloop fetch --all`. Joins a read's fetch of
  // the same chunk under way, and a read joins its fetch (ChunkReader).
  Status EnsureCached(uint64_t i);
  // Raw content of chunk i, verified. REQUIRES: !index().entry(i).zero().
  // `priority` orders its fetch against others (readers go first).
  Result<cache::ChunkData> GetChunk(uint64_t i,
                                    fetch::Priority priority = fetch::Priority::kDemand);

  // Boot profile (the papers' DLAHEAD). Fetches slots `chunks` (ProfileSlots
  // of a profile) in this order, in parallel, into the cache (or memory
  // without one), below readers and read-ahead in priority. Chunks already
  // cached are skipped.
  void StartPrefetch(std::vector<uint64_t> chunks);
  // Starts recording which 4 KiB blocks are read, first read first, with
  // the time since this call. The profile is written to `save_to` (if not
  // empty) by SaveProfile and when the device is destroyed.
  void StartRecording(std::string save_to);
  // The recorded profile in the format of docs/format.md.
  std::string ProfileText();
  Status SaveProfile();

  const format::Index& index() const { return reader_.index(); }
  // Which version this is (set once by OpenImage, before the device is shared).
  void set_version(ImageVersion v) { version_ = std::move(v); }
  const ImageVersion& version() const { return version_; }
  cache::DiskCache* disk_cache() { return reader_.disk_cache(); }
  fetch::Source& source() { return reader_.source(); }
  // A snapshot of every stage's counters (each consistent on its own).
  ImageStats stats();

 private:
  // Tells the read-ahead streams about a read and schedules what they plan.
  void ReadAheadFor(const std::vector<format::Segment>& pieces);

  const ImageOptions options_;
  ImageVersion version_;
  ReadStats read_stats_;
  // Declared (so built) before the stages that use it, and destroyed after
  // them. Its demand-miss hook calls clusters_, built later: the hook runs
  // only on a reader's fetch, after construction.
  ChunkReader reader_;
  BackgroundFetcher fetcher_;
  ReadAhead read_ahead_;      // over the table's chunks
  ReadAhead hot_read_ahead_;  // over the hot chunks (numbered from 0)
  Clusters clusters_;
  ProfileRecorder recorder_;
  ProfilePrefetcher prefetcher_;
};

}  // namespace hloop::disk
