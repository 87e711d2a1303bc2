#include "util/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <ctime>

#include <atomic>

namespace hloop {

static std::atomic<int> g_level{int(LogLevel::kWarn)};
static std::atomic<int> g_fd{2};
static std::atomic<bool> g_stamp{false};

void SetLogLevel(LogLevel level) { g_level = int(level); }
LogLevel GetLogLevel() { return LogLevel(g_level.load()); }

void Log(LogLevel level, const std::string& message) {
  if (int(level) < g_level.load()) return;
  static const char* kNames[] = {"debug", "info", "warning", "error"};
  std::string line;
  if (g_stamp) {
    char buf[40];
    time_t now = time(nullptr);
    struct tm tm;
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S ", gmtime_r(&now, &tm));
    line = buf;
  }
  line += std::string("hloop: ") + kNames[int(level)] + ": " + message + "\n";
  ssize_t unused = ::write(g_fd, line.data(), line.size());
  (void)unused;
}

bool SetLogFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  g_fd = fd;
  g_stamp = true;
  return true;
}

}  // namespace hloop
