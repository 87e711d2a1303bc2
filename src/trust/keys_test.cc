#include "trust/keys.h"

#include <sys/stat.h>

#include <string>

#include <gtest/gtest.h>

#include "testing/temp_dir.h"
#include "util/bytes.h"

namespace hloop::trust {
namespace {

using testing::ScopedTempDir;

std::string Unhex(std::string_view hex) {
  std::string out(hex.size() / 2, '\0');
  EXPECT_TRUE(HexDecode(hex, reinterpret_cast<uint8_t*>(out.data()), out.size())) << hex;
  return out;
}
std::string Hex(const std::string& s) {
  return HexEncode(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

struct Rfc8032Vector {
  const char* secret;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032 section 7.1, TEST 1 and TEST 2.
const Rfc8032Vector kVectors[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
};

TEST(KeyTest, Rfc8032KnownAnswers) {
  for (const auto& v : kVectors) {
    auto key = PrivateKey::FromRawSeed(Unhex(v.secret));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    EXPECT_EQ(Hex(key->public_key().raw()), v.public_key);
    std::string message = Unhex(v.message);
    std::string sig = key->Sign(message);
    EXPECT_EQ(Hex(sig), v.signature);

    auto pub = PublicKey::FromRaw(Unhex(v.public_key));
    ASSERT_TRUE(pub.ok()) << pub.status().ToString();
    EXPECT_EQ(pub->id(), key->public_key().id());
    EXPECT_TRUE(pub->Verify(message, Unhex(v.signature)));
    EXPECT_FALSE(pub->Verify(message + "x", Unhex(v.signature)));
    std::string flipped = Unhex(v.signature);
    flipped[10] ^= 1;
    EXPECT_FALSE(pub->Verify(message, flipped));
    EXPECT_FALSE(pub->Verify(message, flipped.substr(1)));
  }
}

TEST(KeyTest, KeyIdIsSha256PrefixOfRawKey) {
  auto pub = PublicKey::FromRaw(Unhex(kVectors[0].public_key));
  ASSERT_TRUE(pub.ok());
  // `echo d75a...511a | xxd -r -p | sha256sum | cut -c1-16`
  EXPECT_EQ(KeyIdText(pub->id()), "21fe31dfa154a261");
  EXPECT_NE(pub->id(), PublicKey::FromRaw(Unhex(kVectors[1].public_key))->id());
}

TEST(KeyTest, RawKeysOfWrongSizeRefused) {
  EXPECT_FALSE(PublicKey::FromRaw(std::string(31, 'a')).ok());
  EXPECT_FALSE(PrivateKey::FromRawSeed(std::string(33, 'a')).ok());
}

TEST(KeyTest, GenerateSaveLoadRoundTrip) {
  ScopedTempDir dir;
  auto key = PrivateKey::Generate();
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  std::string path = dir.Join("k"), pub_path = dir.Join("k.pub");
  ASSERT_TRUE(key->Save(path).ok());
  ASSERT_TRUE(key->public_key().Save(pub_path).ok());
  struct stat sb;
  ASSERT_EQ(::stat(path.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);
  EXPECT_NE(testing::ReadTestFile(path).find("BEGIN PRIVATE KEY"), std::string::npos);
  EXPECT_NE(testing::ReadTestFile(pub_path).find("BEGIN PUBLIC KEY"), std::string::npos);

  auto loaded = PrivateKey::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->public_key().id(), key->public_key().id());
  auto pub = PublicKey::Load(pub_path);
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  EXPECT_EQ(pub->raw(), key->public_key().raw());
  EXPECT_TRUE(pub->Verify("hello", loaded->Sign("hello")));
  auto other = PrivateKey::Generate();
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->public_key().id(), key->public_key().id());
  EXPECT_FALSE(pub->Verify("hello", other->Sign("hello")));
}

TEST(KeyTest, SaveRefusesToOverwrite) {
  ScopedTempDir dir;
  auto key = PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  std::string path = dir.Join("k");
  ASSERT_TRUE(testing::WriteTestFile(path, "precious"));
  Status st = key->Save(path);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("refusing to overwrite"), std::string::npos) << st.ToString();
  EXPECT_EQ(testing::ReadTestFile(path), "precious");
  EXPECT_FALSE(key->public_key().Save(path).ok());
  EXPECT_EQ(testing::ReadTestFile(path), "precious");
}

TEST(KeyTest, BadKeyFilesRefused) {
  ScopedTempDir dir;
  auto key = PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  std::string priv = dir.Join("k");
  ASSERT_TRUE(key->Save(priv).ok());
  // A private key is not a public key file, and the reverse.
  EXPECT_FALSE(PublicKey::Load(priv).ok());
  ASSERT_TRUE(testing::WriteTestFile(dir.Join("p.pub"), key->public_key().Pem()));
  EXPECT_FALSE(PrivateKey::Load(dir.Join("p.pub")).ok());
  EXPECT_FALSE(PublicKey::ParsePem("garbage", "x").ok());
  EXPECT_TRUE(PublicKey::Load(dir.Join("missing.pub")).status().IsNotFound());
  // Oversized files are refused before being parsed.
  ASSERT_TRUE(testing::WriteTestFile(dir.Join("big.pub"),
                                     key->public_key().Pem() + std::string(kMaxKeyFileSize, '\n')));
  Status st = PublicKey::Load(dir.Join("big.pub")).status();
  EXPECT_NE(st.message().find("limit"), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace hloop::trust
