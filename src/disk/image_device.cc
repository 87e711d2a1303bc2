#include "disk/image_device.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "format/chunk_file.h"
#include "util/file.h"
#include "util/log.h"

namespace hloop::disk {

ImageDevice::ImageDevice(format::Index index, std::unique_ptr<fetch::Source> source,
                         std::unique_ptr<cache::DiskCache> cache, ImageOptions options)
    : index_(std::move(index)),
      source_(std::move(source)),
      cache_(std::move(cache)),
      options_(options),
      memory_(options.memory_cache_bytes) {
  chunk_flags_.assign(index_.chunk_count(), 0);
  stats_.readahead_max = options_.readahead_chunks;
  for (unsigned t = 0; t < options_.workers; t++) workers_.emplace_back([this] { WorkerLoop(); });
}

ImageDevice::~ImageDevice() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  // Threads may be waiting for a server that is away: fail their fetches.
  source_->Shutdown();
  for (auto& t : workers_) t.join();
  for (auto& t : prefetchers_) t.join();
  Status st = SaveProfile();
  if (!st.ok()) LogError(st.ToString());
}

ImageStats ImageDevice::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Result<cache::ChunkData> ImageDevice::FetchVerified(uint64_t i, const format::ChunkEntry& e,
                                                    fetch::Priority priority) {
  const std::string rel = format::ChunkPath(e.hash);
  const uint32_t raw_size = index_.chunk_length(i);
  Status last;
  std::string file;
  std::string where = source_->Describe(rel);
  for (int attempt = 0; attempt <= options_.corrupt_refetches; attempt++) {
    int origin = -1;
    Status st = source_->Get(rel, e.stored_size, priority, &file, &origin);
    if (origin >= 0) where = source_->DescribeFrom(rel, origin);
    if (st.ok()) {
      auto raw = std::make_shared<std::string>();
      st = format::DecodeChunk(file, e.hash, raw_size, raw.get());
      if (st.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        stats_.chunks_fetched++;
        stats_.bytes_fetched += file.size();
        return cache::ChunkData(std::move(raw));
      }
    }
    if (!st.IsCorruption()) {
      return st.Annotate("chunk " + std::to_string(i) + " (" + format::ToHex(e.hash) + ")");
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.hash_mismatches++;
    }
    if (origin >= 0) source_->ReportCorrupt(origin);
    last = st;
    LogWarn("chunk " + std::to_string(i) + " from " + where + ": " + st.message() +
            (attempt < options_.corrupt_refetches ? "; fetching it again" : ""));
  }
  LogError("chunk " + std::to_string(i) + " from " + where + ": " + last.message() + "; failing the read");
  return Status::Corruption("chunk " + std::to_string(i) + " from " + where + ": " + last.message());
}

Result<cache::ChunkData> ImageDevice::Load(uint64_t i, const format::ChunkEntry& e, fetch::Priority priority,
                                           bool* fetched) {
  if (cache_) {
    auto raw = std::make_shared<std::string>();
    if (cache_->Get(e.hash, index_.chunk_length(i), raw.get()).ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.disk_hits++;
      return cache::ChunkData(std::move(raw));
    }
  }
  if (fetched) *fetched = true;
  // A reader waits for the network: its neighbours are likely next.
  if (priority == fetch::Priority::kDemand) FetchClusterOf(i);
  auto data = FetchVerified(i, e, priority);
  if (data.ok() && cache_) {
    Status st = cache_->Put(e.hash, **data);
    if (!st.ok() && st.code() != Status::Code::kNoSpace)
      LogWarn("could not cache chunk " + format::ToHex(e.hash) + ": " + st.ToString());
  }
  return data;
}

Result<cache::ChunkData> ImageDevice::GetChunk(uint64_t i, fetch::Priority priority) {
  const format::ChunkEntry e = index_.entry(i);
  if (auto data = memory_.Get(e.hash)) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.memory_hits++;
    return data;
  }
  if (priority != fetch::Priority::kDemand) return GetChunkImpl(i, priority, true, nullptr);
  // A reader may wait for the network: measure for how long.
  auto start = std::chrono::steady_clock::now();
  bool network = false;
  auto result = GetChunkImpl(i, priority, true, &network);
  if (!network) return result;
  uint64_t us = uint64_t(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count());
  std::lock_guard<std::mutex> lock(mu_);
  stats_.waits++;
  stats_.wait_us_total += us;
  stats_.wait_us_max = std::max(stats_.wait_us_max, us);
  return result;
}

Result<cache::ChunkData> ImageDevice::GetChunkImpl(uint64_t i, fetch::Priority priority, bool to_memory,
                                                   bool* network) {
  const format::ChunkEntry e = index_.entry(i);
  std::promise<Result<cache::ChunkData>> promise;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = inflight_.find(e.hash);
    if (it != inflight_.end()) {
      auto f = it->second.future;
      bool more_urgent = int(priority) < int(it->second.priority);
      if (more_urgent) it->second.priority = priority;
      lock.unlock();
      // A reader now waits on what was read-ahead: move its fetch up.
      if (more_urgent) source_->Prioritize(format::ChunkPath(e.hash), priority);
      if (network) *network = true;  // most likely a fetch
      return f.get();
    }
    // The fetch may have finished between the first look and the lock.
    if (auto data = memory_.Get(e.hash)) {
      stats_.memory_hits++;
      return data;
    }
    inflight_.emplace(e.hash, Inflight{promise.get_future().share(), priority});
  }
  Result<cache::ChunkData> result = Load(i, e, priority, network);
  if (result.ok() && to_memory) memory_.Put(e.hash, *result);
  {
    std::lock_guard<std::mutex> lock(mu_);
    inflight_.erase(e.hash);
  }
  promise.set_value(result);
  return result;
}

Status ImageDevice::EnsureCached(uint64_t i) {
  const format::ChunkEntry e = index_.entry(i);
  if (e.zero()) return Status::Ok();
  if (cache_ && cache_->Contains(e.hash)) return Status::Ok();
  auto data = Load(i, e, fetch::Priority::kPrefetch, nullptr);
  return data.status();
}

unsigned ImageDevice::ReadAheadWindow() {
  uint64_t window = options_.readahead_chunks;
  if (options_.adaptive_readahead) {
    // Enough chunks in flight to cover the bandwidth-delay product: each
    // transfer takes a round trip plus its body's time, during which the
    // reader consumes rtt * rate / chunk more chunks. Twice that, as the
    // reader may be faster than one connection.
    double rtt, rate;
    source_->Estimate(&rtt, &rate);
    if (rtt >= 0 && rate > 0) {
      double stored = double(index_.summary().stored_bytes) / double(std::max<uint64_t>(1, index_.summary().unique_chunks));
      stored = std::max(stored, 4096.0);
      window = uint64_t(2 * std::ceil(rtt * rate / stored)) + 4;
      window = std::clamp<uint64_t>(window, 4, options_.readahead_max_chunks);
    }
  }
  // Without a disk cache, read-ahead lives in memory only: never more than
  // a quarter of it.
  if (!cache_)
    window = std::min<uint64_t>(window, std::max<uint64_t>(1, options_.memory_cache_bytes / 4 / index_.chunk_size()));
  return unsigned(window);
}

void ImageDevice::MaybeReadAhead(uint64_t first, uint64_t last) {
  if (options_.workers == 0 || options_.readahead_chunks == 0) return;
  const uint64_t max_window = ReadAheadWindow();
  std::vector<uint64_t> todo;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Readers (the kernel's read-ahead, several FUSE threads) may arrive a
    // little out of order; treat reads near the previous one as sequential.
    bool sequential = first + 2 >= next_expected_ && first <= next_expected_ + 2;
    next_expected_ = last + 1;
    stats_.readahead_max = unsigned(max_window);
    if (!sequential) {
      readahead_until_ = 0;
      window_ = 0;
      return;
    }
    // Like the kernel's read-ahead, start small and double while the reader
    // keeps consuming what was read ahead: a boot reads many short runs,
    // and a full bandwidth-delay window behind each would fetch far more
    // than it reads. A long sequential read reaches the full window soon.
    if (window_ == 0) window_ = std::min<uint64_t>(kInitialReadAhead, max_window);
    window_ = std::min(window_, max_window);
    uint64_t from = std::max(last + 1, readahead_until_);
    uint64_t to = std::min(index_.chunk_count(), last + 1 + window_);
    // Top up in batches so the queue is not touched on every small read.
    if (from + window_ / 2 > to && readahead_until_ > last + 1) return;
    for (uint64_t j = from; j < to; j++) todo.push_back(j);
    readahead_until_ = std::max(readahead_until_, to);
    stats_.readahead_window = unsigned(window_);
    window_ = std::min(window_ * 2, max_window);
  }
  for (uint64_t j : todo) Schedule(j);
}

unsigned ImageDevice::ClusterChunks() {
  const uint64_t max_chunks = options_.cluster_max_bytes / index_.chunk_size();
  if (max_chunks <= 1 || options_.workers == 0) return 1;
  double rtt, rate;
  source_->Estimate(&rtt, &rate);
  if (rtt < 0 || rate <= 0) return 1;  // nothing measured yet: no guessing
  // Chunks the link moves in one round trip; the cluster takes at most half
  // of that, so the neighbours never delay the read that waits. On a LAN
  // this is below two chunks and clusters are off: a miss costs little.
  double stored = double(index_.summary().stored_bytes) / double(std::max<uint64_t>(1, index_.summary().unique_chunks));
  double per_rtt = rtt * rate / std::max(stored, 4096.0);
  uint64_t n = 1;
  while (n * 2 <= max_chunks && double(n * 2) <= per_rtt / 2) n *= 2;
  return unsigned(n);
}

void ImageDevice::FetchClusterOf(uint64_t i) {
  const unsigned n = ClusterChunks();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.cluster_chunks = n;
  }
  if (n <= 1) return;
  const uint64_t start = i / n * n, end = std::min<uint64_t>(index_.chunk_count(), start + n);
  for (uint64_t j = start; j < end; j++) {
    if (j == i) continue;
    const format::ChunkEntry e = index_.entry(j);
    if (e.zero() || (cache_ && cache_->Contains(e.hash))) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.cluster_issued++;
    }
    Schedule(j);
  }
}

void ImageDevice::Schedule(uint64_t i) {
  const format::ChunkEntry e = index_.entry(i);
  if (e.zero() || memory_.Contains(e.hash)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (inflight_.count(e.hash)) return;
    queue_.push_back(i);
    // A reader that jumped away leaves stale work: keep the newest.
    while (queue_.size() > 4 * size_t(stats_.readahead_max) + 8) queue_.pop_front();
    stats_.readahead_issued++;
  }
  cv_.notify_one();
}

void ImageDevice::WorkerLoop() {
  for (;;) {
    uint64_t i;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      i = queue_.front();
      queue_.pop_front();
    }
    auto r = GetChunk(i, fetch::Priority::kReadAhead);  // a reader will retry a failure itself
    (void)r;
  }
}

void ImageDevice::NoteFirstReads(uint64_t first, uint64_t last) {
  std::lock_guard<std::mutex> lock(profile_mu_);
  uint64_t useful = 0;
  for (uint64_t i = first; i <= last; i++) {
    uint8_t& f = chunk_flags_[i];
    if (f & 1) continue;
    f |= 1;
    if (f & 2) useful++;
    if (recording_ && !index_.entry(i).zero()) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - record_start_);
      recorded_.emplace_back(uint64_t(ms.count()), i);
    }
  }
  if (useful || recording_) {
    std::lock_guard<std::mutex> lock2(mu_);
    stats_.prefetch_useful += useful;
    stats_.profile_recorded = recorded_.size();
  }
}

void ImageDevice::StartRecording(std::string save_to) {
  std::lock_guard<std::mutex> lock(profile_mu_);
  recording_ = true;
  record_start_ = std::chrono::steady_clock::now();
  record_path_ = std::move(save_to);
}

Status ImageDevice::SaveProfile() {
  std::string path;
  {
    std::lock_guard<std::mutex> lock(profile_mu_);
    path = record_path_;
  }
  if (path.empty()) return Status::Ok();
  std::string text = ProfileText();
  Status st = WriteFileAtomic(path, text.data(), text.size(), Sync::kFull);
  if (!st.ok()) return st.Annotate("profile");
  LogInfo("profile of " + std::to_string(stats().profile_recorded) + " chunks written to " + path);
  return st;
}

std::string ImageDevice::ProfileText() {
  std::lock_guard<std::mutex> lock(profile_mu_);
  std::string out = "hloop-profile 1\n";
  out += "# image " + format::ToHex(index_.digest()) + " chunk-size " + std::to_string(index_.chunk_size()) +
         " chunks " + std::to_string(index_.chunk_count()) + "\n";
  out += "# ms-since-start chunk-number, in the order of first reads\n";
  for (const auto& [ms, chunk] : recorded_) out += std::to_string(ms) + " " + std::to_string(chunk) + "\n";
  return out;
}

void ImageDevice::StartPrefetch(std::vector<uint64_t> chunks) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!prefetch_list_.empty() || stopping_) return;
    prefetch_list_ = std::move(chunks);
    prefetch_next_ = 0;
    stats_.prefetch_total = prefetch_list_.size();
  }
  unsigned n = std::max(1u, options_.prefetch_threads);
  for (unsigned t = 0; t < n; t++) prefetchers_.emplace_back([this] { PrefetchLoop(); });
}

void ImageDevice::PrefetchLoop() {
  for (;;) {
    uint64_t i;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || prefetch_next_ >= prefetch_list_.size()) return;
      i = prefetch_list_[prefetch_next_++];
    }
    bool ok = true;
    if (i < index_.chunk_count()) {
      const format::ChunkEntry e = index_.entry(i);
      bool have = e.zero() || memory_.Contains(e.hash) || (cache_ && cache_->Contains(e.hash));
      if (!have) {
        {
          std::lock_guard<std::mutex> lock(profile_mu_);
          if (chunk_flags_[i] & 1) have = true;  // already read: too late to help
        }
      }
      if (!have) {
        // With a disk cache the profile goes there and leaves the memory
        // cache to the reader; without one, memory is all there is.
        ok = GetChunkImpl(i, fetch::Priority::kPrefetch, !cache_, nullptr).ok();
        if (ok) {
          std::lock_guard<std::mutex> lock(profile_mu_);
          chunk_flags_[i] |= 2;
        }
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    stats_.prefetch_done++;
    if (!ok) stats_.prefetch_failed++;
  }
}

Result<std::vector<Extent>> ImageDevice::Extents(uint64_t offset, uint64_t len) {
  if (offset >= size()) return Status::InvalidArgument("extents past the end of the image");
  len = std::min<uint64_t>(len, size() - offset);
  const uint64_t cs = index_.chunk_size();
  std::vector<Extent> out;
  uint64_t pos = offset, end = offset + len;
  while (pos < end) {
    uint64_t i = pos / cs;
    uint64_t chunk_end = std::min<uint64_t>(i * cs + index_.chunk_length(i), size());
    uint64_t n = std::min(chunk_end, end) - pos;
    bool zero = index_.entry(i).zero();
    if (!out.empty() && out.back().zero == zero) out.back().length += n;
    else out.push_back(Extent{n, zero});
    pos += n;
  }
  return out;
}

void ImageDevice::Prefetch(uint64_t offset, uint64_t len) {
  if (len == 0 || offset >= size()) return;
  len = std::min<uint64_t>(len, size() - offset);
  const uint64_t cs = index_.chunk_size();
  for (uint64_t i = offset / cs; i <= (offset + len - 1) / cs; i++) Schedule(i);
}

Status ImageDevice::Read(uint64_t offset, size_t len, char* buf) {
  if (len == 0) return Status::Ok();
  if (offset > size() || len > size() - offset)
    return Status::InvalidArgument("read past the end of the image");
  const uint64_t cs = index_.chunk_size();
  const uint64_t first = offset / cs, last = (offset + len - 1) / cs;
  NoteFirstReads(first, last);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.reads++;
    stats_.bytes_read += len;
  }
  MaybeReadAhead(first, last);
  // A read that spans several chunks fetches them in parallel: the workers
  // take all but the first while this thread fetches the first.
  for (uint64_t i = first + 1; i <= last; i++) Schedule(i);
  size_t done = 0;
  for (uint64_t i = first; i <= last; i++) {
    uint64_t chunk_start = i * cs;
    uint64_t from = std::max(offset, chunk_start) - chunk_start;
    uint64_t to = std::min<uint64_t>(offset + len - chunk_start, index_.chunk_length(i));
    size_t n = size_t(to - from);
    format::ChunkEntry e = index_.entry(i);
    if (e.zero()) {
      std::memset(buf + done, 0, n);
      std::lock_guard<std::mutex> lock(mu_);
      stats_.zero_reads++;
    } else {
      auto data = GetChunk(i);
      if (!data.ok()) return data.status();
      std::memcpy(buf + done, (*data)->data() + from, n);
    }
    done += n;
  }
  return Status::Ok();
}

}  // namespace hloop::disk
