#include "serve/http_server.h"

#include <httplib.h>
#include <sys/stat.h>

#include <atomic>
#include <ctime>
#include <optional>
#include <string>

#include "format/format.h"

namespace hloop::serve {

static std::atomic<httplib::Server*> g_server{nullptr};
static constexpr size_t kServeThreads = 128;

namespace {

// RFC 9110 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"). Shared caches
// (Squid) treat a response without Date as already expired.
std::string HttpDate(time_t t) {
  char buf[64];
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

// Validators of the file behind `path`, if it is a regular file under root
// (no ".." anywhere: the mount point handler refuses those anyway).
struct Validators {
  std::string etag, last_modified;
};
std::optional<Validators> ValidatorsFor(const std::string& root, const std::string& path,
                                        const std::string& chunk_prefix) {
  if (path.find("..") != std::string::npos) return std::nullopt;
  struct stat st;
  if (::stat((root + path).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  Validators v;
  v.last_modified = HttpDate(st.st_mtime);
  if (path.starts_with(chunk_prefix)) {
    // A chunk file's name is the hash of its content: the perfect ETag.
    v.etag = "\"" + path.substr(path.rfind('/') + 1) + "\"";
  } else {
    v.etag = "\"" + std::to_string(st.st_mtime) + "-" + std::to_string(st.st_size) + "\"";
  }
  return v;
}

}  // namespace

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
  const std::string root = options.root;
  auto cache_control = [chunk_prefix, index_cache](const std::string& path) {
    // Chunk files never change: their name is their content's hash.
    return path.starts_with(chunk_prefix) ? std::string("public, max-age=31536000, immutable") : index_cache;
  };
  // Conditional requests (a proxy revalidating): 304 when the validators match.
  server.set_pre_routing_handler([root, chunk_prefix, cache_control](const httplib::Request& req,
                                                                      httplib::Response& res) {
    if (req.method != "GET" && req.method != "HEAD") return httplib::Server::HandlerResponse::Unhandled;
    bool has_inm = req.has_header("If-None-Match"), has_ims = req.has_header("If-Modified-Since");
    if (!has_inm && !has_ims) return httplib::Server::HandlerResponse::Unhandled;
    auto v = ValidatorsFor(root, req.path, chunk_prefix);
    if (!v) return httplib::Server::HandlerResponse::Unhandled;
    bool match = has_inm ? req.get_header_value("If-None-Match").find(v->etag) != std::string::npos
                         : req.get_header_value("If-Modified-Since") == v->last_modified;
    if (!match) return httplib::Server::HandlerResponse::Unhandled;
    res.status = 304;
    res.set_header("Date", HttpDate(::time(nullptr)));
    res.set_header("ETag", v->etag);
    res.set_header("Last-Modified", v->last_modified);
    res.set_header("Cache-Control", cache_control(req.path));
    return httplib::Server::HandlerResponse::Handled;
  });
  // Runs after GET and HEAD alike (httplib's file handler hook skips HEAD).
  server.set_post_routing_handler([root, chunk_prefix, index_cache](const httplib::Request& req,
                                                                    httplib::Response& res) {
    if (!res.has_header("Date")) res.set_header("Date", HttpDate(::time(nullptr)));
    if (res.status != 200 && res.status != 206) return;
    if (auto v = ValidatorsFor(root, req.path, chunk_prefix)) {
      res.set_header("ETag", v->etag);
      res.set_header("Last-Modified", v->last_modified);
    }
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
