// Minimal leveled logging to stderr. Thread-safe: each call writes one line
// with a single write(2).
#pragma once

#include <string>

namespace hloop {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void Log(LogLevel level, const std::string& message);
// Sends log lines to `path` (appending) instead of stderr; lines then carry a
// timestamp. Call before starting threads.
bool SetLogFile(const std::string& path);

inline void LogDebug(const std::string& m) { Log(LogLevel::kDebug, m); }
inline void LogInfo(const std::string& m) { Log(LogLevel::kInfo, m); }
inline void LogWarn(const std::string& m) { Log(LogLevel::kWarn, m); }
inline void LogError(const std::string& m) { Log(LogLevel::kError, m); }

}  // namespace hloop
