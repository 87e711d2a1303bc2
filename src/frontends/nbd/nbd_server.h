// NBD front end: serves a BlockDevice as one NBD export on a Unix socket or
// a TCP port, to qemu, nbdcopy, nbdinfo, nbd-client and the like.
//
// Thread model: one thread accepts connections; each connection has a
// reader thread that runs the handshake and then parses requests; a shared
// pool of worker threads executes them on the device and sends each reply
// as soon as it is ready (replies go out of order, one at a time per
// connection under its write mutex). Listening, accepting and the pool are
// the shared server helpers (server/listener.h, server/worker_pool.h). A
// connection has at most
// `max_inflight` requests (and `max_inflight_bytes` of buffers) in the
// pool; beyond that its reader stops reading, so a client that floods
// requests is slowed down, not buffered.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blockdev/block_device.h"
#include "server/listener.h"
#include "server/worker_pool.h"
#include "util/status.h"

namespace hloop::nbd {

struct NbdServerOptions {
  // Where to listen: exactly one of a Unix socket path or "HOST:PORT" (TCP,
  // server::ParseHostPort; port 0 picks a free one, see NbdServer::uri()).
  std::string socket_path;
  std::string listen;
  std::string export_name;                            // shown by LIST and NBD_INFO_NAME
  bool read_only = false;                             // refuse writes even if the device can write
  unsigned threads = 16;                              // worker pool: device requests run at once
  unsigned max_inflight = 64;                         // requests per connection
  uint64_t max_inflight_bytes = uint64_t(256) << 20;  // their buffers, per connection
  unsigned max_connections = 256;                     // more are closed at once
  // Seconds a reply may wait for a client that does not read before its
  // connection is dropped, so a stuck client cannot hold a worker.
  int send_timeout_s = 30;
  // Seconds a new connection has to finish the handshake.
  int handshake_timeout_s = 30;
};

class NbdServer {
 public:
  // `device` must outlive the server.
  NbdServer(BlockDevice& device, NbdServerOptions options);
  ~NbdServer();
  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;

  // Creates and binds the socket. A stale Unix socket file (nobody
  // listening) is replaced; a live one is an error.
  Status Listen();
  // "nbd+unix:///?socket=PATH" or "nbd://HOST:PORT". REQUIRES: Listen().
  const std::string& uri() const { return uri_; }
  // Accepts and serves connections until Stop(), then finishes the requests
  // in flight (those not yet started are answered ESHUTDOWN), closes every
  // connection and removes the socket file. REQUIRES: Listen() succeeded.
  void Run();
  // Makes Run() return (or return at once if it has not started yet).
  // Thread-safe and async-signal-safe (one write(2)).
  void Stop();

 private:
  struct Connection;
  struct Task;

  void Serve(const std::shared_ptr<Connection>& conn);
  void Admit(Connection& conn, uint64_t cost);
  void RunTask(Task& task);
  void ReapConnections(bool all);

  BlockDevice& device_;
  NbdServerOptions options_;
  std::string uri_;
  server::Listener listener_;  // removes the socket file when closed
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> next_id_{1};
  std::unique_ptr<server::WorkerPool> pool_;
  std::vector<std::shared_ptr<Connection>> connections_;  // only Run() touches it
};

}  // namespace hloop::nbd
