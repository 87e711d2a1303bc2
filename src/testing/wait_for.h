// Test-only: polling for a condition another thread makes true.
#pragma once

#include <chrono>
#include <thread>

namespace hloop::testing {

// Polls `done` every 5 ms until it holds (true) or a generous deadline of
// 20 s passes (false). For background work a test cannot join.
template <typename Fn>
bool WaitFor(Fn done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace hloop::testing
