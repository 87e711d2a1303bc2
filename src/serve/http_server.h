// `hloop serve`: a static HTTP server for a store, on cpp-httplib. GET and
// HEAD with byte ranges and keep-alive; immutable caching headers on chunk
// files, a short max-age on indexes; paths cannot leave the store.
// Production stores belong on nginx, a CDN or a bucket: clients depend on
// nothing this server does beyond plain HTTP.
#pragma once

#include <functional>
#include <string>

#include "util/status.h"

namespace hloop::serve {

struct ServeOptions {
  std::string root;
  std::string host = "127.0.0.1";
  int port = 8080;
  int index_max_age_s = 60;
  // Called once the socket listens.
  std::function<void(int port)> on_listening;
};

// Serves until Stop() is called from another thread (or a signal handler
// arranges it). Returns when the server has stopped.
Status Serve(const ServeOptions& options);
// Makes a running Serve() return. Async-signal-safe enough for our handler:
// it only flips an atomic and shuts the listening socket down.
void StopServing();

}  // namespace hloop::serve
