#include "util/status_errno.h"

#include <cerrno>

namespace hloop {

int ErrnoFromStatus(const Status& st) {
  switch (st.code()) {
    case Status::Code::kOk: return 0;
    case Status::Code::kInvalidArgument: return EINVAL;
    case Status::Code::kUnsupported: return EROFS;
    case Status::Code::kNoSpace: return ENOSPC;
    case Status::Code::kNotFound:
    case Status::Code::kCorruption:
    case Status::Code::kIOError:
    case Status::Code::kUnavailable: return EIO;
  }
  return EIO;  // not a Code: never reached
}

}  // namespace hloop
