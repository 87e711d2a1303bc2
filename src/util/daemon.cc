#include "util/daemon.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace hloop {

void Daemonizer::Start() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    std::perror("hloop: pipe");
    std::exit(1);
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("hloop: fork");
    std::exit(1);
  }
  if (pid > 0) {  // parent: wait for the child's word
    ::close(p[1]);
    std::string msg;
    char buf[512];
    ssize_t n;
    while ((n = ::read(p[0], buf, sizeof buf)) > 0) msg.append(buf, size_t(n));
    if (msg == "ok") std::_Exit(0);
    if (msg.empty()) msg = "the background process died while starting";
    std::fprintf(stderr, "hloop: %s\n", msg.c_str());
    std::_Exit(1);
  }
  ::close(p[0]);
  fd_ = p[1];
  ::setsid();
}

void Daemonizer::Ready() {
  if (fd_ < 0) return;
  int null = ::open("/dev/null", O_RDWR);
  if (null >= 0) {
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    if (null > 2) ::close(null);
  }
  ssize_t unused = ::write(fd_, "ok", 2);
  (void)unused;
  ::close(fd_);
  fd_ = -1;
}

void Daemonizer::Failed(const std::string& message) {
  if (fd_ < 0) return;
  ssize_t unused = ::write(fd_, message.data(), message.size());
  (void)unused;
  ::close(fd_);
  fd_ = -1;
}

}  // namespace hloop
