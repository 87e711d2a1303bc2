#include "disk/image_device.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "disk/link_estimate.h"
#include "util/log.h"

namespace hloop::disk {

namespace {

ReadAheadOptions ReadAheadOptionsFor(const ImageOptions& o, const format::Index& index,
                                     bool disk_cache) {
  ReadAheadOptions r;
  r.chunks = o.readahead_chunks;
  r.adaptive = o.adaptive_readahead;
  r.max_chunks = o.readahead_max_chunks;
  // Without a disk cache, read-ahead lives in memory only: never more than
  // a quarter of it.
  if (!disk_cache)
    r.cap_chunks = std::max<uint64_t>(1, o.memory_cache_bytes / 4 / index.chunk_size());
  return r;
}

// The queue of background fetches keeps this many chunks for a read-ahead
// window limit of `limit` chunks.
size_t BacklogFor(unsigned limit) { return 4 * size_t(limit) + 8; }

}  // namespace

ImageDevice::ImageDevice(format::Index index, std::unique_ptr<fetch::Source> source,
                         std::unique_ptr<cache::DiskCache> cache, ImageOptions options)
    : options_(options),
      reader_(std::move(index), std::move(source), std::move(cache), options.memory_cache_bytes,
              options.corrupt_refetches, [this](uint64_t i) { clusters_.OnDemandMiss(i); }),
      fetcher_(reader_, options.workers, BacklogFor(options.readahead_chunks)),
      read_ahead_(ReadAheadOptionsFor(options, reader_.index(), reader_.disk_cache() != nullptr),
                  reader_.index().chunk_count()),
      hot_read_ahead_(
          [&] {
            ReadAheadOptions o =
                ReadAheadOptionsFor(options, reader_.index(), reader_.disk_cache() != nullptr);
            o.ordered = true;  // hot chunks are in the order a boot reads them
            return o;
          }(),
          reader_.index().slot_count() - reader_.index().chunk_count()),
      clusters_(
          reader_, fetcher_,
          options.workers == 0 ? 0 : options.cluster_max_bytes / reader_.index().chunk_size()),
      recorder_(reader_.index()),
      prefetcher_(reader_, options.prefetch_threads) {}

ImageDevice::~ImageDevice() {
  fetcher_.Stop();
  prefetcher_.Stop();
  // Threads may be waiting for a server that is away: fail their fetches.
  reader_.source().Shutdown();
  fetcher_.Join();
  prefetcher_.Join();
  Status st = SaveProfile();
  if (!st.ok()) LogError(st.ToString());
}

ImageStats ImageDevice::stats() {
  const ReadCounts r = read_stats_.counts();
  const ChunkReaderStats c = reader_.stats();
  const ReadAheadStats ra = read_ahead_.stats();
  const ClusterStats cl = clusters_.stats();
  const PrefetchStats p = prefetcher_.stats();
  ImageStats s;
  s.reads = r.reads;
  s.bytes_read = r.bytes;
  s.zero_reads = r.zero_chunks;
  s.waits = r.waits;
  s.wait_us_total = r.wait_us_total;
  s.wait_us_max = r.wait_us_max;
  s.chunks_fetched = c.chunks_fetched;
  s.bytes_fetched = c.bytes_fetched;
  s.memory_hits = c.memory_hits;
  s.disk_hits = c.disk_hits;
  s.hash_mismatches = c.hash_mismatches;
  s.collapsed = c.collapsed;
  s.readahead_issued = fetcher_.issued();
  s.readahead_window = ra.window;
  s.readahead_max = ra.limit;
  s.cluster_issued = cl.issued;
  s.cluster_chunks = cl.chunks;
  s.prefetch_total = p.total;
  s.prefetch_done = p.done;
  s.prefetch_failed = p.failed;
  s.prefetch_useful = p.useful;
  s.profile_recorded = recorder_.recorded();
  return s;
}

Result<cache::ChunkData> ImageDevice::GetChunk(uint64_t i, fetch::Priority priority) {
  if (auto data = reader_.FromMemory(i)) return data;
  if (priority != fetch::Priority::kDemand)
    return reader_.GetMissed(i, priority, Fill::kMemoryAndDisk, nullptr);
  // A reader may wait for the network: measure for how long.
  const auto start = std::chrono::steady_clock::now();
  bool network = false;
  auto result = reader_.GetMissed(i, priority, Fill::kMemoryAndDisk, &network);
  if (network) read_stats_.CountWait(std::chrono::steady_clock::now() - start);
  return result;
}

Status ImageDevice::EnsureCached(uint64_t i) { return reader_.EnsureCached(i); }

void ImageDevice::StartPrefetch(std::vector<uint64_t> chunks) {
  prefetcher_.Start(std::move(chunks));
}

void ImageDevice::StartRecording(std::string save_to) { recorder_.Start(std::move(save_to)); }

std::string ImageDevice::ProfileText() { return recorder_.Text(); }

Status ImageDevice::SaveProfile() { return recorder_.Save(); }

Result<std::vector<Extent>> ImageDevice::Extents(uint64_t offset, uint64_t len) {
  const format::Index& index = reader_.index();
  if (offset >= size()) return Status::InvalidArgument("extents past the end of the image");
  len = std::min<uint64_t>(len, size() - offset);
  std::vector<Extent> out;
  for (uint64_t pos = offset, end = offset + len; pos < end;) {
    const format::Segment seg = index.Locate(pos);
    const uint64_t n = std::min(seg.length, end - pos);
    if (!out.empty() && out.back().zero == seg.zero)
      out.back().length += n;
    else
      out.push_back(Extent{n, seg.zero});
    pos += n;
  }
  return out;
}

void ImageDevice::Prefetch(uint64_t offset, uint64_t len) {
  if (len == 0 || offset >= size()) return;
  std::vector<uint64_t> slots;
  reader_.index().SlotsOf(offset, std::min<uint64_t>(len, size() - offset), &slots);
  for (uint64_t i : slots) fetcher_.Schedule(i);
}

void ImageDevice::ReadAheadFor(const std::vector<format::Segment>& pieces) {
  if (options_.workers == 0 || options_.readahead_chunks == 0) return;
  const format::Index& index = reader_.index();
  // The table's chunks and the hot chunks are two streams: a sequential
  // reader of the image walks the table, a boot walks the hot chunks in the
  // order it first read them, and neither should pull the other's chunks.
  uint64_t table_first = UINT64_MAX, table_last = 0, hot_first = UINT64_MAX, hot_last = 0;
  for (const format::Segment& p : pieces) {
    if (p.zero) continue;
    if (index.is_hot(p.slot)) {
      hot_first = std::min(hot_first, p.slot - index.chunk_count());
      hot_last = std::max(hot_last, p.slot - index.chunk_count());
    } else {
      table_first = std::min(table_first, p.slot);
      table_last = std::max(table_last, p.slot);
    }
  }
  const double per_rtt =
      options_.adaptive_readahead ? ChunksPerRoundTrip(reader_.source(), index) : -1;
  if (table_first != UINT64_MAX) {
    const ReadAheadPlan plan = read_ahead_.OnRead(table_first, table_last, per_rtt);
    fetcher_.set_backlog(BacklogFor(plan.limit));
    // Not the table chunks every byte of which is read from hot chunks.
    for (uint64_t j : plan.chunks)
      if (!index.has_extents() || index.TableChunkUsed(j)) fetcher_.Schedule(j);
  }
  if (hot_first != UINT64_MAX) {
    const ReadAheadPlan plan = hot_read_ahead_.OnRead(hot_first, hot_last, per_rtt);
    fetcher_.set_backlog(BacklogFor(plan.limit));
    for (uint64_t j : plan.chunks) fetcher_.Schedule(index.chunk_count() + j);
  }
}

Status ImageDevice::Read(uint64_t offset, size_t len, char* buf) {
  if (len == 0) return Status::Ok();
  if (offset > size() || len > size() - offset)
    return Status::InvalidArgument("read past the end of the image");
  const format::Index& index = reader_.index();
  // Where each piece of the range lives: a table chunk, a hot chunk or zeros.
  std::vector<format::Segment> pieces;
  for (uint64_t pos = offset, end = offset + len; pos < end;) {
    format::Segment seg = index.Locate(pos);
    seg.length = std::min<uint64_t>(seg.length, end - pos);
    pieces.push_back(seg);
    pos += seg.length;
  }
  recorder_.OnRead(offset, len);
  for (const format::Segment& p : pieces)
    if (!p.zero) prefetcher_.OnRead(p.slot);
  read_stats_.CountRead(len);
  ReadAheadFor(pieces);
  // A read that spans several chunks fetches them in parallel: the workers
  // take all but the first while this thread fetches the first.
  for (size_t k = 1; k < pieces.size(); k++)
    if (!pieces[k].zero && pieces[k].slot != pieces[0].slot) fetcher_.Schedule(pieces[k].slot);
  size_t done = 0;
  for (const format::Segment& p : pieces) {
    const size_t n = size_t(p.length);
    if (p.zero) {
      std::memset(buf + done, 0, n);
      read_stats_.CountZeroChunk();
    } else {
      auto data = GetChunk(p.slot);
      if (!data.ok()) return data.status();
      // The index guarantees this (one hash, one length); never copy past
      // a chunk's end if it did not.
      if (p.slot_offset > (*data)->size() || n > (*data)->size() - p.slot_offset)
        return Status::Corruption("chunk " + format::SlotName(index, p.slot) +
                                  " is shorter than the index says");
      std::memcpy(buf + done, (*data)->data() + p.slot_offset, n);
    }
    done += n;
  }
  return Status::Ok();
}

}  // namespace hloop::disk
