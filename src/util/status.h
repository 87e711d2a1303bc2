// Status and Result<T>: how library code reports failure (no exceptions cross
// module boundaries). Modelled on LevelDB's Status.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace hloop {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,         // the thing does not exist (404, ENOENT)
    kCorruption,       // data present but wrong: bad magic, checksum, hash
    kIOError,          // local I/O failed
    kInvalidArgument,  // the caller asked for something impossible
    kUnavailable,      // transient: network down, server error; may retry
    kUnsupported,      // well formed but beyond this version
    kNoSpace,          // a disk or quota is full
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Unsupported(std::string m) { return {Code::kUnsupported, std::move(m)}; }
  static Status NoSpace(std::string m) { return {Code::kNoSpace, std::move(m)}; }
  // An IOError (or NoSpace for ENOSPC/EDQUOT) naming `what`, with strerror(err).
  static Status FromErrno(int err, const std::string& what);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }

  // "index http://x/a.idx: bad magic (corrupt)".
  std::string ToString() const;
  // The same status with "context: " put before the message.
  Status Annotate(const std::string& context) const;

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

namespace internal {
// Prints "Result::value() on an error: STATUS" and aborts: reading the value of
// a failed Result is a programming error, never undefined behaviour.
[[noreturn]] void DieOnBadResultAccess(const Status& status);
}  // namespace internal

// A value or the Status that explains why there is none. Reading the value of a
// failed Result aborts with the status (check ok() first).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok());
  }
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return Checked(), *value_; }
  const T& value() const& { return Checked(), *value_; }
  T&& value() && { return Checked(), std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void Checked() const {
    if (!value_) internal::DieOnBadResultAccess(status_);
  }
  Status status_;
  std::optional<T> value_;
};

#define HLOOP_RETURN_IF_ERROR(expr) \
  do {                              \
    ::hloop::Status _st = (expr);   \
    if (!_st.ok()) return _st;      \
  } while (0)

}  // namespace hloop
