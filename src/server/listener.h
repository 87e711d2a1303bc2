// Listening sockets (TCP and Unix) and an Accept that Wake() interrupts, the
// one way every hloop server takes connections.
//
// A Unix socket file left over by a server that died (nobody accepts on it)
// is replaced; one another server listens on is an error ("address in use"),
// and a path that is not a socket is never removed. Every descriptor is
// CLOEXEC; TCP sockets have SO_REUSEADDR.
//
// Thread safety: Listen*, Accept and Close from one thread (the server's
// accept loop); Wake() from any thread and from a signal handler.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "server/host_port.h"
#include "util/file.h"
#include "util/status.h"

namespace hloop::server {

class Listener {
 public:
  Listener();
  // Close().
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Adds a TCP socket listening on `where` (resolved; the first address that
  // binds). Returns the address bound, numeric, with the port the kernel
  // picked for port 0.
  Result<HostPort> ListenTcp(const HostPort& where);
  // Adds a Unix socket at `path`; `mode` (unless 0) is given to the file.
  // The file is removed by Close().
  Status ListenUnix(const std::string& path, mode_t mode = 0);
  bool empty() const { return sockets_.empty(); }

  // Waits up to `timeout_ms` (-1: no limit) for a connection on any socket.
  // Returns the connected descriptor (CLOEXEC; the caller owns it), -1 if
  // the time passed or accept(2) failed for a passing reason (out of
  // descriptors: logged, and then it waits a little so as not to spin), or
  // Unavailable once Wake() was called, now and every time after.
  Result<int> Accept(int timeout_ms);
  // Makes a blocked Accept() return, and every later one. Async-signal-safe.
  void Wake();

  // Closes every socket and removes the Unix socket files. Idempotent.
  void Close();

 private:
  struct Socket {
    ScopedFd fd;
    std::string unix_path;  // empty for TCP
  };
  std::vector<Socket> sockets_;
  ScopedFd wake_;  // an eventfd, readable once woken
};

}  // namespace hloop::server
