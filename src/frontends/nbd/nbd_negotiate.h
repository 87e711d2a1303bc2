// The NBD handshake (fixed newstyle option haggling) for a server with one
// export. Negotiator is the state machine: it takes one option at a time
// and appends the reply bytes, without I/O. RunHandshake drives it over a
// Stream: greeting, client flags, then options until the client starts
// transmission (EXPORT_NAME or GO), aborts, or breaks the protocol.
//
// Options served: EXPORT_NAME, ABORT, LIST, INFO, GO, STRUCTURED_REPLY,
// LIST_META_CONTEXT and SET_META_CONTEXT (base:allocation). Every other
// option (STARTTLS, EXTENDED_HEADERS, ...) gets ERR_UNSUP, so clients fall
// back. With one export, every export name reaches it, "" included.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "frontends/nbd/nbd_proto.h"
#include "frontends/nbd/nbd_stream.h"
#include "util/status.h"

namespace hloop::nbd {

struct ExportInfo {
  std::string name;  // what LIST and NBD_INFO_NAME show (the image name)
  uint64_t size = 0;
  bool writable = false;  // false: READ_ONLY, writes fail with EPERM
};

class Negotiator {
 public:
  enum class Next {
    kContinue,      // read the next option
    kTransmission,  // the handshake is over: serve requests
    kClose,         // close the connection (after sending the reply)
  };

  explicit Negotiator(ExportInfo e) : export_(std::move(e)) {}

  // The client's u32 flags. False: unknown flags, which the spec says must
  // drop the connection.
  bool AcceptClientFlags(uint32_t flags);
  // Handles one option whose data is `data`, appending every reply byte to
  // `out`. REQUIRES: data.size() <= kMaxOptionLength.
  Next HandleOption(uint32_t option, std::string_view data, std::string* out);
  // The flags sent with the export: depend on what was negotiated so far.
  uint16_t TransmissionFlags() const;
  // What requests are checked and answered against.
  Transmission transmission() const;

 private:
  Next ExportName(std::string* out);
  Next InfoOrGo(uint32_t option, std::string_view data, std::string* out);
  Next MetaContext(uint32_t option, std::string_view data, std::string* out);

  ExportInfo export_;
  bool no_zeroes_ = false;
  bool structured_ = false;
  bool base_allocation_ = false;
};

// Runs the whole handshake over `s`. Ok: transmission starts, with
// `negotiator.transmission()`. Unavailable: the client left (ABORT, or
// closed the connection). Corruption or InvalidArgument: the client broke
// the protocol (bad magic, unknown flags, option data over the limit); the
// connection must be closed.
Status RunHandshake(Stream& s, Negotiator& negotiator);

}  // namespace hloop::nbd
