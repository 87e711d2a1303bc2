#include "frontends/p9/p9_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <list>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "server/listener.h"
#include "server/worker_pool.h"
#include "util/bytes.h"
#include "util/file.h"
#include "util/log.h"
#include "util/mutex.h"

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

// Its fields after `msg` are guarded by the mutex of the Connection it
// belongs to (the analysis cannot name that mutex here).
struct Request {
  Message msg;
  bool started = false;
  bool cancelled = false;
  std::vector<uint16_t> flushes;  // Tflush tags to answer after the reply
};

// One client. Lives until its reader has finished and the server reaped it;
// workers hold it while they run its requests.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(int fd, const std::vector<Export>* exports, const ServerOptions& o,
             server::WorkerPool* pool)
      : fd_(fd),
        peer_(PeerName(fd)),
        session_(exports, SessionLimits{o.max_msize, o.max_fids}),
        max_requests_(o.max_requests),
        pool_(pool) {}

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
      MutexLock lock(&mu_);
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
      while (!tags_.empty()) cv_.Wait(&mu_);
      closing_ = true;
    }
    cv_.SignalAll();
    writer_.join();
    session_.ClunkAll();
    finished_ = true;
  }

  // Reads requests until the peer goes or breaks the protocol; returns why
  // (empty for an orderly end).
  std::string Serve() {
    for (;;) {
      {
        MutexLock lock(&mu_);
        while (outstanding_ >= max_requests_ && !write_failed_) cv_.Wait(&mu_);
        if (write_failed_) return "";
      }
      uint8_t size_bytes[4];
      if (!ReadFull(fd_.get(), size_bytes, 4)) return "";
      uint32_t size = GetU32(size_bytes);
      uint32_t msize = session_.msize();
      uint32_t limit = msize ? msize : kPreVersionMaxFrame;
      if (size < kHeaderSize || size > limit)
        return "a frame of " + std::to_string(size) + " bytes (limit " + std::to_string(limit) +
               ")";
      std::string frame(size, '\0');
      std::memcpy(frame.data(), size_bytes, 4);
      if (!ReadFull(fd_.get(), frame.data() + 4, size - 4)) return "";
      Message m;
      DecodeError err = Decode(frame, &m);
      if (err != DecodeError::kNone) {
        uint8_t type = PeekHeader(frame).type;
        LogDebug("9p: " + peer_ + ": cannot decode " + TypeName(type) + " (" +
                 std::to_string(size) + " bytes)");
        if (!Reply(m.tag, Rlerror{err == DecodeError::kUnknownType ? uint32_t(EOPNOTSUPP)
                                                                   : uint32_t(EINVAL)}))
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
  bool Reply(uint16_t tag, Body body) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    if (tags_.count(tag)) return false;
    outstanding_++;
    out_.push_back({Frame(tag, std::move(body))});
    cv_.SignalAll();
    return true;
  }

  bool Dispatch(Message m) EXCLUDES(mu_) {
    auto req = std::make_shared<Request>();
    uint16_t tag = m.tag;
    req->msg = std::move(m);
    {
      MutexLock lock(&mu_);
      if (!tags_.emplace(tag, req).second) return false;
      outstanding_++;
    }
    pool_->Submit([self = shared_from_this(), req] { self->Work(*req); });
    return true;
  }

  void Work(Request& req) EXCLUDES(mu_) {
    {
      MutexLock lock(&mu_);
      if (req.cancelled) return;
      req.started = true;
    }
    uint16_t tag = req.msg.tag;
    std::string frame = Frame(tag, session_.Handle(req.msg));
    uint32_t msize = session_.msize();
    if (msize && frame.size() > msize) frame = Frame(tag, Rlerror{EMSGSIZE});
    MutexLock lock(&mu_);
    // Under one lock: the reply goes out before any Rflush for it, and a
    // Tflush that finds the tag gone answers after it.
    tags_.erase(tag);
    out_.push_back({std::move(frame)});
    for (uint16_t f : req.flushes) out_.push_back({Frame(f, Rflush{})});
    SendQueued();
    cv_.SignalAll();
  }

  // Sends queued replies from this thread as far as the socket takes them
  // without blocking, and leaves the rest to the writer thread. A client
  // that waits for each reply (most do: one file operation at a time) then
  // pays no hand-off to the writer; a client that does not read never
  // blocks a worker. One thread sends at a time (sending_), in queue order.
  // Releases mu_ while it sends.
  void SendQueued() REQUIRES(mu_) {
    if (sending_) return;
    sending_ = true;
    while (!out_.empty()) {
      Out o = std::move(out_.front());
      out_.pop_front();
      ssize_t n = -1;
      int err = EPIPE;
      if (!write_failed_) {
        mu_.Unlock();
        do {
          n = ::send(fd_.get(), o.frame.data() + o.sent, o.frame.size() - o.sent,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        err = errno;
        mu_.Lock();
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

  void Flush(uint16_t tag, uint16_t oldtag) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
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
    cv_.SignalAll();
  }

  // Tversion aborts nothing here: it waits for what is in flight, then resets.
  void Version(uint16_t tag, const Tversion& v) EXCLUDES(mu_) {
    {
      MutexLock lock(&mu_);
      while (outstanding_ != 0 && !write_failed_) cv_.Wait(&mu_);
    }
    Rversion r = session_.Version(v);
    MutexLock lock(&mu_);
    outstanding_++;
    out_.push_back({Frame(tag, std::move(r))});
    cv_.SignalAll();
  }

  void WriteLoop() EXCLUDES(mu_) {
    for (;;) {
      Out o;
      {
        MutexLock lock(&mu_);
        while (sending_ || (out_.empty() && !closing_)) cv_.Wait(&mu_);
        if (out_.empty()) return;
        o = std::move(out_.front());
        out_.pop_front();
        sending_ = true;
      }
      bool sent = !write_failed_ && SendFull(fd_.get(), std::string_view(o.frame).substr(o.sent));
      MutexLock lock(&mu_);
      sending_ = false;
      if (!sent && !write_failed_) {
        write_failed_ = true;
        ::shutdown(fd_.get(), SHUT_RDWR);
      }
      outstanding_ -= o.release;
      cv_.SignalAll();
    }
  }

  ScopedFd fd_;
  const std::string peer_;
  Session session_;
  const size_t max_requests_;
  server::WorkerPool* pool_;
  std::thread reader_, writer_;
  std::atomic<bool> finished_{false};

  Mutex mu_;
  CondVar cv_;  // any change below
  // Queued or running.
  std::unordered_map<uint16_t, std::shared_ptr<Request>> tags_ GUARDED_BY(mu_);
  std::deque<Out> out_ GUARDED_BY(mu_);     // replies to send, in order
  size_t outstanding_ GUARDED_BY(mu_) = 0;  // requests read and not yet answered on the wire
  bool closing_ GUARDED_BY(mu_) = false;    // the writer ends once out_ is empty
  bool sending_ GUARDED_BY(mu_) = false;    // a thread is writing out_'s front frame
  std::atomic<bool> write_failed_{false};
};

}  // namespace

struct Server::Impl {
  std::vector<Export> exports;
  ServerOptions options;
  server::WorkerPool pool;
  server::Listener listener;  // removes the Unix socket files when destroyed
  std::atomic<bool> stopping{false};

  Mutex mu;
  std::list<std::shared_ptr<Connection>> conns GUARDED_BY(mu);

  Impl(std::vector<Export> e, const ServerOptions& o)
      : exports(std::move(e)), options(o), pool(o.workers) {}

  void Reap(bool all) EXCLUDES(mu) {
    std::list<std::shared_ptr<Connection>> done;
    {
      MutexLock lock(&mu);
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
}

Result<server::HostPort> Server::ListenTcp(const server::HostPort& where) {
  auto bound = impl_->listener.ListenTcp(where);
  if (!bound.ok()) return bound.status().Annotate("9p");
  return bound;
}

Status Server::ListenUnix(const std::string& path) {
  Status st = impl_->listener.ListenUnix(path, 0600);
  return st.ok() ? st : st.Annotate("9p");
}

void Server::Adopt(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly on Unix sockets
  auto c = std::make_shared<Connection>(fd, &impl_->exports, impl_->options, &impl_->pool);
  {
    MutexLock lock(&impl_->mu);
    if (impl_->stopping) return;  // `c` closes the socket
    impl_->conns.push_back(c);
  }
  c->Start();
}

Status Server::Run() {
  if (impl_->listener.empty()) return Status::InvalidArgument("9p: nothing to listen on");
  for (;;) {
    auto accepted =
        impl_->listener.Accept(1000);  // wakes now and then to reap finished connections
    impl_->Reap(/*all=*/false);
    if (!accepted.ok()) {
      if (accepted.status().IsUnavailable()) break;  // Stop()
      return accepted.status().Annotate("9p");
    }
    if (*accepted >= 0) Adopt(*accepted);
  }
  impl_->Reap(/*all=*/true);
  return Status::Ok();
}

void Server::Stop() {
  std::list<std::shared_ptr<Connection>> conns;
  {
    MutexLock lock(&impl_->mu);
    impl_->stopping = true;
    conns = impl_->conns;
  }
  impl_->listener.Wake();
  for (auto& c : conns) c->Shutdown();
}

size_t Server::connections() {
  MutexLock lock(&impl_->mu);
  return impl_->conns.size();
}

}  // namespace hloop::p9
