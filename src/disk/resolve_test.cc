// The trust rules of Resolve, over an in-memory server and a fake clock.
#include "disk/resolve.h"

#include <gtest/gtest.h>

#include <map>

#include "testing/temp_dir.h"
#include "trust/channel.h"
#include "trust/keys.h"
#include "trust/sequence_store.h"
#include "trust/signature.h"

namespace hloop::disk {
namespace {

using format::Hash;
using testing::ScopedTempDir;

constexpr int64_t kNow = 1800000000;
constexpr int64_t kDay = 86400;

// The files a server holds; `down` makes every request Unavailable.
struct FakeServer {
  std::map<std::string, std::string> files;
  bool down = false;
  int requests = 0;
  MetaGet Get() {
    return [this](const std::string& rel, uint64_t max_size, int, const BodyCheck& check,
                  std::string* out) -> Status {
      requests++;
      if (down) return Status::Unavailable("connection refused");
      auto it = files.find(rel);
      if (it == files.end()) return Status::NotFound(rel + ": 404");
      if (max_size && it->second.size() > max_size)
        return Status::Corruption(rel + " is larger than the limit");
      Status st = check(it->second);
      if (!st.ok()) return st;
      *out = it->second;
      return Status::Ok();
    };
  }
};

std::string MakeIndex(uint64_t image_size, const std::string& name) {
  format::IndexBuilder b(image_size, 4096, format::Codec::kZstd);
  for (uint64_t i = 0; i < b.chunk_count(); i++) {
    format::ChunkEntry e;
    e.hash = format::Sha256(name + std::to_string(i));
    e.stored_size = 100;
    b.set_entry(i, e);
  }
  b.meta().name = name;
  return b.Encode();
}

Hash DigestOf(const std::string& index_bytes) {
  auto ix = format::Index::Parse(index_bytes, "x");
  EXPECT_TRUE(ix.ok());
  return ix->digest();
}

class ResolveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = trust::PrivateKey::Generate();
    auto b = trust::PrivateKey::Generate();
    ASSERT_TRUE(a.ok() && b.ok());
    key_ = std::make_unique<trust::PrivateKey>(std::move(a.value()));
    other_ = std::make_unique<trust::PrivateKey>(std::move(b.value()));
    v1_ = MakeIndex(3 * 4096, "v1");
    v2_ = MakeIndex(5 * 4096 + 7, "v2");
    server_.files["v1.idx"] = v1_;
    server_.files["v2.idx"] = v2_;
    auto keys = std::make_shared<trust::TrustSet>();
    keys->Add(key_->public_key());
    trust_.keys = keys;
    trust_.state_dir = tmp_.Join("state");
    trust_.now = [this] { return now_; };
    auto loc = fetch::ParseLocation("http://server/store/stable.channel");
    ASSERT_TRUE(loc.ok());
    channel_loc_ = *loc;
    loc = fetch::ParseLocation("http://server/store/v1.idx");
    ASSERT_TRUE(loc.ok());
    index_loc_ = *loc;
  }

  // Publishes `index` on channel "stable" with `sequence`, signed by `key`.
  void Publish(const std::string& index, uint64_t sequence, const trust::PrivateKey& key,
               int64_t expires_at = kNow + 7 * kDay) {
    trust::Channel c;
    c.name = "stable";
    c.sequence = sequence;
    c.index_path = index;
    c.index_digest = DigestOf(server_.files[index]);
    c.image_size = format::Index::Parse(server_.files[index], index)->image_size();
    c.issued_at = kNow - 60;
    c.expires_at = expires_at;
    trust::SignChannel(key, &c);
    server_.files["stable.channel"] = trust::EncodeChannel(c);
  }
  void SignIndex(const std::string& index, const trust::PrivateKey& key) {
    server_.files[index + ".sig"] =
        trust::EncodeSignature(trust::SignIndex(key, DigestOf(server_.files[index]), index));
  }

  Result<Resolved> ResolveChannel(cache::DiskCache* cache = nullptr) {
    return Resolve(channel_loc_, trust_, cache, server_.Get(), 3);
  }
  std::unique_ptr<cache::DiskCache> OpenCache() {
    cache::DiskCacheOptions o;
    o.dir = tmp_.Join("cache");
    auto c = cache::DiskCache::Open(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c.value()) : nullptr;
  }

  ScopedTempDir tmp_;
  FakeServer server_;
  std::unique_ptr<trust::PrivateKey> key_, other_;
  std::string v1_, v2_;
  TrustOptions trust_;
  int64_t now_ = kNow;
  fetch::Location channel_loc_, index_loc_;
};

void ExpectRefused(const Result<Resolved>& r, const std::string& why) {
  ASSERT_FALSE(r.ok()) << "accepted, expected a refusal with \"" << why << "\"";
  EXPECT_NE(r.status().ToString().find(why), std::string::npos) << r.status().ToString();
}

TEST_F(ResolveTest, AChannelResolvesToTheIndexItNames) {
  Publish("v2.idx", 1, *key_);
  auto r = ResolveChannel();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->index.digest(), DigestOf(v2_));
  const ImageVersion& v = r->version;
  EXPECT_TRUE(v.channel);
  EXPECT_TRUE(v.authenticated);
  EXPECT_EQ(v.key_id, trust::KeyIdText(key_->public_key().id()));
  EXPECT_EQ(v.channel_name, "stable");
  EXPECT_EQ(v.sequence, 1u);
  EXPECT_EQ(v.index_name, "v2.idx");
  EXPECT_EQ(v.index_url, "http://server/store/v2.idx");
  EXPECT_FALSE(v.offline);
}

TEST_F(ResolveTest, AChannelByAnUntrustedKeyIsRefused) {
  Publish("v2.idx", 1, *other_);
  ExpectRefused(ResolveChannel(), trust::KeyIdText(other_->public_key().id()));
  ExpectRefused(ResolveChannel(), "not trusted");
}

TEST_F(ResolveTest, AFlippedChannelByteIsRefused) {
  Publish("v2.idx", 1, *key_);
  std::string& c = server_.files["stable.channel"];
  for (size_t i = 0; i < c.size(); i += 7) {
    c[i] = char(c[i] ^ 0x01);
    EXPECT_FALSE(ResolveChannel().ok()) << "byte " << i;
    c[i] = char(c[i] ^ 0x01);
  }
  EXPECT_TRUE(ResolveChannel().ok());
}

TEST_F(ResolveTest, AChannelNamingAnotherIndexDigestIsRefused) {
  Publish("v1.idx", 1, *key_);
  server_.files["v1.idx"] = v2_;  // the server swaps the index under the channel
  ExpectRefused(ResolveChannel(), "do not belong together");
}

TEST_F(ResolveTest, AnExpiredChannelIsRefusedWhileTheServerAnswers) {
  Publish("v1.idx", 1, *key_, kNow + 10);
  EXPECT_TRUE(ResolveChannel().ok());
  now_ = kNow + 3600;
  ExpectRefused(ResolveChannel(), "expired");
  ExpectRefused(ResolveChannel(), "hloop publish --renew");
}

TEST_F(ResolveTest, OfflineTheCachedChannelIsServedPastExpiryUnlessFreshIsRequired) {
  auto cache = OpenCache();
  ASSERT_TRUE(cache);
  Publish("v1.idx", 4, *key_, kNow + 10);
  ASSERT_TRUE(ResolveChannel(cache.get()).ok());
  now_ = kNow + 2 * kDay;
  server_.down = true;
  auto r = ResolveChannel(cache.get());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->version.offline);
  EXPECT_EQ(r->version.sequence, 4u);
  EXPECT_EQ(r->index.digest(), DigestOf(v1_));
  trust_.require_fresh = true;
  ExpectRefused(ResolveChannel(cache.get()), "--require-fresh");
  // Without a cached copy, being offline is an error, not an empty image.
  trust_.require_fresh = false;
  ExpectRefused(ResolveChannel(nullptr), "connection refused");
}

TEST_F(ResolveTest, ARevokedKeyRefusesEvenTheCachedChannel) {
  auto cache = OpenCache();
  ASSERT_TRUE(cache);
  Publish("v1.idx", 1, *key_);
  ASSERT_TRUE(ResolveChannel(cache.get()).ok());
  server_.down = true;
  auto keys = std::make_shared<trust::TrustSet>();
  keys->Add(other_->public_key());
  trust_.keys = keys;
  ExpectRefused(ResolveChannel(cache.get()), "not trusted");
}

TEST_F(ResolveTest, AnOlderChannelIsRefusedAlsoAfterARestart) {
  Publish("v1.idx", 1, *key_);
  const std::string old = server_.files["stable.channel"];
  Publish("v2.idx", 2, *key_);
  ASSERT_TRUE(ResolveChannel().ok());
  server_.files["stable.channel"] = old;
  ExpectRefused(ResolveChannel(), "rollback");
  // A new SequenceStore over the same directory: what a restarted client opens.
  auto store = trust::SequenceStore::Open(trust_.state_dir);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(store->Highest(channel_loc_.index_url).value(), 2u);
  ExpectRefused(ResolveChannel(), "lower than 2");
  // A rollback the publisher means: old content, higher sequence number.
  Publish("v1.idx", 3, *key_);
  auto r = ResolveChannel();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->index.digest(), DigestOf(v1_));
}

TEST_F(ResolveTest, KeyRotationNeedsNoRepackingOnlyTrust) {
  Publish("v2.idx", 1, *other_);
  ExpectRefused(ResolveChannel(), "not trusted");
  auto keys = std::make_shared<trust::TrustSet>();
  keys->Add(key_->public_key());
  keys->Add(other_->public_key());
  trust_.keys = keys;
  EXPECT_TRUE(ResolveChannel().ok());
}

TEST_F(ResolveTest, AnIndexNamedDirectlyMustBeSigned) {
  ExpectRefused(Resolve(index_loc_, trust_, nullptr, server_.Get(), 3), "not signed");
  SignIndex("v1.idx", *other_);
  ExpectRefused(Resolve(index_loc_, trust_, nullptr, server_.Get(), 3), "not trusted");
  SignIndex("v1.idx", *key_);
  auto r = Resolve(index_loc_, trust_, nullptr, server_.Get(), 3);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->version.authenticated);
  EXPECT_FALSE(r->version.channel);
  // A signature of another index (v2's, copied beside v1) does not fit.
  SignIndex("v2.idx", *key_);
  server_.files["v1.idx.sig"] = server_.files["v2.idx.sig"];
  EXPECT_FALSE(Resolve(index_loc_, trust_, nullptr, server_.Get(), 3).ok());
}

TEST_F(ResolveTest, WithoutTrustNothingIsCheckedOrRecorded) {
  trust_.keys = nullptr;
  Publish("v2.idx", 5, *other_, kNow - 10);  // untrusted and expired: served all the same
  auto r = ResolveChannel();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->version.authenticated);
  EXPECT_EQ(r->version.sequence, 5u);
  auto plain = Resolve(index_loc_, trust_, nullptr, server_.Get(), 3);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->version.authenticated);
}

TEST_F(ResolveTest, AnOversizedChannelIsRefused) {
  server_.files["stable.channel"] = std::string(trust::kMaxChannelFileSize + 1, 'x');
  ExpectRefused(ResolveChannel(), "limit");
}

TEST(ResolveNames, ChannelNames) {
  EXPECT_TRUE(IsChannelName("stable.channel"));
  EXPECT_FALSE(IsChannelName(".channel"));
  EXPECT_FALSE(IsChannelName("stable.idx"));
  EXPECT_FALSE(IsChannelName("channel"));
}

}  // namespace
}  // namespace hloop::disk
