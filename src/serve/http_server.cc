#include "serve/http_server.h"

#include <httplib.h>
#include <sys/stat.h>

#include <atomic>

#include "format/format.h"

namespace hloop::serve {

static std::atomic<httplib::Server*> g_server{nullptr};
static constexpr size_t kServeThreads = 128;

void StopServing() {
  if (auto* s = g_server.load()) s->stop();
}

Status Serve(const ServeOptions& options) {
  struct stat sb;
  if (::stat(options.root.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode))
    return Status::InvalidArgument("store " + options.root + ": not a directory");
  httplib::Server server;
  // The mount point handler serves files only below root and rejects paths
  // with ".." segments (httplib's is_valid_path).
  if (!server.set_mount_point("/", options.root))
    return Status::InvalidArgument("cannot serve " + options.root);
  server.set_file_extension_and_mimetype_mapping("idx", "application/octet-stream");
  server.set_file_extension_and_mimetype_mapping("profile", "application/octet-stream");
  const std::string chunk_prefix = std::string("/") + format::kChunkDir + "/";
  const std::string index_cache = "public, max-age=" + std::to_string(options.index_max_age_s);
  // Runs after GET and HEAD alike (httplib's file handler hook skips HEAD).
  server.set_post_routing_handler([chunk_prefix, index_cache](const httplib::Request& req,
                                                              httplib::Response& res) {
    if (res.status != 200 && res.status != 206) return;
    res.headers.erase("Cache-Control");
    if (req.path.starts_with(chunk_prefix)) {
      // Chunk files never change: their name is their content's hash.
      res.set_header("Cache-Control", "public, max-age=31536000, immutable");
      res.headers.erase("Content-Type");
      res.set_header("Content-Type", "application/octet-stream");
    } else {
      res.set_header("Cache-Control", index_cache);
    }
  });
  // httplib gives each connection a thread until it closes; clients keep
  // one connection per fetching thread alive (a mount uses two dozen), so
  // the pool must be larger than that, and idle connections short-lived.
  server.new_task_queue = [] { return new httplib::ThreadPool(kServeThreads); };
  server.set_keep_alive_max_count(1000);
  server.set_keep_alive_timeout(5);
  int port = options.port;
  if (port == 0) {
    port = server.bind_to_any_port(options.host);
    if (port < 0) return Status::IOError("cannot listen on " + options.host);
  } else if (!server.bind_to_port(options.host, port)) {
    return Status::IOError("cannot listen on " + options.host + ":" + std::to_string(port));
  }
  g_server = &server;
  if (options.on_listening) options.on_listening(port);
  bool ok = server.listen_after_bind();
  g_server = nullptr;
  if (!ok) return Status::IOError("server stopped with an error");
  return Status::Ok();
}

}  // namespace hloop::serve
