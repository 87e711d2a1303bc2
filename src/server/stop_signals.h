// The one way an hloop process stops on a signal: SIGINT, SIGTERM and SIGHUP
// are blocked in every thread and taken by one thread of this class, which
// runs a stop callback for the first. The callback only starts the shutdown
// (a server's Stop()); the shutdown work itself (finishing requests,
// flushing an overlay, writing a recorded profile) runs in the threads that
// own it. A later signal cannot cut that work short: it is logged ("already
// stopping") and changes nothing. No global server pointer: the callback
// says what to stop.
//
//   StopSignals signals;              // before any other thread starts
//   ... open the image, Listen() ...
//   signals.OnStop([&] { server.Stop(); });
//   server.Run();
//   signals.Finishing();
//   ... shutdown work: no signal ends the process during it ...
//
// It also ignores SIGPIPE: a server's peer may go away at any time, which is
// an error on its socket, not a reason to die.
//
// Until OnStop() is called, a signal ends the process as if it were not
// blocked (a server still opening its image can be interrupted), unless
// Finishing() was called.
//
// Thread safety: every method from any thread but the callback's.
#pragma once

#include <signal.h>

#include <functional>
#include <thread>

#include "util/file.h"
#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace hloop::server {

class StopSignals {
 public:
  // Blocks the signals in the calling thread, which every thread it starts
  // later inherits, and starts the signal thread. Create it before any other
  // thread exists (one started earlier would take a signal the default way).
  StopSignals();
  // Ends the signal thread (after a running callback returns). The signals
  // stay blocked: one arriving while the process finishes is discarded when
  // it exits.
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The signals taken: SIGINT, SIGTERM, SIGHUP.
  static sigset_t Signals();

  // What the first signal does: runs `stop` once, on the signal thread.
  void OnStop(std::function<void()> stop) EXCLUDES(mu_);
  // Shutdown has begun (Run() returned: stopped by a signal, unmounted, or
  // failed): from now on a signal is only logged. Waits for a callback under
  // way to return; after this the callback is never called, so what it
  // stops may be destroyed.
  void Finishing() EXCLUDES(mu_);
  // Blocks until the first signal was taken and its callback has returned;
  // returns the signal.
  int Wait() EXCLUDES(mu_);
  // The first signal taken, 0 if none yet.
  int signal() EXCLUDES(mu_);

 private:
  void Loop() EXCLUDES(mu_);
  // Takes one signal read from the signalfd.
  void Take(int sig) EXCLUDES(mu_);

  Mutex mu_;
  CondVar cv_;  // stopped_ became true
  std::function<void()> stop_ GUARDED_BY(mu_);
  bool finishing_ GUARDED_BY(mu_) = false;
  int first_ GUARDED_BY(mu_) = 0;
  bool stopped_ GUARDED_BY(mu_) = false;  // the first signal's callback has returned

  ScopedFd signal_fd_;
  ScopedFd wake_fd_;  // an eventfd: the destructor ends Loop()
  std::thread thread_;
};

}  // namespace hloop::server
