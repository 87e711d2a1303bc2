// The NBD server over real sockets: out-of-order replies, back-pressure,
// several connections, clean shutdown, socket files, hostile clients.
#include "frontends/nbd/nbd_server.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <thread>

#include "frontends/nbd/nbd_proto.h"
#include "testing/memory_device.h"
#include "testing/temp_dir.h"
#include "util/bytes.h"

namespace hloop::nbd {
namespace {

using hloop::testing::MemoryDevice;
using hloop::testing::ScopedTempDir;

// Waits up to 10 s for `cond`.
template <typename F>
bool WaitFor(F cond) {
  for (int i = 0; i < 1000; i++) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

// One reply message: a simple reply or one structured chunk.
struct Message {
  uint64_t cookie = 0;
  uint32_t error = 0;
  bool structured = false;
  uint16_t type = 0, flags = 0;
  std::string payload;
};

// A minimal client speaking the protocol by hand.
class TestClient {
 public:
  explicit TestClient(const std::string& socket_path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", socket_path.c_str());
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{10, 0};  // a hung server fails the test instead of hanging it
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  explicit TestClient(int fd) : fd_(fd), connected_(true) {
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~TestClient() { ::close(fd_); }
  bool connected() const { return connected_; }

  bool Send(const std::string& b) {
    return ::send(fd_, b.data(), b.size(), MSG_NOSIGNAL) == ssize_t(b.size());
  }
  bool Read(std::string* out, size_t n) {
    out->resize(n);
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::recv(fd_, out->data() + got, n - got, 0);
      if (r <= 0) return false;
      got += size_t(r);
    }
    return true;
  }
  // True when the server closed the connection (reads end).
  bool Closed() {
    char c;
    return ::recv(fd_, &c, 1, 0) <= 0;
  }

  // Fixed newstyle, structured replies and base:allocation, then GO.
  bool Handshake(bool structured = true) {
    std::string g;
    if (!Read(&g, kGreetingSize)) return false;
    std::string flags(4, '\0');
    PutBE32(reinterpret_cast<uint8_t*>(flags.data()), kClientFixedNewstyle | kClientNoZeroes);
    std::string opts = flags;
    int replies_to_ack = 1;
    if (structured) {
      opts += EncodeOption(kOptStructuredReply, "") +
              EncodeOption(kOptSetMetaContext,
                           EncodeMetaContextRequest(MetaContextRequest{"", {"base:allocation"}}));
      replies_to_ack += 2;
    }
    opts += EncodeOption(kOptGo, EncodeInfoRequest(InfoRequest{"", {}}));
    if (!Send(opts)) return false;
    while (replies_to_ack > 0) {
      std::string h, data;
      if (!Read(&h, 20)) return false;
      const uint8_t* p = reinterpret_cast<const uint8_t*>(h.data());
      if (!Read(&data, GetBE32(p + 16))) return false;
      uint32_t type = GetBE32(p + 12);
      if (type & 0x80000000) return false;
      if (type == kRepInfo &&
          GetBE16(reinterpret_cast<const uint8_t*>(data.data())) == kInfoExport) {
        size_ = GetBE64(reinterpret_cast<const uint8_t*>(data.data()) + 2);
        flags_ = GetBE16(reinterpret_cast<const uint8_t*>(data.data()) + 10);
      }
      if (type == kRepAck) replies_to_ack--;
    }
    return true;
  }

  bool Request(uint16_t type, uint64_t cookie, uint64_t offset, uint32_t length,
               uint16_t flags = 0) {
    return Send(EncodeRequest({flags, type, cookie, offset, length}));
  }

  // Reads one message; `simple_read_len` is the data length that follows a
  // successful simple reply (simple READs only).
  bool Next(Message* m, size_t simple_read_len = 0) {
    std::string magic;
    if (!Read(&magic, 4)) return false;
    std::string rest;
    if (GetBE32(reinterpret_cast<const uint8_t*>(magic.data())) == kSimpleReplyMagic) {
      if (!Read(&rest, 12)) return false;
      auto s = ParseSimpleReply(reinterpret_cast<const uint8_t*>((magic + rest).data()));
      *m = Message{s->cookie, s->error, false, 0, kReplyFlagDone, ""};
      if (m->error == 0 && simple_read_len) return Read(&m->payload, simple_read_len);
      return true;
    }
    if (!Read(&rest, 16)) return false;
    auto h = ParseChunkHeader(reinterpret_cast<const uint8_t*>((magic + rest).data()));
    if (!h.ok()) return false;
    *m = Message{h->cookie, 0, true, h->type, h->flags, ""};
    if (!Read(&m->payload, h->length)) return false;
    if (h->type & 0x8000) m->error = GetBE32(reinterpret_cast<const uint8_t*>(m->payload.data()));
    return true;
  }

  // A whole structured READ reply for `cookie` of `length` bytes at
  // `offset`, reassembled; false on any error. REQUIRES: it is the next
  // reply on the wire.
  bool ReadReply(uint64_t offset, uint32_t length, std::string* data, uint32_t* error) {
    data->assign(length, '?');
    *error = 0;
    for (;;) {
      Message m;
      if (!Next(&m)) return false;
      Absorb(m, offset, data, error);
      if (m.flags & kReplyFlagDone) return true;
    }
  }
  static void Absorb(const Message& m, uint64_t offset, std::string* data, uint32_t* error) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(m.payload.data());
    if (m.error) *error = m.error;
    if (m.type == kReplyOffsetData)
      data->replace(GetBE64(p) - offset, m.payload.size() - 8, m.payload.substr(8));
    if (m.type == kReplyOffsetHole)
      data->replace(GetBE64(p) - offset, GetBE32(p + 8), std::string(GetBE32(p + 8), '\0'));
  }

  uint64_t size() const { return size_; }
  uint16_t flags() const { return flags_; }

 private:
  int fd_;
  bool connected_ = false;
  uint64_t size_ = 0;
  uint16_t flags_ = 0;
};

// A server on a Unix socket in a temp dir, running on its own thread.
class ServerFixture : public ::testing::Test {
 protected:
  void Start(NbdServerOptions o = {}) {
    o.socket_path = dir_.Join("nbd.sock");
    o.export_name = "disk";
    server_ = std::make_unique<NbdServer>(device_, o);
    ASSERT_TRUE(server_->Listen().ok());
    thread_ = std::thread([this] { server_->Run(); });
  }
  void StopServer() {
    if (!server_) return;
    server_->Stop();
    thread_.join();
    server_.reset();
  }
  void TearDown() override {
    device_.OpenGate();
    StopServer();
  }
  std::string path() const { return dir_.Join("nbd.sock"); }

  ScopedTempDir dir_;
  std::string content_ = [] {
    std::string c = hloop::testing::RandomBytes(1 << 20, 3);
    std::fill(c.begin() + 65536, c.begin() + 2 * 65536, '\0');
    return c;
  }();
  MemoryDevice device_{content_};
  std::unique_ptr<NbdServer> server_;
  std::thread thread_;
};

TEST_F(ServerFixture, AdvertisesAReadOnlyMultiConnExportAndServesReads) {
  Start();
  TestClient c(path());
  ASSERT_TRUE(c.Handshake());
  EXPECT_EQ(c.size(), content_.size());
  EXPECT_TRUE(c.flags() & kFlagReadOnly);
  EXPECT_TRUE(c.flags() & kFlagCanMultiConn);
  EXPECT_TRUE(c.flags() & kFlagSendDf);
  EXPECT_FALSE(c.flags() & kFlagSendFlush);
  ASSERT_TRUE(c.Request(kCmdRead, 1, 60000, 70000));
  std::string data;
  uint32_t err;
  ASSERT_TRUE(c.ReadReply(60000, 70000, &data, &err));
  EXPECT_EQ(err, 0u);
  EXPECT_EQ(data, content_.substr(60000, 70000));
  // A write is refused with EPERM, and the connection goes on.
  ASSERT_TRUE(c.Send(EncodeRequest({0, kCmdWrite, 2, 0, 3}) + "abc"));
  Message m;
  ASSERT_TRUE(c.Next(&m));
  EXPECT_EQ(m.cookie, 2u);
  EXPECT_EQ(m.error, kEperm);
  ASSERT_TRUE(c.Request(kCmdRead, 3, 0, 10));
  ASSERT_TRUE(c.ReadReply(0, 10, &data, &err));
  EXPECT_EQ(data, content_.substr(0, 10));
}

TEST_F(ServerFixture, RepliesAsRequestsCompleteNotInOrder) {
  Start();
  TestClient c(path());
  ASSERT_TRUE(c.Handshake());
  device_.CloseGate();
  ASSERT_TRUE(c.Request(kCmdRead, 1, 0, 4096));
  ASSERT_TRUE(WaitFor([&] { return device_.waiting() == 1; }));
  ASSERT_TRUE(c.Request(kCmdCache, 2, 0, 4096));  // does not read: done at once
  Message m;
  ASSERT_TRUE(c.Next(&m));
  EXPECT_EQ(m.cookie, 2u);
  device_.OpenGate();
  std::string data;
  uint32_t err;
  ASSERT_TRUE(c.ReadReply(0, 4096, &data, &err));
  EXPECT_EQ(data, content_.substr(0, 4096));
}

TEST_F(ServerFixture, BoundsTheRequestsInFlightPerConnection) {
  NbdServerOptions o;
  o.threads = 16;
  o.max_inflight = 3;
  Start(o);
  TestClient c(path());
  ASSERT_TRUE(c.Handshake());
  device_.CloseGate();
  for (uint64_t i = 0; i < 10; i++) ASSERT_TRUE(c.Request(kCmdRead, i, i * 4096, 4096));
  ASSERT_TRUE(WaitFor([&] { return device_.waiting() == 3; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(device_.waiting(), 3);  // 16 workers idle, yet the reader stopped reading
  device_.OpenGate();
  std::map<uint64_t, std::string> got;
  for (int i = 0; i < 10; i++) {
    Message m;
    ASSERT_TRUE(c.Next(&m));
    EXPECT_EQ(m.flags, kReplyFlagDone);
    got[m.cookie] = m.payload.substr(8);
  }
  ASSERT_EQ(got.size(), 10u);
  for (auto& [cookie, data] : got) EXPECT_EQ(data, content_.substr(cookie * 4096, 4096)) << cookie;
  EXPECT_EQ(device_.max_waiting(), 3);
}

TEST_F(ServerFixture, ServesSeveralConnectionsAtOnce) {
  Start();
  std::vector<std::thread> clients;
  std::atomic<int> good{0};
  for (int k = 0; k < 4; k++) {
    clients.emplace_back([&, k] {
      TestClient c(path());
      if (!c.Handshake(/*structured=*/k % 2 == 0)) return;
      const uint32_t step = 65536;
      // Pipelined: every request first, then the replies.
      for (uint64_t off = 0; off < content_.size(); off += step)
        c.Request(kCmdRead, off, off, step);
      std::string all(content_.size(), '?');
      for (uint64_t n = 0; n < content_.size() / step; n++) {
        if (k % 2 == 0) {
          Message m;
          for (;;) {
            if (!c.Next(&m)) return;
            uint32_t err = 0;
            TestClient::Absorb(m, 0, &all, &err);
            if (m.flags & kReplyFlagDone) break;
          }
        } else {
          Message m;
          if (!c.Next(&m, step) || m.error) return;
          all.replace(m.cookie, step, m.payload);
        }
      }
      if (all == content_) good++;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(good, 4);
}

// The accept loop reaps finished connections on every accept. A reader that
// finished between the reap's join and its erase left a joinable
// std::thread to be destroyed: std::terminate. Clients that come and go
// many at a time make readers finish while new connections are accepted.
TEST_F(ServerFixture, ClientsComingAndGoingWhileConnectionsAreReapedDoNotCrashIt) {
  Start();
  constexpr int kClients = 8, kRounds = 150;
  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  for (int k = 0; k < kClients; k++) {
    clients.emplace_back([&] {
      for (int i = 0; i < kRounds; i++) {
        TestClient c(path());
        if (c.Handshake(/*structured=*/false)) good++;
      }  // each close ends a reader while the others connect
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(good, kClients * kRounds);
}

TEST_F(ServerFixture, StopFinishesStartedRequestsFailsQueuedOnesAndRemovesTheSocket) {
  NbdServerOptions o;
  o.threads = 1;
  Start(o);
  TestClient c(path());
  ASSERT_TRUE(c.Handshake());
  device_.CloseGate();
  ASSERT_TRUE(c.Request(kCmdRead, 1, 0, 4096));
  ASSERT_TRUE(WaitFor([&] { return device_.waiting() == 1; }));
  ASSERT_TRUE(c.Request(kCmdRead, 2, 4096, 4096));  // queued behind the only worker
  server_->Stop();
  struct stat st;
  ASSERT_TRUE(WaitFor([&] { return ::stat(path().c_str(), &st) != 0; }));  // stopping: socket gone
  device_.OpenGate();
  std::map<uint64_t, Message> got;
  for (int i = 0; i < 2; i++) {
    Message m;
    ASSERT_TRUE(c.Next(&m));
    got[m.cookie] = m;
  }
  EXPECT_EQ(got[1].error, 0u);
  EXPECT_EQ(got[1].payload.substr(8), content_.substr(0, 4096));
  EXPECT_EQ(got[2].error, kEshutdown);
  EXPECT_TRUE(c.Closed());
  thread_.join();
  server_.reset();
}

TEST_F(ServerFixture, HostileClientsAreRefusedAndOthersKeepBeingServed) {
  Start();
  auto good_client_reads = [&] {
    TestClient c(path());
    std::string data;
    uint32_t err = 1;
    return c.Handshake() && c.Request(kCmdRead, 9, 1000, 5000) &&
           c.ReadReply(1000, 5000, &data, &err) && err == 0 && data == content_.substr(1000, 5000);
  };
  std::string hello(4, '\0');
  PutBE32(reinterpret_cast<uint8_t*>(hello.data()), kClientFixedNewstyle);
  {
    TestClient bad(path());  // bad option magic
    std::string g;
    ASSERT_TRUE(bad.Read(&g, kGreetingSize));
    bad.Send(hello + "NOTMAGIC" + std::string(8, '\0'));
    EXPECT_TRUE(bad.Closed());
  }
  EXPECT_TRUE(good_client_reads());
  {
    TestClient big(path());  // a 4 GB option: ERR_TOO_BIG, closed
    std::string g, reply;
    ASSERT_TRUE(big.Read(&g, kGreetingSize));
    std::string opt = EncodeOption(kOptGo, "");
    PutBE32(reinterpret_cast<uint8_t*>(opt.data()) + 12, 0xffffffff);
    big.Send(hello + opt);
    ASSERT_TRUE(big.Read(&reply, 20));
    EXPECT_EQ(GetBE32(reinterpret_cast<const uint8_t*>(reply.data()) + 12), kRepErrTooBig);
    std::string message;
    ASSERT_TRUE(big.Read(&message, GetBE32(reinterpret_cast<const uint8_t*>(reply.data()) + 16)));
    EXPECT_TRUE(big.Closed());
  }
  EXPECT_TRUE(good_client_reads());
  {
    TestClient past(path());  // reads past the end and unknown commands: errors, still connected
    ASSERT_TRUE(past.Handshake());
    past.Request(kCmdRead, 1, content_.size() - 10, 20);
    past.Request(77, 2, 0, 0);
    for (int i = 0; i < 2; i++) {
      Message m;
      ASSERT_TRUE(past.Next(&m));
      EXPECT_EQ(m.error, kEinval) << m.cookie;
    }
  }
  EXPECT_TRUE(good_client_reads());
  {
    TestClient huge(path());  // a 4 GB write: refused, closed
    ASSERT_TRUE(huge.Handshake());
    huge.Request(kCmdWrite, 1, 0, 0xffffffff);
    huge.Send(std::string(1000, 'x'));
    Message m;
    ASSERT_TRUE(huge.Next(&m));
    EXPECT_EQ(m.error, kEoverflow);
    EXPECT_TRUE(huge.Closed());
  }
  EXPECT_TRUE(good_client_reads());
  {
    TestClient vanish(path());  // leaves in the middle of a write's payload
    ASSERT_TRUE(vanish.Handshake());
    vanish.Request(kCmdWrite, 1, 0, 100000);
    vanish.Send(std::string(500, 'x'));
  }
  {
    TestClient vanish(path());  // leaves with reads in flight
    ASSERT_TRUE(vanish.Handshake());
    for (uint64_t i = 0; i < 20; i++) vanish.Request(kCmdRead, i, 0, 1 << 20);
  }
  {
    TestClient silent(path());  // leaves in the middle of a request header
    ASSERT_TRUE(silent.Handshake());
    silent.Send(EncodeRequest({0, kCmdRead, 1, 0, 1}).substr(0, 11));
  }
  EXPECT_TRUE(good_client_reads());
}

TEST_F(ServerFixture, ReplacesAStaleSocketAndRefusesALiveOne) {
  // A socket file with nobody listening, as a killed server leaves.
  int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path().c_str());
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ::close(s);
  Start();
  TestClient c(path());
  EXPECT_TRUE(c.Handshake());
  NbdServerOptions o;
  o.socket_path = path();
  NbdServer second(device_, o);
  Status st = second.Listen();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("in use"), std::string::npos) << st.ToString();

  NbdServerOptions file;
  file.socket_path = dir_.Join("plain");
  ASSERT_TRUE(hloop::testing::WriteTestFile(file.socket_path, "x"));
  NbdServer third(device_, file);
  EXPECT_FALSE(third.Listen().ok());
  EXPECT_EQ(hloop::testing::ReadTestFile(file.socket_path), "x");  // never removed
}

TEST(NbdServerTest, TcpPortZeroPicksAPortAndServes) {
  MemoryDevice dev(std::string(8192, 'z'));
  NbdServerOptions o;
  o.listen = "127.0.0.1:0";
  NbdServer server(dev, o);
  ASSERT_TRUE(server.Listen().ok());
  const std::string& uri = server.uri();
  ASSERT_EQ(uri.rfind("nbd://127.0.0.1:", 0), 0u) << uri;
  int port = std::stoi(uri.substr(uri.rfind(':') + 1));
  EXPECT_GT(port, 0);
  std::thread t([&] { server.Run(); });
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  {
    TestClient c(fd);
    ASSERT_TRUE(c.Handshake(/*structured=*/false));
    EXPECT_EQ(c.size(), 8192u);
    ASSERT_TRUE(c.Request(kCmdRead, 1, 100, 10));
    Message m;
    ASSERT_TRUE(c.Next(&m, 10));
    EXPECT_EQ(m.payload, std::string(10, 'z'));
  }
  server.Stop();
  t.join();
}

TEST(NbdServerTest, ListenRefusesBadAddresses) {
  MemoryDevice dev(std::string(4096, 'z'));
  for (const char* bad : {"no-port", "127.0.0.1:notaport", "256.1.1.1:10809"}) {
    NbdServerOptions o;
    o.listen = bad;
    NbdServer s(dev, o);
    EXPECT_FALSE(s.Listen().ok()) << bad;
  }
  NbdServerOptions both;
  both.listen = "127.0.0.1:0";
  both.socket_path = "/tmp/x.sock";
  NbdServer s(dev, both);
  EXPECT_FALSE(s.Listen().ok());
  NbdServerOptions long_path;
  long_path.socket_path = "/tmp/" + std::string(200, 'a');
  NbdServer l(dev, long_path);
  EXPECT_FALSE(l.Listen().ok());
}

}  // namespace
}  // namespace hloop::nbd
