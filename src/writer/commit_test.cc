#include "writer/commit.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

#include "disk/open_image.h"
#include "overlay/overlay_device.h"
#include "pack/packer.h"
#include "store/local_store.h"
#include "testing/store_util.h"
#include "testing/temp_dir.h"

namespace hloop::writer {
namespace {

using hloop::testing::ChunkNames;
using hloop::testing::FirstDifference;
using hloop::testing::LoadStoreIndex;
using hloop::testing::RandomBytes;
using hloop::testing::ScopedTempDir;
using hloop::testing::WriteTestFile;

constexpr uint32_t kCs = 16384;  // 4 overlay blocks per chunk

class CommitTest : public ::testing::Test {
 protected:
  // 20 chunks and a 5000-byte tail; chunks 3 and 9 are zero, 5 equals 6.
  CommitTest() : content_(RandomBytes(20 * kCs + 5000, 11)) {
    content_.replace(3 * kCs, kCs, std::string(kCs, '\0'));
    content_.replace(9 * kCs, kCs, std::string(kCs, '\0'));
    content_.replace(6 * kCs, kCs, content_.substr(5 * kCs, kCs));
  }
  void SetUp() override {
    ASSERT_TRUE(WriteTestFile(tmp_.Join("base.img"), content_));
    auto s = store::LocalStore::Open(tmp_.Join("store"), true);
    ASSERT_TRUE(s.ok());
    store_ = std::make_unique<store::LocalStore>(std::move(s.value()));
    ASSERT_TRUE(pack::Pack(tmp_.Join("base.img"), *store_, PackOpts("base")).ok());
    disk::OpenOptions oo;
    oo.image.workers = 0;
    auto dev = disk::OpenImage(store_->IndexPath("base"), oo);
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    image_ = std::move(dev.value());
    auto ov =
        overlay::OverlayDevice::Open(tmp_.Join("disk.overlay"), *image_,
                                     overlay::BaseIdentity{image_->index().digest(), "base"}, {});
    ASSERT_TRUE(ov.ok()) << ov.status().ToString();
    overlay_ = std::move(ov.value());
  }
  static pack::PackOptions PackOpts(const std::string& name) {
    pack::PackOptions po;
    po.name = name;
    po.chunk_size = kCs;
    po.threads = 2;
    return po;
  }
  void Write(uint64_t off, const std::string& data) {
    ASSERT_TRUE(overlay_->Write(off, data.size(), data.data()).ok());
    content_.replace(off, data.size(), data);
  }
  void Zero(uint64_t off, uint64_t len) {
    ASSERT_TRUE(overlay_->WriteZeroes(off, len).ok());
    content_.replace(off, len, std::string(len, '\0'));
  }
  Result<WriteSummary> CommitTo(store::LocalStore& s, const std::string& name) {
    CommitOptions o;
    o.name = name;
    o.parent_name = "base";
    o.threads = 3;
    DeviceBytes bytes(*overlay_,
                      [this](uint64_t off, uint64_t len) { return overlay_->Touches(off, len); });
    return Commit(image_->index(), bytes, s, o);
  }

  ScopedTempDir tmp_;
  std::string content_;  // the expected image: base + overlay
  std::unique_ptr<store::LocalStore> store_;
  std::unique_ptr<disk::ImageDevice> image_;
  std::unique_ptr<overlay::OverlayDevice> overlay_;
};

// The acceptance test: the committed index is the one the packer makes of
// base + overlay, entry for entry, and only changed chunks became files.
TEST_F(CommitTest, EqualsPackingBasePlusOverlay) {
  Write(kCs - 10, RandomBytes(30, 1));                         // across chunks 0 and 1
  Write(4 * kCs + 4096, RandomBytes(4096, 2));                 // one aligned block of chunk 4
  Zero(7 * kCs, kCs);                                          // chunk 7 becomes zero
  Write(3 * kCs + 5, "x");                                     // zero chunk 3 gets data
  Write(10 * kCs, content_.substr(12 * kCs, kCs));             // chunk 10 = chunk 12: no new file
  Write(20 * kCs + 4000, RandomBytes(1000, 3));                // the short tail chunk
  Write(15 * kCs + 100, content_.substr(15 * kCs + 100, 50));  // rewritten as it was: no new file
  const std::set<std::string> before = ChunkNames(*store_);

  auto sum = CommitTo(*store_, "new");
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(sum->chunks_total, 21u);
  EXPECT_EQ(sum->chunks_changed, 8u);  // 0, 1, 3, 4, 7, 10, 15, 20
  EXPECT_EQ(sum->chunks_new, 5u);      // 0, 1, 3, 4, 20
  EXPECT_EQ(sum->chunks_copied, 0u);
  EXPECT_EQ(sum->chunks_zero, 2u);  // 7 and 9
  const std::set<std::string> after = ChunkNames(*store_);
  EXPECT_EQ(after.size(), before.size() + 5);
  uint64_t new_bytes = 0;
  for (const auto& name : after) {
    if (before.count(name)) continue;
    format::Hash h;
    ASSERT_TRUE(format::ParseHash(name, &h));
    new_bytes += hloop::testing::ReadTestFile(store_->ChunkFilePath(h)).size();
  }
  EXPECT_EQ(sum->bytes_new, new_bytes);

  ASSERT_TRUE(WriteTestFile(tmp_.Join("expected.img"), content_));
  auto s2 = store::LocalStore::Open(tmp_.Join("packed"), true);
  ASSERT_TRUE(s2.ok());
  ASSERT_TRUE(pack::Pack(tmp_.Join("expected.img"), *s2, PackOpts("expected")).ok());
  format::Index got = LoadStoreIndex(*store_, "new");
  format::Index want = LoadStoreIndex(*s2, "expected");
  EXPECT_EQ(got.image_size(), want.image_size());
  EXPECT_EQ(got.chunk_size(), want.chunk_size());
  EXPECT_EQ(got.codec(), want.codec());
  ASSERT_EQ(got.chunk_count(), want.chunk_count());
  for (uint64_t i = 0; i < got.chunk_count(); i++) {
    EXPECT_EQ(got.entry(i).hash, want.entry(i).hash) << "chunk " << i;
    EXPECT_EQ(got.entry(i).stored_size, want.entry(i).stored_size) << "chunk " << i;
    EXPECT_EQ(got.entry(i).flags, want.entry(i).flags) << "chunk " << i;
  }
  EXPECT_EQ(got.summary().stored_bytes, want.summary().stored_bytes);
  EXPECT_EQ(got.summary().unique_chunks, want.summary().unique_chunks);
  ASSERT_TRUE(got.meta().parent_digest.has_value());
  EXPECT_EQ(*got.meta().parent_digest, image_->index().digest());
  EXPECT_EQ(got.meta().parent_name, "base");
  EXPECT_EQ(got.meta().name, "new");
  EXPECT_EQ(format::ToHex(sum->digest), format::ToHex(got.digest()));

  // Reading the new version gives base + overlay.
  disk::OpenOptions oo;
  oo.image.workers = 0;
  auto fresh = disk::OpenImage(store_->IndexPath("new"), oo);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  std::string out(content_.size(), '\0');
  ASSERT_TRUE((*fresh)->Read(0, out.size(), out.data()).ok());
  EXPECT_EQ(FirstDifference(out, content_), "");
  // The base is untouched.
  EXPECT_EQ(LoadStoreIndex(*store_, "base").digest(), image_->index().digest());
}

TEST_F(CommitTest, EmptyOverlayReproducesTheBase) {
  auto sum = CommitTo(*store_, "same");
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(sum->chunks_changed, 0u);
  EXPECT_EQ(sum->chunks_new, 0u);
  EXPECT_EQ(sum->bytes_new, 0u);
  format::Index got = LoadStoreIndex(*store_, "same"), base = LoadStoreIndex(*store_, "base");
  for (uint64_t i = 0; i < got.chunk_count(); i++) {
    EXPECT_EQ(got.entry(i).hash, base.entry(i).hash);
    EXPECT_EQ(got.entry(i).stored_size, base.entry(i).stored_size);
  }
}

// Into a store that is not the base's: unchanged chunks are copied, so the
// new version can be served from there alone.
TEST_F(CommitTest, IntoAnotherStoreCopiesTheUnchangedChunks) {
  Write(2 * kCs, RandomBytes(100, 5));
  auto other = store::LocalStore::Open(tmp_.Join("other"), true);
  ASSERT_TRUE(other.ok());
  auto sum = CommitTo(*other, "v2");
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(sum->chunks_changed, 1u);
  // 21 chunks: 2 zero, 5 and 6 the same, so 18 files, of which 17 copied.
  EXPECT_EQ(sum->chunks_new, 18u);
  EXPECT_EQ(sum->chunks_copied, 17u);
  disk::OpenOptions oo;
  oo.image.workers = 0;
  auto fresh = disk::OpenImage(other->IndexPath("v2"), oo);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  std::string out(content_.size(), '\0');
  ASSERT_TRUE((*fresh)->Read(0, out.size(), out.data()).ok());
  EXPECT_EQ(FirstDifference(out, content_), "");
}

TEST_F(CommitTest, RefusesToReplaceAnotherImage) {
  ASSERT_TRUE(WriteTestFile(tmp_.Join("other.img"), RandomBytes(kCs, 9)));
  ASSERT_TRUE(pack::Pack(tmp_.Join("other.img"), *store_, PackOpts("other")).ok());
  const std::string before = store_->ReadIndex("other").value();
  Write(0, "changed");
  auto sum = CommitTo(*store_, "other");
  ASSERT_FALSE(sum.ok());
  EXPECT_NE(sum.status().message().find("exists"), std::string::npos) << sum.status().ToString();
  EXPECT_EQ(store_->ReadIndex("other").value(), before);
  EXPECT_FALSE(CommitTo(*store_, "../escape").ok());
  // Its own base's name is fine: the new version replaces it, naming it as parent.
  const format::Hash base_digest = image_->index().digest();
  auto same = CommitTo(*store_, "base");
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  format::Index now = LoadStoreIndex(*store_, "base");
  ASSERT_TRUE(now.meta().parent_digest.has_value());
  EXPECT_EQ(*now.meta().parent_digest, base_digest);
}

}  // namespace
}  // namespace hloop::writer
