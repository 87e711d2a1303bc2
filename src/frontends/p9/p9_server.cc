#include "frontends/p9/p9_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <list>
#include <string_view>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "util/bytes.h"
#include "util/file.h"
#include "util/log.h"

namespace hloop::p9 {

namespace {

// Frames before Tversion are small; this bounds what an unnegotiated peer
// can make the reader allocate.
constexpr uint32_t kPreVersionMaxFrame = 8192;

bool ReadFull(int fd, void* buf, size_t len) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = ::recv(fd, p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= size_t(n);
  }
  return true;
}

bool SendFull(int fd, std::string_view data) {
  const char* p = data.data();
  size_t len = data.size();
  while (len > 0) {
    ssize_t n = ::send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= size_t(n);
  }
  return true;
}

// "127.0.0.1:40000", or "unix" for a Unix socket: for log lines.
std::string PeerName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char addr[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
    return std::string(addr) + ":" + std::to_string(ntohs(s4->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
    return "[" + std::string(addr) + "]:" + std::to_string(ntohs(s6->sin6_port));
  }
  return "unix";
}

std::string Frame(uint16_t tag, Body body) {
  std::string out;
  if (!Encode(Message{tag, std::move(body)}, &out)) Encode(Message{tag, Rlerror{EMSGSIZE}}, &out);
  return out;
}

// A fixed set of threads running queued tasks in order.
class WorkerPool {
 public:
  explicit WorkerPool(unsigned n) {
    for (unsigned i = 0; i < std::max(1u, n); i++) threads_.emplace_back([this] { Loop(); });
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void Submit(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;  // stopping, and nothing left
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mu_)
  bool stop_ = false;                         // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

struct Request {
  Message msg;
  bool started = false;             // GUARDED_BY(Connection::mu)
  bool cancelled = false;           // GUARDED_BY(Connection::mu)
  std::vector<uint16_t> flushes;    // Tflush tags to answer after the reply
};

// One client. Lives until its reader has finished and the server reaped it;
// workers hold it while they run its requests.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(int fd, const std::vector<Export>* exports, const ServerOptions& o, WorkerPool* pool)
      : fd_(fd), peer_(PeerName(fd)), session_(exports, SessionLimits{o.max_msize, o.max_fids}),
        max_requests_(o.max_requests), pool_(pool) {}

  void Start() {
    LogDebug("9p: " + peer_ + ": connected");
    auto self = shared_from_this();
    writer_ = std::thread([self] { self->WriteLoop(); });
    reader_ = std::thread([self] { self->ReadLoop(); });
  }
  // Unblocks both threads; the reader then winds the connection down.
  void Shutdown() { ::shutdown(fd_.get(), SHUT_RDWR); }
  bool finished() const { return finished_; }
  void Join() {
    if (reader_.joinable()) reader_.join();
  }

 private:
  struct Out {
    std::string frame;
    size_t release = 1;  // outstanding requests this frame completes
    size_t sent = 0;     // bytes of it already on the wire
  };

  void ReadLoop() {
    std::string why = Serve();
    if (!why.empty())
      LogWarn("9p: " + peer_ + ": closing the connection: " + why);
    else
      LogDebug("9p: " + peer_ + ": disconnected");
    Shutdown();
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Requests not started are dropped; running ones finish (their replies
      // go nowhere) so no worker touches the session after this.
      for (auto it = tags_.begin(); it != tags_.end();) {
        if (!it->second->started) {
          it->second->cancelled = true;
          outstanding_--;
          it = tags_.erase(it);
        } else {
          ++it;
        }
      }
      cv_.wait(lock, [&] { return tags_.empty(); });
      closing_ = true;
    }
    cv_.notify_all();
    writer_.join();
    session_.ClunkAll();
    finished_ = true;
  }

  // Reads requests until the peer goes or breaks the protocol; returns why
  // (empty for an orderly end).
  std::string Serve() {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return outstanding_ < max_requests_ || write_failed_; });
        if (write_failed_) return "";
      }
      uint8_t size_bytes[4];
      if (!ReadFull(fd_.get(), size_bytes, 4)) return "";
      uint32_t size = GetU32(size_bytes);
      uint32_t msize = session_.msize();
      uint32_t limit = msize ? msize : kPreVersionMaxFrame;
      if (size < kHeaderSize || size > limit)
        return "a frame of " + std::to_string(size) + " bytes (limit " + std::to_string(limit) + ")";
      std::string frame(size, '\0');
      std::memcpy(frame.data(), size_bytes, 4);
      if (!ReadFull(fd_.get(), frame.data() + 4, size - 4)) return "";
      Message m;
      DecodeError err = Decode(frame, &m);
      if (err != DecodeError::kNone) {
        uint8_t type = PeekHeader(frame).type;
        LogDebug("9p: " + peer_ + ": cannot decode " + TypeName(type) + " (" + std::to_string(size) + " bytes)");
        if (!Reply(m.tag, Rlerror{err == DecodeError::kUnknownType ? uint32_t(EOPNOTSUPP) : uint32_t(EINVAL)}))
          return "a request reused tag " + std::to_string(m.tag) + " while it was in flight";
        continue;
      }
      if (auto* v = std::get_if<Tversion>(&m.body)) {
        Version(m.tag, *v);
      } else if (auto* f = std::get_if<Tflush>(&m.body)) {
        Flush(m.tag, f->oldtag);
      } else if (!Dispatch(std::move(m))) {
        return "a request reused tag " + std::to_string(m.tag) + " while it was in flight";
      }
    }
  }

  // Answers at once (a request that never reaches a worker). False if the tag
  // is in flight: the reply could not be told apart.
  bool Reply(uint16_t tag, Body body) {
    std::lock_guard<std::mutex> lock(mu_);
    if (tags_.count(tag)) return false;
    outstanding_++;
    out_.push_back({Frame(tag, std::move(body))});
    cv_.notify_all();
    return true;
  }

  bool Dispatch(Message m) {
    auto req = std::make_shared<Request>();
    uint16_t tag = m.tag;
    req->msg = std::move(m);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!tags_.emplace(tag, req).second) return false;
      outstanding_++;
    }
    pool_->Submit([self = shared_from_this(), req] { self->Work(*req); });
    return true;
  }

  void Work(Request& req) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (req.cancelled) return;
      req.started = true;
    }
    uint16_t tag = req.msg.tag;
    std::string frame = Frame(tag, session_.Handle(req.msg));
    uint32_t msize = session_.msize();
    if (msize && frame.size() > msize) frame = Frame(tag, Rlerror{EMSGSIZE});
    std::unique_lock<std::mutex> lock(mu_);
    // Under one lock: the reply goes out before any Rflush for it, and a
    // Tflush that finds the tag gone answers after it.
    tags_.erase(tag);
    out_.push_back({std::move(frame)});
    for (uint16_t f : req.flushes) out_.push_back({Frame(f, Rflush{})});
    SendQueued(lock);
    cv_.notify_all();
  }

  // Sends queued replies from this thread as far as the socket takes them
  // without blocking, and leaves the rest to the writer thread. A client
  // that waits for each reply (most do: one file operation at a time) then
  // pays no hand-off to the writer; a client that does not read never
  // blocks a worker. One thread sends at a time (sending_), in queue order.
  void SendQueued(std::unique_lock<std::mutex>& lock) {
    if (sending_) return;
    sending_ = true;
    while (!out_.empty()) {
      Out o = std::move(out_.front());
      out_.pop_front();
      ssize_t n = -1;
      int err = EPIPE;
      if (!write_failed_) {
        lock.unlock();
        do {
          n = ::send(fd_.get(), o.frame.data() + o.sent, o.frame.size() - o.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        err = errno;
        lock.lock();
      }
      if (n > 0) o.sent += size_t(n);
      if (o.sent < o.frame.size() && (n > 0 || err == EAGAIN || err == EWOULDBLOCK)) {
        out_.push_front(std::move(o));  // the socket is full: the writer waits for room
        break;
      }
      if (o.sent < o.frame.size() && !write_failed_) {
        write_failed_ = true;
        ::shutdown(fd_.get(), SHUT_RDWR);
      }
      outstanding_ -= o.release;
    }
    sending_ = false;
  }

  void Flush(uint16_t tag, uint16_t oldtag) {
    std::lock_guard<std::mutex> lock(mu_);
    outstanding_++;
    auto it = tags_.find(oldtag);
    if (it != tags_.end() && it->second->started) {
      it->second->flushes.push_back(tag);  // answered after the reply
      return;
    }
    if (it != tags_.end()) {  // still queued: drop it
      it->second->cancelled = true;
      tags_.erase(it);
      outstanding_--;
    }
    out_.push_back({Frame(tag, Rflush{})});
    cv_.notify_all();
  }

  // Tversion aborts nothing here: it waits for what is in flight, then resets.
  void Version(uint16_t tag, const Tversion& v) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return outstanding_ == 0 || write_failed_; });
    }
    Rversion r = session_.Version(v);
    std::lock_guard<std::mutex> lock(mu_);
    outstanding_++;
    out_.push_back({Frame(tag, std::move(r))});
    cv_.notify_all();
  }

  void WriteLoop() {
    for (;;) {
      Out o;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return !sending_ && (!out_.empty() || closing_); });
        if (out_.empty()) return;
        o = std::move(out_.front());
        out_.pop_front();
        sending_ = true;
      }
      bool sent = !write_failed_ && SendFull(fd_.get(), std::string_view(o.frame).substr(o.sent));
      std::lock_guard<std::mutex> lock(mu_);
      sending_ = false;
      if (!sent && !write_failed_) {
        write_failed_ = true;
        ::shutdown(fd_.get(), SHUT_RDWR);
      }
      outstanding_ -= o.release;
      cv_.notify_all();
    }
  }

  ScopedFd fd_;
  const std::string peer_;
  Session session_;
  const size_t max_requests_;
  WorkerPool* pool_;
  std::thread reader_, writer_;
  std::atomic<bool> finished_{false};

  std::mutex mu_;
  std::condition_variable cv_;  // any change below
  std::unordered_map<uint16_t, std::shared_ptr<Request>> tags_;  // GUARDED_BY(mu_): queued or running
  std::deque<Out> out_;         // GUARDED_BY(mu_): replies to send, in order
  size_t outstanding_ = 0;      // GUARDED_BY(mu_): requests read and not yet answered on the wire
  bool closing_ = false;        // GUARDED_BY(mu_): the writer ends once out_ is empty
  bool sending_ = false;        // GUARDED_BY(mu_): a thread is writing out_'s front frame
  std::atomic<bool> write_failed_{false};
};

}  // namespace

struct Server::Impl {
  std::vector<Export> exports;
  ServerOptions options;
  WorkerPool pool;
  std::vector<ScopedFd> listeners;
  std::vector<std::string> unix_paths;
  ScopedFd wake{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  std::atomic<bool> stopping{false};

  std::mutex mu;
  std::list<std::shared_ptr<Connection>> conns;  // GUARDED_BY(mu)

  Impl(std::vector<Export> e, const ServerOptions& o)
      : exports(std::move(e)), options(o), pool(o.workers) {}

  void Reap(bool all) {
    std::list<std::shared_ptr<Connection>> done;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto it = conns.begin(); it != conns.end();) {
        if (all || (*it)->finished()) {
          done.push_back(std::move(*it));
          it = conns.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& c : done) {
      c->Shutdown();
      c->Join();
    }
  }
};

Server::Server(std::vector<Export> exports, const ServerOptions& options)
    : impl_(std::make_unique<Impl>(std::move(exports), options)) {}

Server::~Server() {
  Stop();
  impl_->Reap(/*all=*/true);
  for (const std::string& p : impl_->unix_paths) ::unlink(p.c_str());
}

Result<std::string> Server::ListenTcp(const std::string& host, int port) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) return Status::InvalidArgument("9p: " + host + ": " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
  ScopedFd fd(::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno(errno, "9p: socket");
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  std::string where = host + ":" + service;
  if (::bind(fd.get(), res->ai_addr, res->ai_addrlen) != 0) return Status::FromErrno(errno, "9p: bind " + where);
  if (::listen(fd.get(), 64) != 0) return Status::FromErrno(errno, "9p: listen " + where);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  char addr[INET6_ADDRSTRLEN] = "";
  int bound = 0;
  if (ss.ss_family == AF_INET6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
    bound = ntohs(s6->sin6_port);
    impl_->listeners.push_back(std::move(fd));
    return "[" + std::string(addr) + "]:" + std::to_string(bound);
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
  ::inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
  bound = ntohs(s4->sin_port);
  impl_->listeners.push_back(std::move(fd));
  return std::string(addr) + ":" + std::to_string(bound);
}

Status Server::ListenUnix(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) return Status::InvalidArgument("9p: socket path too long: " + path);
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Status::InvalidArgument("9p: " + path + " exists and is not a socket");
    ::unlink(path.c_str());
  }
  ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno(errno, "9p: socket");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return Status::FromErrno(errno, "9p: bind " + path);
  impl_->unix_paths.push_back(path);
  if (::chmod(path.c_str(), 0600) != 0) return Status::FromErrno(errno, "9p: chmod " + path);
  if (::listen(fd.get(), 64) != 0) return Status::FromErrno(errno, "9p: listen " + path);
  impl_->listeners.push_back(std::move(fd));
  return Status::Ok();
}

void Server::Adopt(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly on Unix sockets
  auto c = std::make_shared<Connection>(fd, &impl_->exports, impl_->options, &impl_->pool);
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopping) return;  // `c` closes the socket
    impl_->conns.push_back(c);
  }
  c->Start();
}

Status Server::Run() {
  if (impl_->listeners.empty()) return Status::InvalidArgument("9p: nothing to listen on");
  std::vector<pollfd> fds;
  fds.push_back({impl_->wake.get(), POLLIN, 0});
  for (const ScopedFd& l : impl_->listeners) fds.push_back({l.get(), POLLIN, 0});
  while (!impl_->stopping) {
    int n = ::poll(fds.data(), fds.size(), 1000);
    impl_->Reap(/*all=*/false);
    if (n < 0 && errno != EINTR) return Status::FromErrno(errno, "9p: poll");
    for (size_t i = 1; n > 0 && i < fds.size(); i++) {
      if (!(fds[i].revents & POLLIN)) continue;
      int c = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        Adopt(c);
      } else if (errno == EMFILE || errno == ENFILE) {
        LogWarn("9p: accept: out of file descriptors");
        ::usleep(100000);
      }
    }
  }
  impl_->Reap(/*all=*/true);
  return Status::Ok();
}

void Server::Stop() {
  std::list<std::shared_ptr<Connection>> conns;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    conns = impl_->conns;
  }
  uint64_t one = 1;
  (void)!::write(impl_->wake.get(), &one, sizeof one);
  for (auto& c : conns) c->Shutdown();
}

size_t Server::connections() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->conns.size();
}

}  // namespace hloop::p9
