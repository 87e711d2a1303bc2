#include "writer/image_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "format/chunk_file.h"
#include "testing/memory_device.h"
#include "testing/store_util.h"
#include "testing/temp_dir.h"
#include "util/bytes.h"
#include "util/mutex.h"
#include "writer/image_bytes.h"

namespace hloop::writer {
namespace {

using hloop::testing::ChunkNames;
using hloop::testing::LoadStoreIndex;
using hloop::testing::RandomBytes;
using hloop::testing::ScopedTempDir;
using hloop::testing::WriteTestFile;

constexpr uint32_t kCs = 4096;

// Image bytes in memory that count what is read, with a set of chunks that
// may differ from the base and an optional chunk whose read fails.
class FakeBytes : public ImageBytes {
 public:
  explicit FakeBytes(std::string content) : content_(std::move(content)) {}
  uint64_t size() const override { return content_.size(); }
  Status ReadAt(uint64_t offset, size_t len, char* buf) override {
    if (fail_chunk && offset / kCs == *fail_chunk) return Status::IOError("disk on fire");
    content_.copy(buf, len, offset);
    MutexLock lock(&mu_);
    read_.insert(offset / kCs);
    return Status::Ok();
  }
  bool MayDiffer(uint64_t offset, uint64_t len) override {
    EXPECT_EQ(offset % kCs, 0u);
    EXPECT_LE(len, kCs);
    return dirty.count(offset / kCs) > 0;
  }

  std::set<uint64_t> dirty;            // chunks that may differ from the base
  std::optional<uint64_t> fail_chunk;  // a read of it fails
  // The chunks read so far.
  std::set<uint64_t> read() {
    MutexLock lock(&mu_);
    return read_;
  }

 private:
  const std::string content_;
  Mutex mu_;
  std::set<uint64_t> read_ GUARDED_BY(mu_);
};

class ImageWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::LocalStore::Open(tmp_.Join("store"), true);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_.emplace(std::move(s.value()));
  }
  WriteOptions Options(const std::string& name) {
    WriteOptions o;
    o.name = name;
    o.chunk_size = kCs;
    o.threads = 3;
    return o;
  }
  WriteSummary WriteOk(ImageBytes& bytes, const WriteOptions& o) {
    auto r = WriteImage(bytes, *store_, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r.value() : WriteSummary();
  }

  ScopedTempDir tmp_;
  std::optional<store::LocalStore> store_;
};

TEST_F(ImageWriterTest, WithABaseReadsOnlyTheChunksThatMayDiffer) {
  // 10 chunks and a short tail; chunk 4 is zero.
  std::string v1 = RandomBytes(10 * kCs + 700, 1);
  v1.replace(4 * kCs, kCs, std::string(kCs, '\0'));
  FakeBytes base_bytes(v1);
  WriteSummary first = WriteOk(base_bytes, Options("v1"));
  EXPECT_EQ(first.chunks_changed, 11u);
  EXPECT_EQ(first.bytes_read, v1.size());
  const format::Index base = LoadStoreIndex(*store_, "v1");

  std::string v2 = v1;
  v2.replace(2 * kCs + 5, 3, "new");                 // chunk 2: new content
  v2.replace(4 * kCs + 9, 1, "x");                   // zero chunk 4 gets data
  v2.replace(7 * kCs, kCs, std::string(kCs, '\0'));  // chunk 7 becomes zero
  v2.replace(10 * kCs + 1, 2, "zz");                 // the tail
  FakeBytes bytes(v2);
  bytes.dirty = {2, 4, 7, 10};
  WriteOptions o = Options("v2");
  o.base = &base;
  o.parent_digest = base.digest();
  o.parent_name = "v1";
  WriteSummary sum = WriteOk(bytes, o);
  EXPECT_EQ(bytes.read(), (std::set<uint64_t>{2, 4, 7, 10}));
  EXPECT_EQ(sum.bytes_read, 3 * kCs + 700);
  EXPECT_EQ(sum.chunks_total, 11u);
  EXPECT_EQ(sum.chunks_changed, 4u);
  EXPECT_EQ(sum.chunks_new, 3u);  // 2, 4 and 10
  EXPECT_EQ(sum.chunks_copied, 0u);
  EXPECT_EQ(sum.chunks_zero, 1u);
  EXPECT_EQ(ChunkNames(*store_).size(), 10u + 3u);

  // The same entries as writing v2 from scratch, which reads everything.
  FakeBytes whole(v2);
  WriteSummary scratch = WriteOk(whole, Options("scratch"));
  EXPECT_EQ(whole.read().size(), 11u);
  EXPECT_EQ(scratch.chunks_new, 0u);
  const format::Index got = LoadStoreIndex(*store_, "v2"),
                      want = LoadStoreIndex(*store_, "scratch");
  ASSERT_EQ(got.chunk_count(), want.chunk_count());
  for (uint64_t i = 0; i < got.chunk_count(); i++) {
    EXPECT_EQ(got.entry(i).hash, want.entry(i).hash) << i;
    EXPECT_EQ(got.entry(i).stored_size, want.entry(i).stored_size) << i;
    EXPECT_EQ(got.entry(i).flags, want.entry(i).flags) << i;
  }
  ASSERT_TRUE(got.meta().parent_digest.has_value());
  EXPECT_EQ(*got.meta().parent_digest, base.digest());
  EXPECT_EQ(got.meta().parent_name, "v1");
  EXPECT_FALSE(want.meta().parent_digest.has_value());
  EXPECT_EQ(sum.stored_bytes, scratch.stored_bytes);
  EXPECT_EQ(sum.chunks_unique, scratch.chunks_unique);
}

TEST_F(ImageWriterTest, UnchangedChunksMissingFromTheStoreAreReadAndCopied) {
  std::string content = RandomBytes(6 * kCs, 2);
  FakeBytes base_bytes(content);
  WriteOk(base_bytes, Options("base"));
  const format::Index base = LoadStoreIndex(*store_, "base");
  auto other = store::LocalStore::Open(tmp_.Join("other"), true);
  ASSERT_TRUE(other.ok());
  FakeBytes bytes(content);  // nothing may differ
  WriteOptions o = Options("copy");
  o.base = &base;
  auto sum = WriteImage(bytes, *other, o);
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(sum->chunks_changed, 0u);
  EXPECT_EQ(sum->chunks_new, 6u);
  EXPECT_EQ(sum->chunks_copied, 6u);
  EXPECT_EQ(bytes.read().size(), 6u);
  EXPECT_EQ(ChunkNames(*other), ChunkNames(*store_));
}

// gc removes chunk files no index names once they are older than its grace
// period: a version being written that reuses old chunk files marks them
// fresh, so gc keeps them until the new index names them.
TEST_F(ImageWriterTest, ReusedChunkFilesAreMarkedFresh) {
  std::string content = RandomBytes(4 * kCs, 3);
  FakeBytes first(content);
  WriteOk(first, Options("old"));
  const format::Index old = LoadStoreIndex(*store_, "old");
  const struct timespec long_ago[2] = {{1000000000, 0}, {1000000000, 0}};
  for (uint64_t i = 0; i < old.chunk_count(); i++) {
    const std::string path = store_->ChunkFilePath(old.entry(i).hash);
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), long_ago, 0), 0) << path;
  }
  FakeBytes again(content);
  WriteOk(again, Options("new"));  // every chunk reused
  const time_t now = std::time(nullptr);
  for (uint64_t i = 0; i < old.chunk_count(); i++) {
    struct stat st;
    ASSERT_EQ(::stat(store_->ChunkFilePath(old.entry(i).hash).c_str(), &st), 0);
    EXPECT_GE(st.st_mtime, now - 60) << "chunk " << i << " was not marked fresh";
  }
}

TEST_F(ImageWriterTest, AFailedReadWritesNoIndexAndNamesTheChunk) {
  FakeBytes bytes(RandomBytes(20 * kCs, 3));
  bytes.fail_chunk = 13;
  auto r = WriteImage(bytes, *store_, Options("img"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError);
  EXPECT_NE(r.status().message().find("chunk 13"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("disk on fire"), std::string::npos) << r.status().ToString();
  EXPECT_TRUE(store_->ListIndexes()->empty());
}

TEST_F(ImageWriterTest, RejectsABaseOfAnotherShape) {
  FakeBytes base_bytes(RandomBytes(4 * kCs, 4));
  WriteOk(base_bytes, Options("base"));
  const format::Index base = LoadStoreIndex(*store_, "base");
  FakeBytes longer(RandomBytes(5 * kCs, 4));
  WriteOptions o = Options("x");
  o.base = &base;
  auto r = WriteImage(longer, *store_, o);
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
  FakeBytes same(RandomBytes(4 * kCs, 4));
  o.chunk_size = 2 * kCs;
  r = WriteImage(same, *store_, o);
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
  EXPECT_TRUE(longer.read().empty());
  EXPECT_TRUE(same.read().empty());
  EXPECT_EQ(store_->ListIndexes().value(), std::vector<std::string>{"base"});
}

TEST_F(ImageWriterTest, ProgressIsInBytesAndEndsAtTheSize) {
  FakeBytes bytes(RandomBytes(50 * kCs + 3, 5));
  WriteOptions o = Options("img");
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  o.progress = [&](uint64_t done, uint64_t total) { calls.push_back({done, total}); };
  WriteOk(bytes, o);
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), std::make_pair(bytes.size(), bytes.size()));
  for (size_t i = 1; i < calls.size(); i++) EXPECT_LE(calls[i - 1].first, calls[i].first);
}

TEST(FileBytesTest, ReadsAFileAndReportsOneThatShrank) {
  ScopedTempDir tmp;
  const std::string path = tmp.Join("img");
  const std::string content = RandomBytes(3 * kCs, 6);
  ASSERT_TRUE(WriteTestFile(path, content));
  auto f = FileBytes::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->size(), content.size());
  EXPECT_TRUE((*f)->MayDiffer(0, kCs));
  std::string buf(kCs, '\0');
  ASSERT_TRUE((*f)->ReadAt(kCs, kCs, buf.data()).ok());
  EXPECT_EQ(buf, content.substr(kCs, kCs));
  ASSERT_EQ(::truncate(path.c_str(), kCs), 0);
  Status st = (*f)->ReadAt(2 * kCs, kCs, buf.data());
  EXPECT_EQ(st.code(), Status::Code::kIOError);
  EXPECT_NE(st.message().find(path), std::string::npos) << st.ToString();
  EXPECT_TRUE(FileBytes::Open(tmp.Join("nope")).status().IsNotFound());
}

TEST(DeviceBytesTest, ReadsTheDeviceAndAsksWhatMayDiffer) {
  const std::string content = RandomBytes(2 * kCs, 7);
  hloop::testing::MemoryDevice dev(content);
  DeviceBytes all(dev);
  EXPECT_EQ(all.size(), content.size());
  EXPECT_TRUE(all.MayDiffer(0, kCs));
  std::string buf(100, '\0');
  ASSERT_TRUE(all.ReadAt(kCs + 1, 100, buf.data()).ok());
  EXPECT_EQ(buf, content.substr(kCs + 1, 100));
  DeviceBytes second_only(dev, [](uint64_t off, uint64_t) { return off >= kCs; });
  EXPECT_FALSE(second_only.MayDiffer(0, kCs));
  EXPECT_TRUE(second_only.MayDiffer(kCs, kCs));
}

TEST(IsAllZeroTest, ZeroAndNonZeroBytes) {
  EXPECT_TRUE(IsAllZero(""));
  EXPECT_TRUE(IsAllZero(std::string(1, '\0')));
  EXPECT_TRUE(IsAllZero(std::string(kCs, '\0')));
  for (size_t at : {size_t(0), size_t(1), size_t(kCs / 2), size_t(kCs - 1)}) {
    std::string s(kCs, '\0');
    s[at] = 1;
    EXPECT_FALSE(IsAllZero(s)) << at;
  }
}

}  // namespace
}  // namespace hloop::writer
