#include "serve/http_server.h"

#include <httplib.h>
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <optional>
#include <string>
#include <thread>

#include "format/format.h"

namespace hloop::serve {

namespace {

constexpr size_t kServeThreads = 128;

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

// Cache-Control for the file at `path` (see the top of http_server.h).
std::string CacheControlFor(const std::string& path, const std::string& chunk_prefix,
                            const std::string& other) {
  // Chunk files are named by their content's hash; an index is a version,
  // named by a channel (a new version is a new index), and so its signature.
  if (path.starts_with(chunk_prefix) || path.ends_with(format::kIndexSuffix) ||
      path.ends_with(std::string(format::kIndexSuffix) + ".sig"))
    return "public, max-age=31536000, immutable";
  // A channel moves to each new version: caches must ask every time (a 304
  // when it has not moved).
  if (path.ends_with(".channel")) return "no-cache";
  return other;
}

}  // namespace

HttpServer::HttpServer(ServeOptions options)
    : options_(std::move(options)), server_(std::make_unique<httplib::Server>()) {}

HttpServer::~HttpServer() = default;

Status HttpServer::Listen() {
  const ServeOptions& options = options_;
  httplib::Server& server = *server_;
  struct stat sb;
  if (::stat(options.root.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode))
    return Status::InvalidArgument("store " + options.root + ": not a directory");
  // The mount point handler serves files only below root and rejects paths
  // with ".." segments (httplib's is_valid_path).
  if (!server.set_mount_point("/", options.root))
    return Status::InvalidArgument("cannot serve " + options.root);
  server.set_file_extension_and_mimetype_mapping("idx", "application/octet-stream");
  server.set_file_extension_and_mimetype_mapping("profile", "application/octet-stream");
  server.set_file_extension_and_mimetype_mapping("sig", "application/octet-stream");
  const std::string chunk_prefix = std::string("/") + format::kChunkDir + "/";
  const std::string other_cache = "public, max-age=" + std::to_string(options.other_max_age_s);
  const std::string root = options.root;
  auto cache_control = [chunk_prefix, other_cache](const std::string& path) {
    return CacheControlFor(path, chunk_prefix, other_cache);
  };
  // Conditional requests (a proxy revalidating): 304 when the validators match.
  server.set_pre_routing_handler([root, chunk_prefix, cache_control](const httplib::Request& req,
                                                                     httplib::Response& res) {
    if (req.method != "GET" && req.method != "HEAD")
      return httplib::Server::HandlerResponse::Unhandled;
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
  server.set_post_routing_handler(
      [root, chunk_prefix, cache_control](const httplib::Request& req, httplib::Response& res) {
        if (!res.has_header("Date")) res.set_header("Date", HttpDate(::time(nullptr)));
        if (res.status != 200 && res.status != 206) return;
        if (auto v = ValidatorsFor(root, req.path, chunk_prefix)) {
          res.set_header("ETag", v->etag);
          res.set_header("Last-Modified", v->last_modified);
        }
        res.headers.erase("Cache-Control");
        res.set_header("Cache-Control", cache_control(req.path));
        if (req.path.starts_with(chunk_prefix)) {
          res.headers.erase("Content-Type");
          res.set_header("Content-Type", "application/octet-stream");
        }
      });
  // httplib gives each connection a thread until it closes; clients keep
  // one connection per fetching thread alive (a mount uses two dozen), so
  // the pool must be larger than that, and idle connections short-lived.
  server.new_task_queue = [] { return new httplib::ThreadPool(kServeThreads); };
  server.set_keep_alive_max_count(1000);
  server.set_keep_alive_timeout(5);
  const std::string host = options.listen.host.empty() ? "0.0.0.0" : options.listen.host;
  if (options.listen.port == 0) {
    port_ = server.bind_to_any_port(host);
    if (port_ < 0) return Status::IOError("cannot listen on " + options.listen.ToString());
  } else if (server.bind_to_port(host, options.listen.port)) {
    port_ = options.listen.port;
  } else {
    return Status::IOError("cannot listen on " + options.listen.ToString());
  }
  return Status::Ok();
}

Status HttpServer::Run() {
  run_entered_ = true;
  bool ok = stopping_ || server_->listen_after_bind();
  run_done_ = true;
  if (!ok) return Status::IOError("server stopped with an error");
  return Status::Ok();
}

void HttpServer::Stop() {
  stopping_ = true;
  // httplib's stop() does nothing until its loop runs: a Run() that has
  // started (and so did not see stopping_) is waited for.
  while (run_entered_ && !run_done_ && !server_->is_running())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server_->stop();
}

}  // namespace hloop::serve
