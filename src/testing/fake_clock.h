// Test-only: a fetch::Clock that moves only when the test says so. Not
// thread-safe (the policies it drives are not either).
#pragma once

#include <chrono>

#include "fetch/clock.h"

namespace hloop::testing {

class FakeClock : public fetch::Clock {
 public:
  TimePoint Now() const override { return now_; }
  void Advance(std::chrono::milliseconds d) { now_ += d; }

 private:
  TimePoint now_ = TimePoint() + std::chrono::hours(1);
};

}  // namespace hloop::testing
