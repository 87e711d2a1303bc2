#include "disk/stage.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <unordered_set>
#include <vector>

#include "util/mutex.h"
#include "util/size.h"

namespace hloop::disk {

namespace {

// The slots a reader of the whole image needs, one per distinct chunk file:
// the hot chunks of a layout (first: a boot reads them first), then the
// non-zero table chunks in image order, except those whose every byte the
// extents map elsewhere (a reader never fetches them).
std::vector<uint64_t> DistinctChunks(const format::Index& index) {
  std::vector<uint64_t> out;
  std::unordered_set<format::Hash, format::HashKey> seen;
  for (uint64_t i = index.chunk_count(); i < index.slot_count(); i++)
    if (seen.insert(index.entry(i).hash).second) out.push_back(i);
  for (uint64_t i = 0; i < index.chunk_count(); i++) {
    const format::ChunkEntry e = index.entry(i);
    if (e.zero() || (index.has_extents() && !index.TableChunkUsed(i))) continue;
    if (seen.insert(e.hash).second) out.push_back(i);
  }
  return out;
}

}  // namespace

Result<StageReport> StageImage(ImageDevice& device, const std::string& url,
                               const StageOptions& options) {
  cache::DiskCache* cache = device.disk_cache();
  if (cache == nullptr)
    return Status::InvalidArgument("staging " + url + " needs a disk cache to stage into");
  const format::Index& index = device.index();
  StageReport report;
  const std::vector<uint64_t> chunks = DistinctChunks(index);
  report.chunks = chunks.size();
  for (uint64_t i : chunks) {
    report.raw_bytes += index.chunk_length(i);
    report.stored_bytes += index.entry(i).stored_size;
  }

  std::atomic<size_t> next{0};
  std::atomic<uint64_t> done_bytes{0};
  Mutex mu;
  StageReport counts;   // guarded by mu: the cached_* and fetched_* figures
  uint64_t failed = 0;  // guarded by mu
  Status first_error;   // guarded by mu
  auto worker = [&] {
    for (size_t k; (k = next++) < chunks.size();) {
      const uint64_t i = chunks[k];
      const format::ChunkEntry e = index.entry(i);
      const uint64_t raw = index.chunk_length(i);
      // Only this call stages this hash (the chunks are distinct), so a
      // chunk in the cache now is one the fetch below would not fetch.
      const bool was_cached = cache->Contains(e.hash);
      Status st = was_cached ? Status::Ok() : device.EnsureCached(i);
      done_bytes += raw;
      MutexLock lock(&mu);
      if (!st.ok()) {
        if (failed++ == 0) first_error = st;
      } else if (was_cached) {
        counts.cached_chunks++;
        counts.cached_raw_bytes += raw;
        counts.cached_stored_bytes += e.stored_size;
      } else {
        counts.fetched_chunks++;
        counts.fetched_raw_bytes += raw;
        counts.fetched_stored_bytes += e.stored_size;
      }
    }
  };
  std::vector<std::thread> pool;
  const size_t threads =
      std::min<size_t>(std::max(1u, options.jobs), std::max<size_t>(1, chunks.size()));
  for (size_t t = 0; t < threads; t++) pool.emplace_back(worker);
  if (options.progress) {
    while (next < chunks.size()) {
      options.progress(done_bytes, report.raw_bytes);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  for (auto& t : pool) t.join();
  if (options.progress) options.progress(done_bytes, report.raw_bytes);

  if (failed > 0)
    return first_error.Annotate(std::to_string(failed) + " of " + std::to_string(chunks.size()) +
                                " chunks of " + url + " could not be staged; first");
  // A chunk the quota had no room for, or one evicted for a later chunk of
  // the same image, would be fetched again when the image is read.
  uint64_t missing = 0, missing_bytes = 0;
  std::string first_missing;
  for (uint64_t i : chunks) {
    const format::Hash& h = index.entry(i).hash;
    if (cache->Contains(h)) continue;
    if (missing++ == 0) first_missing = format::SlotName(index, i) + " (" + format::ToHex(h) + ")";
    missing_bytes += index.chunk_length(i);
  }
  if (missing > 0)
    return Status::NoSpace(std::to_string(missing) + " of " + std::to_string(chunks.size()) +
                           " chunks of " + url + " (" + FormatSize(missing_bytes) +
                           ") are not in the cache " + cache->options().dir +
                           " after staging (first: " + first_missing +
                           "): its size limit or the disk's reserve left no room for them (" +
                           FormatSize(report.raw_bytes) + " needed, limit " +
                           FormatSize(cache->options().max_bytes) + ")");
  report.cached_chunks = counts.cached_chunks;
  report.cached_raw_bytes = counts.cached_raw_bytes;
  report.cached_stored_bytes = counts.cached_stored_bytes;
  report.fetched_chunks = counts.fetched_chunks;
  report.fetched_raw_bytes = counts.fetched_raw_bytes;
  report.fetched_stored_bytes = counts.fetched_stored_bytes;
  return report;
}

}  // namespace hloop::disk
