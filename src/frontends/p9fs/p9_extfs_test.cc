// ExtFs against real ext2, ext3 and ext4 images made at test time with
// mke2fs -d (e2fsprogs) from a tree of known files, then adjusted with
// debugfs (owners, nanoseconds, device nodes: no root needed): every byte and
// attribute through the Node API, directories read across many calls, every
// change refused, bad images refused, concurrent reads, and the whole 9P
// server with a raw client.
#include "frontends/p9fs/p9_extfs.h"

#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include "frontends/p9/p9_server.h"
#include "testing/memory_device.h"
#include "testing/p9_client.h"
#include "testing/temp_dir.h"

namespace hloop::p9 {
namespace {

using hloop::testing::MemoryDevice;
using hloop::testing::P9Client;
using hloop::testing::RandomBytes;
using hloop::testing::ReadTestFile;
using hloop::testing::ScopedTempDir;
using hloop::testing::WriteTestFile;

// --- The source tree, and what the images must show of it.

const std::string kSmall = "hello from inside an ext image\n";
const std::string kFastTarget = "small.txt";
const std::string kSlowTarget =
    "a/rather/long/target/that/does/not/fit/in/the/inode/" + std::string(60, 't');
constexpr int kManyEntries = 3000;
constexpr uint64_t kSparseSize = 4 << 20;
constexpr uint64_t kSparseSecond = 3 << 20;  // where the second run of data starts
constexpr uint64_t kMtime = 981173106;       // 2001-02-03 04:05:06 UTC
constexpr uint32_t kMtimeNsec = 123456789;

std::string ManyName(int i) {
  return "entry-" + std::to_string(i) + std::string(size_t(i % 37), 'n');
}

struct Contents {
  std::string multi = RandomBytes(200000, 11);         // many blocks, indirect ones on ext2
  std::string big = RandomBytes((3 << 19) + 123, 12);  // over 1 MiB: double indirect with 1K blocks
  std::string sparse_head = RandomBytes(65536 + 100, 13);
  std::string sparse_tail = RandomBytes(10000, 14);
  std::string xattr_big = RandomBytes(500, 15);  // too big for the inode: an xattr block
  std::string Sparse() const {
    std::string s(kSparseSize, '\0');
    s.replace(0, sparse_head.size(), sparse_head);
    s.replace(kSparseSecond, sparse_tail.size(), sparse_tail);
    return s;
  }
};
const Contents& Data() {
  static const Contents* c = new Contents;
  return *c;
}

// One kind of image: mke2fs options (ext2 and ext3 map blocks through
// indirect blocks, ext4 with extents; 1 KiB blocks but for "ext4"); whether
// directories are then indexed (e2fsck -D makes a hashed directory of the big
// one); whether inodes have room for nanoseconds and creation times.
struct Variant {
  const char* name;
  const char* mkfs;
  bool htree;
  bool large_inodes;
};
const Variant kVariants[] = {
    {"ext2", "-t ext2 -I 128", false, false},
    {"ext3", "-t ext3", true, true},
    {"ext4", "-t ext4 -b 4096", true, true},
    {"ext4_inline", "-t ext4 -O inline_data", false, true},
};
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

// Runs a shell command, output to `log`; its exit status.
int Sh(const std::string& cmd, const std::string& log) {
  int rc = std::system((cmd + " >>" + log + " 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

class Images {
 public:
  Images() {
    src_ = tmp_.Join("src");
    log_ = tmp_.Join("log");
    MakeTree();
  }
  // The image of variant `name`, made on first use (each test runs in a
  // process of its own, so making only the one it needs saves most of the
  // time); empty, with `error` set, if making it failed.
  const std::string& image(const std::string& name) {
    if (!images_.count(name)) {
      for (const Variant& v : kVariants) {
        if (v.name == name) Make(v);
      }
    }
    return images_[name];
  }
  const std::string& log() const { return log_; }
  std::string tmp(const std::string& rel) const { return tmp_.Join(rel); }
  std::string error;  // why making them failed

 private:
  void Fail(const std::string& what) {
    if (error.empty()) error = what + " (log: " + ReadTestFile(log_) + ")";
  }
  void MakeTree() {
    const Contents& d = Data();
    const std::string s = src_ + "/";
    if (::mkdir(src_.c_str(), 0755) != 0 || ::mkdir((s + "many").c_str(), 0755) != 0 ||
        ::mkdir((s + "sub").c_str(), 0750) != 0)
      return Fail("mkdir");
    bool ok = WriteTestFile(s + "empty", "") && WriteTestFile(s + "small.txt", kSmall) &&
              WriteTestFile(s + "multi.bin", d.multi) && WriteTestFile(s + "big.bin", d.big) &&
              WriteTestFile(s + "sub/inner.txt", "inner\n");
    // A hole between two runs of data and another at the end.
    ok = ok && WriteTestFile(s + "sparse.bin", d.sparse_head) &&
         ::truncate((s + "sparse.bin").c_str(), kSparseSize) == 0;
    FILE* f = std::fopen((s + "sparse.bin").c_str(), "r+");
    ok = ok && f && std::fseek(f, long(kSparseSecond), SEEK_SET) == 0 &&
         std::fwrite(d.sparse_tail.data(), 1, d.sparse_tail.size(), f) == d.sparse_tail.size();
    if (f) std::fclose(f);
    for (int i = 0; ok && i < kManyEntries; i++) ok = WriteTestFile(s + "many/" + ManyName(i), "");
    ok = ok && ::symlink(kFastTarget.c_str(), (s + "fast").c_str()) == 0 &&
         ::symlink(kSlowTarget.c_str(), (s + "slow").c_str()) == 0 &&
         ::link((s + "small.txt").c_str(), (s + "hard").c_str()) == 0 &&
         ::mkfifo((s + "fifo").c_str(), 0644) == 0;
    ok = ok && ::setxattr((s + "small.txt").c_str(), "user.test", "hello xattr", 11, 0) == 0 &&
         ::setxattr((s + "small.txt").c_str(), "user.big", d.xattr_big.data(), d.xattr_big.size(),
                    0) == 0;
    if (!ok) Fail("making the source tree: " + std::string(std::strerror(errno)));
  }
  void Make(const Variant& v) {
    if (!error.empty()) return;
    const std::string img = tmp_.Join(std::string(v.name) + ".img"),
                      cmds = tmp_.Join("debugfs.cmds");
    // Owners, times and device nodes set in the image itself: no root needed.
    std::string c =
        "sif /small.txt mode 0100640\nsif /small.txt uid 70000\nsif /small.txt gid 80000\n"
        "sif /small.txt mtime @" +
        std::to_string(kMtime) + "\nsif /small.txt atime @" + std::to_string(kMtime + 1) +
        "\nmknod chardev c 4 5\nmknod blockdev b 259 700\n"
        // mke2fs -O inline_data drops the trailing hole: set the size again.
        "sif /sparse.bin size " +
        std::to_string(kSparseSize) + "\n";
    if (v.large_inodes)
      c += "sif /small.txt mtime_extra " + std::to_string(uint64_t(kMtimeNsec) << 2) + "\n";
    if (!WriteTestFile(cmds, c)) return Fail("debugfs commands");
    if (Sh("mke2fs -q -F -N 4096 " + std::string(v.mkfs) + " -d " + src_ + " " + img + " 16M",
           log_) != 0)
      return Fail(std::string("mke2fs for ") + v.name);
    if (Sh("debugfs -w -f " + cmds + " " + img, log_) != 0) return Fail("debugfs");
    if (v.htree && Sh("e2fsck -fyD " + img, log_) > 1) return Fail("e2fsck -D");
    images_[v.name] = ReadTestFile(img);
  }

  ScopedTempDir tmp_;
  std::string src_, log_;
  std::map<std::string, std::string> images_;
};

Images& TheImages() {
  static Images* images = new Images;  // one per process, images made on demand
  return *images;
}

// --- The Node API.

class P9ExtFsTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    device_ = std::make_shared<MemoryDevice>(TheImages().image(GetParam().name));
    ASSERT_EQ(TheImages().error, "");
    auto fs = ExtFs::Open(device_, GetParam().name);
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = *fs;
  }

  std::shared_ptr<Node> Root() {
    std::shared_ptr<Node> root;
    EXPECT_EQ(fs_->Attach(0, &root), 0);
    return root;
  }
  // Walks `path` ("a/b") from the root; the errno of the first failing step.
  int WalkTo(const std::string& path, std::shared_ptr<Node>* out) {
    std::shared_ptr<Node> n = Root();
    size_t start = 0;
    while (start < path.size()) {
      size_t slash = path.find('/', start);
      if (slash == std::string::npos) slash = path.size();
      std::shared_ptr<Node> next;
      if (int e = n->Walk(path.substr(start, slash - start), &next)) return e;
      n = std::move(next);
      start = slash + 1;
    }
    *out = std::move(n);
    return 0;
  }
  std::shared_ptr<Node> At(const std::string& path) {
    std::shared_ptr<Node> n;
    EXPECT_EQ(WalkTo(path, &n), 0) << path;
    return n ? n : Root();
  }
  std::shared_ptr<Node> Opened(const std::string& path, uint32_t flags = 0) {
    auto n = At(path);
    EXPECT_EQ(n->Open(flags), 0) << path;
    return n;
  }
  // The whole file, read `step` bytes at a time.
  std::string ReadAll(const std::string& path, uint32_t step = 65536) {
    auto n = Opened(path);
    std::string all, piece;
    for (;;) {
      EXPECT_EQ(n->Read(all.size(), step, &piece), 0);
      all += piece;
      if (piece.size() < step) return all;
    }
  }
  // Every entry of a directory, `budget` bytes per ReadDir.
  std::vector<Dirent> List(const std::string& path, uint32_t budget) {
    auto n = Opened(path, kDotlDirectory);
    std::vector<Dirent> all;
    uint64_t cookie = 0;
    for (int calls = 0; calls < 100000; calls++) {
      std::vector<Dirent> part;
      EXPECT_EQ(n->ReadDir(cookie, budget, &part), 0);
      if (part.empty()) break;
      size_t used = 0;
      for (const Dirent& d : part) used += DirentSize(d.name.size());
      EXPECT_LE(used, budget);
      cookie = part.back().offset;
      all.insert(all.end(), part.begin(), part.end());
    }
    return all;
  }
  Rgetattr Attr(const std::string& path) {
    Rgetattr a;
    EXPECT_EQ(At(path)->GetAttr(&a), 0) << path;
    return a;
  }

  std::shared_ptr<MemoryDevice> device_;
  std::shared_ptr<ExtFs> fs_;
};

TEST_P(P9ExtFsTest, ReadsEveryFileByteForByte) {
  const Contents& d = Data();
  EXPECT_EQ(ReadAll("empty"), "");
  EXPECT_EQ(ReadAll("small.txt"), kSmall);
  EXPECT_EQ(ReadAll("hard"), kSmall);
  EXPECT_EQ(ReadAll("sub/inner.txt"), "inner\n");
  EXPECT_EQ(hloop::testing::FirstDifference(ReadAll("multi.bin"), d.multi), "");
  EXPECT_EQ(hloop::testing::FirstDifference(ReadAll("big.bin"), d.big), "");
  EXPECT_EQ(hloop::testing::FirstDifference(ReadAll("big.bin", 10007), d.big),
            "");  // unaligned steps
  EXPECT_EQ(hloop::testing::FirstDifference(ReadAll("sparse.bin", 1 << 20), d.Sparse()), "");
}

TEST_P(P9ExtFsTest, ReadsAtAnyOffset) {
  const std::string& big = Data().big;
  auto n = Opened("big.bin");
  std::string got;
  for (uint64_t off : std::vector<uint64_t>{0, 1, 1023, 4095, 70000, big.size() - 5}) {
    ASSERT_EQ(n->Read(off, 10000, &got), 0);
    EXPECT_EQ(got, big.substr(off, 10000)) << off;
  }
  EXPECT_EQ(n->Read(big.size(), 100, &got), 0);
  EXPECT_EQ(got, "");
  EXPECT_EQ(n->Read(uint64_t(1) << 62, 100, &got), 0);
  EXPECT_EQ(got, "");
  // Across the hole of the sparse file, and inside it.
  const std::string sparse = Data().Sparse();
  auto s = Opened("sparse.bin");
  for (uint64_t off :
       std::vector<uint64_t>{65000, kSparseSecond - 3000, 2 << 20, kSparseSize - 100}) {
    ASSERT_EQ(s->Read(off, 8192, &got), 0);
    EXPECT_EQ(got, sparse.substr(off, 8192)) << off;
  }
}

TEST_P(P9ExtFsTest, ReadNeedsAnOpenFileNotADirectory) {
  std::string got;
  EXPECT_EQ(At("small.txt")->Read(0, 10, &got), EBADF);
  EXPECT_EQ(Opened("sub", kDotlDirectory)->Read(0, 10, &got), EISDIR);
  auto n = Opened("small.txt");
  EXPECT_EQ(n->Open(0), EINVAL);  // already open
  std::vector<Dirent> entries;
  EXPECT_EQ(n->ReadDir(0, 4096, &entries), ENOTDIR);
  EXPECT_EQ(At("sub")->ReadDir(0, 4096, &entries), EBADF);
  EXPECT_EQ(At("small.txt")->Open(kDotlDirectory), ENOTDIR);
  EXPECT_EQ(At("fast")->Open(0), ELOOP);
  EXPECT_EQ(At("fifo")->Open(0), EOPNOTSUPP);
  EXPECT_EQ(At("chardev")->Open(0), EOPNOTSUPP);
}

TEST_P(P9ExtFsTest, Attributes) {
  const Variant& v = GetParam();
  Rgetattr a = Attr("small.txt");
  EXPECT_EQ(a.mode, 0100640u);
  EXPECT_EQ(a.uid, 70000u);  // the high 16 bits too
  EXPECT_EQ(a.gid, 80000u);
  EXPECT_EQ(a.nlink, 2u);  // small.txt and hard
  EXPECT_EQ(a.size, kSmall.size());
  EXPECT_EQ(a.mtime_sec, kMtime);
  EXPECT_EQ(a.mtime_nsec, v.large_inodes ? kMtimeNsec : 0u);
  EXPECT_EQ(a.atime_sec, kMtime + 1);
  EXPECT_EQ((a.valid & kGetattrBtime) != 0, v.large_inodes);  // creation time: large inodes only
  EXPECT_EQ(a.valid & kGetattrBasic, kGetattrBasic);
  EXPECT_EQ(a.qid.type, kQidFile);
  EXPECT_EQ(a.qid, At("small.txt")->qid());
  EXPECT_EQ(Attr("hard").qid, a.qid);  // one inode
  EXPECT_NE(Attr("multi.bin").qid.path, a.qid.path);

  Rgetattr root = Attr("");
  EXPECT_EQ(root.qid, (Qid{kQidDir, 0, 2}));  // qid.path is the inode number
  EXPECT_TRUE(S_ISDIR(root.mode));
  EXPECT_EQ(Attr("sub").mode, 040750u);
  EXPECT_EQ(Attr("sub").nlink, 2u);
  EXPECT_EQ(Attr("big.bin").size, Data().big.size());
  EXPECT_GE(Attr("big.bin").blocks * 512, Data().big.size());
  // The hole takes no space.
  Rgetattr sparse = Attr("sparse.bin");
  EXPECT_EQ(sparse.size, kSparseSize);
  EXPECT_LT(sparse.blocks * 512, uint64_t(1) << 20);
  EXPECT_GE(sparse.blocks * 512, Data().sparse_head.size() + Data().sparse_tail.size());

  EXPECT_TRUE(S_ISFIFO(Attr("fifo").mode));
  Rgetattr c = Attr("chardev");
  EXPECT_TRUE(S_ISCHR(c.mode));
  EXPECT_EQ(c.rdev, makedev(4, 5));  // the old encoding
  Rgetattr b = Attr("blockdev");
  EXPECT_TRUE(S_ISBLK(b.mode));
  EXPECT_EQ(b.rdev, makedev(259, 700));  // the new one
  Rgetattr l = Attr("slow");
  EXPECT_TRUE(S_ISLNK(l.mode));
  EXPECT_EQ(l.qid.type, kQidSymlink);
  EXPECT_EQ(l.size, kSlowTarget.size());
}

TEST_P(P9ExtFsTest, StatFsDescribesTheFileSystem) {
  Rstatfs s;
  ASSERT_EQ(Root()->StatFs(&s), 0);
  EXPECT_EQ(s.type, 0xEF53u);
  EXPECT_EQ(uint64_t(s.bsize) * s.blocks, uint64_t(16) << 20);
  EXPECT_GT(s.bfree, 0u);
  EXPECT_LE(s.bavail, s.bfree);
  EXPECT_GE(s.files, 4096u);
  EXPECT_LT(s.ffree, s.files - kManyEntries);
  EXPECT_EQ(s.namelen, 255u);
}

TEST_P(P9ExtFsTest, SymbolicLinks) {
  std::string t;
  EXPECT_EQ(At("fast")->ReadLink(&t), 0);
  EXPECT_EQ(t, kFastTarget);
  EXPECT_EQ(At("slow")->ReadLink(&t), 0);  // in a block, or inline data
  EXPECT_EQ(t, kSlowTarget);
  EXPECT_EQ(At("small.txt")->ReadLink(&t), EINVAL);
  // Links are never followed on the server.
  std::shared_ptr<Node> n;
  EXPECT_EQ(At("fast")->Walk("x", &n), ENOTDIR);
}

TEST_P(P9ExtFsTest, WalkStaysInsideAndChecksNames) {
  std::shared_ptr<Node> n;
  ASSERT_EQ(WalkTo("../../..", &n), 0);
  EXPECT_EQ(n->qid().path, 2u);  // ".." of the root is the root
  ASSERT_EQ(WalkTo("sub/..", &n), 0);
  EXPECT_EQ(n->qid().path, 2u);
  ASSERT_EQ(WalkTo("sub/./inner.txt", &n), 0);
  EXPECT_EQ(n->qid(), At("sub/inner.txt")->qid());
  EXPECT_EQ(Root()->Walk("sub/inner.txt", &n), EINVAL);
  EXPECT_EQ(Root()->Walk(std::string("sub\0x", 5), &n), EINVAL);
  EXPECT_EQ(Root()->Walk("", &n), EINVAL);
  EXPECT_EQ(Root()->Walk(std::string(256, 'a'), &n), ENAMETOOLONG);
  EXPECT_EQ(Root()->Walk("missing", &n), ENOENT);
  EXPECT_EQ(At("small.txt")->Walk("x", &n), ENOTDIR);
  EXPECT_EQ(At("many")->Walk(ManyName(2999), &n), 0);
  EXPECT_EQ(At("many")->Walk("entry-3000", &n), ENOENT);
}

TEST_P(P9ExtFsTest, ListsADirectory) {
  std::map<std::string, Dirent> got;
  for (const Dirent& d : List("", 65536)) EXPECT_TRUE(got.emplace(d.name, d).second) << d.name;
  std::set<std::string> names;
  for (const auto& [name, d] : got) names.insert(name);
  // lost+found is made by mke2fs.
  std::set<std::string> want = {
      ".",   "..",   "lost+found", "empty", "small.txt", "multi.bin", "big.bin", "sparse.bin",
      "sub", "many", "fast",       "slow",  "hard",      "fifo",      "chardev", "blockdev"};
  EXPECT_EQ(names, want);
  EXPECT_EQ(got["."].qid.path, 2u);
  EXPECT_EQ(got[".."].qid.path, 2u);
  EXPECT_EQ(got["small.txt"].type, DT_REG);
  EXPECT_EQ(got["small.txt"].qid, Attr("small.txt").qid);
  EXPECT_EQ(got["hard"].qid.path, got["small.txt"].qid.path);
  EXPECT_EQ(got["sub"].type, DT_DIR);
  EXPECT_EQ(got["sub"].qid.type, kQidDir);
  EXPECT_EQ(got["fast"].type, DT_LNK);
  EXPECT_EQ(got["fast"].qid.type, kQidSymlink);
  EXPECT_EQ(got["fifo"].type, DT_FIFO);
  EXPECT_EQ(got["chardev"].type, DT_CHR);
  EXPECT_EQ(got["blockdev"].type, DT_BLK);
  // A small directory (inline data in ext4_inline).
  std::set<std::string> sub;
  for (const Dirent& d : List("sub", 65536)) sub.insert(d.name);
  EXPECT_EQ(sub, (std::set<std::string>{".", "..", "inner.txt"}));
}

TEST_P(P9ExtFsTest, LargeDirectoryAcrossManyReadsEveryEntryOnce) {
  std::set<std::string> want = {".", ".."};
  for (int i = 0; i < kManyEntries; i++) want.insert(ManyName(i));
  for (uint32_t budget : {100u, 300u, 8192u, 1u << 20}) {
    std::vector<Dirent> all = List("many", budget);
    std::set<std::string> got;
    uint64_t last = 0;
    for (const Dirent& d : all) {
      EXPECT_TRUE(got.insert(d.name).second) << "twice: " << d.name << " (budget " << budget << ")";
      EXPECT_GT(d.offset, last);  // cookies grow
      last = d.offset;
    }
    EXPECT_EQ(got, want) << "budget " << budget;
  }
  // A cookie works on another fid; a cookie inside an entry (no boundary)
  // resumes at the entry after it.
  std::vector<Dirent> all = List("many", 1 << 20);
  auto n = Opened("many", kDotlDirectory);
  std::vector<Dirent> rest;
  ASSERT_EQ(n->ReadDir(all[1000].offset, 1 << 20, &rest), 0);
  ASSERT_EQ(rest.size(), all.size() - 1001);
  EXPECT_EQ(rest[0], all[1001]);
  rest.clear();
  ASSERT_EQ(n->ReadDir(all[1001].offset - 1, 1 << 20, &rest), 0);
  ASSERT_EQ(rest.size(), all.size() - 1002);
  EXPECT_EQ(rest[0], all[1002]);
  rest.clear();
  EXPECT_EQ(n->ReadDir(all.back().offset, 1 << 20, &rest), 0);  // the end
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(n->ReadDir(uint64_t(1) << 60, 1 << 20, &rest), 0);
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(n->ReadDir(0, 10, &rest), EINVAL);  // not even one entry fits
}

TEST_P(P9ExtFsTest, EveryChangeIsReadOnly) {
  EXPECT_TRUE(fs_->read_only());
  auto root = Root();
  auto file = At("small.txt");
  Qid q;
  uint32_t n = 0;
  EXPECT_EQ(Root()->Create("new", 0, 0644, 0, &q), EROFS);
  EXPECT_EQ(file->Write(0, "x", &n), EROFS);
  EXPECT_EQ(file->SetAttr(Tsetattr{0, kSetattrMode, 0600}), EROFS);
  EXPECT_EQ(root->Mkdir("d", 0755, 0, &q), EROFS);
  EXPECT_EQ(root->Symlink("l", "t", 0, &q), EROFS);
  EXPECT_EQ(root->Mknod("f", S_IFIFO | 0644, 0, 0, 0, &q), EROFS);
  EXPECT_EQ(root->Link(*file, "h"), EROFS);
  EXPECT_EQ(file->Rename(*root, "r"), EROFS);
  EXPECT_EQ(root->RenameAt("small.txt", *root, "r"), EROFS);
  EXPECT_EQ(root->UnlinkAt("small.txt", 0), EROFS);
  EXPECT_EQ(file->Remove(), EROFS);
  EXPECT_EQ(file->XattrCreate("user.x", 1, 0), EROFS);
  EXPECT_EQ(At("small.txt")->Open(kDotlWronly), EROFS);
  EXPECT_EQ(At("small.txt")->Open(kDotlRdwr), EROFS);
  EXPECT_EQ(At("small.txt")->Open(kDotlTrunc), EROFS);
  EXPECT_EQ(At("sub")->Open(kDotlRdwr | kDotlDirectory), EROFS);
  EXPECT_EQ(ReadAll("small.txt"), kSmall);
}

Tlock LockOf(uint8_t type) {
  Tlock t;
  t.type = type;
  t.length = 10;
  return t;
}

TEST_P(P9ExtFsTest, LocksAndFsyncOnAReadOnlyFile) {
  auto n = Opened("small.txt");
  uint8_t status = 99;
  EXPECT_EQ(At("small.txt")->Lock(LockOf(kLockRead), &status), EBADF);  // not open
  EXPECT_EQ(n->Lock(LockOf(kLockRead), &status), 0);
  EXPECT_EQ(status, kLockSuccess);
  EXPECT_EQ(n->Lock(LockOf(kLockWrite), &status), EBADF);  // as fcntl on an O_RDONLY descriptor
  EXPECT_EQ(n->Lock(LockOf(kLockUnlock), &status), 0);
  EXPECT_EQ(n->Lock(LockOf(7), &status), EINVAL);
  Rgetlock g;
  EXPECT_EQ(n->GetLock(Tgetlock{0, kLockWrite, 5, 10, 42, "c"}, &g), 0);
  EXPECT_EQ(g.type, kLockUnlock);
  EXPECT_EQ(g.client_id, "c");
  EXPECT_EQ(n->Fsync(false), 0);
  EXPECT_EQ(At("small.txt")->Fsync(true), EBADF);
  EXPECT_EQ(n->Clunk(), 0);
}

TEST_P(P9ExtFsTest, ExtendedAttributes) {
  std::shared_ptr<Node> x;
  uint64_t size = 0;
  ASSERT_EQ(At("small.txt")->XattrWalk("user.test", &x, &size), 0);
  std::string v;
  EXPECT_EQ(size, 11u);
  ASSERT_EQ(x->Read(0, 100, &v), 0);
  EXPECT_EQ(v, "hello xattr");
  ASSERT_EQ(x->Read(6, 100, &v), 0);
  EXPECT_EQ(v, "xattr");
  ASSERT_EQ(At("small.txt")->XattrWalk("user.big", &x, &size), 0);
  ASSERT_EQ(x->Read(0, 4096, &v), 0);
  EXPECT_EQ(v, Data().xattr_big);
  // The list: NUL-terminated names; never inline data's system.data.
  ASSERT_EQ(At("small.txt")->XattrWalk("", &x, &size), 0);
  ASSERT_EQ(x->Read(0, 4096, &v), 0);
  EXPECT_EQ(v.size(), size);
  std::set<std::string> names;
  for (size_t pos = 0; pos < v.size();) {
    size_t end = v.find('\0', pos);
    ASSERT_NE(end, std::string::npos);
    names.insert(v.substr(pos, end - pos));
    pos = end + 1;
  }
  EXPECT_TRUE(names.count("user.test"));
  EXPECT_TRUE(names.count("user.big"));
  EXPECT_FALSE(names.count("system.data"));
  // As the host's getxattr: ENODATA when absent.
  EXPECT_EQ(At("small.txt")->XattrWalk("user.missing", &x, &size), ENODATA);
  EXPECT_EQ(At("small.txt")->XattrWalk("system.data", &x, &size), ENODATA);
  EXPECT_EQ(At("multi.bin")->XattrWalk("user.test", &x, &size), ENODATA);
  EXPECT_EQ(At("small.txt")->XattrWalk(std::string("a\0b", 3), &x, &size), EINVAL);
  EXPECT_EQ(At("small.txt")->XattrWalk(std::string(300, 'a'), &x, &size), ERANGE);
}

TEST_P(P9ExtFsTest, ConcurrentReadsAreCorrect) {
  const Contents& d = Data();
  const std::string sparse = d.Sparse();
  const std::map<std::string, const std::string*> files = {
      {"big.bin", &d.big}, {"multi.bin", &d.multi}, {"sparse.bin", &sparse}};
  auto shared = Opened("big.bin");  // one fid read by every thread
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng{uint64_t(t)};
      for (int i = 0; i < 60; i++) {
        auto it = std::next(files.begin(), long(rng() % files.size()));
        auto n = i % 3 == 0 && it->first == "big.bin" ? shared : Opened(it->first);
        const std::string& want = *it->second;
        uint64_t off = rng() % want.size();
        uint32_t count = uint32_t(1 + rng() % 200000);
        std::string got;
        if (n->Read(off, count, &got) != 0 || got != want.substr(off, count)) bad++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

// Data reads do not hold the file system's lock: several wait inside the
// device at once. (Within the first 12 KiB of the file, so that a
// block-mapped file maps them from the inode's direct blocks, without
// reading an indirect block under the lock.)
TEST_P(P9ExtFsTest, DataReadsRunInParallel) {
  std::vector<std::shared_ptr<Node>> nodes;
  std::string got;
  for (int i = 0; i < 3; i++) {
    nodes.push_back(Opened("multi.bin"));
    ASSERT_EQ(nodes.back()->Read(0, 1, &got), 0);  // loads an extent map
  }
  device_->CloseGate();
  std::vector<std::thread> readers;
  std::vector<std::string> results(3);
  for (int i = 0; i < 3; i++)
    readers.emplace_back([&, i] {
      EXPECT_EQ(nodes[size_t(i)]->Read(uint64_t(i) * 4096, 2048, &results[size_t(i)]), 0);
    });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (device_->waiting() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(device_->waiting(), 3);
  device_->OpenGate();
  for (auto& r : readers) r.join();
  for (int i = 0; i < 3; i++)
    EXPECT_EQ(results[size_t(i)], Data().multi.substr(size_t(i) * 4096, 2048));
}

TEST_P(P9ExtFsTest, DeviceErrorsBecomeEio) {
  auto n = Opened("big.bin");
  device_->FailReads(Status::Unavailable("server away"));
  std::string got;
  EXPECT_EQ(n->Read(0, 4096, &got), EIO);
  device_->FailReads(Status::Ok());
  EXPECT_EQ(n->Read(0, 4096, &got), 0);
  EXPECT_EQ(got, Data().big.substr(0, 4096));
}

INSTANTIATE_TEST_SUITE_P(Images, P9ExtFsTest, ::testing::ValuesIn(kVariants),
                         [](const ::testing::TestParamInfo<Variant>& i) {
                           return std::string(i.param.name);
                         });

// --- Opening: what is not a good ext2/3/4 file system is refused clearly.

std::string OpenError(std::string bytes, const std::string& name = "http://x/img.idx") {
  auto fs = ExtFs::Open(std::make_shared<MemoryDevice>(std::move(bytes)), name);
  return fs.ok() ? "opened" : fs.status().ToString();
}

TEST(P9ExtFsOpenTest, RefusesWhatIsNotAnExtFileSystem) {
  EXPECT_NE(OpenError(std::string(1 << 20, '\0'))
                .find("http://x/img.idx: no ext2/3/4 file system (bad magic)"),
            std::string::npos);
  EXPECT_NE(OpenError(RandomBytes(1 << 20, 1)).find("bad magic"), std::string::npos);
  EXPECT_NE(OpenError("tiny").find("no ext2/3/4 file system"), std::string::npos);
  EXPECT_NE(OpenError("").find("no ext2/3/4 file system"), std::string::npos);
}

TEST(P9ExtFsOpenTest, RefusesATruncatedImage) {
  for (const Variant& v : kVariants) {
    const std::string& img = TheImages().image(v.name);
    ASSERT_EQ(TheImages().error, "");
    for (size_t keep :
         {size_t(2048), size_t(4096), size_t(100000), size_t(1 << 20), img.size() - 1024}) {
      std::string err = OpenError(img.substr(0, keep));
      EXPECT_NE(err, "opened") << v.name << " cut at " << keep;
      EXPECT_NE(err.find("http://x/img.idx"), std::string::npos) << err;
    }
  }
}

TEST(P9ExtFsOpenTest, RefusesAJournalThatNeedsRecovery) {
  const std::string img = TheImages().tmp("recover.img");
  ASSERT_TRUE(WriteTestFile(img, TheImages().image("ext3")));
  ASSERT_EQ(TheImages().error, "");
  ASSERT_EQ(Sh("debugfs -w -R 'feature needs_recovery' " + img, TheImages().log()), 0);
  EXPECT_NE(OpenError(ReadTestFile(img)).find("needs journal recovery"), std::string::npos);
}

TEST(P9ExtFsOpenTest, ReportsTheDevicesOwnError) {
  auto dev = std::make_shared<MemoryDevice>(TheImages().image("ext4"));
  ASSERT_EQ(TheImages().error, "");
  dev->FailReads(Status::Unavailable("chunk 0 from http://m1/: connection refused"));
  auto fs = ExtFs::Open(dev, "http://m1/img.idx");
  ASSERT_FALSE(fs.ok());
  EXPECT_NE(fs.status().ToString().find("connection refused"), std::string::npos)
      << fs.status().ToString();
}

// --- The whole server, with a raw 9P client.

// The ext4 image served by a whole server; a client attached as fid 0.
class P9ExtFsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    device_ = std::make_shared<MemoryDevice>(TheImages().image("ext4"));
    ASSERT_EQ(TheImages().error, "");
    auto fs = ExtFs::Open(device_, "img");
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    server_ = std::make_unique<Server>(std::vector<Export>{{"img", *fs}}, ServerOptions{});
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    server_->Adopt(sv[0]);
    client_ = std::make_unique<P9Client>(sv[1]);
    ASSERT_EQ(client_->Connect(0, "any name"), 0);
  }

  std::shared_ptr<MemoryDevice> device_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<P9Client> client_;
};

TEST_F(P9ExtFsServerTest, ServesAnImageOverNineP) {
  P9Client& c = *client_;

  // Read a file whole, as the kernel does: walk, open, read to the end.
  auto w = c.As<Rwalk>(Twalk{0, 1, {"sub", "..", "big.bin"}});
  ASSERT_TRUE(w);
  EXPECT_EQ(w->qids.size(), 3u);
  EXPECT_EQ(w->qids[1].path, 2u);
  ASSERT_EQ(c.Err(Tlopen{1, 0}), 0);
  std::string all;
  for (;;) {
    auto r = c.As<Rread>(Tread{1, all.size(), 60000});
    ASSERT_TRUE(r);
    if (r->data.empty()) break;
    all += r->data;
  }
  EXPECT_EQ(hloop::testing::FirstDifference(all, Data().big), "");
  auto a = c.As<Rgetattr>(Tgetattr{1, kGetattrAll});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size, Data().big.size());

  // The big directory in small Treaddir replies.
  ASSERT_EQ(c.Err(Twalk{0, 2, {"many"}}), 0);
  ASSERT_EQ(c.Err(Tlopen{2, kDotlDirectory}), 0);
  std::set<std::string> names;
  uint64_t cookie = 0;
  for (;;) {
    auto r = c.As<Rreaddir>(Treaddir{2, cookie, 512});
    ASSERT_TRUE(r);
    std::vector<Dirent> part;
    ASSERT_TRUE(ParseDirents(r->data, &part));
    if (part.empty()) break;
    for (const Dirent& d : part) EXPECT_TRUE(names.insert(d.name).second) << d.name;
    cookie = part.back().offset;
  }
  EXPECT_EQ(names.size(), size_t(kManyEntries + 2));

  ASSERT_EQ(c.Err(Twalk{0, 3, {"slow"}}), 0);
  auto l = c.As<Rreadlink>(Treadlink{3});
  ASSERT_TRUE(l);
  EXPECT_EQ(l->target, kSlowTarget);
  auto x = c.As<Rxattrwalk>(Txattrwalk{0, 4, ""});
  ASSERT_TRUE(x);
  EXPECT_EQ(c.Err(Tclunk{4}), 0);
  auto s = c.As<Rstatfs>(Tstatfs{0});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->type, 0xEF53u);

  // Changes: EROFS from the session and from the backend.
  ASSERT_EQ(c.Err(Twalk{0, 5, {}}), 0);
  EXPECT_EQ(c.Err(Tlcreate{5, "new", 0, 0644, 0}), EROFS);
  EXPECT_EQ(c.Err(Tmkdir{0, "d", 0755, 0}), EROFS);
  EXPECT_EQ(c.Err(Tunlinkat{0, "big.bin", 0}), EROFS);
  EXPECT_EQ(c.Err(Tsetattr{1, kSetattrSize}), EROFS);
  EXPECT_EQ(c.Err(Twrite{1, 0, "x"}), EROFS);
  ASSERT_EQ(c.Err(Twalk{0, 6, {"small.txt"}}), 0);
  EXPECT_EQ(c.Err(Tlopen{6, kDotlWronly}), EROFS);
  EXPECT_EQ(c.Err(Tremove{6}), EROFS);
}

// A name missing from the image is ENOENT; a chunk missing on the server
// (NotFound from the device) is EIO, as FUSE says, never ENOENT: the file is
// there, its data cannot be had.
TEST_F(P9ExtFsServerTest, AMissingChunkIsEioNotEnoent) {
  P9Client& c = *client_;
  EXPECT_EQ(c.Err(Twalk{0, 1, {"no-such-file"}}), ENOENT);
  ASSERT_EQ(c.Err(Twalk{0, 1, {"big.bin"}}), 0);
  ASSERT_EQ(c.Err(Tlopen{1, 0}), 0);
  device_->FailReads(Status::NotFound("chunk 7 from http://m1/: 404"));
  EXPECT_EQ(c.Err(Tread{1, 0, 4096}), EIO);
  EXPECT_EQ(c.Err(Tread{1, 1 << 20, 4096}), EIO);
  device_->FailReads(Status::Ok());
  auto r = c.As<Rread>(Tread{1, 0, 4096});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->data, Data().big.substr(0, 4096));
}

}  // namespace
}  // namespace hloop::p9
