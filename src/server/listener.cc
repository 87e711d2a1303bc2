#include "server/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "util/log.h"

namespace hloop::server {

namespace {
constexpr int kBacklog = 128;

// The numeric address a socket is bound to.
HostPort BoundAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  char addr[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
    return HostPort{addr, ntohs(s6->sin6_port)};
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
  ::inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
  return HostPort{addr, ntohs(s4->sin_port)};
}
}  // namespace

Listener::Listener() : wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Listener::~Listener() { Close(); }

Result<HostPort> Listener::ListenTcp(const HostPort& where) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(where.port), shown = where.ToString();
  const char* node = where.host.empty() ? nullptr : where.host.c_str();
  int rc = ::getaddrinfo(node, service.c_str(), &hints, &res);
  if (rc != 0) return Status::InvalidArgument("listen on " + shown + ": " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
  Status last = Status::IOError("no address to listen on for " + shown);
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    ScopedFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      last = Status::FromErrno(errno, "socket for " + shown);
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), kBacklog) != 0) {
      last = Status::FromErrno(errno, "listen on " + shown);
      continue;
    }
    HostPort bound = BoundAddress(fd.get());
    sockets_.push_back(Socket{std::move(fd), ""});
    return bound;
  }
  return last;
}

Status Listener::ListenUnix(const std::string& path, mode_t mode) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return Status::InvalidArgument("socket path too long (at most " +
                                   std::to_string(sizeof addr.sun_path - 1) + " bytes): " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Status::InvalidArgument(path + " exists and is not a socket");
    // A socket file nobody answers on is left over from a server that
    // died: replace it. One that answers belongs to a live server.
    ScopedFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe.valid() &&
        ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
      return Status::InvalidArgument(path + ": address in use by another server");
    ::unlink(path.c_str());
  }
  ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno(errno, "socket");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Status::FromErrno(errno, "bind " + path);
  // From here on the file is ours: Close() removes it.
  sockets_.push_back(Socket{ScopedFd(), path});
  if (mode != 0 && ::chmod(path.c_str(), mode) != 0)
    return Status::FromErrno(errno, "chmod " + path);
  if (::listen(fd.get(), kBacklog) != 0) return Status::FromErrno(errno, "listen " + path);
  sockets_.back().fd = std::move(fd);
  return Status::Ok();
}

Result<int> Listener::Accept(int timeout_ms) {
  std::vector<pollfd> fds;
  fds.push_back({wake_.get(), POLLIN, 0});
  for (const Socket& s : sockets_)
    if (s.fd.valid()) fds.push_back({s.fd.get(), POLLIN, 0});
  int n = ::poll(fds.data(), fds.size(), timeout_ms);
  if (n < 0 && errno != EINTR) return Status::FromErrno(errno, "poll");
  if (fds[0].revents) return Status::Unavailable("the server is stopping");
  for (size_t i = 1; n > 0 && i < fds.size(); i++) {
    if (!(fds[i].revents & POLLIN)) continue;
    int fd = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) return fd;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      LogWarn(std::string("accept: ") + std::strerror(errno));
      ::usleep(100 * 1000);
    }
  }
  return -1;
}

void Listener::Wake() {
  uint64_t one = 1;
  ssize_t unused = ::write(wake_.get(), &one, sizeof one);  // a full counter already says it
  (void)unused;
}

void Listener::Close() {
  for (Socket& s : sockets_) {
    s.fd = ScopedFd();
    if (!s.unix_path.empty()) ::unlink(s.unix_path.c_str());
  }
  sockets_.clear();
}

}  // namespace hloop::server
