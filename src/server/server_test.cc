#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "server/host_port.h"
#include "server/listener.h"
#include "server/stop_signals.h"
#include "server/worker_pool.h"
#include "testing/temp_dir.h"

namespace hloop::server {
namespace {

TEST(HostPortTest, ParsesGoodAddresses) {
  struct Case {
    const char* text;
    const char* host;
    uint16_t port;
  };
  for (const Case& c :
       {Case{"127.0.0.1:8080", "127.0.0.1", 8080}, Case{"[::1]:564", "::1", 564},
        Case{"localhost:0", "localhost", 0}, Case{":10809", "", 10809},
        Case{"example.org:65535", "example.org", 65535}, Case{"[fe80::1%lo]:1", "fe80::1%lo", 1}}) {
    auto hp = ParseHostPort(c.text);
    ASSERT_TRUE(hp.ok()) << c.text << ": " << hp.status().ToString();
    EXPECT_EQ(hp->host, c.host) << c.text;
    EXPECT_EQ(hp->port, c.port) << c.text;
  }
  EXPECT_EQ(ParseHostPort("[::1]:564")->ToString(), "[::1]:564");
  EXPECT_EQ(ParseHostPort(":80")->ToString(), "0.0.0.0:80");
}

TEST(HostPortTest, RefusesBadAddressesWithOneMessage) {
  for (const char* bad :
       {"", "no-port", "host:", ":", "127.0.0.1:notaport", "127.0.0.1:65536", "h:99999999", "h:-1",
        "h:+1", "::1:80", "[]:80", "[::1:80", "::1]:80", "a b:80", "a/b:80", "unix:/tmp/x.sock"}) {
    auto hp = ParseHostPort(bad);
    ASSERT_FALSE(hp.ok()) << bad;
    EXPECT_TRUE(hp.status().code() == Status::Code::kInvalidArgument) << bad;
    EXPECT_NE(hp.status().message().find("expected HOST:PORT"), std::string::npos)
        << hp.status().ToString();
  }
}

int ConnectTcp(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int ConnectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(ListenerTest, TcpPortZeroAcceptsConnections) {
  Listener l;
  auto bound = l.ListenTcp(HostPort{"127.0.0.1", 0});
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  EXPECT_EQ(bound->host, "127.0.0.1");
  ASSERT_GT(bound->port, 0);
  int c = ConnectTcp(bound->port);
  ASSERT_GE(c, 0);
  auto fd = l.Accept(5000);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  ASSERT_GE(*fd, 0);
  EXPECT_EQ(::fcntl(*fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  ASSERT_EQ(::write(c, "x", 1), 1);
  char got = 0;
  EXPECT_EQ(::read(*fd, &got, 1), 1);
  EXPECT_EQ(got, 'x');
  ::close(*fd);
  ::close(c);
  // Nothing waiting: the time passes.
  auto none = l.Accept(10);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, -1);
}

TEST(ListenerTest, TcpAddressInUseAndUnresolvableHostFail) {
  Listener a, b;
  auto bound = a.ListenTcp(HostPort{"127.0.0.1", 0});
  ASSERT_TRUE(bound.ok());
  EXPECT_FALSE(b.ListenTcp(*bound).ok());
  EXPECT_FALSE(b.ListenTcp(HostPort{"256.1.1.1", 0}).ok());
  EXPECT_TRUE(b.empty());
}

TEST(ListenerTest, UnixReplacesAStaleSocketFile) {
  testing::ScopedTempDir dir;
  const std::string path = dir.Join("s.sock");
  // A socket file nobody listens on, as a killed server leaves behind.
  int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ::close(s);
  {
    Listener l;
    Status st = l.ListenUnix(path, 0600);
    ASSERT_TRUE(st.ok()) << st.ToString();
    struct stat sb;
    ASSERT_EQ(::stat(path.c_str(), &sb), 0);
    EXPECT_EQ(sb.st_mode & 0777, 0600u);
    int c = ConnectUnix(path);
    ASSERT_GE(c, 0);
    auto fd = l.Accept(5000);
    ASSERT_TRUE(fd.ok());
    EXPECT_GE(*fd, 0);
    ::close(*fd);
    ::close(c);
  }
  struct stat sb;
  EXPECT_NE(::lstat(path.c_str(), &sb), 0) << "the socket file outlived its listener";
}

TEST(ListenerTest, UnixSocketInUseIsAnErrorAndNotRemoved) {
  testing::ScopedTempDir dir;
  const std::string path = dir.Join("s.sock");
  Listener live;
  ASSERT_TRUE(live.ListenUnix(path).ok());
  {
    Listener second;
    Status st = second.ListenUnix(path);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("address in use"), std::string::npos) << st.ToString();
  }
  // The first server's socket still works.
  int c = ConnectUnix(path);
  EXPECT_GE(c, 0);
  ::close(c);
  // A file that is not a socket is refused and left alone.
  const std::string plain = dir.Join("plain");
  ASSERT_TRUE(testing::WriteTestFile(plain, "x"));
  Listener third;
  EXPECT_FALSE(third.ListenUnix(plain).ok());
  EXPECT_EQ(testing::ReadTestFile(plain), "x");
  EXPECT_FALSE(third.ListenUnix(dir.Join(std::string(200, 'a'))).ok());
}

TEST(ListenerTest, WakeEndsABlockedAccept) {
  Listener l;
  ASSERT_TRUE(l.ListenTcp(HostPort{"127.0.0.1", 0}).ok());
  std::atomic<bool> returned{false};
  Status result;
  std::thread t([&] {
    auto r = l.Accept(-1);
    result = r.status();
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(returned.load());
  l.Wake();
  t.join();
  EXPECT_TRUE(result.IsUnavailable()) << result.ToString();
  // Woken for good: later calls return at once.
  EXPECT_TRUE(l.Accept(-1).status().IsUnavailable());
}

TEST(WorkerPoolTest, RunsEveryTaskBeforeItIsDestroyed) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(3);
    for (int i = 0; i < 100; i++)
      pool.Submit([&] {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        ran++;
      });
  }
  EXPECT_EQ(ran.load(), 100);
}

TEST(WorkerPoolTest, RunsTasksConcurrently) {
  WorkerPool pool(2);
  std::atomic<int> arrived{0};
  std::atomic<bool> both{false};
  for (int i = 0; i < 2; i++)
    pool.Submit([&] {
      arrived++;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (arrived.load() < 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
      if (arrived.load() == 2) both = true;
    });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!both && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_TRUE(both.load()) << "two tasks never ran at the same time";
}

TEST(StopSignalsTest, FirstSignalStopsOnceAndASecondDoesNotCutShutdownShort) {
  StopSignals signals;
  std::atomic<int> calls{0};
  std::atomic<bool> finished{false};
  std::atomic<bool> in_stop{false};
  signals.OnStop([&] {
    calls++;
    in_stop = true;
    // Shutdown work under way while more signals arrive.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    finished = true;
  });
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!in_stop && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_TRUE(in_stop.load());
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
  ASSERT_EQ(::kill(::getpid(), SIGINT), 0);
  EXPECT_EQ(signals.Wait(), SIGTERM);
  EXPECT_TRUE(finished.load());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the later signals are taken
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(signals.signal(), SIGTERM);
}

TEST(StopSignalsTest, AfterFinishingASignalIsOnlyLogged) {
  StopSignals signals;
  std::atomic<int> calls{0};
  signals.OnStop([&] { calls++; });
  signals.Finishing();
  ASSERT_EQ(::kill(::getpid(), SIGHUP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(signals.signal(), 0);
}

TEST(StopSignalsDeathTest, BeforeOnStopASignalEndsTheProcess) {
  EXPECT_EXIT(
      {
        StopSignals signals;
        ::kill(::getpid(), SIGTERM);
        std::this_thread::sleep_for(std::chrono::seconds(5));
        std::_Exit(0);
      },
      ::testing::KilledBySignal(SIGTERM), "");
}

}  // namespace
}  // namespace hloop::server
