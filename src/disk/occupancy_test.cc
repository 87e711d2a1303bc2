#include "disk/occupancy.h"

#include <gtest/gtest.h>

#include <string>

namespace hloop::disk {
namespace {

using format::ChunkEntry;
using format::HotChunk;
using format::ImageExtent;
using format::Index;
using format::kExtentZero;

constexpr uint32_t k4K = 4096;

ChunkEntry Data(const std::string& name, uint32_t stored) {
  return ChunkEntry{.hash = format::Sha256(name), .stored_size = stored, .flags = 0};
}
ChunkEntry Zero() { return ChunkEntry{.flags = format::kEntryFlagZero}; }

// An image of 4 chunks of 4 KiB: A, B, zeros, C. With `layout`, a hot chunk
// H of 2 KiB holds image bytes [100, 1124) and [5000, 6024), and image bytes
// [12288, 12388), inside chunk C, are a zero extent.
Index TestIndex(bool layout, bool b_same_as_a = false) {
  format::IndexBuilder b(4 * k4K, k4K, format::Codec::kZstd);
  b.set_entry(0, Data("A", 1000));
  b.set_entry(1, b_same_as_a ? Data("A", 1000) : Data("B", 2000));
  b.set_entry(2, Zero());
  b.set_entry(3, Data("C", 1500));
  if (layout) {
    format::Layout l;
    l.hot.push_back(HotChunk{.hash = format::Sha256("H"), .stored_size = 600, .raw_size = 2048});
    l.extents.push_back(
        ImageExtent{.image_offset = 100, .length = 1024, .hot = 0, .hot_offset = 0});
    l.extents.push_back(
        ImageExtent{.image_offset = 5000, .length = 1024, .hot = 0, .hot_offset = 1024});
    l.extents.push_back(ImageExtent{.image_offset = 12288, .length = 100, .hot = kExtentZero});
    EXPECT_TRUE(format::ValidateLayout(l, 4 * k4K).ok());
    b.set_layout(l);
  }
  auto ix = Index::Parse(b.Encode(), "test.idx");
  EXPECT_TRUE(ix.ok()) << ix.status().ToString();
  return std::move(ix.value());
}

// The reads the hot chunk was made for.
const ByteRanges kBoot = {{100, 1024}, {5000, 1024}};

TEST(OccupancyTest, TableLayoutFetchesWholeChunksForScatteredReads) {
  const Occupancy o = ComputeOccupancy(TestIndex(false), kBoot);
  EXPECT_EQ(o.bytes_read, 2048u);
  EXPECT_EQ(o.zero_bytes, 0u);
  EXPECT_EQ(o.chunks, 2u);
  EXPECT_EQ(o.hot_chunks, 0u);
  EXPECT_EQ(o.raw_bytes, 2u * k4K);
  EXPECT_EQ(o.stored_bytes, 3000u);
  EXPECT_DOUBLE_EQ(o.occupancy(), 0.25);
  EXPECT_DOUBLE_EQ(o.per_fetched_byte(), 2048.0 / 3000);
}

TEST(OccupancyTest, HotChunkServesTheProfiledReadsAlone) {
  const Occupancy o = ComputeOccupancy(TestIndex(true), kBoot);
  EXPECT_EQ(o.bytes_read, 2048u);
  EXPECT_EQ(o.chunks, 1u);
  EXPECT_EQ(o.hot_chunks, 1u);
  EXPECT_EQ(o.raw_bytes, 2048u);
  EXPECT_EQ(o.stored_bytes, 600u);
  EXPECT_DOUBLE_EQ(o.occupancy(), 1.0);
  EXPECT_DOUBLE_EQ(o.per_fetched_byte(), 2048.0 / 600);
}

TEST(OccupancyTest, OverlappingRangesCountOnceAndThePartPastTheEndIsIgnored) {
  // [100, 600) and [300, 1124) overlap: 1024 distinct bytes, all in H; the
  // last range reaches 616 bytes past the image: 384 bytes of chunk C.
  const Occupancy o =
      ComputeOccupancy(TestIndex(true), {{16000, 1000}, {300, 824}, {100, 500}, {20000, 5}});
  EXPECT_EQ(o.bytes_read, 1024u + 384);
  EXPECT_EQ(o.chunks, 2u);
  EXPECT_EQ(o.hot_chunks, 1u);
  EXPECT_EQ(o.raw_bytes, 2048u + k4K);
  EXPECT_EQ(o.stored_bytes, 600u + 1500);
}

TEST(OccupancyTest, ZeroReadsCostNoFile) {
  // The zero chunk, then the zero extent at the start of chunk C and 100
  // bytes of C after it.
  const Index ix = TestIndex(true);
  Occupancy o = ComputeOccupancy(ix, {{2 * k4K, 100}});
  EXPECT_EQ(o.bytes_read, 100u);
  EXPECT_EQ(o.zero_bytes, 100u);
  EXPECT_EQ(o.chunks, 0u);
  EXPECT_EQ(o.occupancy(), 0.0);
  o = ComputeOccupancy(ix, {{12288, 200}});
  EXPECT_EQ(o.bytes_read, 200u);
  EXPECT_EQ(o.zero_bytes, 100u);
  EXPECT_EQ(o.chunks, 1u);
  EXPECT_EQ(o.raw_bytes, k4K);
  EXPECT_DOUBLE_EQ(o.occupancy(), 100.0 / k4K);
}

TEST(OccupancyTest, ChunksWithTheSameContentAreOneFile) {
  const Occupancy o = ComputeOccupancy(TestIndex(false, /*b_same_as_a=*/true), kBoot);
  EXPECT_EQ(o.chunks, 1u);
  EXPECT_EQ(o.raw_bytes, k4K);
  EXPECT_EQ(o.stored_bytes, 1000u);
}

TEST(OccupancyTest, SummarizeLayoutCountsHotChunksAndMappedShare) {
  const LayoutFigures f = SummarizeLayout(TestIndex(true));
  EXPECT_EQ(f.hot_chunks, 1u);
  EXPECT_EQ(f.hot_raw_bytes, 2048u);
  EXPECT_EQ(f.hot_stored_bytes, 600u);
  EXPECT_EQ(f.extents, 3u);
  EXPECT_EQ(f.zero_extents, 1u);
  EXPECT_EQ(f.mapped_bytes, 2148u);
  EXPECT_DOUBLE_EQ(f.mapped_share(), 2148.0 / (4 * k4K));
  const LayoutFigures none = SummarizeLayout(TestIndex(false));
  EXPECT_EQ(none.hot_chunks, 0u);
  EXPECT_EQ(none.extents, 0u);
  EXPECT_EQ(none.mapped_share(), 0.0);
}

}  // namespace
}  // namespace hloop::disk
