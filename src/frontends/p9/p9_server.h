// The 9P2000.L server (`hloop 9p`): serves exported file systems (p9_fs.h)
// to any number of clients over TCP and Unix sockets.
//
// Thread model: per connection one reader thread (reads and decodes frames,
// answers Tversion and Tflush itself) and one writer thread (sends replies in
// the order they are queued); a pool of workers shared by all connections runs
// the other requests, so one connection may have many in flight. Listening,
// accepting and the pool are the shared server helpers (server/listener.h,
// server/worker_pool.h).
//
// Flush: a Tflush for a request still waiting for a worker drops that request
// (it never gets a reply) and is answered at once; for one that is running,
// Rflush follows that request's reply. A client may therefore reuse the tag
// as soon as it sees Rflush.
//
// Limits: frames larger than the agreed msize (or shorter than a header)
// close the connection; a malformed body gets Rlerror(EINVAL), an unknown type
// Rlerror(EOPNOTSUPP); a tag already in flight closes the connection. Per
// connection at most `max_requests` requests are outstanding (the reader
// stops reading until one is answered) and at most `max_fids` fids exist.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "frontends/p9/p9_session.h"
#include "server/host_port.h"
#include "util/status.h"

namespace hloop::p9 {

struct ServerOptions {
  unsigned workers = 16;         // threads running requests, for all connections
  uint32_t max_msize = 1 << 20;  // the largest msize agreed to
  size_t max_fids = 65536;       // per connection (each holds a descriptor)
  size_t max_requests = 32;      // outstanding per connection
};

class Server {
 public:
  // REQUIRES: at least one export.
  Server(std::vector<Export> exports, const ServerOptions& options);
  // Stops and waits for every thread.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Listens on `where` (port 0 picks one); returns the address bound.
  // Callable more than once, as ListenUnix, before Run().
  Result<server::HostPort> ListenTcp(const server::HostPort& where);
  // Listens on a Unix socket at `path` (a stale socket there is replaced, a
  // live one is an error), mode 0600; the file is removed when the server
  // is destroyed.
  Status ListenUnix(const std::string& path);

  // Accepts and serves connections until Stop(). REQUIRES: Listen* first.
  Status Run();
  // Serves an already connected socket, which the server now owns (tests,
  // socket activation). Works without Run().
  void Adopt(int fd);
  // Makes Run() return (at once if it has not started) and closes every
  // connection; requests being run finish first. Callable from any thread,
  // more than once.
  void Stop();

  // Connections open now (closed ones are counted until reaped by Run()).
  size_t connections();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hloop::p9
