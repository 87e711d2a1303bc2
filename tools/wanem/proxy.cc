#include "proxy.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>

#include "fault_plan.h"
#include "server/host_port.h"

namespace hloop::wanem {

namespace {

constexpr Micros kForever = INT64_MAX;
constexpr uint64_t kBacklogBytes = 64 << 10;  // link queue before reads stop
constexpr size_t kMaxRead = 64 << 10;

// epoll tags for the two sockets that are not connection endpoints.
char kListenTag, kSignalTag;

std::string ErrnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

// Resolves "HOST:PORT" (or "[V6]:PORT", hloop::server::ParseHostPort) to
// the first address getaddrinfo gives. Returns an error message or "".
std::string Resolve(const std::string& hostport, sockaddr_storage* addr, socklen_t* len) {
  auto where = hloop::server::ParseHostPort(hostport);
  if (!where.ok()) return where.status().message();
  std::string port = std::to_string(where->port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc =
      getaddrinfo(where->host.empty() ? nullptr : where->host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) return hostport + ": " + gai_strerror(rc);
  std::memcpy(addr, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return "";
}

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

Micros NowMicros() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return Micros(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

// One direction of the emulated link, shared by all connections: a FIFO
// serializer at `rate` bytes/s (0: infinitely fast).
struct Link {
  uint64_t rate = 0;
  double free_at = 0;     // µs when the last queued byte has been sent
  double backlog_us = 0;  // reads stop while the queue is longer than this
  size_t read_size = kMaxRead;

  explicit Link(uint64_t r) : rate(r) {
    if (rate == 0) return;
    backlog_us = double(kBacklogBytes) * 1e6 / double(rate);
    // About 10 ms of transmit time per read, so segments interleave finely.
    read_size = std::clamp<size_t>(rate / 100, 1024, kMaxRead);
  }
  // When `n` bytes offered at `now` have left the link.
  Micros Depart(size_t n, Micros now) {
    if (rate == 0) return now;
    free_at = std::max(free_at, double(now)) + double(n) * 1e6 / double(rate);
    return Micros(std::ceil(free_at));
  }
  bool Backlogged(Micros now) const { return rate != 0 && free_at > double(now) + backlog_us; }
  Micros Unblocks() const { return Micros(std::ceil(free_at - backlog_us)); }
};

struct Segment {
  Micros release;  // not written before this time
  std::vector<char> data;
  size_t off = 0;  // bytes of `data` already written
};

// One direction of one connection.
struct Pipe {
  std::deque<Segment> queue;
  uint64_t held = 0;     // read from the sender, not yet written
  uint64_t read = 0;     // total read from the sender
  uint64_t written = 0;  // total written to the receiver
  bool eof = false;      // the sender shut down its write side
  Micros eof_release = 0;
  bool shut = false;  // we shut down the receiver's write side
};

// One socket of a connection as the loop sees it.
struct Endpoint {
  Conn* conn = nullptr;
  bool is_client = false;
  int fd = -1;
  uint32_t events = 0;    // registered with epoll (0: not registered)
  bool readable = false;  // may have data: set by epoll, cleared by EAGAIN
  bool blocked = false;   // send hit EAGAIN, or connect() in progress
  bool error = false;     // EPOLLERR seen
};

struct Conn {
  uint64_t id = 0;
  Micros open_at = 0;     // client bytes are read from then on (t0 + RTT)
  Micros connect_at = 0;  // upstream connect() then (t0 + 1.5 RTT)
  Endpoint client, server;
  bool upstream_started = false, connected = false;
  Pipe up, down;  // client->server, server->client
  FaultPlan faults;
  Micros stall_until = 0;  // server->client writes wait until then
  bool dead = false;
};

Proxy::Proxy(Options options)
    : opt_(std::move(options)),
      up_(std::make_unique<Link>(opt_.rate)),
      down_(std::make_unique<Link>(opt_.rate)) {}

Proxy::~Proxy() {
  for (auto& c : conns_) Close(*c, false);
  if (listen_fd_ >= 0) close(listen_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

std::string Proxy::Listen(std::string* bound) {
  sockaddr_storage up{}, addr{};
  socklen_t up_len = 0, len = 0;
  std::string err = Resolve(opt_.connect, &up, &up_len);
  if (err.empty()) err = Resolve(opt_.listen, &addr, &len);
  if (!err.empty()) return err;
  upstream_addr_.assign(reinterpret_cast<char*>(&up), reinterpret_cast<char*>(&up) + up_len);
  upstream_addr_len_ = up_len;

  listen_fd_ = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return ErrnoText("socket");
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0)
    return ErrnoText("bind " + opt_.listen);
  if (listen(listen_fd_, 1024) != 0) return ErrnoText("listen " + opt_.listen);
  len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (addr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
    *bound = std::string(host) + ":" + std::to_string(port);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
    *bound = "[" + std::string(host) + "]:" + std::to_string(port);
  }

  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return ErrnoText("epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &kListenTag;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) return ErrnoText("epoll_ctl");
  return "";
}

std::string Proxy::Run(int signal_fd) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &kSignalTag;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, signal_fd, &ev) != 0)
    return ErrnoText("epoll_ctl signalfd");
  epoll_event events[256];
  bool stop = false;
  while (!stop) {
    Micros now = NowMicros();
    Micros deadline = NextDeadline(now);
    // Round up: waking early would only spin until the deadline.
    int timeout_ms = -1;
    if (deadline != kForever)
      timeout_ms = int(std::clamp<Micros>((deadline - now + 999) / 1000, 0, 60000));
    int n = epoll_wait(epoll_fd_, events, 256, timeout_ms);
    if (n < 0 && errno != EINTR) return ErrnoText("epoll_wait");
    now = NowMicros();
    for (int i = 0; i < n; ++i) {
      void* tag = events[i].data.ptr;
      uint32_t what = events[i].events;
      if (tag == &kListenTag) {
        AcceptAll(now);
      } else if (tag == &kSignalTag) {
        signalfd_siginfo si;
        while (read(signal_fd, &si, sizeof si) == ssize_t(sizeof si)) {
          if (si.ssi_signo == SIGUSR1)
            DumpStats();
          else
            stop = true;
        }
      } else {
        auto* e = static_cast<Endpoint*>(tag);
        if (what & (EPOLLIN | EPOLLHUP)) e->readable = true;
        if (what & (EPOLLOUT | EPOLLHUP)) e->blocked = false;
        if (what & EPOLLERR) e->error = true;
      }
    }
    // Start at a different connection each time: with a shared --rate, the
    // first connections pumped get the link, so this takes turns.
    for (size_t i = 0, count = conns_.size(); i < count; ++i)
      Pump(*conns_[(i + round_robin_) % count], now);
    round_robin_++;
    std::erase_if(conns_, [](const auto& c) { return c->dead; });
  }
  DumpStats();  // "active" counts the connections open at the signal
  for (auto& c : conns_) Close(*c, false);
  conns_.clear();
  return "";
}

void Proxy::AcceptAll(Micros now) {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
        std::fprintf(stderr, "hloop-wanem: accept: %s\n", std::strerror(errno));
      // Out of descriptors: the listening socket stays readable, so back
      // off instead of spinning until a connection closes.
      if (errno == EMFILE || errno == ENFILE) usleep(10000);
      return;
    }
    SetNoDelay(fd);
    auto c = std::make_unique<Conn>();
    c->id = next_conn_id_++;
    c->open_at = now + opt_.rtt;
    c->connect_at = now + opt_.rtt + opt_.rtt / 2;
    c->client = {c.get(), true, fd};
    c->server = {c.get(), false, -1};
    c->faults = FaultPlan::Draw(opt_.seed, c->id, opt_.reset_prob, opt_.stall_prob, opt_.flip_prob,
                                opt_.fault_bytes);
    stats_.connections++;
    conns_.push_back(std::move(c));
  }
}

void Proxy::StartUpstream(Conn& c) {
  c.upstream_started = true;
  const auto* addr = reinterpret_cast<const sockaddr*>(upstream_addr_.data());
  int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    SetNoDelay(fd);
    c.server.fd = fd;
    if (connect(fd, addr, upstream_addr_len_) == 0) {
      c.connected = true;
      return;
    }
    if (errno == EINPROGRESS) {
      c.server.blocked = true;  // until EPOLLOUT says the connect finished
      return;
    }
  }
  std::fprintf(stderr, "hloop-wanem: connect %s: %s\n", opt_.connect.c_str(), std::strerror(errno));
  stats_.upstream_failures++;
  Close(c, true);
}

void Proxy::Close(Conn& c, bool reset) {
  for (Endpoint* e : {&c.client, &c.server}) {
    if (e->fd < 0) continue;
    if (reset) {
      linger l{1, 0};  // close() then sends RST instead of FIN
      setsockopt(e->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(e->fd);  // also drops it from the epoll set
    e->fd = -1;
    e->events = 0;
  }
  c.dead = true;
}

bool Proxy::CanRead(const Conn& c, bool from_client, Micros now) const {
  const Pipe& p = from_client ? c.up : c.down;
  const Endpoint& e = from_client ? c.client : c.server;
  if (e.fd < 0 || p.eof || p.held >= opt_.window) return false;
  if (from_client ? now < c.open_at : !c.connected) return false;
  return !(from_client ? up_ : down_)->Backlogged(now);
}

void Proxy::ReadSide(Conn& c, bool from_client, Micros now) {
  Endpoint& e = from_client ? c.client : c.server;
  Pipe& p = from_client ? c.up : c.down;
  Link& link = from_client ? *up_ : *down_;
  while (e.readable && CanRead(c, from_client, now)) {
    std::vector<char> buf(std::min<uint64_t>(link.read_size, opt_.window - p.held));
    ssize_t r = recv(e.fd, buf.data(), buf.size(), 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        e.readable = false;
      else
        Close(c, true);  // e.g. ECONNRESET: pass the reset on
      return;
    }
    if (r == 0) {
      p.eof = true;
      p.eof_release = now + opt_.rtt / 2;
      return;
    }
    buf.resize(size_t(r));
    uint64_t flip = c.faults.flip_at;
    if (!from_client && flip >= p.read && flip < p.read + uint64_t(r)) {
      buf[flip - p.read] ^= char(c.faults.flip_xor);
      stats_.flips++;
    }
    p.read += uint64_t(r);
    p.held += uint64_t(r);
    p.queue.push_back({link.Depart(size_t(r), now) + opt_.rtt / 2, std::move(buf)});
    if (link.rate != 0) return;  // one segment per turn on a shared link
  }
}

void Proxy::WriteSide(Conn& c, bool to_client, Micros now) {
  Endpoint& e = to_client ? c.client : c.server;
  Pipe& p = to_client ? c.down : c.up;
  if (!to_client && !c.connected) return;
  FaultPlan& f = c.faults;
  while (!e.blocked && !p.queue.empty() && p.queue.front().release <= now) {
    Segment& s = p.queue.front();
    size_t n = s.data.size() - s.off;
    if (to_client) {
      if (p.written == f.reset_at) {
        stats_.resets++;
        Close(c, true);
        return;
      }
      if (p.written == f.stall_at) {
        f.stall_at = FaultPlan::kNever;
        stats_.stalls++;
        c.stall_until = opt_.stall > 0 ? now + opt_.stall : kForever;
      }
      if (now < c.stall_until) return;
      // Stop exactly at a fault offset, so the check above sees it.
      for (uint64_t at : {f.reset_at, f.stall_at})
        if (at > p.written) n = size_t(std::min<uint64_t>(n, at - p.written));
    }
    ssize_t w = send(e.fd, s.data.data() + s.off, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        e.blocked = true;
      else
        Close(c, true);  // EPIPE, ECONNRESET: the receiver is gone
      return;
    }
    s.off += size_t(w);
    p.written += uint64_t(w);
    p.held -= uint64_t(w);
    (to_client ? stats_.bytes_server_to_client : stats_.bytes_client_to_server) += uint64_t(w);
    if (s.off == s.data.size()) p.queue.pop_front();
  }
  if (p.eof && !p.shut && p.queue.empty() && now >= p.eof_release) {
    shutdown(e.fd, SHUT_WR);
    p.shut = true;
  }
}

void Proxy::Pump(Conn& c, Micros now) {
  if (c.dead) return;
  if (!c.upstream_started && now >= c.connect_at) StartUpstream(c);
  if (c.dead) return;
  if (c.upstream_started && !c.connected && (!c.server.blocked || c.server.error)) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.server.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      std::fprintf(stderr, "hloop-wanem: connect %s: %s\n", opt_.connect.c_str(),
                   std::strerror(err));
      stats_.upstream_failures++;
      Close(c, true);
      return;
    }
    c.connected = true;
  }
  if (c.client.error || c.server.error) {  // e.g. a RST arrived: pass it on
    Close(c, true);
    return;
  }
  // Writes free window space for reads, and reads (with no delay) make data
  // due at once, so go round a few times.
  for (int round = 0; round < 3 && !c.dead; ++round) {
    uint64_t before = c.up.read + c.down.read + c.up.written + c.down.written;
    WriteSide(c, false, now);
    if (!c.dead) WriteSide(c, true, now);
    if (!c.dead) ReadSide(c, true, now);
    if (!c.dead) ReadSide(c, false, now);
    if (c.dead) return;
    if (c.up.read + c.down.read + c.up.written + c.down.written == before) break;
  }
  if (c.up.shut && c.down.shut) {
    Close(c, false);  // both directions finished: a normal close
    return;
  }
  UpdateInterest(c, now);
}

void Proxy::UpdateInterest(Conn& c, Micros now) {
  for (Endpoint* e : {&c.client, &c.server}) {
    if (e->fd < 0) continue;
    uint32_t want = 0;
    if (CanRead(c, e->is_client, now)) want |= EPOLLIN;
    if (e->blocked) want |= EPOLLOUT;
    if (want == e->events) continue;
    // With no interest the socket leaves the set: epoll reports EPOLLHUP
    // whatever the mask, which would wake the loop for nothing.
    epoll_event ev{};
    ev.events = want;
    ev.data.ptr = e;
    int op = want == 0 ? EPOLL_CTL_DEL : e->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(epoll_fd_, op, e->fd, &ev) != 0) {
      std::fprintf(stderr, "hloop-wanem: epoll_ctl: %s\n", std::strerror(errno));
      Close(c, true);
      return;
    }
    e->events = want;
  }
}

Micros Proxy::NextDeadline(Micros now) const {
  Micros best = kForever;
  for (const auto& cp : conns_) {
    const Conn& c = *cp;
    if (!c.upstream_started) best = std::min(best, c.connect_at);
    if (now < c.open_at) best = std::min(best, c.open_at);
    for (bool to_client : {false, true}) {
      const Pipe& p = to_client ? c.down : c.up;
      const Endpoint& rx = to_client ? c.client : c.server;
      const Link& link = to_client ? *down_ : *up_;
      if (rx.fd >= 0 && !rx.blocked && (to_client || c.connected)) {
        if (!p.queue.empty()) {
          Micros t = p.queue.front().release;
          if (to_client) t = std::max(t, c.stall_until);
          best = std::min(best, t);
        } else if (p.eof && !p.shut) {
          best = std::min(best, p.eof_release);
        }
      }
      // The sender's reads wait for the shared link to drain.
      if (link.Backlogged(now) && !p.eof && p.held < opt_.window)
        best = std::min(best, link.Unblocks());
    }
  }
  return best;
}

void Proxy::DumpStats() {
  if (opt_.stats_file.empty()) return;
  stats_.active = conns_.size();
  std::string err = WriteStatsFile(opt_.stats_file, stats_);
  if (!err.empty()) std::fprintf(stderr, "hloop-wanem: %s\n", err.c_str());
}

std::string WriteStatsFile(const std::string& path, const Stats& s) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return ErrnoText("stats file " + tmp);
  std::fprintf(f,
               "{\"connections\": %llu, \"active\": %llu, "
               "\"upstream_failures\": %llu, \"bytes_client_to_server\": %llu, "
               "\"bytes_server_to_client\": %llu, \"resets\": %llu, "
               "\"stalls\": %llu, \"flips\": %llu}\n",
               (unsigned long long)s.connections, (unsigned long long)s.active,
               (unsigned long long)s.upstream_failures,
               (unsigned long long)s.bytes_client_to_server,
               (unsigned long long)s.bytes_server_to_client, (unsigned long long)s.resets,
               (unsigned long long)s.stalls, (unsigned long long)s.flips);
  bool ok = std::fflush(f) == 0;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoText("stats file " + path);
  return "";
}

}  // namespace hloop::wanem
