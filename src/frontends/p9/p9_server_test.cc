// The server's connection handling against a fake file system: versions,
// attach names, walks, fid limits, flush, pipelining, malformed frames.
#include "frontends/p9/p9_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <thread>

#include "testing/p9_client.h"
#include "testing/temp_dir.h"
#include "util/bytes.h"
#include "util/mutex.h"

namespace hloop::p9 {
namespace {

using hloop::testing::P9Client;

// Reads at offset kSlowOffset wait until the gate opens.
constexpr uint64_t kSlowOffset = 999;

struct Gate {
  Mutex mu;
  CondVar cv;
  bool open GUARDED_BY(mu) = false;
  int waiting GUARDED_BY(mu) = 0;
  void Wait() {
    MutexLock lock(&mu);
    waiting++;
    cv.SignalAll();
    while (!open) cv.Wait(&mu);
  }
  void WaitForWaiters(int n) {
    MutexLock lock(&mu);
    while (waiting < n) cv.Wait(&mu);
  }
  void Open() {
    MutexLock lock(&mu);
    open = true;
    cv.SignalAll();
  }
};

// Every name but "missing" exists; files read as 'x's.
class FakeNode : public Node {
 public:
  FakeNode(Gate* gate, uint64_t path) : gate_(gate), path_(path) {}
  Qid qid() override { return {kQidDir, 0, path_}; }
  int Walk(const std::string& name, std::shared_ptr<Node>* out) override {
    if (name == "missing") return ENOENT;
    *out = std::make_shared<FakeNode>(gate_, path_ * 31 + name.size());
    return 0;
  }
  std::shared_ptr<Node> Clone() override { return std::make_shared<FakeNode>(gate_, path_); }
  int Open(uint32_t) override { return 0; }
  int Create(const std::string&, uint32_t, uint32_t, uint32_t, Qid*) override { return EOPNOTSUPP; }
  int Read(uint64_t offset, uint32_t count, std::string* data) override {
    if (offset == kSlowOffset) gate_->Wait();
    data->assign(count, 'x');
    return 0;
  }
  int Write(uint64_t, const std::string& d, uint32_t* n) override {
    *n = uint32_t(d.size());
    return 0;
  }
  int ReadDir(uint64_t, uint32_t, std::vector<Dirent>*) override { return 0; }
  int GetAttr(Rgetattr* a) override {
    a->qid = qid();
    a->valid = kGetattrBasic;
    return 0;
  }
  int SetAttr(const Tsetattr&) override { return 0; }
  int StatFs(Rstatfs*) override { return 0; }
  int ReadLink(std::string*) override { return EINVAL; }
  int Mkdir(const std::string&, uint32_t, uint32_t, Qid*) override { return EOPNOTSUPP; }
  int Symlink(const std::string&, const std::string&, uint32_t, Qid*) override {
    return EOPNOTSUPP;
  }
  int Mknod(const std::string&, uint32_t, uint32_t, uint32_t, uint32_t, Qid*) override {
    return EOPNOTSUPP;
  }
  int Link(Node&, const std::string&) override { return EOPNOTSUPP; }
  int Rename(Node&, const std::string&) override { return EOPNOTSUPP; }
  int RenameAt(const std::string&, Node&, const std::string&) override { return EOPNOTSUPP; }
  int UnlinkAt(const std::string&, uint32_t) override { return EOPNOTSUPP; }
  int Remove() override { return EBUSY; }
  int Fsync(bool) override { return 0; }
  int Lock(const Tlock&, uint8_t* s) override {
    *s = kLockSuccess;
    return 0;
  }
  int GetLock(const Tgetlock&, Rgetlock*) override { return 0; }
  int XattrWalk(const std::string&, std::shared_ptr<Node>*, uint64_t*) override { return ENODATA; }
  int XattrCreate(const std::string&, uint64_t, uint32_t) override { return EOPNOTSUPP; }
  int Clunk() override { return 0; }

 private:
  Gate* gate_;
  uint64_t path_;
};

class FakeFs : public FileSystem {
 public:
  FakeFs(Gate* gate, uint64_t root) : gate_(gate), root_(root) {}
  int Attach(uint32_t, std::shared_ptr<Node>* root) override {
    *root = std::make_shared<FakeNode>(gate_, root_);
    return 0;
  }
  bool read_only() const override { return false; }

 private:
  Gate* gate_;
  uint64_t root_;
};

class P9ServerTest : public ::testing::Test {
 protected:
  void Start(ServerOptions o = {}, int exports = 1) {
    std::vector<Export> e;
    for (int i = 0; i < exports; i++)
      e.push_back({"e" + std::to_string(i), std::make_shared<FakeFs>(&gate_, 100 + i)});
    server_ = std::make_unique<Server>(std::move(e), o);
  }
  std::unique_ptr<P9Client> Client() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    server_->Adopt(sv[0]);
    return std::make_unique<P9Client>(sv[1]);
  }
  void TearDown() override {
    gate_.Open();
    server_.reset();
  }

  Gate gate_;
  std::unique_ptr<Server> server_;
};

TEST_F(P9ServerTest, VersionAgreesOnMsize) {
  Start(ServerOptions{.max_msize = 65536});
  auto c = Client();
  ASSERT_TRUE(c->Send(kNoTag, Tversion{1 << 24, "9P2000.L"}));
  auto r = c->Receive();
  ASSERT_TRUE(r);
  EXPECT_EQ(std::get<Rversion>(r->body), (Rversion{65536, "9P2000.L"}));
  ASSERT_TRUE(c->Send(kNoTag, Tversion{8192, "9P2000.u"}));
  r = c->Receive();
  EXPECT_EQ(std::get<Rversion>(r->body).version, "unknown");
  // Without an agreed version, requests are refused.
  EXPECT_EQ(c->Err(Tattach{0, kNoFid, "", "", 0}), EPROTO);
  ASSERT_TRUE(c->Send(kNoTag, Tversion{1000, "9P2000.L"}));  // below 4096
  r = c->Receive();
  EXPECT_EQ(std::get<Rversion>(r->body).version, "unknown");
}

TEST_F(P9ServerTest, VersionDropsEveryFid) {
  Start();
  auto c = Client();
  ASSERT_EQ(c->Connect(0), 0);
  EXPECT_EQ(c->Err(Tgetattr{0, kGetattrBasic}), 0);
  ASSERT_EQ(c->Connect(1), 0);
  EXPECT_EQ(c->Err(Tgetattr{0, kGetattrBasic}), EBADF);
  EXPECT_EQ(c->Err(Tgetattr{1, kGetattrBasic}), 0);
}

TEST_F(P9ServerTest, AuthIsNotSupported) {
  Start();
  auto c = Client();
  ASSERT_EQ(c->Connect(0), 0);
  EXPECT_EQ(c->Err(Tauth{5, "root", "", 0}), EOPNOTSUPP);
  EXPECT_EQ(c->Err(Tattach{1, 5, "root", "", 0}), EBADF);  // no such auth fid
}

TEST_F(P9ServerTest, OneExportTakesAnyAname) {
  Start();
  auto c = Client();
  EXPECT_EQ(c->Connect(0, "whatever"), 0);
  EXPECT_EQ(c->As<Rattach>(Tattach{1, kNoFid, "", "", 0})->qid.path, 100u);
  EXPECT_EQ(c->Err(Tattach{1, kNoFid, "", "", 0}), EEXIST);  // fid in use
}

TEST_F(P9ServerTest, SeveralExportsAreChosenByAname) {
  Start({}, 3);
  auto c = Client();
  ASSERT_EQ(c->Connect(0, "e1"), 0);
  EXPECT_EQ(c->As<Rgetattr>(Tgetattr{0, kGetattrBasic})->qid.path, 101u);
  EXPECT_EQ(c->As<Rattach>(Tattach{1, kNoFid, "", "/e2", 0})->qid.path, 102u);
  EXPECT_EQ(c->Err(Tattach{2, kNoFid, "", "e9", 0}), ENOENT);
  EXPECT_EQ(c->Err(Tattach{2, kNoFid, "", "", 0}), ENOENT);
}

TEST_F(P9ServerTest, WalkClonesAndStopsAtTheFirstMissingName) {
  Start();
  auto c = Client();
  ASSERT_EQ(c->Connect(0), 0);
  auto w = c->As<Rwalk>(Twalk{0, 1, {}});  // clone
  ASSERT_TRUE(w);
  EXPECT_TRUE(w->qids.empty());
  EXPECT_EQ(c->Err(Tgetattr{1, kGetattrBasic}), 0);
  w = c->As<Rwalk>(Twalk{0, 2, {"a", "bb", "missing", "c"}});
  ASSERT_TRUE(w);
  EXPECT_EQ(w->qids.size(), 2u);                         // the walked prefix
  EXPECT_EQ(c->Err(Tgetattr{2, kGetattrBasic}), EBADF);  // newfid not made
  EXPECT_EQ(c->Err(Twalk{0, 2, {"missing"}}), ENOENT);   // first name fails: an error
  EXPECT_EQ(c->Err(Twalk{0, 1, {"a"}}), EEXIST);         // newfid in use
  EXPECT_EQ(c->Err(Twalk{7, 8, {"a"}}), EBADF);          // no such fid
  w = c->As<Rwalk>(Twalk{1, 1, {"a", "b"}});             // newfid == fid moves it
  ASSERT_TRUE(w);
  EXPECT_EQ(c->As<Rgetattr>(Tgetattr{1, kGetattrBasic})->qid, w->qids[1]);
}

TEST_F(P9ServerTest, ClunkAndRemoveFreeTheFid) {
  Start();
  auto c = Client();
  ASSERT_EQ(c->Connect(0), 0);
  ASSERT_TRUE(c->As<Rwalk>(Twalk{0, 1, {"a"}}));
  EXPECT_EQ(c->Err(Tclunk{1}), 0);
  EXPECT_EQ(c->Err(Tclunk{1}), EBADF);
  ASSERT_TRUE(c->As<Rwalk>(Twalk{0, 1, {"a"}}));
  EXPECT_EQ(c->Err(Tremove{1}), EBUSY);  // the fake refuses, yet the fid is gone
  EXPECT_EQ(c->Err(Tclunk{1}), EBADF);
}

TEST_F(P9ServerTest, FidsAreLimitedPerConnection) {
  Start(ServerOptions{.max_fids = 4});
  auto c = Client();
  ASSERT_EQ(c->Connect(0), 0);
  for (uint32_t f = 1; f < 4; f++) EXPECT_EQ(c->Err(Twalk{0, f, {}}), 0);
  EXPECT_EQ(c->Err(Twalk{0, 4, {}}), EMFILE);
  EXPECT_EQ(c->Err(Tattach{4, kNoFid, "", "", 0}), EMFILE);
  EXPECT_EQ(c->Err(Tclunk{3}), 0);
  EXPECT_EQ(c->Err(Twalk{0, 4, {}}), 0);
  // Another connection has its own table.
  auto d = Client();
  EXPECT_EQ(d->Connect(0), 0);
}

TEST_F(P9ServerTest, ReadsAreCappedAtTheIounit) {
  Start();
  auto c = Client();
  ASSERT_EQ(c->Connect(0, "", 0, 8192), 0);
  auto o = c->As<Rlopen>(Tlopen{0, 0});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->iounit, 8192u - 24);
  auto r = c->As<Rread>(Tread{0, 0, 1 << 20});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->data.size(), 8192u - 24);
}

TEST_F(P9ServerTest, FlushOfARunningRequestAnswersAfterIt) {
  Start(ServerOptions{.workers = 2});
  auto c = Client();
  ASSERT_EQ(c->Connect(0), 0);
  ASSERT_TRUE(c->Send(10, Tread{0, kSlowOffset, 5}));
  gate_.WaitForWaiters(1);
  ASSERT_TRUE(c->Send(11, Tflush{10}));
  EXPECT_FALSE(c->Receive(200));  // nothing until the read is done
  gate_.Open();
  auto r = c->Receive();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tag, 10);
  EXPECT_TRUE(std::holds_alternative<Rread>(r->body));
  r = c->Receive();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tag, 11);
  EXPECT_TRUE(std::holds_alternative<Rflush>(r->body));
}

TEST_F(P9ServerTest, FlushOfAQueuedRequestDropsIt) {
  Start(ServerOptions{.workers = 1});
  auto c = Client();
  ASSERT_EQ(c->Connect(0), 0);
  ASSERT_TRUE(c->Send(10, Tread{0, kSlowOffset, 5}));  // holds the only worker
  gate_.WaitForWaiters(1);
  ASSERT_TRUE(c->Send(11, Twalk{0, 5, {"a"}}));  // waits for a worker
  ASSERT_TRUE(c->Send(12, Tflush{11}));
  auto r = c->Receive();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tag, 12);  // at once
  EXPECT_TRUE(std::holds_alternative<Rflush>(r->body));
  gate_.Open();
  r = c->Receive();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tag, 10);
  // Tag 11 never answers and its walk never happened; the tag is free again.
  EXPECT_EQ(c->Err(Tgetattr{5, kGetattrBasic}), EBADF);
  ASSERT_TRUE(c->Send(11, Tclunk{0}));
  r = c->Receive();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tag, 11);
  EXPECT_TRUE(std::holds_alternative<Rclunk>(r->body));
}

TEST_F(P9ServerTest, FlushOfAnUnknownTagAnswersAtOnce) {
  Start();
  auto c = Client();
  ASSERT_EQ(c->Connect(0), 0);
  EXPECT_TRUE(c->As<Rflush>(Tflush{4242}));
}

TEST_F(P9ServerTest, ManyRequestsInFlightOnOneConnection) {
  Start(ServerOptions{.workers = 4, .max_requests = 8});
  auto c = Client();
  ASSERT_EQ(c->Connect(0), 0);
  std::thread sender([&] {
    for (uint16_t tag = 1; tag <= 500; tag++) ASSERT_TRUE(c->Send(tag, Tgetattr{0, kGetattrBasic}));
  });
  std::set<uint16_t> seen;
  for (int i = 0; i < 500; i++) {
    auto r = c->Receive();
    ASSERT_TRUE(r);
    EXPECT_TRUE(std::holds_alternative<Rgetattr>(r->body));
    EXPECT_TRUE(seen.insert(r->tag).second);
  }
  sender.join();
  EXPECT_EQ(seen.size(), 500u);
}

// A client that sends many large reads and does not read the replies fills
// its socket: the workers must not wait on it (another client is served
// meanwhile), and every reply arrives whole and in one piece later.
TEST_F(P9ServerTest, AClientThatDoesNotReadBlocksNoWorker) {
  Start(ServerOptions{.workers = 2});
  auto slow = Client();
  const uint32_t msize = 256 * 1024;
  ASSERT_EQ(slow->Connect(0, "", 0, msize), 0);
  ASSERT_EQ(slow->Err(Tlopen{0, 0}), 0);
  const int kReads = 64;  // 16 MiB of replies, far more than a socket holds
  for (uint16_t tag = 1; tag <= kReads; tag++) ASSERT_TRUE(slow->Send(tag, Tread{0, 0, msize}));
  auto other = Client();
  ASSERT_EQ(other->Connect(0), 0);
  for (uint32_t f = 1; f <= 20; f++) {
    ASSERT_EQ(other->Err(Twalk{0, f, {"a"}}), 0) << f;
    ASSERT_EQ(other->Err(Tclunk{f}), 0) << f;
  }
  std::set<uint16_t> seen;
  for (int i = 0; i < kReads; i++) {
    auto r = slow->Receive();
    ASSERT_TRUE(r) << i;
    auto* rr = std::get_if<Rread>(&r->body);
    ASSERT_TRUE(rr) << i;
    EXPECT_EQ(rr->data, std::string(msize - 24, 'x'));
    EXPECT_TRUE(seen.insert(r->tag).second);
  }
}

TEST_F(P9ServerTest, ManyClientsAtOnce) {
  Start(ServerOptions{.workers = 4});
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; i++) {
    threads.emplace_back([&, c = Client()]() mutable {
      if (c->Connect(0) != 0) return;
      for (uint32_t f = 1; f <= 50; f++) {
        if (c->Err(Twalk{0, f, {"a", "b"}}) != 0) return;
        if (c->Err(Tlopen{f, 0}) != 0) return;
        auto r = c->As<Rread>(Tread{f, 0, 100});
        if (!r || r->data != std::string(100, 'x')) return;
        if (c->Err(Tclunk{f}) != 0) return;
      }
      ok++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 8);
}

TEST_F(P9ServerTest, MalformedBodiesGetEinvalAndTheConnectionGoesOn) {
  Start();
  auto c = Client();
  ASSERT_EQ(c->Connect(0), 0);
  std::string frame;
  ASSERT_TRUE(Encode(Message{7, Tgetattr{0, kGetattrBasic}}, &frame));
  frame.resize(frame.size() - 3);
  PutU32(reinterpret_cast<uint8_t*>(frame.data()), uint32_t(frame.size()));
  ASSERT_TRUE(c->SendRaw(frame));
  auto r = c->Receive();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tag, 7);
  EXPECT_EQ(P9Client::Errno(*r), EINVAL);
  // A legacy 9P2000 Topen: unknown here.
  ASSERT_TRUE(Encode(Message{8, Tclunk{0}}, &frame));
  frame[4] = 112;
  frame += std::string(1, '\0');
  PutU32(reinterpret_cast<uint8_t*>(frame.data()), uint32_t(frame.size()));
  ASSERT_TRUE(c->SendRaw(frame));
  r = c->Receive();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tag, 8);
  EXPECT_EQ(P9Client::Errno(*r), EOPNOTSUPP);
  EXPECT_EQ(c->Err(Tgetattr{0, kGetattrBasic}), 0);
}

TEST_F(P9ServerTest, OversizedFramesCloseTheConnection) {
  Start();
  auto c = Client();
  ASSERT_EQ(c->Connect(0, "", 0, 8192), 0);
  std::string frame;
  ASSERT_TRUE(Encode(Message{1, Twrite{0, 0, std::string(9000, 'a')}}, &frame));  // > msize
  c->SendRaw(frame);
  EXPECT_TRUE(c->Closed());
}

TEST_F(P9ServerTest, TinyOrHugeSizeFieldsCloseTheConnection) {
  Start();
  for (uint32_t size : {0u, 3u, 6u, 0xffffffffu, 100000u}) {  // 100000: too big before Tversion
    auto c = Client();
    std::string frame(8, '\0');
    PutU32(reinterpret_cast<uint8_t*>(frame.data()), size);
    c->SendRaw(frame);
    EXPECT_TRUE(c->Closed()) << size;
  }
}

TEST_F(P9ServerTest, ATagInFlightUsedAgainClosesTheConnection) {
  Start();
  auto c = Client();
  ASSERT_EQ(c->Connect(0), 0);
  ASSERT_TRUE(c->Send(10, Tread{0, kSlowOffset, 5}));
  gate_.WaitForWaiters(1);
  ASSERT_TRUE(c->Send(10, Tgetattr{0, kGetattrBasic}));
  // The connection ends while the read still runs (its reply cannot be told
  // apart from one to the second request).
  EXPECT_TRUE(c->Closed());
  gate_.Open();
}

TEST_F(P9ServerTest, ServesTcpAndUnixSocketsUntilStopped) {
  Start();
  hloop::testing::ScopedTempDir dir;
  std::string sock = dir.Join("9p.sock");
  auto bound = server_->ListenTcp(server::HostPort{"127.0.0.1", 0});
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  ASSERT_TRUE(server_->ListenUnix(sock).ok());
  std::thread runner([&] { EXPECT_TRUE(server_->Run().ok()); });

  int port = bound->port;
  int t = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(uint16_t(port));
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(t, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  P9Client tcp(t);
  EXPECT_EQ(tcp.Connect(0), 0);

  int u = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strcpy(sun.sun_path, sock.c_str());
  ASSERT_EQ(::connect(u, reinterpret_cast<sockaddr*>(&sun), sizeof sun), 0);
  P9Client unix_client(u);
  EXPECT_EQ(unix_client.Connect(0), 0);

  server_->Stop();
  runner.join();
  EXPECT_TRUE(tcp.Closed());
  EXPECT_TRUE(unix_client.Closed());
}

}  // namespace
}  // namespace hloop::p9
