// `hloop serve`: a static HTTP server for a store, on cpp-httplib. GET and
// HEAD with byte ranges and keep-alive; paths cannot leave the store.
// Caching headers (docs/serving.md): chunk files, indexes (NAME.idx) and their
// signatures (NAME.idx.sig) are immutable; channels (NAME.channel), the only
// files that move from version to version, are revalidated on every use
// ("no-cache"); anything else (NAME.mirrors, NAME.profile) gets a short max-age.
// Production stores belong on nginx, a CDN or a bucket: clients depend on
// nothing this server does beyond plain HTTP.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "server/host_port.h"
#include "util/status.h"

namespace httplib {
class Server;
}

namespace hloop::serve {

struct ServeOptions {
  std::string root;
  server::HostPort listen{"127.0.0.1", 8080};  // port 0 picks one
  int other_max_age_s = 60;  // max-age of files that are not chunks, indexes or channels
};

// The same Listen / Run / Stop shape as the NBD and 9P servers. cpp-httplib
// binds and accepts itself (it cannot take a socket made elsewhere), so this
// server does not use server::Listener; it runs a pool of its own threads,
// one per open connection.
class HttpServer {
 public:
  explicit HttpServer(ServeOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Checks the store and binds the socket.
  Status Listen();
  // The port bound. REQUIRES: Listen() succeeded.
  int port() const { return port_; }
  // Serves until Stop(). REQUIRES: Listen() succeeded.
  Status Run();
  // Makes Run() return (at once if it has not started yet). Thread-safe; not
  // async-signal-safe (call it from server::StopSignals).
  void Stop();

 private:
  ServeOptions options_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> run_entered_{false};
  std::atomic<bool> run_done_{false};
};

}  // namespace hloop::serve
