#include "fetch/checked_get.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "testing/http_server.h"
#include "testing/temp_dir.h"

namespace hloop::fetch {
namespace {

using testing::TestHttpServer;

FetchOptions FastRetries() {
  FetchOptions o;
  o.retry_initial_ms = 1;
  o.retry_max_ms = 4;
  o.max_attempts = 2;
  return o;
}

// The check of these tests: a body is good when it starts with "good".
Status StartsWithGood(const std::string& body) {
  if (body.starts_with("good")) return Status::Ok();
  return Status::Corruption("body '" + body + "' does not start with 'good'");
}

TEST(GetCheckedTest, BadCopiesAreFetchedAgainUntilOnePasses) {
  std::atomic<int> served{0};
  TestHttpServer server([&](const httplib::Request&, httplib::Response& res) {
    // Three different bad copies (a link that flips bytes), then a good one.
    int n = served++;
    res.set_content(n < 3 ? "bad " + std::to_string(n) : "good", "text/plain");
  });
  FetchEngine engine(server.base(), FastRetries());
  std::string out;
  Status st = GetChecked(engine, Request{.rel = "x.idx"}, StartsWithGood, &out);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(out, "good");
  EXPECT_EQ(server.count("/x.idx"), 4);
}

TEST(GetCheckedTest, DifferentBadCopiesGiveUpAfterMaxVerdictsWithTheChecksMessage) {
  std::atomic<int> served{0};
  TestHttpServer server([&](const httplib::Request&, httplib::Response& res) {
    res.set_content("bad " + std::to_string(served++), "text/plain");
  });
  FetchEngine engine(server.base(), FastRetries());
  std::string out = "untouched";
  Status st = GetChecked(engine, Request{.rel = "x.idx"}, StartsWithGood, &out, 4);
  ASSERT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("4 bad copies in a row"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("does not start with 'good'"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find(server.base() + "x.idx"), std::string::npos) << st.ToString();
  EXPECT_EQ(server.count("/x.idx"), 4);
  EXPECT_EQ(out, "untouched");
}

TEST(GetCheckedTest, TheSameBadCopyTwiceFromTheOnlyMirrorIsFinal) {
  TestHttpServer server([&](const httplib::Request&, httplib::Response& res) {
    res.set_content("tampered", "text/plain");
  });
  FetchEngine engine(server.base(), FastRetries());
  std::string out;
  Status st = GetChecked(engine, Request{.rel = "x.idx"}, StartsWithGood, &out);
  ASSERT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("the same bad copy twice in a row"), std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("body 'tampered'"), std::string::npos) << st.ToString();
  EXPECT_EQ(server.count("/x.idx"), 2);
}

TEST(GetCheckedTest, ABadMirrorIsReportedAndAnotherServesTheFile) {
  TestHttpServer bad([&](const httplib::Request&, httplib::Response& res) {
    res.set_content("tampered", "text/plain");
  });
  TestHttpServer good([&](const httplib::Request&, httplib::Response& res) {
    res.set_content("good copy", "text/plain");
  });
  FetchEngine engine(bad.base(), FastRetries());
  engine.AddMirror(MirrorSpec{good.base()});
  std::string out;
  Status st = GetChecked(engine, Request{.rel = "x.idx"}, StartsWithGood, &out);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(out, "good copy");
  EXPECT_EQ(good.count("/x.idx"), 1);
  EXPECT_LE(bad.count("/x.idx"), 1);
  EXPECT_EQ(engine.mirror_stats()[0].corrupt, uint64_t(bad.count("/x.idx")));
}

TEST(GetCheckedTest, TheSameBadCopyFromEveryMirrorIsFinal) {
  auto tampered = [](const httplib::Request&, httplib::Response& res) {
    res.set_content("tampered", "text/plain");
  };
  TestHttpServer a(tampered), b(tampered);
  FetchEngine engine(a.base(), FastRetries());
  engine.AddMirror(MirrorSpec{b.base()});
  std::string out;
  Status st = GetChecked(engine, Request{.rel = "x.idx"}, StartsWithGood, &out);
  ASSERT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("the same bad copy from every mirror"), std::string::npos)
      << st.ToString();
  EXPECT_EQ(a.count("/x.idx"), 1);
  EXPECT_EQ(b.count("/x.idx"), 1);
}

TEST(GetCheckedTest, BadCopiesAreNotFetchedAgainPastTheIoTimeout) {
  std::atomic<int> served{0};
  TestHttpServer server([&](const httplib::Request&, httplib::Response& res) {
    res.set_content("bad " + std::to_string(served++), "text/plain");
  });
  FetchOptions o;
  o.io_timeout_s = 1;
  o.retry_initial_ms = 2000;  // the first back-off, at least 1 s, passes the deadline
  o.retry_max_ms = 2000;
  FetchEngine engine(server.base(), o);
  std::string out;
  Status st = GetChecked(engine, Request{.rel = "x.idx"}, StartsWithGood, &out, 100);
  ASSERT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("no good copy within --io-timeout 1 s"), std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("body 'bad 0'"), std::string::npos) << st.ToString();
  EXPECT_EQ(server.count("/x.idx"), 1);
}

TEST(GetCheckedTest, NotFoundIsAnAnswerNotAVerdict) {
  TestHttpServer server([](const httplib::Request&, httplib::Response& res) { res.status = 404; });
  FetchEngine engine(server.base(), FastRetries());
  std::string out;
  Status st = GetChecked(engine, Request{.rel = "x.profile"}, StartsWithGood, &out);
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  EXPECT_EQ(server.count("/x.profile"), 1);
}

TEST(GetCheckedTest, ABodyOverTheLimitIsRefusedWithTheLimitInTheMessage) {
  const std::string big = "good" + std::string(100000, 'x');
  TestHttpServer server([&](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/chunked") {
      // No Content-Length: the limit is enforced as the body arrives.
      res.set_chunked_content_provider("text/plain", [&](size_t offset, httplib::DataSink& sink) {
        if (offset >= big.size()) {
          sink.done();
          return true;
        }
        sink.write(big.data() + offset, std::min<size_t>(4096, big.size() - offset));
        return true;
      });
      return;
    }
    res.set_content(big, "text/plain");
  });
  FetchEngine engine(server.base(), FastRetries());
  for (std::string rel : {"sized", "chunked"}) {
    SCOPED_TRACE(rel);
    // The engine alone: refused at once, not retried.
    std::string out;
    Status st = engine.Get(Request{.rel = rel, .max_size = 1000, .what = "a mirror list"}, &out);
    ASSERT_TRUE(st.IsCorruption()) << st.ToString();
    EXPECT_NE(st.message().find(server.base() + rel +
                                " is larger than the 1000-byte limit for a mirror list"),
              std::string::npos)
        << st.ToString();
    EXPECT_EQ(server.count("/" + rel), 1);
    // Checked: the same verdict twice from the one mirror is final.
    st = GetChecked(engine, Request{.rel = rel, .max_size = 1000, .what = "a mirror list"},
                    StartsWithGood, &out);
    ASSERT_TRUE(st.IsCorruption()) << st.ToString();
    EXPECT_NE(st.message().find("1000-byte limit for a mirror list"), std::string::npos)
        << st.ToString();
    EXPECT_EQ(server.count("/" + rel), 3);
    // Within the limit it passes.
    st = GetChecked(engine, Request{.rel = rel, .max_size = big.size(), .what = "a mirror list"},
                    StartsWithGood, &out);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(out, big);
  }
}

TEST(FetchUrlCheckedTest, ALocalFileIsReadOnceAndItsVerdictIsFinal) {
  testing::ScopedTempDir tmp;
  const std::string path = tmp.Join("x.profile");
  ASSERT_TRUE(testing::WriteTestFile(path, "tampered"));
  auto bad = FetchUrlChecked(path, FastRetries(), StartsWithGood);
  ASSERT_TRUE(bad.status().IsCorruption()) << bad.status().ToString();
  EXPECT_NE(bad.status().message().find(path + ": body 'tampered'"), std::string::npos)
      << bad.status().ToString();
  auto big = FetchUrlChecked(path, FastRetries(), StartsWithGood, 5, "a profile");
  ASSERT_TRUE(big.status().IsCorruption());
  EXPECT_EQ(big.status().message(), path + " is larger than the 5-byte limit for a profile");
  ASSERT_TRUE(testing::WriteTestFile(path, "good"));
  auto good = FetchUrlChecked(path, FastRetries(), StartsWithGood, 5, "a profile");
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(*good, "good");
}

TEST(FetchUrlCheckedTest, AUrlIsFetchedAgainUntilACopyPasses) {
  std::atomic<int> served{0};
  TestHttpServer server([&](const httplib::Request&, httplib::Response& res) {
    res.set_content(served++ == 0 ? "bad" : "good", "text/plain");
  });
  auto got = FetchUrlChecked(server.base() + "p", FastRetries(), StartsWithGood);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "good");
  EXPECT_EQ(server.count("/p"), 2);
}

}  // namespace
}  // namespace hloop::fetch
