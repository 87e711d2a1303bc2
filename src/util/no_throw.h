// C++ code behind a C callback (libfuse's operations, libext2fs's I/O
// manager): no exception may unwind through the C library's frames, which
// would leave its locks and state broken or abort the process.
//
//   int Read(...) { return CallNoThrow("fuse read", -EIO, [&] { return ReadImpl(...); }); }
//
// CallNoThrow runs `f` and returns what it returns; an exception that escapes
// `f` is logged (best effort) and becomes `on_exception`. Thread-safe as `f`
// is.
#pragma once

#include <exception>
#include <string>

#include "util/log.h"

namespace hloop {

// Logs an exception caught at a C boundary; never throws itself (a failed
// allocation while logging is dropped).
inline void LogCaughtException(const char* where, const char* what) noexcept {
  try {
    LogError(std::string(where) + ": exception stopped at a C callback: " + what);
  } catch (...) {
  }
}

template <class R, class F>
R CallNoThrow(const char* where, R on_exception, F&& f) noexcept {
  try {
    return f();
  } catch (const std::exception& e) {
    LogCaughtException(where, e.what());
  } catch (...) {
    LogCaughtException(where, "not a std::exception");
  }
  return on_exception;
}

}  // namespace hloop
