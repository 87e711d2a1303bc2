#include "util/log.h"

#include <unistd.h>

#include <atomic>

namespace hloop {

static std::atomic<int> g_level{int(LogLevel::kWarn)};

void SetLogLevel(LogLevel level) { g_level = int(level); }
LogLevel GetLogLevel() { return LogLevel(g_level.load()); }

void Log(LogLevel level, const std::string& message) {
  if (int(level) < g_level.load()) return;
  static const char* kNames[] = {"debug", "info", "warning", "error"};
  std::string line = std::string("hloop: ") + kNames[int(level)] + ": " + message + "\n";
  ssize_t unused = ::write(2, line.data(), line.size());
  (void)unused;
}

}  // namespace hloop
