// Test-only: an in-process HTTP server on 127.0.0.1 (cpp-httplib) whose
// answers a test scripts per path, and which logs every request it gets.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace hloop::testing {

class TestHttpServer {
 public:
  // Answers GET /<path>: set res.status and res.body.
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  // `port` 0 picks a free one.
  explicit TestHttpServer(Handler handler, int port = 0) : handler_(std::move(handler)) {
    server_.new_task_queue = [] { return new httplib::ThreadPool(32); };
    server_.set_keep_alive_timeout(1);  // so that stop() does not wait long for idle clients
    server_.Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
      {
        MutexLock lock(&mu_);
        log_.push_back(req.path);
      }
      handler_(req, res);
    });
    if (port == 0) {
      port_ = server_.bind_to_any_port("127.0.0.1");
    } else {
      port_ = port;
      for (int i = 0; i < 200 && !server_.bind_to_port("127.0.0.1", port); i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~TestHttpServer() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
  // Paths requested so far, in arrival order.
  std::vector<std::string> log() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return log_;
  }
  int count(const std::string& path) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    int n = 0;
    for (const auto& p : log_) n += p == path;
    return n;
  }

 private:
  Handler handler_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  Mutex mu_;
  std::vector<std::string> log_ GUARDED_BY(mu_);
};

}  // namespace hloop::testing
