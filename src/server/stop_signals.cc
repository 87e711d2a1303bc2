#include "server/stop_signals.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "util/log.h"

namespace hloop::server {

sigset_t StopSignals::Signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

StopSignals::StopSignals() : wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t set = Signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal_fd_ = ScopedFd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_.valid()) LogError(std::string("signalfd: ") + std::strerror(errno));
  thread_ = std::thread([this] { Loop(); });
}

StopSignals::~StopSignals() {
  uint64_t one = 1;
  ssize_t unused = ::write(wake_fd_.get(), &one, sizeof one);
  (void)unused;
  thread_.join();
}

void StopSignals::OnStop(std::function<void()> stop) {
  MutexLock lock(&mu_);
  stop_ = std::move(stop);
}

void StopSignals::Finishing() {
  MutexLock lock(&mu_);
  finishing_ = true;
  while (first_ != 0 && !stopped_) cv_.Wait(&mu_);
}

int StopSignals::Wait() {
  MutexLock lock(&mu_);
  while (!stopped_) cv_.Wait(&mu_);
  return first_;
}

int StopSignals::signal() {
  MutexLock lock(&mu_);
  return first_;
}

void StopSignals::Loop() {
  for (;;) {
    pollfd fds[2] = {{wake_fd_.get(), POLLIN, 0}, {signal_fd_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || fds[0].revents) return;
    signalfd_siginfo info;
    while (::read(signal_fd_.get(), &info, sizeof info) == ssize_t(sizeof info))
      Take(int(info.ssi_signo));
  }
}

void StopSignals::Take(int sig) {
  std::function<void()> stop;
  {
    MutexLock lock(&mu_);
    if (first_ != 0 || finishing_) {
      LogInfo(std::string(strsignal(sig)) + ": already stopping");
      return;
    }
    if (stop_) {
      first_ = sig;
      stop = stop_;
    }
  }
  if (!stop) {
    // Nothing to stop yet: end the process as the signal would unblocked
    // (unless it is ignored, as SIGINT is in a shell's background job).
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
    ::raise(sig);
    pthread_sigmask(SIG_BLOCK, &one, nullptr);
    return;
  }
  LogInfo(std::string(strsignal(sig)) + ": stopping");
  stop();
  {
    MutexLock lock(&mu_);
    stopped_ = true;
  }
  cv_.SignalAll();
}

}  // namespace hloop::server
