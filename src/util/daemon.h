// Detaching into the background in a way that keeps errors visible: the
// parent waits until the child reports that it is ready (exit 0) or failed
// (its message is printed by the parent, exit 1).
#pragma once

#include <string>

namespace hloop {

class Daemonizer {
 public:
  // Forks. Returns only in the child (in a new session); the parent waits for
  // Ready() or Failed() and exits. Call before starting any thread.
  void Start();
  bool active() const { return fd_ >= 0; }
  // Child: detach stdio and let the parent exit 0.
  void Ready();
  // Child: the parent prints `message` and exits 1.
  void Failed(const std::string& message);

 private:
  int fd_ = -1;
};

}  // namespace hloop
