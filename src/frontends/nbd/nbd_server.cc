#include "frontends/nbd/nbd_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <thread>

#include "frontends/nbd/nbd_negotiate.h"
#include "frontends/nbd/nbd_transmit.h"
#include "server/host_port.h"
#include "util/log.h"
#include "util/mutex.h"

namespace hloop::nbd {

namespace {

// A Stream over a connected socket. Reads are done by the connection's
// reader thread only; writes by one thread at a time (the connection's
// write mutex).
class FdStream : public Stream {
 public:
  explicit FdStream(int fd) : fd_(fd) {}
  bool ReadFull(void* buf, size_t n) override {
    char* p = static_cast<char*>(buf);
    while (n > 0) {
      ssize_t r = ::recv(fd_, p, n, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;  // end of stream, reset, or the handshake timed out
      p += r;
      n -= size_t(r);
    }
    return true;
  }
  bool Write(const std::vector<std::string_view>& pieces) override {
    std::vector<iovec> iov;
    iov.reserve(pieces.size());
    for (std::string_view p : pieces)
      if (!p.empty()) iov.push_back(iovec{const_cast<char*>(p.data()), p.size()});
    size_t first = 0;
    while (first < iov.size()) {
      msghdr msg{};
      msg.msg_iov = &iov[first];
      msg.msg_iovlen = std::min<size_t>(iov.size() - first, IOV_MAX);
      // MSG_NOSIGNAL: a client that went away is an error here, not SIGPIPE.
      ssize_t r = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return false;  // includes the send timeout (EAGAIN)
      size_t sent = size_t(r);
      while (first < iov.size() && sent >= iov[first].iov_len) sent -= iov[first++].iov_len;
      if (sent > 0) {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + sent;
        iov[first].iov_len -= sent;
      }
    }
    return true;
  }
  using Stream::Write;

 private:
  int fd_;
};

void SetTimeout(int fd, int option, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
}

}  // namespace

// Lock order: write_mu before fd_mu (a failed reply shuts the socket down
// while holding write_mu); mu is never held with another.
struct NbdServer::Connection {
  Connection(uint64_t id_, int fd_) : id(id_), fd(fd_), stream(fd_) {}
  ~Connection() { Close(); }

  // shutdown(2) unless already closed: wakes the reader (SHUT_RD) or fails
  // every later write too (SHUT_RDWR). Any thread.
  void Shutdown(int how) EXCLUDES(fd_mu) {
    MutexLock lock(&fd_mu);
    if (fd >= 0) ::shutdown(fd, how);
  }
  void Close() EXCLUDES(fd_mu) {
    MutexLock lock(&fd_mu);
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  void SetReceiveTimeout(int seconds) EXCLUDES(fd_mu) {
    MutexLock lock(&fd_mu);
    if (fd >= 0) SetTimeout(fd, SO_RCVTIMEO, seconds);
  }
  std::string Name() const { return "nbd client " + std::to_string(id); }

  const uint64_t id;
  Mutex fd_mu;  // guards fd against close racing shutdown (fd reuse)
  int fd GUARDED_BY(fd_mu);
  FdStream stream;
  Transmission t;  // set by the reader before any request runs

  Mutex write_mu ACQUIRED_BEFORE(fd_mu);  // one reply on the socket at a time
  std::atomic<bool> broken{false};        // a write failed: send nothing more

  Mutex mu;
  CondVar cv;                                  // a request was answered
  unsigned inflight GUARDED_BY(mu) = 0;        // requests handed to the pool, not yet answered
  uint64_t inflight_bytes GUARDED_BY(mu) = 0;  // their Command::cost

  std::atomic<bool> done{false};  // the reader thread has finished
  std::thread thread;
};

struct NbdServer::Task {
  std::shared_ptr<Connection> conn;
  Command command;
};

NbdServer::NbdServer(BlockDevice& device, NbdServerOptions options)
    : device_(device), options_(std::move(options)) {}

NbdServer::~NbdServer() {
  ReapConnections(true);
  pool_.reset();
}

Status NbdServer::Listen() {
  if (options_.socket_path.empty() == options_.listen.empty())
    return Status::InvalidArgument("give exactly one of a Unix socket path and a TCP address");
  if (!options_.socket_path.empty()) {
    const std::string& path = options_.socket_path;
    HLOOP_RETURN_IF_ERROR(listener_.ListenUnix(path));
    std::string abs = path;
    if (abs[0] != '/') {
      char cwd[PATH_MAX];
      if (::getcwd(cwd, sizeof cwd)) abs = std::string(cwd) + "/" + path;
    }
    uri_ = "nbd+unix:///?socket=" + abs;
    return Status::Ok();
  }
  auto where = server::ParseHostPort(options_.listen);
  if (!where.ok()) return where.status();
  auto bound = listener_.ListenTcp(*where);
  if (!bound.ok()) return bound.status();
  uri_ = "nbd://" + bound->ToString();
  return Status::Ok();
}

void NbdServer::Stop() { listener_.Wake(); }

void NbdServer::Run() {
  pool_ = std::make_unique<server::WorkerPool>(options_.threads);
  const bool tcp = options_.socket_path.empty();
  for (;;) {
    auto accepted = listener_.Accept(1000);  // wakes now and then to reap finished connections
    ReapConnections(false);
    if (!accepted.ok()) {
      if (!accepted.status().IsUnavailable()) LogError("nbd: " + accepted.status().ToString());
      break;
    }
    int fd = *accepted;
    if (fd < 0) continue;
    if (connections_.size() >= options_.max_connections) {
      LogWarn("nbd: " + std::to_string(connections_.size()) +
              " connections already; refusing another");
      ::close(fd);
      continue;
    }
    if (tcp) {
      int one = 1;  // replies are written whole: no reason to wait for more
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    SetTimeout(fd, SO_SNDTIMEO, options_.send_timeout_s);
    SetTimeout(fd, SO_RCVTIMEO, options_.handshake_timeout_s);
    auto conn = std::make_shared<Connection>(next_id_++, fd);
    connections_.push_back(conn);
    conn->thread = std::thread([this, conn] { Serve(conn); });
  }
  // Shutting down: no new connections; readers stop reading (their next
  // read sees the end of the stream), wait for their requests in flight
  // and close.
  stopping_ = true;
  listener_.Close();
  for (auto& conn : connections_) conn->Shutdown(SHUT_RD);
  ReapConnections(true);
  pool_.reset();
}

void NbdServer::ReapConnections(bool all) {
  // `done` is read once per connection: a reader may finish at any moment,
  // and one erased without being joined would destroy a joinable
  // std::thread (std::terminate).
  for (auto it = connections_.begin(); it != connections_.end();) {
    Connection& c = **it;
    if (!all && !c.done) {
      ++it;
      continue;
    }
    if (c.thread.joinable()) c.thread.join();
    it = connections_.erase(it);
  }
}

// The reader thread of one connection.
void NbdServer::Serve(const std::shared_ptr<Connection>& conn) {
  const std::string name = conn->Name();
  const bool writable = device_.can_write() && !options_.read_only;
  Negotiator negotiator(ExportInfo{options_.export_name, device_.size(), writable});
  Status st = RunHandshake(conn->stream, negotiator);
  if (st.ok()) {
    conn->SetReceiveTimeout(0);  // in transmission a client may idle for ever
    conn->t = negotiator.transmission();
    LogInfo(name + ": connected" + (conn->t.structured ? " (structured replies)" : ""));
    st = ReadRequests(
        conn->stream, conn->t, [&](uint64_t cost) { Admit(*conn, cost); },
        [&](Command&& c) {
          auto task = std::make_shared<Task>(Task{conn, std::move(c)});
          pool_->Submit([this, task] { RunTask(*task); });
        });
  }
  if (st.ok() || st.IsUnavailable()) {
    LogInfo(name + ": " + (st.ok() ? std::string("disconnected") : st.message()));
  } else {
    LogWarn(name + ": " + st.message() + "; closing the connection");
  }
  {
    MutexLock lock(&conn->mu);
    while (conn->inflight != 0) conn->cv.Wait(&conn->mu);
  }
  conn->Close();
  conn->done = true;
}

// Back-pressure: waits until the connection may have one more request of
// `cost` bytes in flight. A request is always admitted when none is in
// flight, so one of any size gets through.
void NbdServer::Admit(Connection& conn, uint64_t cost) {
  MutexLock lock(&conn.mu);
  while (conn.inflight != 0 && (conn.inflight >= options_.max_inflight ||
                                conn.inflight_bytes + cost > options_.max_inflight_bytes))
    conn.cv.Wait(&conn.mu);
  conn.inflight++;
  conn.inflight_bytes += cost;
}

// A worker: runs one request and sends its reply.
void NbdServer::RunTask(Task& task) {
  Connection& conn = *task.conn;
  const Command& c = task.command;
  // Shutting down: what has not started yet is failed, as the spec suggests.
  Reply reply = stopping_ ? ErrorReply(conn.t, c.request, kEshutdown, "the server is shutting down")
                          : Execute(device_, conn.t, c);
  if (c.check.error != 0 && c.check.error != kEperm) LogInfo(conn.Name() + ": " + c.check.message);
  task.command.payload.reset();  // the write is done: free its buffer before sending
  if (!conn.broken) {
    MutexLock lock(&conn.write_mu);
    if (!conn.stream.Write(reply.Pieces())) {
      // The client is gone or stopped reading: drop it, which also ends
      // its reader.
      conn.broken = true;
      conn.Shutdown(SHUT_RDWR);
    }
  }
  {
    MutexLock lock(&conn.mu);
    conn.inflight--;
    conn.inflight_bytes -= c.cost;
  }
  conn.cv.SignalAll();
}

}  // namespace hloop::nbd
