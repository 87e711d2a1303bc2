// Which version of an image a client serves, and how it knows it is genuine
// (filled by disk/resolve.h, shown by `hloop stats` and `hloop info`).
#pragma once

#include <cstdint>
#include <string>

#include "format/hash.h"

namespace hloop::disk {

// Which version of an image is served, and how the client knows it.
struct ImageVersion {
  std::string url;        // what the user named: a channel or an index
  std::string index_url;  // the index it resolved to
  std::string index_name;
  format::Hash digest{};
  bool authenticated = false;
  std::string key_id;  // the trusted key that signed it; empty if none did
  // Set when `url` is a channel.
  bool channel = false;
  std::string channel_name;
  uint64_t sequence = 0;
  int64_t issued_at = 0, expires_at = 0;
  bool offline = false;  // the cached copy was used: no server was reachable
};

}  // namespace hloop::disk
