#include "writer/layout_writer.h"

#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "format/chunk_file.h"
#include "testing/store_util.h"
#include "testing/temp_dir.h"
#include "writer/image_writer.h"

namespace hloop::writer {
namespace {

using format::ByteRange;
using hloop::testing::FirstDifference;
using hloop::testing::LoadStoreIndex;
using hloop::testing::RandomBytes;
using hloop::testing::ScopedTempDir;

constexpr uint32_t kCs = 16384;  // 4 blocks per chunk
constexpr uint64_t kB = kLayoutBlock;

class StringBytes : public ImageBytes {
 public:
  explicit StringBytes(std::string s) : s_(std::move(s)) {}
  uint64_t size() const override { return s_.size(); }
  Status ReadAt(uint64_t offset, size_t len, char* buf) override {
    s_.copy(buf, len, offset);
    return Status::Ok();
  }
  bool MayDiffer(uint64_t, uint64_t) override { return true; }

 private:
  const std::string s_;
};

// The image as a reader sees it through `index`: every segment Locate
// gives, read from the store's chunk files (decoded and verified).
std::string ReadThrough(const format::Index& index, const store::LocalStore& store) {
  std::string out;
  for (uint64_t pos = 0; pos < index.image_size();) {
    const format::Segment seg = index.Locate(pos);
    if (seg.zero) {
      out.append(seg.length, '\0');
    } else {
      const format::ChunkEntry e = index.entry(seg.slot);
      auto file = store.ReadChunk(e.hash);
      EXPECT_TRUE(file.ok()) << file.status().ToString();
      std::string raw;
      Status st = format::DecodeChunk(*file, e.hash, index.chunk_length(seg.slot), &raw);
      EXPECT_TRUE(st.ok()) << st.ToString();
      out.append(raw, seg.slot_offset, seg.length);
    }
    pos += seg.length;
  }
  return out;
}

// 10 chunks of random data, a chunk of zeros (5), a zero block inside
// chunk 2 (block 9), and a last partial block of 1000 bytes.
std::string TestImage() {
  std::string img = RandomBytes(11 * kCs + 1000, 7);
  std::fill_n(img.begin() + 5 * kCs, kCs, '\0');
  std::fill_n(img.begin() + 9 * kB, kB, '\0');
  return img;
}

class LayoutWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::LocalStore::Open(tmp_.Join("store"), true);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_.emplace(std::move(s.value()));
  }
  Result<WriteSummary> Write(const std::string& image, const std::string& name,
                             const LayoutPlan* plan) {
    StringBytes bytes(image);
    WriteOptions o;
    o.name = name;
    o.chunk_size = kCs;
    o.threads = 2;
    o.layout = plan;
    return WriteImage(bytes, *store_, o);
  }
  ScopedTempDir tmp_;
  std::optional<store::LocalStore> store_;
};

TEST(LayoutPlanTest, AddToPlanKeepsTheFirstProfilesBytesAndClipsToTheImage) {
  LayoutPlan plan;
  AddToPlan({{8 * kB, 2 * kB}, {0, kB}}, 100 * kB, &plan);
  // The second profile overlaps both ranges, and runs past the image's end.
  AddToPlan({{0, 3 * kB}, {9 * kB, 2 * kB}, {99 * kB, 10 * kB}, {200 * kB, kB}}, 100 * kB, &plan);
  EXPECT_EQ(plan.ranges,
            (std::vector<ByteRange>{
                {8 * kB, 2 * kB}, {0, kB}, {kB, 2 * kB}, {10 * kB, kB}, {99 * kB, kB}}));
  EXPECT_FALSE(plan.keep_zero_blocks);
}

TEST_F(LayoutWriterTest, PacksTheProfiledBlocksInOrderAndReadsBackIdentical) {
  const std::string img = TestImage();
  LayoutPlan plan;
  // A boot's order: scattered blocks, a run crossing a chunk edge, the zero
  // block, blocks of the zero chunk, the partial last block, then chunk 0.
  AddToPlan({{7 * kCs + kB, kB},
             {3 * kCs - kB, 3 * kB},
             {9 * kB, kB},
             {5 * kCs, 2 * kB},
             {11 * kCs, 1000},
             {0, kCs}},
            img.size(), &plan);
  auto sum = Write(img, "hot", &plan);
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  const format::Index ix = LoadStoreIndex(*store_, "hot");
  ASSERT_TRUE(ix.has_extents());
  EXPECT_EQ(FirstDifference(ReadThrough(ix, *store_), img), "");

  // Packed: 1 + 3 + 1000 bytes + 4 blocks; the zero block is a zero extent
  // and the zero chunk's blocks cost nothing (no extent at all).
  const uint64_t packed = 8 * kB + 1000;
  EXPECT_EQ(sum->layout.hot_raw_bytes, packed);
  // Cut at the chunk size: 16384 + 16384 + 1000.
  ASSERT_EQ(ix.layout().hot.size(), 3u);
  EXPECT_EQ(ix.chunk_length(ix.chunk_count() + 0), kCs);
  EXPECT_EQ(ix.chunk_length(ix.chunk_count() + 2), 1000u);
  const uint64_t h0 = ix.chunk_count();
  auto at = [&](uint64_t offset) { return ix.Locate(offset); };
  // First read first: the scattered block opens hot chunk 0, the run follows.
  EXPECT_EQ(at(7 * kCs + kB).slot, h0);
  EXPECT_EQ(at(7 * kCs + kB).slot_offset, 0u);
  EXPECT_EQ(at(3 * kCs - kB).slot, h0);
  EXPECT_EQ(at(3 * kCs - kB).slot_offset, kB);
  EXPECT_EQ(at(3 * kCs - kB).length, 3 * kB) << "one extent across the table chunk's edge";
  EXPECT_TRUE(at(9 * kB).zero);
  EXPECT_EQ(at(9 * kB).length, kB);
  EXPECT_TRUE(at(5 * kCs).zero);
  EXPECT_EQ(at(11 * kCs).slot, h0 + 1);
  EXPECT_EQ(at(11 * kCs).length, 1000u);
  // Chunk 0 continues hot chunk 1 and spills into hot chunk 2.
  EXPECT_EQ(at(0).slot, h0 + 1);
  EXPECT_EQ(at(0).slot_offset, 1000u);
  EXPECT_EQ(at(0).length, kCs - 1000);
  EXPECT_EQ(at(kCs - 1000).slot, h0 + 2);
  EXPECT_FALSE(ix.TableChunkUsed(0)) << "every byte of chunk 0 is hot";
  EXPECT_TRUE(ix.TableChunkUsed(3));
  // The table still describes the whole image by itself.
  for (uint64_t i = 0; i < ix.chunk_count(); i++) EXPECT_EQ(ix.entry(i).zero(), i == 5) << i;
  EXPECT_EQ(sum->layout.hot_chunks, 3u);
  EXPECT_EQ(sum->layout.hot_new, 3u);
  EXPECT_EQ(sum->layout.zero_extents, 1u);
  EXPECT_EQ(sum->layout.mapped_bytes, packed + kB);
  EXPECT_EQ(ix.summary().unique_chunks, 11u + 3);
}

TEST_F(LayoutWriterTest, ACarriedLayoutSharesTheHotChunksOfUnchangedBlocks) {
  std::string img = RandomBytes(32 * kCs, 9);
  std::fill_n(img.begin() + 20 * kB, kB, '\0');
  LayoutPlan plan;
  // Blocks from all over the image, in a scattered order: 12 hot chunks.
  std::vector<ByteRange> boot;
  for (uint64_t k = 0; k < 48; k++) boot.push_back({(k * 37 % 128) * kB, kB});
  AddToPlan(boot, img.size(), &plan);
  ASSERT_TRUE(Write(img, "v1", &plan).ok());
  const format::Index v1 = LoadStoreIndex(*store_, "v1");
  ASSERT_EQ(v1.layout().hot.size(), 12u);

  // Version 2: one profiled block changes, an unprofiled one too, and the
  // zero block gets data.
  std::string img2 = img;
  img2[(5 * 37 % 128) * kB + 10] ^= 1;  // the 6th block of the boot: hot chunk 1
  img2[3 * kB + 1] ^= 1;
  img2[20 * kB + 7] = 1;
  const LayoutPlan carried = PlanFromLayout(v1);
  EXPECT_TRUE(carried.keep_zero_blocks);
  auto sum = Write(img2, "v2", &carried);
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  const format::Index v2 = LoadStoreIndex(*store_, "v2");
  EXPECT_EQ(FirstDifference(ReadThrough(v2, *store_), img2), "");
  ASSERT_EQ(v2.layout().hot.size(), 12u);
  int same = 0;
  for (size_t k = 0; k < 12; k++) same += v1.layout().hot[k].hash == v2.layout().hot[k].hash;
  EXPECT_EQ(same, 11) << "only the hot chunk of the changed block is new";
  EXPECT_EQ(sum->layout.hot_new, 1u);
  // The boot's blocks are in the same places: a replay touches as few files.
  for (const auto& r : boot) {
    if (r.offset == 20 * kB) continue;  // the zero block: checked below
    const format::Segment a = v1.Locate(r.offset), b = v2.Locate(r.offset);
    EXPECT_EQ(a.zero, b.zero) << r.offset;
    EXPECT_EQ(a.slot, b.slot) << r.offset;
    EXPECT_EQ(a.slot_offset, b.slot_offset) << r.offset;
  }
  // The boot read the zero block; now that it holds data it is read from
  // the table (a carried layout keeps its hot chunks' content in place).
  ASSERT_NE(std::find(boot.begin(), boot.end(), ByteRange{20 * kB, kB}), boot.end());
  EXPECT_FALSE(v2.Locate(20 * kB).zero);
  EXPECT_TRUE(v1.Locate(20 * kB).zero);
  // The same image again with the carried layout: nothing new at all.
  auto again = Write(img2, "v2b", &carried);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->chunks_new, 0u);
  EXPECT_EQ(again->bytes_new, 0u);
}

TEST_F(LayoutWriterTest, AnImageWithoutAPlanHasNoExtentsRecord) {
  ASSERT_TRUE(Write(TestImage(), "plain", nullptr).ok());
  const format::Index ix = LoadStoreIndex(*store_, "plain");
  EXPECT_FALSE(ix.has_extents());
  EXPECT_TRUE(PlanFromLayout(ix).ranges.empty());
  // A plan whose bytes all read as zeros in zero chunks makes no layout either.
  LayoutPlan zeros;
  AddToPlan({{5 * kCs, kCs}}, TestImage().size(), &zeros);
  auto sum = Write(TestImage(), "zeros", &zeros);
  ASSERT_TRUE(sum.ok());
  EXPECT_FALSE(LoadStoreIndex(*store_, "zeros").has_extents());
  EXPECT_EQ(sum->layout.hot_chunks, 0u);
}

}  // namespace
}  // namespace hloop::writer
