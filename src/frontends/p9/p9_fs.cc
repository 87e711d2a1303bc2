#include "frontends/p9/p9_fs.h"

#include <cerrno>

namespace hloop::p9 {

int ErrnoFromStatus(const Status& st) {
  switch (st.code()) {
    case Status::Code::kOk: return 0;
    case Status::Code::kNotFound: return ENOENT;
    case Status::Code::kInvalidArgument: return EINVAL;
    case Status::Code::kUnsupported: return EOPNOTSUPP;
    case Status::Code::kNoSpace: return ENOSPC;
    default: return EIO;  // corruption, an unreachable server, a local I/O error
  }
}

}  // namespace hloop::p9
