// The .idx.sig and .channel encodings: round trips, and every damage refused.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "trust/channel.h"
#include "trust/signature.h"
#include "trust/trust_set.h"

namespace hloop::trust {
namespace {

PrivateKey TestKey(char seed_byte) {
  auto key = PrivateKey::FromRawSeed(std::string(32, seed_byte));
  EXPECT_TRUE(key.ok());
  return std::move(key).value();
}

// `accepted(bytes)`: whether parse and verification both pass. It must for
// `good` and must not for any copy with one byte changed (three ways).
template <typename Accepted>
void ExpectEveryFlipRefused(const std::string& good, Accepted accepted) {
  ASSERT_TRUE(accepted(good));
  for (size_t i = 0; i < good.size(); i++) {
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = char(bad[i] ^ mask);
      EXPECT_FALSE(accepted(bad)) << "byte " << i << " ^ " << int(mask) << " accepted";
    }
  }
}

Channel TestChannel(const PrivateKey& key) {
  Channel c;
  c.name = "stable";
  c.sequence = 7;
  c.index_path = "v2.idx";
  c.index_digest = format::Sha256("index bytes");
  c.image_size = 1 << 30;
  c.issued_at = 1780000000;
  c.expires_at = c.issued_at + 7 * 86400;
  SignChannel(key, &c);
  return c;
}

void ExpectSameChannel(const Channel& a, const Channel& b) {
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.sequence, b.sequence);
  EXPECT_EQ(a.index_path, b.index_path);
  EXPECT_EQ(a.index_digest, b.index_digest);
  EXPECT_EQ(a.image_size, b.image_size);
  EXPECT_EQ(a.issued_at, b.issued_at);
  EXPECT_EQ(a.expires_at, b.expires_at);
  EXPECT_EQ(a.key_id, b.key_id);
  EXPECT_EQ(a.signature, b.signature);
}

TEST(ChannelTest, RoundTripAndVerify) {
  PrivateKey key = TestKey(1);
  Channel c = TestChannel(key);
  EXPECT_EQ(c.key_id, key.public_key().id());
  EXPECT_EQ(c.signature.size(), kSignatureSize);
  std::string bytes = EncodeChannel(c);
  EXPECT_EQ(bytes.substr(0, 8), "HLOOPCHN");
  auto parsed = ParseChannel(bytes, "t.channel");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ExpectSameChannel(*parsed, c);
  EXPECT_EQ(EncodeChannel(*parsed), bytes);
  TrustSet trust;
  trust.Add(key.public_key());
  EXPECT_TRUE(trust.VerifyChannel(*parsed, "t.channel").ok());
  // The signed message starts with the domain string and is not the file.
  std::string msg = c.SignedMessage();
  EXPECT_EQ(msg.substr(0, kChannelDomain.size()), kChannelDomain);
  EXPECT_EQ(msg.find(c.signature), std::string::npos);
}

TEST(ChannelTest, EverySingleByteFlipIsRefused) {
  PrivateKey key = TestKey(2);
  TrustSet trust;
  trust.Add(key.public_key());
  ExpectEveryFlipRefused(EncodeChannel(TestChannel(key)), [&](const std::string& bytes) {
    auto c = ParseChannel(bytes, "t.channel");
    return c.ok() && trust.VerifyChannel(*c, "t.channel").ok();
  });
}

TEST(ChannelTest, TruncatedOversizedTrailingRefused) {
  PrivateKey key = TestKey(3);
  std::string good = EncodeChannel(TestChannel(key));
  for (size_t n = 0; n < good.size(); n++)
    EXPECT_FALSE(ParseChannel(good.substr(0, n), "t").ok()) << "truncated to " << n;
  Status st = ParseChannel(good + "x", "t").status();
  EXPECT_NE(st.message().find("1 trailing bytes"), std::string::npos) << st.ToString();
  st = ParseChannel(std::string(kMaxChannelFileSize + 1, 'H'), "t").status();
  EXPECT_NE(st.message().find("limit of 4096"), std::string::npos) << st.ToString();
  std::string v2 = good;
  v2[8] = 2;
  st = ParseChannel(v2, "t").status();
  EXPECT_NE(st.message().find("format version 2"), std::string::npos) << st.ToString();
  st = ParseChannel("HLOOPSIG" + good.substr(8), "t").status();
  EXPECT_NE(st.message().find("bad magic"), std::string::npos) << st.ToString();
}

TEST(ChannelTest, BadIndexPathsAndNamesRefused) {
  PrivateKey key = TestKey(4);
  for (const std::string& path : std::vector<std::string>{
           "/etc/v1.idx", "../v1.idx", "a/../../v1.idx", "x..", std::string(""),
           std::string("v1\0.idx", 7), std::string(1025, 'a')}) {
    Channel c = TestChannel(key);
    c.index_path = path;
    SignChannel(key, &c);
    auto parsed = ParseChannel(EncodeChannel(c), "t");
    EXPECT_FALSE(parsed.ok()) << "index path '" << path << "' accepted";
    EXPECT_FALSE(CheckIndexPath(path).ok());
  }
  EXPECT_TRUE(CheckIndexPath("sub/v1.idx").ok());
  for (const std::string& name :
       std::vector<std::string>{"", ".hidden", "a/b", "st able", std::string(65, 'a')}) {
    Channel c = TestChannel(key);
    c.name = name;
    SignChannel(key, &c);
    EXPECT_FALSE(ParseChannel(EncodeChannel(c), "t").ok()) << "channel name '" << name << "'";
  }
  Channel c = TestChannel(key);
  c.expires_at = c.issued_at - 1;
  SignChannel(key, &c);
  Status st = ParseChannel(EncodeChannel(c), "t").status();
  EXPECT_NE(st.message().find("before it was issued"), std::string::npos) << st.ToString();
}

TEST(ChannelTest, UntrustedKeyAndBadSignatureMessages) {
  PrivateKey key = TestKey(5), other = TestKey(6);
  TrustSet trust;
  trust.Add(other.public_key());
  Channel c = TestChannel(key);
  Status st = trust.VerifyChannel(c, "http://h/stable.channel");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("http://h/stable.channel"), std::string::npos);
  EXPECT_NE(st.message().find(
                "signed by key " + KeyIdText(key.public_key().id()) +
                " which is not trusted (trusted: " + KeyIdText(other.public_key().id()) + ")"),
            std::string::npos)
      << st.ToString();
  // A signature by `other` relabelled as by `key`, with `key` trusted.
  TrustSet trust_key;
  trust_key.Add(key.public_key());
  Channel forged = TestChannel(other);
  forged.key_id = key.public_key().id();
  st = trust_key.VerifyChannel(forged, "c");
  EXPECT_NE(st.message().find("bad signature by key " + KeyIdText(key.public_key().id())),
            std::string::npos)
      << st.ToString();
  // An empty trust set trusts nothing.
  EXPECT_FALSE(TrustSet().VerifyChannel(c, "c").ok());
}

IndexSignature TestSignature(const PrivateKey& key) {
  return SignIndex(key, format::Sha256("some index"), "v2.idx");
}

TEST(IndexSignatureTest, RoundTripAndVerify) {
  PrivateKey key = TestKey(7);
  IndexSignature s = TestSignature(key);
  std::string bytes = EncodeSignature(s);
  EXPECT_EQ(bytes.substr(0, 8), "HLOOPSIG");
  auto parsed = ParseSignature(bytes, "v2.idx.sig");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->key_id, key.public_key().id());
  EXPECT_EQ(parsed->index_digest, s.index_digest);
  EXPECT_EQ(parsed->index_name, "v2.idx");
  EXPECT_EQ(parsed->signature, s.signature);
  EXPECT_EQ(EncodeSignature(*parsed), bytes);
  TrustSet trust;
  trust.Add(key.public_key());
  EXPECT_TRUE(trust.VerifyIndex(*parsed, s.index_digest, "v2.idx", "v2.idx.sig").ok());
  // Another index's digest (mix-and-match) or another name is refused.
  Status st = trust.VerifyIndex(*parsed, format::Sha256("other"), "v2.idx", "v2.idx.sig");
  EXPECT_NE(st.message().find("signs digest " + format::ToHex(s.index_digest)), std::string::npos)
      << st.ToString();
  st = trust.VerifyIndex(*parsed, s.index_digest, "v1.idx", "v1.idx.sig");
  EXPECT_NE(st.message().find("signs index name 'v2.idx'"), std::string::npos) << st.ToString();
  // A channel signature is not an index signature: the domains differ.
  EXPECT_NE(s.SignedMessage().substr(0, kSignatureDomain.size()), std::string(kChannelDomain));
}

TEST(IndexSignatureTest, EverySingleByteFlipIsRefused) {
  PrivateKey key = TestKey(8);
  TrustSet trust;
  trust.Add(key.public_key());
  IndexSignature s = TestSignature(key);
  ExpectEveryFlipRefused(EncodeSignature(s), [&](const std::string& bytes) {
    auto p = ParseSignature(bytes, "s");
    return p.ok() && trust.VerifyIndex(*p, s.index_digest, "v2.idx", "s").ok();
  });
}

TEST(IndexSignatureTest, TruncatedOversizedTrailingRefused) {
  PrivateKey key = TestKey(9);
  std::string good = EncodeSignature(TestSignature(key));
  for (size_t n = 0; n < good.size(); n++)
    EXPECT_FALSE(ParseSignature(good.substr(0, n), "s").ok()) << "truncated to " << n;
  EXPECT_FALSE(ParseSignature(good + std::string(1, '\0'), "s").ok());
  Status st = ParseSignature(std::string(kMaxSignatureFileSize + 1, 'H'), "s").status();
  EXPECT_NE(st.message().find("limit of 4096"), std::string::npos) << st.ToString();
  for (const std::string& name :
       std::vector<std::string>{"", "a/b.idx", "..", std::string("a\0b", 3)}) {
    IndexSignature s = SignIndex(key, format::Sha256("x"), name);
    EXPECT_FALSE(ParseSignature(EncodeSignature(s), "s").ok()) << "name '" << name << "'";
  }
}

}  // namespace
}  // namespace hloop::trust
