#include "disk/chunk_reader.h"

#include "format/chunk_file.h"
#include "util/log.h"

namespace hloop::disk {

ChunkReader::ChunkReader(format::Index index, std::unique_ptr<fetch::Source> source,
                         std::unique_ptr<cache::DiskCache> cache, uint64_t memory_cache_bytes,
                         int corrupt_refetches, DemandMissHook on_demand_miss)
    : index_(std::move(index)),
      source_(std::move(source)),
      cache_(std::move(cache)),
      corrupt_refetches_(corrupt_refetches),
      on_demand_miss_(std::move(on_demand_miss)),
      memory_(memory_cache_bytes) {}

ChunkReaderStats ChunkReader::stats() {
  MutexLock lock(&mu_);
  return stats_;
}

Result<cache::ChunkData> ChunkReader::FetchVerified(uint64_t i, const format::ChunkEntry& e,
                                                    fetch::Priority priority) {
  const std::string rel = format::ChunkPath(e.hash);
  const uint32_t raw_size = index_.chunk_length(i);
  Status last;
  std::string file;
  std::string where = source_->Describe(rel);
  for (int attempt = 0; attempt <= corrupt_refetches_; attempt++) {
    int origin = -1;
    Status st = source_->Get(rel, e.stored_size, priority, &file, &origin);
    if (origin >= 0) where = source_->DescribeFrom(rel, origin);
    if (st.ok()) {
      auto raw = std::make_shared<std::string>();
      st = format::DecodeChunk(file, e.hash, raw_size, raw.get());
      if (st.ok()) {
        MutexLock lock(&mu_);
        stats_.chunks_fetched++;
        stats_.bytes_fetched += file.size();
        return cache::ChunkData(std::move(raw));
      }
    }
    if (!st.IsCorruption()) {
      return st.Annotate(format::SlotName(index_, i) + " (" + format::ToHex(e.hash) + ")");
    }
    {
      MutexLock lock(&mu_);
      stats_.hash_mismatches++;
    }
    if (origin >= 0) source_->ReportCorrupt(origin);
    last = st;
    LogWarn(format::SlotName(index_, i) + " from " + where + ": " + st.message() +
            (attempt < corrupt_refetches_ ? "; fetching it again" : ""));
  }
  LogError(format::SlotName(index_, i) + " from " + where + ": " + last.message() +
           "; failing the read");
  return Status::Corruption(format::SlotName(index_, i) + " from " + where + ": " + last.message());
}

Result<cache::ChunkData> ChunkReader::Load(uint64_t i, const format::ChunkEntry& e,
                                           fetch::Priority priority, bool* fetched) {
  if (cache_) {
    auto raw = std::make_shared<std::string>();
    if (cache_->Get(e.hash, index_.chunk_length(i), raw.get()).ok()) {
      MutexLock lock(&mu_);
      stats_.disk_hits++;
      return cache::ChunkData(std::move(raw));
    }
  }
  if (fetched) *fetched = true;
  if (priority == fetch::Priority::kDemand && on_demand_miss_) on_demand_miss_(i);
  auto data = FetchVerified(i, e, priority);
  if (data.ok() && cache_) {
    Status st = cache_->Put(e.hash, **data);
    if (!st.ok() && st.code() != Status::Code::kNoSpace)
      LogWarn("could not cache chunk " + format::ToHex(e.hash) + ": " + st.ToString());
  }
  return data;
}

cache::ChunkData ChunkReader::FromMemory(uint64_t i) {
  cache::ChunkData data = memory_.Get(index_.entry(i).hash);
  if (data) {
    MutexLock lock(&mu_);
    stats_.memory_hits++;
  }
  return data;
}

Result<cache::ChunkData> ChunkReader::Get(uint64_t i, fetch::Priority priority) {
  if (auto data = FromMemory(i)) return data;
  return GetMissed(i, priority, Fill::kMemoryAndDisk, nullptr);
}

Result<cache::ChunkData> ChunkReader::GetMissed(uint64_t i, fetch::Priority priority, Fill fill,
                                                bool* network) {
  const format::ChunkEntry e = index_.entry(i);
  std::promise<Result<cache::ChunkData>> promise;
  {
    MutexLock lock(&mu_);
    auto it = inflight_.find(e.hash);
    if (it != inflight_.end()) {
      stats_.collapsed++;
      auto f = it->second.future;
      bool more_urgent = int(priority) < int(it->second.priority);
      if (more_urgent) it->second.priority = priority;
      lock.Unlock();
      // A reader now waits on what was read ahead: move its fetch up.
      if (more_urgent) source_->Prioritize(format::ChunkPath(e.hash), priority);
      if (network) *network = true;  // most likely a fetch
      return f.get();
    }
    // The fetch may have finished between the caller's look and the lock.
    if (fill == Fill::kMemoryAndDisk || !cache_) {
      if (auto data = memory_.Get(e.hash)) {
        stats_.memory_hits++;
        return data;
      }
    }
    inflight_.emplace(e.hash, Inflight{promise.get_future().share(), priority});
  }
  Result<cache::ChunkData> result = Load(i, e, priority, network);
  if (result.ok() && fill == Fill::kMemoryAndDisk) memory_.Put(e.hash, *result);
  {
    MutexLock lock(&mu_);
    inflight_.erase(e.hash);
  }
  promise.set_value(result);
  return result;
}

Status ChunkReader::EnsureCached(uint64_t i) {
  const format::ChunkEntry e = index_.entry(i);
  if (e.zero()) return Status::Ok();
  if (cache_ && cache_->Contains(e.hash)) return Status::Ok();
  return GetMissed(i, fetch::Priority::kPrefetch, Fill::kDiskOnly, nullptr).status();
}

bool ChunkReader::InMemory(uint64_t i) { return memory_.Contains(index_.entry(i).hash); }

bool ChunkReader::InDiskCache(uint64_t i) {
  return cache_ && cache_->Contains(index_.entry(i).hash);
}

bool ChunkReader::WorthFetching(uint64_t i) {
  const format::ChunkEntry e = index_.entry(i);
  if (e.zero() || memory_.Contains(e.hash)) return false;
  MutexLock lock(&mu_);
  return inflight_.count(e.hash) == 0;
}

}  // namespace hloop::disk
