// The one table that turns a Status into an errno, for every front end that
// answers a client with an errno value (FUSE, 9P; NBD narrows it further to
// the few values its protocol carries, see ToNbdError in nbd_transmit.h).
//
// A Status that reaches a front end comes from the data path (a BlockDevice's
// Read, Write, Flush...), so the table gives the data path's meaning:
//
//   kOk              0
//   kNotFound        EIO      a chunk missing on the server: the data cannot
//                             be had, the file is still there
//   kCorruption      EIO      bad data after every retry
//   kIOError         EIO      local I/O failed
//   kUnavailable     EIO      the network away past the I/O timeout
//   kInvalidArgument EINVAL   e.g. a range past the end
//   kUnsupported     EROFS    a write to a read-only device
//   kNoSpace         ENOSPC   the overlay's disk is full
//
// A name that does not exist in a file-system view is not a Status: the
// views (p9fs) answer ENOENT for it directly, so ENOENT never means "a chunk
// is missing". Thread-safe (pure function).
#pragma once

#include "util/status.h"

namespace hloop {

int ErrnoFromStatus(const Status& st);

}  // namespace hloop
