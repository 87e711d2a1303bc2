// HOST:PORT, as every server and the WAN emulator take it on the command
// line: one parser, one error message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace hloop::server {

struct HostPort {
  std::string host;   // a name, an IPv4 or IPv6 address (no brackets); empty: every address
  uint16_t port = 0;  // 0: let the kernel pick one (when listening)

  // "HOST:PORT", IPv6 addresses in brackets ("[::1]:564"); "0.0.0.0:PORT"
  // for the empty host.
  std::string ToString() const;
};

// Parses "HOST:PORT", "[IPV6]:PORT" or ":PORT" (every address). PORT is
// decimal, 0 to 65535. A bare IPv6 address must be bracketed. Host names are
// not resolved here. Unix sockets have options of their own (--socket), so
// "unix:PATH" is not an address here. Error: InvalidArgument, with one
// message for every malformed input.
Result<HostPort> ParseHostPort(std::string_view text);

}  // namespace hloop::server
