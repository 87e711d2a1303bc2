// A small in-memory LRU of decompressed chunks, so that many small reads of
// one chunk do not read, hash or decompress it again. Thread-safe: one
// lock, mu_, held for the bookkeeping only.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "cache/disk_cache.h"
#include "format/hash.h"
#include "util/mutex.h"

namespace hloop::cache {

using ChunkData = std::shared_ptr<const std::string>;

class MemoryCache {
 public:
  explicit MemoryCache(uint64_t capacity_bytes) : capacity_(capacity_bytes) {}
  // nullptr when absent.
  ChunkData Get(const format::Hash& h) EXCLUDES(mu_);
  void Put(const format::Hash& h, ChunkData data) EXCLUDES(mu_);
  bool Contains(const format::Hash& h) EXCLUDES(mu_);
  uint64_t used_bytes() EXCLUDES(mu_);

 private:
  struct Entry {
    format::Hash hash;
    ChunkData data;
  };
  const uint64_t capacity_;
  Mutex mu_;
  std::list<Entry> lru_ GUARDED_BY(mu_);
  std::unordered_map<format::Hash, std::list<Entry>::iterator, format::HashKey> map_
      GUARDED_BY(mu_);
  uint64_t used_ GUARDED_BY(mu_) = 0;
};

}  // namespace hloop::cache
