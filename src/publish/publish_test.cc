#include "publish/publish.h"

#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "pack/packer.h"
#include "testing/temp_dir.h"
#include "trust/trust_set.h"
#include "util/file.h"

namespace hloop::publish {
namespace {

using hloop::testing::RandomBytes;
using hloop::testing::ScopedTempDir;
using hloop::testing::WriteTestFile;

class PublishTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::LocalStore::Open(tmp_.Join("store"), true);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_.emplace(std::move(s.value()));
    auto k = trust::PrivateKey::FromRawSeed(std::string(32, 'k'));
    ASSERT_TRUE(k.ok());
    key_.emplace(std::move(k.value()));
    trust_.Add(key_->public_key());
    for (int v : {1, 2}) {
      ASSERT_TRUE(WriteTestFile(tmp_.Join("img"), RandomBytes(64 * 1024, v)));
      pack::PackOptions o;
      o.name = "v" + std::to_string(v);
      o.chunk_size = 4096;
      o.threads = 1;
      auto r = pack::Pack(tmp_.Join("img"), *store_, o);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
  }
  format::Index Index(const std::string& name) {
    auto ix = format::Index::Parse(ReadFile(store_->root() + "/" + name).value(), name);
    EXPECT_TRUE(ix.ok());
    return std::move(ix.value());
  }
  trust::Channel ReadChannel() {
    std::string path = store_->root() + "/stable.channel";
    auto c = trust::ParseChannel(ReadFile(path).value(), path);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_TRUE(trust_.VerifyChannel(*c, path).ok());
    return std::move(c.value());
  }
  Result<PublishResult> Run(const std::string& index, bool renew = false, int64_t now = 1000) {
    PublishOptions o;
    o.channel = "stable";
    o.index = index;
    o.renew = renew;
    o.now = now;
    o.expires_in = 3600;
    return Publish(*store_, *key_, o);
  }

  ScopedTempDir tmp_;
  std::optional<store::LocalStore> store_;
  std::optional<trust::PrivateKey> key_;
  trust::TrustSet trust_;
};

TEST_F(PublishTest, SequenceGrowsThroughUpdateRenewAndRollback) {
  auto r = Run("v1.idx");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  trust::Channel c = ReadChannel();
  EXPECT_EQ(c.sequence, 1u);
  EXPECT_EQ(c.index_path, "v1.idx");
  EXPECT_EQ(c.index_digest, Index("v1.idx").digest());
  EXPECT_EQ(c.image_size, 64u * 1024);
  EXPECT_EQ(c.issued_at, 1000);
  EXPECT_EQ(c.expires_at, 4600);
  // The index got its signature too.
  auto sig = trust::ParseSignature(ReadFile(store_->root() + "/v1.idx.sig").value(), "sig");
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(trust_.VerifyIndex(*sig, Index("v1.idx").digest(), "v1.idx", "sig").ok());

  ASSERT_TRUE(Run("v2.idx", false, 2000).ok());
  c = ReadChannel();
  EXPECT_EQ(c.sequence, 2u);
  EXPECT_EQ(c.index_digest, Index("v2.idx").digest());

  ASSERT_TRUE(Run("", /*renew=*/true, 3000).ok());
  c = ReadChannel();
  EXPECT_EQ(c.sequence, 3u);
  EXPECT_EQ(c.index_path, "v2.idx");
  EXPECT_EQ(c.index_digest, Index("v2.idx").digest());
  EXPECT_EQ(c.expires_at, 6600);

  // Rollback: the old index, a higher sequence.
  r = Run("v1.idx", false, 4000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->previous_sequence, 3u);
  c = ReadChannel();
  EXPECT_EQ(c.sequence, 4u);
  EXPECT_EQ(c.index_digest, Index("v1.idx").digest());
}

TEST_F(PublishTest, RefusesMissingChunksAndBadChannels) {
  format::Index v2 = Index("v2.idx");
  format::ChunkEntry e = v2.entry(3);
  ASSERT_EQ(::unlink(store_->ChunkFilePath(e.hash).c_str()), 0);
  Status st = Run("v2.idx").status();
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  EXPECT_NE(st.message().find("1 of 16 chunk files missing"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find(format::ToHex(e.hash)), std::string::npos);
  EXPECT_FALSE(Run("", /*renew=*/true).ok());  // nothing to renew
  EXPECT_FALSE(Run("../v1.idx").ok());
  EXPECT_FALSE(Run("v3.idx").ok());
  EXPECT_FALSE(::access((store_->root() + "/stable.channel").c_str(), F_OK) == 0);

  ASSERT_TRUE(Run("v1.idx").ok());
  // A channel file that does not parse is never replaced.
  std::string path = store_->root() + "/stable.channel";
  ASSERT_TRUE(WriteTestFile(path, "garbage"));
  st = Run("v1.idx").status();
  EXPECT_NE(st.message().find("refusing to replace"), std::string::npos) << st.ToString();
  EXPECT_EQ(testing::ReadTestFile(path), "garbage");
}

}  // namespace
}  // namespace hloop::publish
