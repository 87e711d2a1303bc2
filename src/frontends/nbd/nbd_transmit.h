// The NBD transmission phase without sockets or threads: ReadRequests frames
// and checks the requests arriving on a Stream (one reader per connection),
// Execute runs one against a BlockDevice and builds its reply (on any
// thread). The server (nbd_server.h) puts a worker pool between the two;
// the fuzzer and the tests call them in line.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "blockdev/block_device.h"
#include "frontends/nbd/nbd_proto.h"
#include "frontends/nbd/nbd_stream.h"
#include "util/status.h"

namespace hloop::nbd {

// One request as read from the client, ready to run (or to be refused).
struct Command {
  Request request;
  Check check;                      // error != 0: answer with it, do not run
  std::unique_ptr<char[]> payload;  // WRITE: request.length bytes
  // Bytes of buffer this command holds or will hold (its payload or its
  // read data): what back-pressure counts.
  uint64_t cost = 0;
};

// A reply ready to send: header bytes and data, in order. The data lives in
// a buffer owned by the reply, so a 32 MiB read is sent without a copy.
class Reply {
 public:
  // Appends header bytes (simple reply, chunk headers, whole small chunks).
  void AddBytes(std::string_view bytes);
  // A buffer of `n` bytes for data to be sent; one per reply.
  char* Allocate(size_t n);
  // Sends buffer bytes [offset, offset + n) next. REQUIRES: Allocate'd.
  void AddData(size_t offset, size_t n);
  // What to write, in order; valid while the reply lives.
  std::vector<std::string_view> Pieces() const;
  size_t size() const;

 private:
  struct Segment {
    bool data;  // from buffer_, else from bytes_
    size_t offset, length;
  };
  std::string bytes_;
  std::unique_ptr<char[]> buffer_;
  std::vector<Segment> segments_;
};

// The NBD error value for a Status from the device: util's one Status->errno
// table (util/status_errno.h), narrowed to the errno values NBD knows.
uint32_t ToNbdError(const Status& st);

// Reads requests until the client sends DISC or closes the connection at a
// request boundary (Ok), closes it mid-request (Unavailable), or breaks the
// protocol (Corruption: bad magic; InvalidArgument: a WRITE too large to
// read, which is answered first). For each request, `admit(cost)` is called
// before its payload is read (it may block: back-pressure), then
// `run(command)`. Requests that fail CheckRequest are run too, to be
// answered with their error. Never allocates more than kMaxPayload per
// request, whatever the client claims.
Status ReadRequests(Stream& in, const Transmission& t,
                    const std::function<void(uint64_t cost)>& admit,
                    const std::function<void(Command&&)>& run);

// Runs `c` on `device` and returns the reply: structured or simple as
// negotiated in `t`. A READ with structured replies sends zero runs as
// OFFSET_HOLE chunks (BlockDevice::Extents). Thread-safe as the device is.
Reply Execute(BlockDevice& device, const Transmission& t, const Command& c);

// The reply that refuses `r` with `error` (EINVAL, ESHUTDOWN, ...).
Reply ErrorReply(const Transmission& t, const Request& r, uint32_t error, std::string_view message);

}  // namespace hloop::nbd
