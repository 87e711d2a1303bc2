#include "util/status.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace hloop {

Status Status::FromErrno(int err, const std::string& what) {
  std::string m = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return NoSpace(std::move(m));
  if (err == ENOENT) return NotFound(std::move(m));
  return IOError(std::move(m));
}

std::string Status::ToString() const {
  const char* name = "OK";
  switch (code_) {
    case Code::kOk: return "OK";
    case Code::kNotFound: name = "not found"; break;
    case Code::kCorruption: name = "corrupt"; break;
    case Code::kIOError: name = "I/O error"; break;
    case Code::kInvalidArgument: name = "invalid argument"; break;
    case Code::kUnavailable: name = "unavailable"; break;
    case Code::kUnsupported: name = "unsupported"; break;
    case Code::kNoSpace: name = "no space"; break;
  }
  return message_.empty() ? std::string(name) : message_ + " (" + name + ")";
}

Status Status::Annotate(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_);
}

namespace internal {
void DieOnBadResultAccess(const Status& status) {
  std::fprintf(stderr, "hloop: Result::value() on an error: %s\n", status.ToString().c_str());
  std::abort();
}
}  // namespace internal

}  // namespace hloop
