#include "frontends/nbd/nbd_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <thread>

#include "frontends/nbd/nbd_negotiate.h"
#include "frontends/nbd/nbd_transmit.h"
#include "util/log.h"

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

std::string ErrnoText(int err) { return std::strerror(err); }

}  // namespace

struct NbdServer::Connection {
  Connection(uint64_t id_, int fd_) : id(id_), fd(fd_), stream(fd_) {}
  ~Connection() { Close(); }

  // shutdown(2) unless already closed: wakes the reader (SHUT_RD) or fails
  // every later write too (SHUT_RDWR). Any thread.
  void Shutdown(int how) {
    std::lock_guard<std::mutex> lock(fd_mu);
    if (fd >= 0) ::shutdown(fd, how);
  }
  void Close() {
    std::lock_guard<std::mutex> lock(fd_mu);
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  std::string Name() const { return "nbd client " + std::to_string(id); }

  const uint64_t id;
  std::mutex fd_mu;  // guards fd against close racing shutdown (fd reuse)
  int fd;
  FdStream stream;
  Transmission t;  // set by the reader before any request runs

  std::mutex write_mu;  // one reply on the socket at a time
  std::atomic<bool> broken{false};  // a write failed: send nothing more

  std::mutex mu;  // guards the two counts
  std::condition_variable cv;
  unsigned inflight = 0;        // requests handed to the pool, not yet answered
  uint64_t inflight_bytes = 0;  // their Command::cost

  std::atomic<bool> done{false};  // the reader thread has finished
  std::thread thread;
};

struct NbdServer::Task {
  std::shared_ptr<Connection> conn;
  Command command;
};

// Worker threads taking tasks from one FIFO queue shared by every
// connection.
class NbdServer::WorkerPool {
 public:
  WorkerPool(unsigned n, std::function<void(Task&)> fn) : fn_(std::move(fn)) {
    for (unsigned i = 0; i < std::max(1u, n); i++) threads_.emplace_back([this] { Loop(); });
  }
  // Runs what is queued, then joins.
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  void Submit(Task task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    for (;;) {
      Task task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, nothing left
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      fn_(task);
    }
  }

  std::function<void(Task&)> fn_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

NbdServer::NbdServer(disk::BlockDevice& device, NbdServerOptions options)
    : device_(device), options_(std::move(options)) {}

NbdServer::~NbdServer() {
  ReapConnections(true);
  pool_.reset();
  if (listen_fd_ >= 0) {  // listened, never ran
    ::close(listen_fd_);
    if (!options_.socket_path.empty()) ::unlink(options_.socket_path.c_str());
  }
  for (int fd : wake_fd_)
    if (fd >= 0) ::close(fd);
}

Status NbdServer::Listen() {
  if (::pipe2(wake_fd_, O_CLOEXEC | O_NONBLOCK) != 0) return Status::FromErrno(errno, "pipe");
  if (options_.socket_path.empty() == options_.listen.empty())
    return Status::InvalidArgument("give exactly one of a Unix socket path and a TCP address");
  return options_.socket_path.empty() ? ListenTcp() : ListenUnix();
}

Status NbdServer::ListenUnix() {
  const std::string& path = options_.socket_path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return Status::InvalidArgument("socket path too long (at most " + std::to_string(sizeof addr.sun_path - 1) +
                                   " bytes): " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Status::InvalidArgument(path + " exists and is not a socket");
    // A socket file nobody answers on is left over from a server that
    // died: replace it. One that answers belongs to a live server.
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (probe >= 0) ::close(probe);
    if (live) return Status::InvalidArgument(path + " is in use by another server");
    ::unlink(path.c_str());
  }
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Status::FromErrno(errno, "socket");
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Status::FromErrno(errno, "bind " + path);
  if (::listen(listen_fd_, 128) != 0) return Status::FromErrno(errno, "listen " + path);
  std::string abs = path;
  if (abs[0] != '/') {
    char cwd[PATH_MAX];
    if (::getcwd(cwd, sizeof cwd)) abs = std::string(cwd) + "/" + path;
  }
  uri_ = "nbd+unix:///?socket=" + abs;
  return Status::Ok();
}

Status NbdServer::ListenTcp() {
  const std::string& spec = options_.listen;
  size_t colon = spec.rfind(':');
  if (colon == std::string::npos) return Status::InvalidArgument("--listen wants HOST:PORT, got '" + spec + "'");
  std::string host = spec.substr(0, colon), port = spec.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) return Status::InvalidArgument("--listen " + spec + ": " + ::gai_strerror(rc));
  Status last = Status::IOError("no address to listen on for " + spec);
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
      listen_fd_ = fd;
      break;
    }
    last = Status::FromErrno(errno, "listen on " + spec);
    ::close(fd);
  }
  ::freeaddrinfo(res);
  if (listen_fd_ < 0) return last;
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  uint16_t actual = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                                : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  std::string shown = host.empty() ? "0.0.0.0" : host;
  if (shown.find(':') != std::string::npos) shown = "[" + shown + "]";
  uri_ = "nbd://" + shown + ":" + std::to_string(actual);
  return Status::Ok();
}

void NbdServer::Stop() {
  char c = 's';
  ssize_t unused = ::write(wake_fd_[1], &c, 1);  // a full pipe already says it
  (void)unused;
}

void NbdServer::Run() {
  pool_ = std::make_unique<WorkerPool>(options_.threads, [this](Task& t) { RunTask(t); });
  const bool tcp = options_.socket_path.empty();
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_[0], POLLIN, 0}};
    int n = ::poll(fds, 2, 1000);  // wakes now and then to reap finished connections
    ReapConnections(false);
    if (n < 0 && errno != EINTR) {
      LogError("nbd: poll: " + ErrnoText(errno));
      break;
    }
    if (n <= 0) continue;
    if (fds[1].revents) break;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      // Out of descriptors and the like: do not spin on it.
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
        LogWarn("nbd: accept: " + ErrnoText(errno));
        ::usleep(100 * 1000);
      }
      continue;
    }
    if (connections_.size() >= options_.max_connections) {
      LogWarn("nbd: " + std::to_string(connections_.size()) + " connections already; refusing another");
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
  ::close(listen_fd_);
  listen_fd_ = -1;
  if (!options_.socket_path.empty()) ::unlink(options_.socket_path.c_str());
  for (auto& conn : connections_) conn->Shutdown(SHUT_RD);
  ReapConnections(true);
  pool_.reset();
}

void NbdServer::ReapConnections(bool all) {
  auto finished = [all](const std::shared_ptr<Connection>& c) { return all || c->done.load(); };
  for (auto& c : connections_)
    if (finished(c) && c->thread.joinable()) c->thread.join();
  std::erase_if(connections_, finished);
}

// The reader thread of one connection.
void NbdServer::Serve(const std::shared_ptr<Connection>& conn) {
  const std::string name = conn->Name();
  const bool writable = device_.can_write() && !options_.read_only;
  Negotiator negotiator(ExportInfo{options_.export_name, device_.size(), writable});
  Status st = RunHandshake(conn->stream, negotiator);
  if (st.ok()) {
    SetTimeout(conn->fd, SO_RCVTIMEO, 0);  // in transmission a client may idle for ever
    conn->t = negotiator.transmission();
    LogInfo(name + ": connected" + (conn->t.structured ? " (structured replies)" : ""));
    st = ReadRequests(
        conn->stream, conn->t, [&](uint64_t cost) { Admit(*conn, cost); },
        [&](Command&& c) { pool_->Submit(Task{conn, std::move(c)}); });
  }
  if (st.ok() || st.IsUnavailable()) {
    LogInfo(name + ": " + (st.ok() ? std::string("disconnected") : st.message()));
  } else {
    LogWarn(name + ": " + st.message() + "; closing the connection");
  }
  {
    std::unique_lock<std::mutex> lock(conn->mu);
    conn->cv.wait(lock, [&] { return conn->inflight == 0; });
  }
  conn->Close();
  conn->done = true;
}

// Back-pressure: waits until the connection may have one more request of
// `cost` bytes in flight. A request is always admitted when none is in
// flight, so one of any size gets through.
void NbdServer::Admit(Connection& conn, uint64_t cost) {
  std::unique_lock<std::mutex> lock(conn.mu);
  conn.cv.wait(lock, [&] {
    return conn.inflight == 0 ||
           (conn.inflight < options_.max_inflight && conn.inflight_bytes + cost <= options_.max_inflight_bytes);
  });
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
  if (c.check.error != 0 && c.check.error != kEperm)
    LogInfo(conn.Name() + ": " + c.check.message);
  task.command.payload.reset();  // the write is done: free its buffer before sending
  if (!conn.broken) {
    std::lock_guard<std::mutex> lock(conn.write_mu);
    if (!conn.stream.Write(reply.Pieces())) {
      // The client is gone or stopped reading: drop it, which also ends
      // its reader.
      conn.broken = true;
      conn.Shutdown(SHUT_RDWR);
    }
  }
  {
    std::lock_guard<std::mutex> lock(conn.mu);
    conn.inflight--;
    conn.inflight_bytes -= c.cost;
  }
  conn.cv.notify_all();
}

namespace {
std::atomic<NbdServer*> g_server{nullptr};
extern "C" void OnStopSignal(int) {
  if (NbdServer* s = g_server.load()) s->Stop();
}
}  // namespace

Status ServeNbd(disk::BlockDevice& device, const NbdServerOptions& options,
                const std::function<void(const std::string& uri)>& on_ready) {
  NbdServer server(device, options);
  HLOOP_RETURN_IF_ERROR(server.Listen());
  g_server = &server;
  struct sigaction sa{}, old_int{}, old_term{}, old_hup{}, old_pipe{};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  ::sigaction(SIGHUP, &sa, &old_hup);
  struct sigaction ignore{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old_pipe);
  if (on_ready) on_ready(server.uri());
  server.Run();
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::sigaction(SIGHUP, &old_hup, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
  g_server = nullptr;
  return Status::Ok();
}

}  // namespace hloop::nbd
