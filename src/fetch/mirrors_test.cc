// The engine with several mirrors: ranking, spill-over, failover, 404s,
// corrupt mirrors, and the options that reach every transfer.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "fetch/engine.h"
#include "testing/http_server.h"
#include "util/mutex.h"

namespace hloop::fetch {
namespace {

using testing::TestHttpServer;

FetchOptions Fast() {
  FetchOptions o;
  o.retry_initial_ms = 10;
  o.retry_max_ms = 40;
  o.max_attempts = 6;
  return o;
}

// A server whose every answer takes `delay_ms`.
TestHttpServer::Handler Slow(int delay_ms, std::string body = "same bytes") {
  return [delay_ms, body](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    res.set_content(body, "application/octet-stream");
  };
}

void WaitForRtt(FetchEngine& engine, int mirrors) {
  for (int i = 0; i < 500; i++) {
    auto s = engine.mirror_stats();
    int known = 0;
    for (const auto& m : s) known += m.rtt_s >= 0;
    if (known == mirrors) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL() << "probes did not measure every mirror";
}

TEST(MirrorSpecTest, ParsesUrlsAndOptions) {
  auto a = ParseMirrorSpec("http://m1.example/img/");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->base, "http://m1.example/img/");
  EXPECT_FALSE(a->http2);
  auto b = ParseMirrorSpec("https://m2.example/img/debian.idx#http2,connections=4");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->base, "https://m2.example/img/");
  EXPECT_TRUE(b->http2);
  EXPECT_EQ(b->connections, 4u);
  auto c = ParseMirrorSpec("  http://m3.example/img   connections=2 ");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->base, "http://m3.example/img/");
  EXPECT_EQ(c->connections, 2u);
  EXPECT_EQ(ParseMirrorSpec("http://host")->base, "http://host/");
  EXPECT_FALSE(ParseMirrorSpec("ftp://x/").ok());
  EXPECT_FALSE(ParseMirrorSpec("/local/dir").ok());
  EXPECT_FALSE(ParseMirrorSpec("http://x/#fast").ok());
  EXPECT_FALSE(ParseMirrorSpec("http://x/#connections=0").ok());
  EXPECT_FALSE(ParseMirrorSpec("http://x/#connections=9x").ok());
}

TEST(MirrorSpecTest, ParsesAMirrorListAndNamesTheBadLine) {
  auto ok = ParseMirrorList("# mirrors of debian\n\nhttp://a/x/\r\nhttps://b/y/ http2\n",
                            "debian.mirrors");
  ASSERT_TRUE(ok.ok());
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[1].base, "https://b/y/");
  EXPECT_TRUE((*ok)[1].http2);
  auto bad = ParseMirrorList("http://a/x/\nnot a url\n", "debian.mirrors");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("debian.mirrors line 2"), std::string::npos)
      << bad.status().message();
}

TEST(MirrorsTest, ProbesRankMirrorsAndMostWorkGoesToTheFastestOne) {
  TestHttpServer slow(Slow(60)), fast(Slow(5));
  FetchEngine engine(Fast());
  engine.AddMirror({slow.base()});  // listed first, but slower
  engine.AddMirror({fast.base()});
  engine.Probe("probe", 3);
  WaitForRtt(engine, 2);
  int from_fast = 0;
  for (int i = 0; i < 20; i++) {
    std::string out;
    int m = -1;
    ASSERT_TRUE(engine.Get(Request{"obj" + std::to_string(i)}, &out, &m).ok());
    from_fast += m == 1;
  }
  EXPECT_GE(from_fast, 18);
  auto s = engine.mirror_stats();
  EXPECT_LT(s[1].rtt_s, s[0].rtt_s);
  EXPECT_GE(s[0].rtt_s, 0.05);
}

TEST(MirrorsTest, WorkSpillsToASlowerMirrorWhenTheFastOneIsBusy) {
  TestHttpServer a(Slow(100)), b(Slow(100));
  FetchOptions o = Fast();
  o.max_inflight = 2;  // per mirror
  FetchEngine engine(o);
  engine.AddMirror({a.base()});
  engine.AddMirror({b.base()});
  std::vector<std::future<Status>> done;
  for (int i = 0; i < 8; i++) {
    auto p = std::make_shared<std::promise<Status>>();
    done.push_back(p->get_future());
    engine.Submit(Request{"obj" + std::to_string(i)},
                  [p](const Status& st, std::string, int) { p->set_value(st); });
  }
  for (auto& f : done) EXPECT_TRUE(f.get().ok());
  EXPECT_GT(a.log().size(), 0u);
  EXPECT_GT(b.log().size(), 0u);
  EXPECT_GE(engine.stats().max_inflight_seen, 3u);  // more than one mirror's worth at once
}

TEST(MirrorsTest, ADeadMirrorIsSetAsideAndReadsGoToTheOther) {
  int dead_port;
  {
    TestHttpServer gone(Slow(0));
    dead_port = gone.port();
  }  // nothing listens there any more
  TestHttpServer good(Slow(0, "good"));
  FetchEngine engine(Fast());
  engine.AddMirror({"http://127.0.0.1:" + std::to_string(dead_port) + "/"});
  engine.AddMirror({good.base()});
  for (int i = 0; i < 10; i++) {
    std::string out;
    int m = -1;
    Status st = engine.Get(Request{"obj" + std::to_string(i)}, &out, &m);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(out, "good");
    EXPECT_EQ(m, 1);
  }
  auto s = engine.mirror_stats();
  EXPECT_TRUE(s[0].set_aside);
  EXPECT_LE(s[0].transfers, 3u);  // tried, then left alone
  EXPECT_GE(s[0].errors, 1u);
}

TEST(MirrorsTest, A5xxMirrorFailsOverAndComesBackAfterItsBackOff) {
  std::atomic<bool> broken{true};
  TestHttpServer flaky([&](const httplib::Request&, httplib::Response& res) {
    if (broken) {
      res.status = 503;
      return;
    }
    res.set_content("flaky", "text/plain");
  });
  TestHttpServer other(Slow(30, "other"));
  FetchEngine engine(Fast());
  engine.AddMirror({flaky.base()});
  engine.AddMirror({other.base()});
  engine.Probe("probe", 1);
  for (int i = 0; i < 4; i++) {
    std::string out;
    ASSERT_TRUE(engine.Get(Request{"a" + std::to_string(i)}, &out).ok());
    EXPECT_EQ(out, "other");
  }
  EXPECT_TRUE(engine.mirror_stats()[0].set_aside);
  broken = false;
  // Set aside for about a second, then re-probed; being faster, it wins again.
  bool back = false;
  for (int i = 0; i < 60 && !back; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    back = !engine.mirror_stats()[0].set_aside;
  }
  EXPECT_TRUE(back);
}

TEST(MirrorsTest, NotFoundOnOneMirrorAsksTheOthersAndOnAllIsNotFound) {
  TestHttpServer behind([](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/new" || req.path == "/nowhere") {
      res.status = 404;
      return;
    }
    res.set_content("old", "text/plain");
  });
  TestHttpServer current([](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/nowhere") {
      res.status = 404;
      return;
    }
    res.set_content("current", "text/plain");
  });
  FetchEngine engine(Fast());
  engine.AddMirror({behind.base()});
  engine.AddMirror({current.base()});
  std::string out;
  ASSERT_TRUE(engine.Get(Request{"new"}, &out).ok());
  EXPECT_EQ(out, "current");
  Status st = engine.Get(Request{"nowhere"}, &out);
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  EXPECT_EQ(behind.count("/nowhere") + current.count("/nowhere"), 2);
}

TEST(MirrorsTest, ACorruptMirrorIsSetAsideAndTheRefetchGoesElsewhere) {
  TestHttpServer bad(Slow(0, "bad")), good(Slow(20, "good"));
  FetchEngine engine(Fast());
  engine.AddMirror({bad.base()});
  engine.AddMirror({good.base()});
  std::string out;
  int m = -1;
  ASSERT_TRUE(engine.Get(Request{"x"}, &out, &m).ok());
  if (m == 0) {
    engine.ReportCorrupt(0);  // what the image device does after a hash mismatch
    ASSERT_TRUE(engine.Get(Request{"x"}, &out, &m).ok());
  }
  EXPECT_EQ(m, 1);
  EXPECT_EQ(out, "good");
  engine.ReportCorrupt(0);
  auto s = engine.mirror_stats();
  EXPECT_TRUE(s[0].set_aside);
  EXPECT_GE(s[0].corrupt, 1u);
}

TEST(MirrorsTest, ARequestWhosePriorityRoseWhileRunningDoesNotLeakItsSlot) {
  // Regression: a read-ahead transfer raised to demand while running used
  // to be released from the wrong class, after which demand never started.
  std::promise<void> release;
  auto released = release.get_future().share();
  TestHttpServer server([&](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/ahead") released.wait();
    res.set_content("ok", "text/plain");
  });
  FetchOptions o = Fast();
  o.max_inflight = 2;
  FetchEngine engine(server.base(), o);
  auto p = std::make_shared<std::promise<Status>>();
  auto ahead = p->get_future();
  engine.Submit(Request{"ahead", 0, Priority::kReadAhead},
                [p](const Status& st, std::string, int) { p->set_value(st); });
  while (server.count("/ahead") == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  engine.Prioritize("ahead", Priority::kDemand);
  release.set_value();
  ASSERT_TRUE(ahead.get().ok());
  for (int i = 0; i < 6; i++) {
    auto q = std::make_shared<std::promise<Status>>();
    auto f = q->get_future();
    engine.Submit(Request{"d" + std::to_string(i)},
                  [q](const Status& st, std::string, int) { q->set_value(st); });
    ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready)
        << "demand request " << i << " hangs";
    EXPECT_TRUE(f.get().ok());
  }
}

TEST(MirrorsTest, PrefetchNeverTakesTheSlotsAWaitingReadNeeds) {
  // Every prefetch transfer hangs until released; a demand read submitted
  // after a flood of them must still get a connection and finish.
  std::promise<void> release;
  auto released = release.get_future().share();
  TestHttpServer server([&](const httplib::Request& req, httplib::Response& res) {
    if (req.path.starts_with("/pre")) released.wait();
    res.set_content("ok", "text/plain");
  });
  FetchOptions o = Fast();
  o.max_inflight = 4;
  FetchEngine engine(server.base(), o);
  std::vector<std::future<Status>> prefetches;
  for (int i = 0; i < 20; i++) {
    auto p = std::make_shared<std::promise<Status>>();
    prefetches.push_back(p->get_future());
    engine.Submit(Request{"pre" + std::to_string(i), 0, Priority::kPrefetch},
                  [p](const Status& st, std::string, int) { p->set_value(st); });
  }
  // Let the prefetch take every slot it may before the read arrives.
  for (int i = 0; i < 200 && engine.stats().inflight < 3; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto q = std::make_shared<std::promise<Status>>();
  auto demand = q->get_future();
  engine.Submit(Request{"read", 0, Priority::kDemand},
                [q](const Status& st, std::string, int) { q->set_value(st); });
  EXPECT_EQ(demand.wait_for(std::chrono::seconds(5)), std::future_status::ready)
      << "the read starved behind prefetch";
  EXPECT_LE(engine.stats().max_inflight_seen, 4u);
  release.set_value();
  for (auto& f : prefetches) EXPECT_TRUE(f.get().ok());
}

TEST(MirrorsTest, HeadersAndProxyReachTheServer) {
  std::string auth, via_proxy_path;
  Mutex mu;
  TestHttpServer origin([&](const httplib::Request& req, httplib::Response& res) {
    MutexLock lock(&mu);
    auth = req.get_header_value("Authorization");
    res.set_content("origin", "text/plain");
  });
  // A "proxy" that answers itself: an absolute-form request line proves
  // the engine talked to it as a proxy.
  TestHttpServer proxy([&](const httplib::Request& req, httplib::Response& res) {
    MutexLock lock(&mu);
    via_proxy_path = req.target;
    res.set_content("proxied", "text/plain");
  });
  FetchOptions o = Fast();
  o.headers = {"Authorization: Bearer sesame"};
  {
    FetchEngine engine(origin.base(), o);
    std::string out;
    ASSERT_TRUE(engine.Get(Request{"a"}, &out).ok());
    MutexLock lock(&mu);
    EXPECT_EQ(auth, "Bearer sesame");
  }
  o.proxy = proxy.base();
  {
    FetchEngine engine("http://image.example/dir/", o);
    std::string out;
    ASSERT_TRUE(engine.Get(Request{"chunk"}, &out).ok());
    EXPECT_EQ(out, "proxied");
  }
}

TEST(MirrorsTest, HttpsWithAnUnknownCertificateFailsAndIsNotRetriedForever) {
  // Nothing speaks TLS on this port: whatever happens, it must end quickly
  // with an error, never with data and never by switching verification off.
  TestHttpServer plain(Slow(0));
  FetchOptions o = Fast();
  o.max_attempts = 2;
  FetchEngine engine("https://127.0.0.1:" + std::to_string(plain.port()) + "/", o);
  std::string out;
  Status st = engine.Get(Request{"x"}, &out);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace hloop::fetch
