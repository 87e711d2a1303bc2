// Clock: where the fetch policies (MirrorSet, RetryPolicy) read the time, so
// that tests drive them with a fake clock (src/testing/fake_clock.h) instead
// of waiting. Monotonic; implementations are thread-safe.
#pragma once

#include <chrono>

namespace hloop::fetch {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  // std::chrono::steady_clock. Lives as long as the process.
  static const Clock& Steady();
};

}  // namespace hloop::fetch
