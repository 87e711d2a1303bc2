#include "fetch/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "fetch/http_source.h"
#include "testing/http_server.h"

namespace hloop::fetch {
namespace {

using testing::TestHttpServer;

FetchOptions FastRetries() {
  FetchOptions o;
  o.retry_initial_ms = 10;
  o.retry_max_ms = 40;
  o.max_attempts = 4;
  return o;
}

TEST(FetchEngineTest, FetchesABody) {
  TestHttpServer server([](const httplib::Request& req, httplib::Response& res) {
    res.set_content("body of " + req.path, "application/octet-stream");
  });
  FetchEngine engine(server.base(), FastRetries());
  std::string out;
  ASSERT_TRUE(engine.Get("a/b", 0, Priority::kDemand, &out).ok());
  EXPECT_EQ(out, "body of /a/b");
}

TEST(FetchEngineTest, NotFoundIsFinalAndNotRetried) {
  TestHttpServer server([](const httplib::Request&, httplib::Response& res) { res.status = 404; });
  FetchEngine engine(server.base(), FastRetries());
  std::string out;
  Status st = engine.Get("missing", 0, Priority::kDemand, &out);
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  EXPECT_NE(st.message().find(server.base() + "missing"), std::string::npos) << st.message();
  EXPECT_EQ(server.count("/missing"), 1);
}

TEST(FetchEngineTest, RetriesServerErrorsThenSucceeds) {
  std::atomic<int> calls{0};
  TestHttpServer server([&](const httplib::Request&, httplib::Response& res) {
    if (calls++ < 2) {
      res.status = 503;
      return;
    }
    res.set_content("finally", "text/plain");
  });
  FetchEngine engine(server.base(), FastRetries());
  std::string out;
  Status st = engine.Get("x", 0, Priority::kDemand, &out);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(out, "finally");
  EXPECT_EQ(server.count("/x"), 3);
  EXPECT_EQ(engine.stats().retries, 2u);
}

TEST(FetchEngineTest, GivesUpAfterMaxAttemptsAsUnavailable) {
  TestHttpServer server([](const httplib::Request&, httplib::Response& res) { res.status = 500; });
  FetchEngine engine(server.base(), FastRetries());
  std::string out;
  Status st = engine.Get("x", 0, Priority::kDemand, &out);
  EXPECT_TRUE(st.IsUnavailable()) << st.ToString();
  EXPECT_EQ(server.count("/x"), 4);
}

TEST(FetchEngineTest, WrongBodyLengthIsRetriedThenCorruption) {
  TestHttpServer server([](const httplib::Request&, httplib::Response& res) {
    res.set_content("12345", "text/plain");
  });
  FetchEngine engine(server.base(), FastRetries());
  std::string out;
  EXPECT_TRUE(engine.Get("short", 10, Priority::kDemand, &out).IsCorruption());
  EXPECT_TRUE(engine.Get("long", 3, Priority::kDemand, &out).IsCorruption());
  // A server that answers with the wrong length is asked a few times, not
  // waited for like one that is away.
  EXPECT_EQ(server.count("/short"), 3);
  std::string exact;
  EXPECT_TRUE(engine.Get("exact", 5, Priority::kDemand, &exact).ok());
  EXPECT_EQ(exact, "12345");
}

TEST(FetchEngineTest, UnreachableServerIsUnavailable) {
  int port;
  {
    TestHttpServer gone([](const httplib::Request&, httplib::Response&) {});
    port = std::stoi(gone.base().substr(17));
  }
  FetchEngine engine("http://127.0.0.1:" + std::to_string(port) + "/", FastRetries());
  std::string out;
  EXPECT_TRUE(engine.Get("x", 0, Priority::kDemand, &out).IsUnavailable());
}

TEST(FetchEngineTest, ByDefaultWaitsForAServerThatComesBack) {
  int port;
  {
    TestHttpServer probe([](const httplib::Request&, httplib::Response&) {});
    port = probe.port();
  }
  FetchOptions o;  // defaults: no attempt limit, no io-timeout
  o.retry_initial_ms = 20;
  o.retry_max_ms = 100;
  FetchEngine engine("http://127.0.0.1:" + std::to_string(port) + "/", o);
  auto result = std::async(std::launch::async, [&] {
    std::string out;
    Status st = engine.Get("x", 0, Priority::kDemand, &out);
    return st.ok() ? out : st.ToString();
  });
  // Nothing listens for a while: the request must still be waiting.
  EXPECT_EQ(result.wait_for(std::chrono::milliseconds(600)), std::future_status::timeout);
  TestHttpServer back([](const httplib::Request&,
                         httplib::Response& res) { res.set_content("back again", "text/plain"); },
                      port);
  ASSERT_EQ(result.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_EQ(result.get(), "back again");
  EXPECT_GT(engine.stats().retries, 2u);
}

TEST(FetchEngineTest, IoTimeoutFailsARequestTheServerNeverAnswers) {
  int port;
  {
    TestHttpServer probe([](const httplib::Request&, httplib::Response&) {});
    port = probe.port();
  }
  FetchOptions o;
  o.io_timeout_s = 1;
  o.retry_initial_ms = 20;
  o.retry_max_ms = 100;
  FetchEngine engine("http://127.0.0.1:" + std::to_string(port) + "/", o);
  auto result = std::async(std::launch::async, [&] {
    std::string out;
    return engine.Get("x", 0, Priority::kDemand, &out);
  });
  // A generous guard against hanging, not a timing assertion.
  ASSERT_EQ(result.wait_for(std::chrono::seconds(15)), std::future_status::ready);
  Status st = result.get();
  EXPECT_TRUE(st.IsUnavailable()) << st.ToString();
  EXPECT_NE(st.message().find("io-timeout"), std::string::npos) << st.message();
}

TEST(FetchEngineTest, IoTimeoutAbandonsATransferThatStalls) {
  std::promise<void> release;
  auto released = release.get_future().share();
  TestHttpServer server([&](const httplib::Request&, httplib::Response& res) {
    released.wait_for(std::chrono::seconds(10));  // answers far too late
    res.set_content("late", "text/plain");
  });
  FetchOptions o;
  o.io_timeout_s = 1;
  FetchEngine engine(server.base(), o);
  std::string out;
  auto start = std::chrono::steady_clock::now();
  Status st = engine.Get("slow", 0, Priority::kDemand, &out);
  auto waited = std::chrono::steady_clock::now() - start;
  release.set_value();
  EXPECT_TRUE(st.IsUnavailable()) << st.ToString();
  EXPECT_LT(waited, std::chrono::seconds(8));  // hang guard: far below the server's 10 s
}

// The engine does not merge requests (the chunk reader collapses them, see
// ImageDeviceTest.ConcurrentHttpReadersOfOneChunkMakeOneGet): each is a
// transfer, and each caller gets its own answer.
TEST(FetchEngineTest, ConcurrentRequestsForOneObjectAreTransfersOfTheirOwn) {
  TestHttpServer server([](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    res.set_content("shared", "text/plain");
  });
  FetchEngine engine(server.base(), FastRetries());
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 3; t++)
    threads.emplace_back([&] {
      std::string out;
      if (engine.Get("same", 0, Priority::kDemand, &out).ok() && out == "shared") good++;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(good, 3);
  EXPECT_EQ(server.count("/same"), 3);
  EXPECT_EQ(engine.stats().transfers, 3u);
}

TEST(FetchEngineTest, ManyTransfersRunInParallel) {
  std::atomic<int> now{0}, peak{0};
  TestHttpServer server([&](const httplib::Request&, httplib::Response& res) {
    int n = ++now;
    for (int p = peak; n > p && !peak.compare_exchange_weak(p, n);) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    now--;
    res.set_content("x", "text/plain");
  });
  FetchOptions o = FastRetries();
  o.max_inflight = 8;
  FetchEngine engine(server.base(), o);
  std::vector<std::future<Status>> done;
  for (int i = 0; i < 16; i++) {
    auto p = std::make_shared<std::promise<Status>>();
    done.push_back(p->get_future());
    engine.Submit(Request{"obj" + std::to_string(i), 0, Priority::kReadAhead},
                  [p](const Status& st, std::string, int) { p->set_value(st); });
  }
  for (auto& f : done) EXPECT_TRUE(f.get().ok());
  EXPECT_GE(peak.load(), 4);  // several at once, not one by one
  EXPECT_LE(peak.load(), 8);  // and never more than allowed
  EXPECT_LE(engine.stats().max_inflight_seen, 8u);
}

TEST(FetchEngineTest, DemandGoesBeforeQueuedPrefetch) {
  std::promise<void> release;
  auto released = release.get_future().share();
  TestHttpServer server([&](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/blocker") released.wait();
    res.set_content("ok", "text/plain");
  });
  FetchOptions o = FastRetries();
  o.max_inflight = 1;  // one slot: the order of the queue decides everything
  FetchEngine engine(server.base(), o);
  std::vector<std::future<Status>> done;
  auto submit = [&](const std::string& rel, Priority p) {
    auto pr = std::make_shared<std::promise<Status>>();
    done.push_back(pr->get_future());
    engine.Submit(Request{rel, 0, p},
                  [pr](const Status& st, std::string, int) { pr->set_value(st); });
  };
  submit("blocker", Priority::kDemand);
  // Wait until the blocker holds the only slot.
  for (int i = 0; i < 200 && server.count("/blocker") == 0; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  submit("prefetch1", Priority::kPrefetch);
  submit("prefetch2", Priority::kPrefetch);
  submit("readahead", Priority::kReadAhead);
  submit("demand", Priority::kDemand);
  submit("boosted", Priority::kPrefetch);
  engine.Prioritize("boosted", Priority::kDemand);
  release.set_value();
  for (auto& f : done) EXPECT_TRUE(f.get().ok());
  std::vector<std::string> want = {"/blocker",   "/demand",    "/boosted",
                                   "/readahead", "/prefetch1", "/prefetch2"};
  EXPECT_EQ(server.log(), want);
}

TEST(FetchEngineTest, ShutdownFailsWaitingRequests) {
  std::promise<void> release;
  auto released = release.get_future().share();
  TestHttpServer server([&](const httplib::Request&, httplib::Response& res) {
    released.wait_for(std::chrono::seconds(5));
    res.set_content("late", "text/plain");
  });
  std::vector<std::future<Status>> done;
  {
    FetchOptions o = FastRetries();
    o.max_inflight = 1;
    FetchEngine engine(server.base(), o);
    for (int i = 0; i < 3; i++) {
      auto pr = std::make_shared<std::promise<Status>>();
      done.push_back(pr->get_future());
      engine.Submit(Request{"r" + std::to_string(i), 0, Priority::kDemand},
                    [pr](const Status& st, std::string, int) { pr->set_value(st); });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }  // destroyed with one transfer running and two queued
  release.set_value();
  for (auto& f : done) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    EXPECT_TRUE(f.get().IsUnavailable());
  }
}

TEST(FetchUrlTest, ReadsPathsAndFileUrls) {
  char tmpl[] = "/tmp/hloop-fetchurl-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "index bytes", 11), 11);
  close(fd);
  auto a = FetchUrl(tmpl, FetchOptions{});
  auto b = FetchUrl(std::string("file://") + tmpl, FetchOptions{});
  unlink(tmpl);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a.value(), "index bytes");
  EXPECT_EQ(b.value(), "index bytes");
}

}  // namespace
}  // namespace hloop::fetch
