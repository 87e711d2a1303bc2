#include "cache/memory_cache.h"

namespace hloop::cache {

ChunkData MemoryCache::Get(const format::Hash& h) {
  MutexLock lock(&mu_);
  auto it = map_.find(h);
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->data;
}

bool MemoryCache::Contains(const format::Hash& h) {
  MutexLock lock(&mu_);
  return map_.count(h) != 0;
}

void MemoryCache::Put(const format::Hash& h, ChunkData data) {
  if (!data || data->size() > capacity_) return;
  MutexLock lock(&mu_);
  if (auto it = map_.find(h); it != map_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  used_ += data->size();
  lru_.push_front({h, std::move(data)});
  map_[h] = lru_.begin();
  while (used_ > capacity_ && !lru_.empty()) {
    used_ -= lru_.back().data->size();
    map_.erase(lru_.back().hash);
    lru_.pop_back();
  }
}

uint64_t MemoryCache::used_bytes() {
  MutexLock lock(&mu_);
  return used_;
}

}  // namespace hloop::cache
