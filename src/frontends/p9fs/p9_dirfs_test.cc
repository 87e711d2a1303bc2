// DirFs through the whole server, with a raw client on a socket pair: every
// operation, and the confinement rules (the client is treated as hostile).
#include "frontends/p9fs/p9_dirfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "frontends/p9/p9_server.h"
#include "testing/p9_client.h"
#include "testing/temp_dir.h"

namespace hloop::p9 {
namespace {

using hloop::testing::P9Client;
using hloop::testing::ReadTestFile;
using hloop::testing::ScopedTempDir;
using hloop::testing::WriteTestFile;

constexpr uint32_t kRoot = 0;

struct stat Lstat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}
bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// tmp/export is exported; tmp/outside holds what must never be reached.
class P9DirFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    export_ = tmp_.Join("export");
    outside_ = tmp_.Join("outside");
    ASSERT_EQ(::mkdir(export_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(outside_.c_str(), 0755), 0);
    ASSERT_TRUE(WriteTestFile(outside_ + "/secret", "secret"));
    ASSERT_EQ(::mkdir((export_ + "/sub").c_str(), 0755), 0);
    ASSERT_TRUE(WriteTestFile(export_ + "/sub/file", "inside"));
    // Links that point out of the export, relative and absolute.
    ASSERT_EQ(::symlink("../outside", (export_ + "/escape").c_str()), 0);
    ASSERT_EQ(::symlink(outside_.c_str(), (export_ + "/abs").c_str()), 0);
    ASSERT_EQ(::symlink((outside_ + "/secret").c_str(), (export_ + "/secretlink").c_str()), 0);
    ASSERT_EQ(::symlink("../outside/new", (export_ + "/trap").c_str()), 0);  // dangling
  }
  void Serve(bool read_only = false) {
    auto fs = DirFs::Open(export_, DirFsOptions{read_only});
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    server_ = std::make_unique<Server>(std::vector<Export>{{"x", *fs}}, ServerOptions{});
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    server_->Adopt(sv[0]);
    c_ = std::make_unique<P9Client>(sv[1]);
    ASSERT_EQ(c_->Connect(kRoot, "", ::geteuid()), 0);
  }
  void TearDown() override {
    c_.reset();
    server_.reset();
    // Nothing outside was touched.
    EXPECT_EQ(ReadTestFile(outside_ + "/secret"), "secret");
    EXPECT_FALSE(Exists(outside_ + "/new"));
    EXPECT_FALSE(Exists(tmp_.Join("x")));
  }
  bool Fid(uint32_t fid) { return c_->Err(Tgetattr{fid, kGetattrBasic}) == 0; }
  // A clone of the root, opened for reading as a directory; every entry.
  std::vector<Dirent> List(uint32_t dir_fid, uint32_t count = 8192) {
    EXPECT_EQ(c_->Err(Twalk{dir_fid, 99, {}}), 0);
    EXPECT_EQ(c_->Err(Tlopen{99, kDotlDirectory}), 0);
    std::vector<Dirent> all;
    uint64_t offset = 0;
    for (int i = 0; i < 10000; i++) {
      auto r = c_->As<Rreaddir>(Treaddir{99, offset, count});
      EXPECT_TRUE(r);
      if (!r || r->data.empty()) break;
      EXPECT_LE(r->data.size(), count);
      std::vector<Dirent> got;
      EXPECT_TRUE(ParseDirents(r->data, &got));
      all.insert(all.end(), got.begin(), got.end());
      offset = got.back().offset;
    }
    EXPECT_EQ(c_->Err(Tclunk{99}), 0);
    return all;
  }

  ScopedTempDir tmp_;
  std::string export_, outside_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<P9Client> c_;
};

TEST_F(P9DirFsTest, QidPathsAreInodeNumbers) {
  Serve();
  auto a = c_->As<Rgetattr>(Tgetattr{kRoot, kGetattrAll});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->qid.type, kQidDir);
  EXPECT_EQ(a->qid.path, Lstat(export_).st_ino);
  EXPECT_TRUE(S_ISDIR(a->mode));
  EXPECT_EQ(a->valid & kGetattrBasic, kGetattrBasic);
  auto w = c_->As<Rwalk>(Twalk{kRoot, 1, {"sub", "file"}});
  ASSERT_TRUE(w);
  ASSERT_EQ(w->qids.size(), 2u);
  EXPECT_EQ(w->qids[0].path, Lstat(export_ + "/sub").st_ino);
  EXPECT_EQ(w->qids[1].path, Lstat(export_ + "/sub/file").st_ino);
  EXPECT_EQ(w->qids[1].type, kQidFile);
  a = c_->As<Rgetattr>(Tgetattr{1, kGetattrAll});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size, 6u);
  EXPECT_EQ(a->nlink, 1u);
  EXPECT_EQ(a->mtime_sec, uint64_t(Lstat(export_ + "/sub/file").st_mtime));
}

TEST_F(P9DirFsTest, CreatesWritesAndReadsFiles) {
  Serve();
  ASSERT_EQ(c_->Err(Twalk{kRoot, 1, {}}), 0);
  auto cr =
      c_->As<Rlcreate>(Tlcreate{1, "f", kDotlRdwr | kDotlCreate | kDotlTrunc, 0640, ::getegid()});
  ASSERT_TRUE(cr);
  EXPECT_EQ(cr->iounit, 65536u - 24);
  EXPECT_EQ(c_->As<Rwrite>(Twrite{1, 0, "hello world"})->count, 11u);
  EXPECT_EQ(c_->As<Rread>(Tread{1, 6, 100})->data, "world");
  EXPECT_EQ(c_->Err(Tfsync{1, 0}), 0);
  EXPECT_EQ(c_->Err(Tclunk{1}), 0);
  EXPECT_EQ(ReadTestFile(export_ + "/f"), "hello world");
  struct stat st = Lstat(export_ + "/f");
  EXPECT_EQ(cr->qid.path, st.st_ino);
  mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0640u & ~mask);
  // Lcreate of an existing name without EXCL opens it; with EXCL it fails.
  ASSERT_EQ(c_->Err(Twalk{kRoot, 2, {}}), 0);
  EXPECT_TRUE(c_->As<Rlcreate>(Tlcreate{2, "f", kDotlRdwr | kDotlCreate, 0640, 0}));
  EXPECT_EQ(c_->As<Rread>(Tread{2, 0, 5})->data, "hello");
  ASSERT_EQ(c_->Err(Twalk{kRoot, 3, {}}), 0);
  EXPECT_EQ(c_->Err(Tlcreate{3, "f", kDotlRdwr | kDotlCreate | kDotlExcl, 0640, 0}), EEXIST);
  // Lopen of a file: read-only fids cannot write; directories cannot be written.
  ASSERT_EQ(c_->Err(Twalk{kRoot, 4, {"f"}}), 0);
  ASSERT_EQ(c_->Err(Tlopen{4, 0}), 0);
  EXPECT_EQ(c_->Err(Twrite{4, 0, "x"}), EBADF);
  EXPECT_EQ(c_->Err(Tlopen{4, 0}), EINVAL);  // already open
  ASSERT_EQ(c_->Err(Twalk{kRoot, 5, {}}), 0);
  EXPECT_EQ(c_->Err(Tlopen{5, kDotlWronly}), EISDIR);
  ASSERT_EQ(c_->Err(Twalk{kRoot, 6, {"f"}}), 0);
  EXPECT_EQ(c_->Err(Tlopen{6, kDotlDirectory}), ENOTDIR);
  EXPECT_EQ(c_->Err(Tread{6, 0, 1}), EBADF);  // not open
}

TEST_F(P9DirFsTest, ReaddirResumesFromTheOffsetsItGave) {
  std::set<std::string> want = {".", "..", "sub", "escape", "abs", "secretlink", "trap"};
  for (int i = 0; i < 300; i++) {
    std::string name = "file-with-a-longish-name-" + std::to_string(i);
    ASSERT_TRUE(WriteTestFile(export_ + "/" + name, ""));
    want.insert(name);
  }
  Serve();
  std::vector<Dirent> all = List(kRoot, 512);  // many small batches
  std::set<std::string> got;
  for (const Dirent& d : all) {
    EXPECT_TRUE(got.insert(d.name).second) << "twice: " << d.name;
    if (d.name == "sub") {
      EXPECT_EQ(d.type, DT_DIR);
      EXPECT_EQ(d.qid.path, Lstat(export_ + "/sub").st_ino);
    } else if (d.name == "escape") {
      EXPECT_EQ(d.qid.type, kQidSymlink);
    } else if (d.name == "..") {
      EXPECT_EQ(d.qid.path, Lstat(export_).st_ino);  // nothing above the root
    }
  }
  EXPECT_EQ(got, want);
  // A budget too small for one entry is an error, not the end.
  ASSERT_EQ(c_->Err(Twalk{kRoot, 1, {}}), 0);
  ASSERT_EQ(c_->Err(Tlopen{1, 0}), 0);
  EXPECT_EQ(c_->Err(Treaddir{1, 0, 10}), EINVAL);
}

TEST_F(P9DirFsTest, DirectoriesLinksNodesAndNames) {
  Serve();
  uint32_t gid = ::getegid();
  auto md = c_->As<Rmkdir>(Tmkdir{kRoot, "d", 0750, gid});
  ASSERT_TRUE(md);
  EXPECT_EQ(md->qid.type, kQidDir);
  EXPECT_TRUE(S_ISDIR(Lstat(export_ + "/d").st_mode));
  EXPECT_EQ(c_->Err(Tmkdir{kRoot, "d", 0750, gid}), EEXIST);
  auto sl = c_->As<Rsymlink>(Tsymlink{kRoot, "l", "sub/file", gid});
  ASSERT_TRUE(sl);
  EXPECT_EQ(sl->qid.type, kQidSymlink);
  ASSERT_EQ(c_->Err(Twalk{kRoot, 1, {"l"}}), 0);
  EXPECT_EQ(c_->As<Rreadlink>(Treadlink{1})->target, "sub/file");
  ASSERT_EQ(c_->Err(Twalk{kRoot, 2, {"sub"}}), 0);
  EXPECT_EQ(c_->Err(Treadlink{2}), EINVAL);
  EXPECT_TRUE(c_->As<Rmknod>(Tmknod{kRoot, "fifo", S_IFIFO | 0600, 0, 0, gid}));
  EXPECT_TRUE(S_ISFIFO(Lstat(export_ + "/fifo").st_mode));
  EXPECT_EQ(c_->Err(Tmknod{kRoot, "disk", S_IFBLK | 0600, 8, 0, gid}), EPERM);  // never a device
  EXPECT_EQ(c_->Err(Tmknod{kRoot, "mem", S_IFCHR | 0600, 1, 1, gid}), EPERM);
  ASSERT_EQ(c_->Err(Twalk{kRoot, 3, {"fifo"}}), 0);
  EXPECT_EQ(c_->Err(Tlopen{3, 0}), EOPNOTSUPP);  // opening a FIFO here would block a worker
  // Hard link, rename, renameat, unlinkat, remove.
  ASSERT_EQ(c_->Err(Twalk{kRoot, 4, {"sub", "file"}}), 0);
  EXPECT_EQ(c_->Err(Tlink{kRoot, 4, "hard"}), 0);
  EXPECT_EQ(Lstat(export_ + "/hard").st_ino, Lstat(export_ + "/sub/file").st_ino);
  EXPECT_EQ(c_->Err(Tlink{kRoot, 2, "dirlink"}), EPERM);
  ASSERT_EQ(c_->Err(Twalk{kRoot, 5, {"d"}}), 0);
  EXPECT_EQ(c_->Err(Trename{4, 5, "moved"}), 0);
  EXPECT_EQ(ReadTestFile(export_ + "/d/moved"), "inside");
  EXPECT_EQ(c_->Err(Trename{4, kRoot, "back"}), 0);  // the fid follows its file
  EXPECT_EQ(ReadTestFile(export_ + "/back"), "inside");
  EXPECT_EQ(c_->Err(Trenameat{kRoot, "back", 5, "again"}), 0);
  EXPECT_EQ(ReadTestFile(export_ + "/d/again"), "inside");
  EXPECT_EQ(c_->Err(Trenameat{kRoot, "nothing", 5, "x"}), ENOENT);
  EXPECT_EQ(c_->Err(Tunlinkat{kRoot, "d", 0}), EISDIR);
  EXPECT_EQ(c_->Err(Tunlinkat{kRoot, "d", kAtRemoveDir}), ENOTEMPTY);
  EXPECT_EQ(c_->Err(Tunlinkat{5, "again", 0}), 0);
  EXPECT_EQ(c_->Err(Tunlinkat{kRoot, "d", kAtRemoveDir}), 0);
  EXPECT_FALSE(Exists(export_ + "/d"));
  EXPECT_EQ(c_->Err(Tremove{1}), 0);  // the link "l"
  EXPECT_FALSE(Exists(export_ + "/l"));
  EXPECT_EQ(c_->Err(Tremove{kRoot}), EBUSY);  // the root cannot go, and the fid is gone
  EXPECT_EQ(c_->Err(Tgetattr{kRoot, kGetattrBasic}), EBADF);
}

TEST_F(P9DirFsTest, SetattrStatfsLocksAndXattrs) {
  Serve();
  ASSERT_EQ(c_->Err(Twalk{kRoot, 1, {"sub", "file"}}), 0);
  Tsetattr sa{};
  sa.fid = 1;
  sa.valid = kSetattrMode | kSetattrSize | kSetattrMtime | kSetattrMtimeSet | kSetattrAtime;
  sa.mode = 0604;
  sa.size = 3;
  sa.mtime_sec = 1000000000;
  EXPECT_EQ(c_->Err(sa), 0);
  struct stat st = Lstat(export_ + "/sub/file");
  EXPECT_EQ(st.st_mode & 07777, 0604u);
  EXPECT_EQ(st.st_size, 3);
  EXPECT_EQ(st.st_mtime, 1000000000);
  Tsetattr own{};
  own.fid = 1;
  own.valid = kSetattrUid | kSetattrGid;
  own.uid = ::geteuid();
  own.gid = ::getegid();
  EXPECT_EQ(c_->Err(own), 0);

  auto fs = c_->As<Rstatfs>(Tstatfs{kRoot});
  ASSERT_TRUE(fs);
  EXPECT_GT(fs->bsize, 0u);
  EXPECT_GT(fs->namelen, 0u);

  // Two opens of the same file: their locks conflict.
  ASSERT_EQ(c_->Err(Tlopen{1, kDotlRdwr}), 0);
  ASSERT_EQ(c_->Err(Twalk{kRoot, 2, {"sub", "file"}}), 0);
  ASSERT_EQ(c_->Err(Tlopen{2, kDotlRdwr}), 0);
  EXPECT_EQ(c_->As<Rlock>(Tlock{1, kLockWrite, 0, 0, 0, 1, "a"})->status, kLockSuccess);
  EXPECT_EQ(c_->As<Rlock>(Tlock{2, kLockWrite, 0, 0, 0, 2, "b"})->status, kLockBlocked);
  auto gl = c_->As<Rgetlock>(Tgetlock{2, kLockWrite, 0, 0, 2, "b"});
  ASSERT_TRUE(gl);
  EXPECT_EQ(gl->type, kLockWrite);
  EXPECT_EQ(c_->As<Rlock>(Tlock{1, kLockUnlock, 0, 0, 0, 1, "a"})->status, kLockSuccess);
  EXPECT_EQ(c_->As<Rlock>(Tlock{2, kLockWrite, 0, 0, 0, 2, "b"})->status, kLockSuccess);
  EXPECT_EQ(c_->As<Rgetlock>(Tgetlock{2, kLockWrite, 0, 0, 2, "b"})->type, kLockUnlock);

  // Xattrs: set through a create + write + clunk, read back through a walk.
  ASSERT_EQ(c_->Err(Twalk{kRoot, 3, {"sub", "file"}}), 0);
  int e = c_->Err(Txattrcreate{3, "user.color", 4, 0});
  if (e == 0) {
    EXPECT_EQ(c_->As<Rwrite>(Twrite{3, 0, "blue"})->count, 4u);
    e = c_->Err(Tclunk{3});
  }
  if (e == EOPNOTSUPP) GTEST_SKIP() << "no user xattrs on this file system";
  ASSERT_EQ(e, 0);
  char value[16] = {};
  EXPECT_EQ(::getxattr((export_ + "/sub/file").c_str(), "user.color", value, sizeof value), 4);
  EXPECT_EQ(std::string(value), "blue");
  auto xw = c_->As<Rxattrwalk>(Txattrwalk{1, 4, "user.color"});
  ASSERT_TRUE(xw);
  EXPECT_EQ(xw->size, 4u);
  EXPECT_EQ(c_->As<Rread>(Tread{4, 0, 100})->data, "blue");
  xw = c_->As<Rxattrwalk>(Txattrwalk{1, 5, ""});
  ASSERT_TRUE(xw);
  EXPECT_NE(c_->As<Rread>(Tread{5, 0, 1000})->data.find(std::string("user.color\0", 11)),
            std::string::npos);
  EXPECT_EQ(c_->Err(Txattrwalk{1, 6, "user.none"}), ENODATA);
  EXPECT_EQ(c_->Err(Txattrcreate{2, "security.capability", 4, 0}), EOPNOTSUPP);
  // Size 0 removes it; a short value is refused at clunk.
  ASSERT_EQ(c_->Err(Twalk{kRoot, 7, {"sub", "file"}}), 0);
  ASSERT_EQ(c_->Err(Txattrcreate{7, "user.color", 0, 0}), 0);
  EXPECT_EQ(c_->Err(Tclunk{7}), 0);
  EXPECT_LT(::getxattr((export_ + "/sub/file").c_str(), "user.color", value, sizeof value), 0);
  ASSERT_EQ(c_->Err(Twalk{kRoot, 8, {"sub", "file"}}), 0);
  ASSERT_EQ(c_->Err(Txattrcreate{8, "user.x", 10, 0}), 0);
  EXPECT_EQ(c_->Err(Twrite{8, 0, "abc"}), 0);
  EXPECT_EQ(c_->Err(Twrite{8, 8, "abc"}), ENOSPC);
  EXPECT_EQ(c_->Err(Tclunk{8}), EINVAL);
}

TEST_F(P9DirFsTest, OwnershipFollowsTheAttachingUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  Serve();
  ASSERT_EQ(c_->Err(Tattach{1, kNoFid, "", "", 1234}), 0);
  ASSERT_EQ(c_->Err(Twalk{1, 2, {}}), 0);
  ASSERT_TRUE(c_->As<Rlcreate>(Tlcreate{2, "owned", kDotlWronly | kDotlCreate, 0644, 5678}));
  ASSERT_TRUE(c_->As<Rmkdir>(Tmkdir{1, "owned-dir", 0755, 5679}));
  ASSERT_TRUE(c_->As<Rsymlink>(Tsymlink{1, "owned-link", "x", 5680}));
  struct stat st = Lstat(export_ + "/owned");
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  st = Lstat(export_ + "/owned-dir");
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5679u);
  st = Lstat(export_ + "/owned-link");
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5680u);
}

// --- Confinement -------------------------------------------------------------

TEST_F(P9DirFsTest, DotDotStopsAtTheRoot) {
  Serve();
  uint64_t root = Lstat(export_).st_ino;
  auto w = c_->As<Rwalk>(Twalk{kRoot, 1, {"..", "..", ".."}});
  ASSERT_TRUE(w);
  ASSERT_EQ(w->qids.size(), 3u);
  for (const Qid& q : w->qids) EXPECT_EQ(q.path, root);
  w = c_->As<Rwalk>(Twalk{kRoot, 2, {"sub", "..", "..", "..", "sub", "file"}});
  ASSERT_TRUE(w);
  ASSERT_EQ(w->qids.size(), 6u);
  EXPECT_EQ(w->qids[1].path, root);
  EXPECT_EQ(w->qids[3].path, root);
  EXPECT_EQ(w->qids[5].path, Lstat(export_ + "/sub/file").st_ino);
  // From the top, ".." then "outside" is looked up in the export, not beside it.
  EXPECT_EQ(c_->Err(Twalk{kRoot, 3, {"..", "outside", "secret"}}), 0);  // a partial walk
  EXPECT_FALSE(Fid(3));
  ASSERT_EQ(c_->Err(Twalk{1, 4, {}}), 0);
  EXPECT_EQ(c_->As<Rgetattr>(Tgetattr{4, kGetattrBasic})->qid.path, root);
}

TEST_F(P9DirFsTest, NamesWithSlashesOrDotsAreRefused) {
  Serve();
  EXPECT_EQ(c_->Err(Twalk{kRoot, 1, {"sub/file"}}), EINVAL);
  EXPECT_EQ(c_->Err(Twalk{kRoot, 1, {"../outside"}}), EINVAL);
  EXPECT_EQ(c_->Err(Twalk{kRoot, 1, {"/etc"}}), EINVAL);
  EXPECT_EQ(c_->Err(Twalk{kRoot, 1, {""}}), EINVAL);
  EXPECT_EQ(c_->Err(Twalk{kRoot, 1, {std::string("sub\0x", 5)}}), EINVAL);
  EXPECT_EQ(c_->Err(Twalk{kRoot, 1, {std::string(300, 'a')}}), ENAMETOOLONG);
  EXPECT_EQ(c_->Err(Twalk{kRoot, 1, {"sub", "../../outside"}}), 0);  // partial: 1 qid
  EXPECT_FALSE(Fid(1));
  // Every call that makes or changes a name.
  uint32_t gid = ::getegid();
  for (std::string bad : {"../x", "a/b", "/tmp/x", "..", ".", ""}) {
    SCOPED_TRACE(bad);
    ASSERT_EQ(c_->Err(Twalk{kRoot, 2, {}}), 0);
    EXPECT_EQ(c_->Err(Tlcreate{2, bad, kDotlRdwr | kDotlCreate, 0644, gid}), EINVAL);
    EXPECT_EQ(c_->Err(Tclunk{2}), 0);
    EXPECT_EQ(c_->Err(Tmkdir{kRoot, bad, 0755, gid}), EINVAL);
    EXPECT_EQ(c_->Err(Tsymlink{kRoot, bad, "target", gid}), EINVAL);
    EXPECT_EQ(c_->Err(Tmknod{kRoot, bad, S_IFIFO | 0644, 0, 0, gid}), EINVAL);
    ASSERT_EQ(c_->Err(Twalk{kRoot, 3, {"sub", "file"}}), 0);
    EXPECT_EQ(c_->Err(Tlink{kRoot, 3, bad}), EINVAL);
    EXPECT_EQ(c_->Err(Trename{3, kRoot, bad}), EINVAL);
    EXPECT_EQ(c_->Err(Tclunk{3}), 0);
    EXPECT_EQ(c_->Err(Trenameat{kRoot, "sub", kRoot, bad}), EINVAL);
    EXPECT_EQ(c_->Err(Trenameat{kRoot, bad, kRoot, "stolen"}), EINVAL);
    EXPECT_EQ(c_->Err(Tunlinkat{kRoot, bad, 0}), EINVAL);
  }
  EXPECT_EQ(c_->Err(Tunlinkat{kRoot, "../outside/secret", 0}), EINVAL);
  EXPECT_EQ(ReadTestFile(export_ + "/sub/file"), "inside");
}

TEST_F(P9DirFsTest, SymlinksPointingOutsideAreNeverFollowed) {
  Serve();
  uint32_t gid = ::getegid();
  for (std::string link : {"escape", "abs"}) {
    SCOPED_TRACE(link);
    auto w = c_->As<Rwalk>(Twalk{kRoot, 1, {link}});
    ASSERT_TRUE(w);
    EXPECT_EQ(w->qids[0].type, kQidSymlink);
    EXPECT_EQ(w->qids[0].path, Lstat(export_ + "/" + link).st_ino);
    // Walking through it stops at the link.
    w = c_->As<Rwalk>(Twalk{kRoot, 2, {link, "secret"}});
    ASSERT_TRUE(w);
    EXPECT_EQ(w->qids.size(), 1u);
    EXPECT_FALSE(Fid(2));
    EXPECT_EQ(c_->Err(Twalk{1, 2, {"secret"}}), ENOTDIR);
    EXPECT_EQ(c_->Err(Twalk{1, 2, {".."}}), ENOTDIR);
    // The link is a link: its own attributes, no opening, nothing made below it.
    EXPECT_TRUE(S_ISLNK(c_->As<Rgetattr>(Tgetattr{1, kGetattrBasic})->mode));
    EXPECT_EQ(c_->Err(Tlopen{1, 0}), ELOOP);
    EXPECT_EQ(c_->Err(Tlopen{1, kDotlDirectory}), ELOOP);
    EXPECT_EQ(c_->Err(Treaddir{1, 0, 4096}), EBADF);
    EXPECT_EQ(c_->Err(Tmkdir{1, "new", 0755, gid}), ENOTDIR);
    EXPECT_EQ(c_->Err(Tsymlink{1, "new", "x", gid}), ENOTDIR);
    EXPECT_EQ(c_->Err(Tmknod{1, "new", S_IFIFO | 0644, 0, 0, gid}), ENOTDIR);
    EXPECT_EQ(c_->Err(Tunlinkat{1, "secret", 0}), ENOTDIR);
    EXPECT_EQ(c_->Err(Trenameat{kRoot, "sub", 1, "new"}), ENOTDIR);
    EXPECT_EQ(c_->Err(Trenameat{1, "secret", kRoot, "stolen"}), ENOTDIR);
    ASSERT_EQ(c_->Err(Twalk{kRoot, 3, {"sub", "file"}}), 0);
    EXPECT_EQ(c_->Err(Tlink{1, 3, "new"}), ENOTDIR);
    EXPECT_EQ(c_->Err(Trename{3, 1, "new"}), ENOTDIR);
    EXPECT_EQ(c_->Err(Tclunk{3}), 0);
    EXPECT_EQ(c_->Err(Tstatfs{1}), 0);
    Tsetattr sa{};
    sa.fid = 1;
    sa.valid = kSetattrMode;
    sa.mode = 0777;
    EXPECT_EQ(c_->Err(sa), EOPNOTSUPP);
    sa.valid = kSetattrSize;
    EXPECT_EQ(c_->Err(sa), EINVAL);
    sa.valid = kSetattrMtime | kSetattrMtimeSet;  // the link's own time
    sa.mtime_sec = 12345;
    EXPECT_EQ(c_->Err(sa), 0);
    EXPECT_EQ(Lstat(export_ + "/" + link).st_mtime, 12345);
    EXPECT_EQ(c_->Err(Txattrwalk{1, 2, "user.x"}), ENODATA);
    EXPECT_EQ(c_->Err(Txattrcreate{1, "user.x", 1, 0}), EPERM);
    // Lcreate turns its fid into the new file: never below a link.
    ASSERT_EQ(c_->Err(Twalk{1, 4, {}}), 0);
    EXPECT_EQ(c_->Err(Tlcreate{4, "new", kDotlRdwr | kDotlCreate, 0644, gid}), ENOTDIR);
    EXPECT_EQ(c_->Err(Tclunk{4}), 0);
    EXPECT_EQ(c_->Err(Tclunk{1}), 0);
    EXPECT_NE(Lstat(outside_).st_mtime, 12345);
  }
  EXPECT_FALSE(Exists(outside_ + "/stolen"));
  EXPECT_TRUE(Exists(export_ + "/sub"));
}

TEST_F(P9DirFsTest, CreatingOverALinkDoesNotFollowIt) {
  Serve();
  uint32_t gid = ::getegid();
  // "trap" points at outside/new, which does not exist yet.
  ASSERT_EQ(c_->Err(Twalk{kRoot, 1, {}}), 0);
  EXPECT_EQ(c_->Err(Tlcreate{1, "trap", kDotlRdwr | kDotlCreate, 0644, gid}), ELOOP);
  EXPECT_EQ(c_->Err(Tlcreate{1, "secretlink", kDotlRdwr | kDotlCreate | kDotlTrunc, 0644, gid}),
            ELOOP);
  EXPECT_EQ(c_->Err(Tmkdir{kRoot, "trap", 0755, gid}), EEXIST);
  EXPECT_EQ(c_->Err(Tsymlink{kRoot, "trap", "x", gid}), EEXIST);
  // Renaming a link moves the link, not what it points to.
  EXPECT_EQ(c_->Err(Trenameat{kRoot, "secretlink", kRoot, "renamed"}), 0);
  EXPECT_TRUE(S_ISLNK(Lstat(export_ + "/renamed").st_mode));
  // Unlinking a link removes the link.
  EXPECT_EQ(c_->Err(Tunlinkat{kRoot, "renamed", 0}), 0);
  EXPECT_FALSE(Exists(export_ + "/renamed"));
}

TEST_F(P9DirFsTest, HardLinksReachOnlyWhatIsInside) {
  Serve();
  // A hard link to a link that points outside is a link to the link.
  ASSERT_EQ(c_->Err(Twalk{kRoot, 1, {"secretlink"}}), 0);
  EXPECT_EQ(c_->Err(Tlink{kRoot, 1, "hl"}), 0);
  EXPECT_TRUE(S_ISLNK(Lstat(export_ + "/hl").st_mode));
  EXPECT_EQ(Lstat(export_ + "/hl").st_ino, Lstat(export_ + "/secretlink").st_ino);
  EXPECT_EQ(Lstat(outside_ + "/secret").st_nlink, 1u);
  // The target of Tlink is always a fid, and every fid is inside.
  EXPECT_EQ(c_->Err(Tlink{kRoot, 77, "hl2"}), EBADF);
}

TEST_F(P9DirFsTest, ReadOnlyExportRefusesEveryChange) {
  Serve(/*read_only=*/true);
  uint32_t gid = ::getegid();
  ASSERT_EQ(c_->Err(Twalk{kRoot, 1, {"sub", "file"}}), 0);
  ASSERT_EQ(c_->Err(Twalk{kRoot, 2, {}}), 0);
  EXPECT_EQ(c_->Err(Tlopen{1, kDotlWronly}), EROFS);
  EXPECT_EQ(c_->Err(Tlopen{1, kDotlTrunc}), EROFS);
  EXPECT_EQ(c_->Err(Tlcreate{2, "f", kDotlRdwr | kDotlCreate, 0644, gid}), EROFS);
  EXPECT_EQ(c_->Err(Tmkdir{kRoot, "d", 0755, gid}), EROFS);
  EXPECT_EQ(c_->Err(Tsymlink{kRoot, "s", "x", gid}), EROFS);
  EXPECT_EQ(c_->Err(Tmknod{kRoot, "n", S_IFIFO | 0644, 0, 0, gid}), EROFS);
  EXPECT_EQ(c_->Err(Tlink{kRoot, 1, "h"}), EROFS);
  EXPECT_EQ(c_->Err(Trename{1, kRoot, "r"}), EROFS);
  EXPECT_EQ(c_->Err(Trenameat{kRoot, "sub", kRoot, "r"}), EROFS);
  EXPECT_EQ(c_->Err(Tunlinkat{kRoot, "sub", kAtRemoveDir}), EROFS);
  Tsetattr sa{};
  sa.fid = 1;
  sa.valid = kSetattrSize;
  EXPECT_EQ(c_->Err(sa), EROFS);
  sa.valid = kSetattrMode;
  EXPECT_EQ(c_->Err(sa), EROFS);
  EXPECT_EQ(c_->Err(Txattrcreate{1, "user.x", 1, 0}), EROFS);
  ASSERT_EQ(c_->Err(Twalk{kRoot, 3, {"sub", "file"}}), 0);
  EXPECT_EQ(c_->Err(Tremove{3}), EROFS);
  // Reading still works.
  ASSERT_EQ(c_->Err(Tlopen{1, 0}), 0);
  EXPECT_EQ(c_->As<Rread>(Tread{1, 0, 100})->data, "inside");
  EXPECT_EQ(c_->Err(Twrite{1, 0, "x"}), EROFS);
  EXPECT_GE(List(kRoot).size(), 7u);
  EXPECT_EQ(ReadTestFile(export_ + "/sub/file"), "inside");
  EXPECT_FALSE(Exists(export_ + "/f"));
  EXPECT_FALSE(Exists(export_ + "/d"));
}

}  // namespace
}  // namespace hloop::p9
