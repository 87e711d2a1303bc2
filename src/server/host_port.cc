#include "server/host_port.h"

#include <algorithm>
#include <cctype>

namespace hloop::server {

std::string HostPort::ToString() const {
  std::string h = host.empty() ? "0.0.0.0" : host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  return h + ":" + std::to_string(port);
}

Result<HostPort> ParseHostPort(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument("bad address '" + std::string(text) +
                                   "': expected HOST:PORT or [IPV6]:PORT, PORT from 0 to 65535");
  };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad();
  std::string_view host = text.substr(0, colon), port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (host.empty()) return bad();
  } else if (host.find_first_of(":[]") != std::string_view::npos) {
    return bad();  // an IPv6 address without brackets, or stray brackets
  }
  auto odd = [](char c) { return std::isspace(uint8_t(c)) || c == '/'; };
  if (std::any_of(host.begin(), host.end(), odd)) return bad();
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return bad();
  unsigned value = unsigned(std::stoul(std::string(port)));
  if (value > 65535) return bad();
  return HostPort{std::string(host), uint16_t(value)};
}

}  // namespace hloop::server
