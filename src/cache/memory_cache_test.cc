#include "cache/memory_cache.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace hloop::cache {
namespace {

format::Hash Key(int i) { return format::Sha256("key " + std::to_string(i)); }
ChunkData Value(int i, size_t n = 100) {
  return std::make_shared<const std::string>(n, char('a' + i % 26));
}

TEST(MemoryCacheTest, PutGet) {
  MemoryCache c(1000);
  EXPECT_EQ(c.Get(Key(1)), nullptr);
  EXPECT_FALSE(c.Contains(Key(1)));
  ChunkData v = Value(1);
  c.Put(Key(1), v);
  EXPECT_TRUE(c.Contains(Key(1)));
  ChunkData got = c.Get(Key(1));
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got, v);  // the same shared buffer, no copy
  EXPECT_EQ(c.used_bytes(), 100u);
}

TEST(MemoryCacheTest, EvictsLeastRecentlyUsedByBytes) {
  MemoryCache c(1000);
  for (int i = 0; i < 10; i++) c.Put(Key(i), Value(i));
  EXPECT_EQ(c.used_bytes(), 1000u);
  for (int i = 0; i < 10; i++) EXPECT_TRUE(c.Contains(Key(i))) << i;
  c.Put(Key(10), Value(10));
  EXPECT_FALSE(c.Contains(Key(0)));
  for (int i = 1; i <= 10; i++) EXPECT_TRUE(c.Contains(Key(i))) << i;
  EXPECT_EQ(c.used_bytes(), 1000u);
  // A bigger value pushes out as many as needed.
  c.Put(Key(11), Value(11, 350));
  for (int i = 1; i <= 4; i++) EXPECT_FALSE(c.Contains(Key(i))) << i;
  for (int i = 5; i <= 11; i++) EXPECT_TRUE(c.Contains(Key(i))) << i;
  EXPECT_EQ(c.used_bytes(), 950u);
}

TEST(MemoryCacheTest, GetRefreshesRecency) {
  MemoryCache c(300);
  c.Put(Key(0), Value(0));
  c.Put(Key(1), Value(1));
  c.Put(Key(2), Value(2));
  ASSERT_NE(c.Get(Key(0)), nullptr);  // 0 is now the most recent
  c.Put(Key(3), Value(3));
  EXPECT_TRUE(c.Contains(Key(0)));
  EXPECT_FALSE(c.Contains(Key(1)));
  EXPECT_TRUE(c.Contains(Key(2)));
  EXPECT_TRUE(c.Contains(Key(3)));
}

TEST(MemoryCacheTest, ContainsDoesNotRefreshRecency) {
  MemoryCache c(200);
  c.Put(Key(0), Value(0));
  c.Put(Key(1), Value(1));
  EXPECT_TRUE(c.Contains(Key(0)));
  c.Put(Key(2), Value(2));
  EXPECT_FALSE(c.Contains(Key(0)));
  EXPECT_TRUE(c.Contains(Key(1)));
}

TEST(MemoryCacheTest, OversizeItemIsNotStored) {
  MemoryCache c(1000);
  c.Put(Key(0), Value(0));
  c.Put(Key(1), Value(1, 1001));
  EXPECT_FALSE(c.Contains(Key(1)));
  EXPECT_EQ(c.Get(Key(1)), nullptr);
  // ... and it did not flush what was there.
  EXPECT_TRUE(c.Contains(Key(0)));
  EXPECT_EQ(c.used_bytes(), 100u);
  // Exactly the capacity fits.
  c.Put(Key(2), Value(2, 1000));
  EXPECT_TRUE(c.Contains(Key(2)));
  EXPECT_EQ(c.used_bytes(), 1000u);
}

TEST(MemoryCacheTest, NullIsNotStored) {
  MemoryCache c(1000);
  c.Put(Key(0), nullptr);
  EXPECT_FALSE(c.Contains(Key(0)));
  EXPECT_EQ(c.used_bytes(), 0u);
}

TEST(MemoryCacheTest, SecondPutKeepsOneCopy) {
  MemoryCache c(1000);
  c.Put(Key(0), Value(0));
  c.Put(Key(0), Value(0));
  EXPECT_EQ(c.used_bytes(), 100u);
}

TEST(MemoryCacheTest, EvictedDataStaysValidForHolders) {
  MemoryCache c(100);
  c.Put(Key(0), Value(0));
  ChunkData held = c.Get(Key(0));
  c.Put(Key(1), Value(1));
  EXPECT_FALSE(c.Contains(Key(0)));
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(*held, std::string(100, 'a'));
}

TEST(MemoryCacheTest, ZeroCapacityStoresNothing) {
  MemoryCache c(0);
  c.Put(Key(0), Value(0));
  EXPECT_FALSE(c.Contains(Key(0)));
  EXPECT_EQ(c.used_bytes(), 0u);
}

TEST(MemoryCacheTest, ConcurrentUseKeepsBudget) {
  MemoryCache c(5000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&c, t] {
      for (int n = 0; n < 2000; n++) {
        int i = (n * 7 + t) % 200;
        if (auto d = c.Get(Key(i))) {
          EXPECT_EQ(d->size(), size_t(10 + i));
        } else {
          c.Put(Key(i), Value(i, 10 + i));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(c.used_bytes(), 5000u);
}

}  // namespace
}  // namespace hloop::cache
