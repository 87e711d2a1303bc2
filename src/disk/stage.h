// Staging a version: every distinct chunk file a reader of the whole image
// needs into the disk cache (with a layout: the hot chunks, and the table
// chunks not entirely covered by extents), counting what was fetched and what was already there.
// `hloop fetch
// --all` and `--update` run it; after it, opening the same version reads
// nothing from the network but its small files (index, mirror list).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "disk/image_device.h"
#include "util/status.h"

namespace hloop::disk {

struct StageOptions {
  unsigned jobs = 8;  // chunks fetched in parallel (at least 1)
  // Called on the caller's thread about every 200 ms while chunks are
  // staged: raw bytes of the distinct chunks done so far, and in all. May
  // be empty.
  std::function<void(uint64_t done_bytes, uint64_t total_bytes)> progress;
};

// What StageImage found and did. Bytes are "raw" (the chunks' content, as
// the image holds it) or "stored" (the chunk files, as they cross the wire).
struct StageReport {
  uint64_t chunks = 0;  // distinct chunk files a reader of the whole image needs
  uint64_t raw_bytes = 0, stored_bytes = 0;
  // Already in the disk cache before the call.
  uint64_t cached_chunks = 0, cached_raw_bytes = 0, cached_stored_bytes = 0;
  // Fetched from the source (verified, then stored in the disk cache).
  uint64_t fetched_chunks = 0, fetched_raw_bytes = 0, fetched_stored_bytes = 0;
};

// Makes every distinct chunk file needed to read all of `device`'s image
// (see DistinctChunks in stage.cc: hot chunks, then the table chunks the
// extents do not cover entirely) present in its disk
// cache: a chunk already there is counted and not fetched; the others are
// fetched (joining any fetch of the same chunk under way), verified and
// stored. Fails (naming the chunk: number, hash, URL, cause) if a chunk
// cannot be fetched, and if a chunk is not in the cache at the end (the
// cache's quota or the disk's reserve left no room); the report is then
// lost. REQUIRES: device.disk_cache() != nullptr (else InvalidArgument).
// `url` is the image's URL, for messages; which version is staged is the
// device's (ImageDevice::version()).
Result<StageReport> StageImage(ImageDevice& device, const std::string& url,
                               const StageOptions& options);

}  // namespace hloop::disk
