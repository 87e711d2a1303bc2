#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "testing/temp_dir.h"
#include "util/bytes.h"
#include "util/file.h"
#include "util/mutex.h"
#include "util/size.h"
#include "util/status.h"

namespace hloop {
namespace {

using testing::ScopedTempDir;

uint64_t MustParse(const std::string& s) {
  auto r = ParseSize(s);
  EXPECT_TRUE(r.ok()) << s << ": " << r.status().ToString();
  return r.ok() ? r.value() : ~uint64_t(0);
}

TEST(ParseSizeTest, AcceptsPlainNumbers) {
  EXPECT_EQ(MustParse("0"), 0u);
  EXPECT_EQ(MustParse("1"), 1u);
  EXPECT_EQ(MustParse("4096"), 4096u);
  EXPECT_EQ(MustParse("123456789012"), 123456789012u);
}

TEST(ParseSizeTest, AcceptsBinaryUnits) {
  EXPECT_EQ(MustParse("256K"), 256u * 1024);
  EXPECT_EQ(MustParse("2G"), uint64_t(2) << 30);
  EXPECT_EQ(MustParse("3M"), uint64_t(3) << 20);
  EXPECT_EQ(MustParse("1T"), uint64_t(1) << 40);
  EXPECT_EQ(MustParse("17B"), 17u);
}

TEST(ParseSizeTest, UnitsAreCaseInsensitiveAndMayEndInBOrIB) {
  EXPECT_EQ(MustParse("256k"), 256u * 1024);
  EXPECT_EQ(MustParse("256KB"), 256u * 1024);
  EXPECT_EQ(MustParse("256KiB"), 256u * 1024);
  EXPECT_EQ(MustParse("2gib"), uint64_t(2) << 30);
  EXPECT_EQ(MustParse("2Gb"), uint64_t(2) << 30);
}

TEST(ParseSizeTest, AcceptsDecimals) {
  EXPECT_EQ(MustParse("1.5M"), uint64_t(3) << 19);
  EXPECT_EQ(MustParse("0.5K"), 512u);
  EXPECT_EQ(MustParse("2.25G"), uint64_t(9) << 28);
}

TEST(ParseSizeTest, RejectsUnknownUnits) {
  for (const char* s : {"1X", "1KK", "1MG", "10 parsecs", "1P", "1E", "5KBB"}) {
    auto r = ParseSize(s);
    EXPECT_FALSE(r.ok()) << s;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << s;
      EXPECT_NE(r.status().message().find(s), std::string::npos) << r.status().message();
    }
  }
}

// The header allows "optionally followed by iB or B" only after a K/M/G/T
// suffix; a bare "iB" or a doubled "B" is a typo, not a byte count.
TEST(ParseSizeTest, RejectsStrayByteSuffixes) {
  for (const char* s : {"1BB", "1iB", "1BiB", "1ib"}) EXPECT_FALSE(ParseSize(s).ok()) << s;
}

TEST(ParseSizeTest, RejectsNegativesAndGarbage) {
  for (const char* s : {"-1", "-1K", "-0.5M", "", " ", "K", "abc", "nan", "inf", "1e400"}) {
    auto r = ParseSize(s);
    EXPECT_FALSE(r.ok()) << "'" << s << "' parsed as " << (r.ok() ? r.value() : 0);
  }
}

TEST(ParseSizeTest, RejectsSizesThatOverflow) {
  EXPECT_FALSE(ParseSize("99999999T").ok());
  EXPECT_FALSE(ParseSize("1e30").ok());
}

TEST(FormatSizeTest, SmallValuesInBytes) {
  EXPECT_EQ(FormatSize(0), "0 B");
  EXPECT_EQ(FormatSize(1), "1 B");
  EXPECT_EQ(FormatSize(1023), "1023 B");
}

TEST(FormatSizeTest, LargerValuesInBinaryUnits) {
  EXPECT_EQ(FormatSize(1024), "1.00 KiB");
  EXPECT_EQ(FormatSize(uint64_t(3) << 29), "1.50 GiB");
  EXPECT_EQ(FormatSize(uint64_t(5) << 40), "5.00 TiB");
  // The header shows "256 KiB"; whatever the decimals, number and unit must be right.
  std::string s = FormatSize(256 * 1024);
  EXPECT_EQ(s.rfind("256", 0), 0u) << s;
  EXPECT_TRUE(s.ends_with(" KiB")) << s;
}

TEST(FormatSizeTest, OutputParsesBackApproximately) {
  for (uint64_t v : {uint64_t(1) << 20, uint64_t(1536) << 20, uint64_t(7) << 40, uint64_t(999)}) {
    std::string s = FormatSize(v);
    s.erase(s.find(' '), 1);  // "1.50 GiB" -> "1.50GiB"
    auto back = ParseSize(s);
    ASSERT_TRUE(back.ok()) << s;
    EXPECT_NEAR(double(back.value()), double(v), double(v) * 0.01) << s;
  }
}

TEST(HexTest, EncodesLowerCase) {
  const uint8_t data[] = {0x00, 0x01, 0xab, 0xff, 0x7f};
  EXPECT_EQ(HexEncode(data, sizeof data), "0001abff7f");
  EXPECT_EQ(HexEncode(data, 0), "");
}

TEST(HexTest, RoundTripsEveryByte) {
  uint8_t all[256];
  for (int i = 0; i < 256; i++) all[i] = uint8_t(i);
  std::string hex = HexEncode(all, sizeof all);
  ASSERT_EQ(hex.size(), 512u);
  uint8_t back[256] = {};
  ASSERT_TRUE(HexDecode(hex, back, sizeof back));
  EXPECT_EQ(std::memcmp(all, back, sizeof all), 0);
}

TEST(HexTest, DecodeAcceptsUpperCase) {
  uint8_t out[2];
  ASSERT_TRUE(HexDecode("ABcd", out, 2));
  EXPECT_EQ(out[0], 0xab);
  EXPECT_EQ(out[1], 0xcd);
}

TEST(HexTest, DecodeRejectsWrongLengthAndNonHex) {
  uint8_t out[2];
  EXPECT_FALSE(HexDecode("abc", out, 2));
  EXPECT_FALSE(HexDecode("abcdef", out, 2));
  EXPECT_FALSE(HexDecode("", out, 2));
  EXPECT_FALSE(HexDecode("abcg", out, 2));
  EXPECT_FALSE(HexDecode("ab d", out, 2));
  EXPECT_FALSE(HexDecode("0x12", out, 2));
}

TEST(BytesTest, LittleEndianRoundTrip) {
  uint8_t buf[8];
  PutU16(buf, 0xbeef);
  EXPECT_EQ(buf[0], 0xef);
  EXPECT_EQ(GetU16(buf), 0xbeef);
  PutU32(buf, 0xdeadbeef);
  EXPECT_EQ(buf[0], 0xef);
  EXPECT_EQ(buf[3], 0xde);
  EXPECT_EQ(GetU32(buf), 0xdeadbeefu);
  PutU64(buf, 0x0123456789abcdefull);
  EXPECT_EQ(buf[0], 0xef);
  EXPECT_EQ(buf[7], 0x01);
  EXPECT_EQ(GetU64(buf), 0x0123456789abcdefull);
}

TEST(StatusTest, OkByDefault) {
  Status st;
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(st.code(), Status::Code::kOk);
  EXPECT_EQ(st.ToString(), "OK");
}

TEST(StatusTest, ToStringNamesTheCodeAndMessage) {
  Status st = Status::Corruption("index http://x/a.idx: bad magic");
  std::string s = st.ToString();
  EXPECT_NE(s.find("index http://x/a.idx: bad magic"), std::string::npos) << s;
  EXPECT_NE(s.find("corrupt"), std::string::npos) << s;
  EXPECT_NE(Status::NotFound("x").ToString().find("not found"), std::string::npos);
  EXPECT_NE(Status::NoSpace("x").ToString().find("space"), std::string::npos);
  EXPECT_NE(Status::Unsupported("x").ToString().find("unsupported"), std::string::npos);
  // Different codes with the same message must read differently.
  EXPECT_NE(Status::IOError("m").ToString(), Status::Unavailable("m").ToString());
  EXPECT_NE(Status::InvalidArgument("m").ToString(), Status::Corruption("m").ToString());
}

TEST(StatusTest, AnnotatePrefixesContextAndKeepsCode) {
  Status st = Status::Corruption("bad magic").Annotate("index a.idx");
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_EQ(st.message(), "index a.idx: bad magic");
  Status twice = Status::NotFound("gone").Annotate("b").Annotate("a");
  EXPECT_EQ(twice.message(), "a: b: gone");
  EXPECT_TRUE(twice.IsNotFound());
}

TEST(StatusTest, AnnotateLeavesOkAlone) {
  Status st = Status::Ok().Annotate("context");
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(st.message(), "");
}

TEST(StatusTest, FromErrnoClassifies) {
  EXPECT_EQ(Status::FromErrno(ENOSPC, "f").code(), Status::Code::kNoSpace);
  EXPECT_EQ(Status::FromErrno(EDQUOT, "f").code(), Status::Code::kNoSpace);
  EXPECT_EQ(Status::FromErrno(ENOENT, "f").code(), Status::Code::kNotFound);
  Status io = Status::FromErrno(EACCES, "/some/file");
  EXPECT_EQ(io.code(), Status::Code::kIOError);
  EXPECT_EQ(io.message().rfind("/some/file: ", 0), 0u) << io.message();
}

TEST(ResultTest, HoldsValueOrStatus) {
  Result<int> good = 42;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 42);
  Result<int> bad = Status::NotFound("nope");
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsNotFound());
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(WriteFileAtomicTest, WritesAndReplaces) {
  ScopedTempDir tmp;
  std::string path = tmp.Join("f");
  ASSERT_TRUE(WriteFileAtomic(path, "hello", 5, Sync::kNone).ok());
  auto r = ReadFile(path);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), "hello");
  ASSERT_TRUE(WriteFileAtomic(path, "bye", 3, Sync::kFull).ok());
  EXPECT_EQ(ReadFile(path).value(), "bye");
  ASSERT_TRUE(WriteFileAtomic(path, "", 0, Sync::kStart).ok());
  EXPECT_EQ(ReadFile(path).value(), "");
  // No temporary file is left behind.
  EXPECT_EQ(ListDir(tmp.path()), std::vector<std::string>{"f"});
}

TEST(WriteFileAtomicTest, FailsInMissingDirectoryAndLeavesNothing) {
  ScopedTempDir tmp;
  Status st = WriteFileAtomic(tmp.Join("no/such/dir/f"), "x", 1, Sync::kNone);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no/such/dir/f"), std::string::npos) << st.message();
  EXPECT_TRUE(ListDir(tmp.path()).empty());
}

TEST(WriteFileAtomicTest, FailedRenameKeepsTargetAndLeavesNoTempFile) {
  ScopedTempDir tmp;
  // The target is a non-empty directory: the rename must fail (even as root).
  ASSERT_TRUE(MakeDirs(tmp.Join("target")).ok());
  ASSERT_TRUE(testing::WriteTestFile(tmp.Join("target/inside"), "keep"));
  Status st = WriteFileAtomic(tmp.Join("target"), "new", 3, Sync::kNone);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("target"), std::string::npos) << st.message();
  EXPECT_EQ(ListDir(tmp.path()), std::vector<std::string>{"target"});
  EXPECT_EQ(testing::ReadTestFile(tmp.Join("target/inside")), "keep");
}

TEST(FileTest, ReadFileOfMissingFileIsNotFound) {
  ScopedTempDir tmp;
  auto r = ReadFile(tmp.Join("missing"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound());
}

TEST(FileTest, ReadFileReadsLargeFiles) {
  ScopedTempDir tmp;
  std::string data = testing::RandomBytes(300000, 1);
  ASSERT_TRUE(testing::WriteTestFile(tmp.Join("big"), data));
  auto r = ReadFile(tmp.Join("big"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), data);
}

TEST(FileTest, MakeDirsCreatesNestedAndIsIdempotent) {
  ScopedTempDir tmp;
  std::string d = tmp.Join("a/b/c");
  ASSERT_TRUE(MakeDirs(d).ok());
  ASSERT_TRUE(MakeDirs(d).ok());
  struct stat sb;
  ASSERT_EQ(::stat(d.c_str(), &sb), 0);
  EXPECT_TRUE(S_ISDIR(sb.st_mode));
  ASSERT_TRUE(testing::WriteTestFile(tmp.Join("file"), "x"));
  EXPECT_FALSE(MakeDirs(tmp.Join("file")).ok());
}

TEST(FileTest, TempNamesAreUniqueAndBesideThePath) {
  std::string a = TempNameFor("/x/y"), b = TempNameFor("/x/y");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("/x/y.tmp.", 0), 0u) << a;
}

TEST(FileTest, PreadFullReadsAtOffsetAndStopsAtEof) {
  ScopedTempDir tmp;
  ASSERT_TRUE(testing::WriteTestFile(tmp.Join("f"), "0123456789"));
  ScopedFd fd(::open(tmp.Join("f").c_str(), O_RDONLY));
  ASSERT_TRUE(fd.valid());
  char buf[8] = {};
  size_t got = 0;
  ASSERT_TRUE(PreadFull(fd.get(), buf, 4, 3, &got).ok());
  EXPECT_EQ(got, 4u);
  EXPECT_EQ(std::string(buf, 4), "3456");
  ASSERT_TRUE(PreadFull(fd.get(), buf, 8, 6, &got).ok());
  EXPECT_EQ(got, 4u);
  EXPECT_EQ(std::string(buf, 4), "6789");
}

}  // namespace
TEST(ResultDeathTest, ReadingTheValueOfAFailedResultAbortsWithItsStatus) {
  Result<int> failed = Status::NotFound("chunk 7");
  EXPECT_DEATH((void)failed.value(), "Result::value\\(\\) on an error: .*chunk 7");
  EXPECT_DEATH((void)*failed, "on an error");
  Result<std::string> good = std::string("x");
  EXPECT_EQ(good->size(), 1u);
}

TEST(MutexTest, CondVarWakesAWaiterAndTimesOut) {
  Mutex mu;
  CondVar cv;
  bool ready = false;
  std::thread setter([&] {
    MutexLock lock(&mu);
    ready = true;
    cv.SignalAll();
  });
  {
    MutexLock lock(&mu);
    while (!ready) cv.Wait(&mu);
    EXPECT_TRUE(ready);
    EXPECT_FALSE(cv.WaitFor(&mu, std::chrono::milliseconds(10)));
  }
  setter.join();
  if (mu.TryLock()) {
    mu.Unlock();
  } else {
    ADD_FAILURE() << "the mutex is still held after the waiter's scope";
  }
}

TEST(MutexTest, MutexLockCanReleaseAndRetake) {
  Mutex mu;
  // Asks from another thread: try_lock on a mutex the caller holds is undefined.
  auto free_elsewhere = [&mu] {
    bool got = false;
    std::thread([&] {
      if (mu.TryLock()) {
        got = true;
        mu.Unlock();
      }
    }).join();
    return got;
  };
  MutexLock lock(&mu);
  EXPECT_FALSE(free_elsewhere());
  lock.Unlock();
  EXPECT_TRUE(free_elsewhere());
  lock.Lock();
  EXPECT_FALSE(free_elsewhere());
}

TEST(PathInsideTest, StripsTheRoot) {
  EXPECT_EQ(PathInside("/run/hloop", "/run/hloop/cache").value(), "/cache");
  EXPECT_EQ(PathInside("/run/hloop/", "/run/hloop/mnt/").value(), "/mnt");
  EXPECT_EQ(PathInside("/run/hloop", "/run/hloop").value(), "/");
  EXPECT_EQ(PathInside("/run/hloop", "/run/hloop/a/../b//c").value(), "/b/c");
  EXPECT_EQ(PathInside("/", "/etc/x").value(), "/etc/x");
}

TEST(PathInsideTest, RefusesPathsOutside) {
  EXPECT_FALSE(PathInside("/run/hloop", "/run/hloopx/cache").ok());
  EXPECT_FALSE(PathInside("/run/hloop", "/run/hloop/../etc").ok());
  EXPECT_FALSE(PathInside("/run/hloop", "/etc/hloop").ok());
  EXPECT_FALSE(PathInside("run/hloop", "run/hloop/x").ok());  // root must be absolute
}

TEST(PathInsideTest, RelativePathsStartAtTheCurrentDirectory) {
  std::string cwd = std::filesystem::current_path().string();
  EXPECT_EQ(PathInside(cwd, "sub/file").value(), "/sub/file");
  EXPECT_FALSE(PathInside(cwd + "/sub", "other").ok());
}

}  // namespace hloop
