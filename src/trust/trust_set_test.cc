// TrustSet loading and SequenceStore durability.
#include "trust/trust_set.h"

#include <sys/stat.h>

#include <string>

#include <gtest/gtest.h>

#include "format/hash.h"
#include "testing/temp_dir.h"
#include "trust/sequence_store.h"

namespace hloop::trust {
namespace {

using testing::ScopedTempDir;

TEST(TrustSetTest, AddDirectoryTakesPubFilesOnly) {
  ScopedTempDir dir;
  TrustSet trust;
  EXPECT_TRUE(trust.AddDirectory(dir.Join("missing")).ok());
  EXPECT_TRUE(trust.empty());
  EXPECT_EQ(trust.KeyIdsText(), "none");
  auto a = PrivateKey::Generate(), b = PrivateKey::Generate();
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(a->public_key().Save(dir.Join("a.pub")).ok());
  ASSERT_TRUE(b->public_key().Save(dir.Join("b.pub")).ok());
  ASSERT_TRUE(testing::WriteTestFile(dir.Join("README"), "not a key"));
  ASSERT_TRUE(a->Save(dir.Join("a.key")).ok());
  ASSERT_TRUE(trust.AddDirectory(dir.path()).ok());
  EXPECT_EQ(trust.size(), 2u);
  EXPECT_EQ(trust.KeyIdsText(),
            KeyIdText(a->public_key().id()) + "," + KeyIdText(b->public_key().id()));
  // The same key twice is one key.
  ASSERT_TRUE(trust.AddFile(dir.Join("a.pub")).ok());
  EXPECT_EQ(trust.size(), 2u);
  // A bad file in the directory is an error naming it, not a silent skip.
  ASSERT_TRUE(testing::WriteTestFile(dir.Join("c.pub"), "garbage"));
  Status st = TrustSet().AddDirectory(dir.path());
  EXPECT_NE(st.message().find("c.pub"), std::string::npos) << st.ToString();
}

TEST(TrustSetTest, KeyRotationAndRevocation) {
  ScopedTempDir dir;
  auto old_key = PrivateKey::Generate(), new_key = PrivateKey::Generate();
  ASSERT_TRUE(old_key.ok() && new_key.ok());
  Channel c;
  c.name = "stable";
  c.sequence = 1;
  c.index_path = "v1.idx";
  SignChannel(*new_key, &c);
  TrustSet only_old;
  only_old.Add(old_key->public_key());
  EXPECT_FALSE(only_old.VerifyChannel(c, "c").ok());
  TrustSet both = only_old;
  both.Add(new_key->public_key());
  EXPECT_TRUE(both.VerifyChannel(c, "c").ok());
}

TEST(SequenceStoreTest, KeepsTheMaxAndSurvivesReopening) {
  ScopedTempDir dir;
  std::string seq_dir = dir.Join("cache/trust");
  {
    auto store = SequenceStore::Open(seq_dir);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ(store->Highest("http://h/stable.channel").value(), 0u);
    ASSERT_TRUE(store->Record("http://h/stable.channel", 5).ok());
    ASSERT_TRUE(store->Record("http://h/stable.channel", 3).ok());
    EXPECT_EQ(store->Highest("http://h/stable.channel").value(), 5u);
    ASSERT_TRUE(store->Record("http://h/beta.channel", 9).ok());
  }
  struct stat sb;
  ASSERT_EQ(::stat(seq_dir.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0700u);
  auto store = SequenceStore::Open(seq_dir);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(store->Highest("http://h/stable.channel").value(), 5u);
  EXPECT_EQ(store->Highest("http://h/beta.channel").value(), 9u);
  EXPECT_EQ(store->Highest("http://other/stable.channel").value(), 0u);
  ASSERT_TRUE(store->Record("http://h/stable.channel", 6).ok());
  EXPECT_EQ(store->Highest("http://h/stable.channel").value(), 6u);
  ASSERT_TRUE(store->Record("http://h/stable.channel", UINT64_MAX).ok());
  EXPECT_EQ(store->Highest("http://h/stable.channel").value(), UINT64_MAX);
}

TEST(SequenceStoreTest, CorruptRecordIsAnErrorNotZero) {
  ScopedTempDir dir;
  auto store = SequenceStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(store->Record("u", 4).ok());
  // The file is named by the hex SHA-256 of the URL.
  std::string file = dir.Join(format::ToHex(format::Sha256("u")));
  EXPECT_EQ(testing::ReadTestFile(file), "4\n");
  for (std::string garbage : {"", "x\n", "4", "-1\n", "99999999999999999999\n"}) {
    ASSERT_TRUE(testing::WriteTestFile(file, garbage));
    auto h = store->Highest("u");
    EXPECT_FALSE(h.ok()) << "'" << garbage << "' read as " << (h.ok() ? h.value() : 0);
    EXPECT_FALSE(store->Record("u", 1).ok());
  }
}

}  // namespace
}  // namespace hloop::trust
