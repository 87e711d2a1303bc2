#include "cli/common.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "format/index.h"
#include "util/log.h"
#include "util/size.h"

namespace hloop::cli {

static double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string DefaultCacheDir() {
  if (const char* env = std::getenv("HLOOP_CACHE"); env && *env) return env;
  if (::geteuid() == 0) return "/var/cache/hloop";
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/hloop";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/hloop";
  return "/tmp/hloop-cache";
}

CLI::Validator SizeValidator() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        auto r = ParseSize(s);
        return r.ok() ? std::string() : r.status().message();
      },
      "SIZE", "size");
}

CLI::Validator ChunkSizeValidator() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        auto r = ParseSize(s);
        if (!r.ok()) return r.status().message();
        if (!format::IsValidChunkSize(*r)) return "chunk size must be a power of two from 4K to 4M";
        return std::string();
      },
      "SIZE", "chunk size");
}

void AddImageOptions(CLI::App* app, ImageCliOptions* o, bool with_cache_default) {
  app->add_option("--cache", o->cache_dir,
                  with_cache_default ? "Cache directory for verified chunks, shared by all images "
                                       "(default: $HLOOP_CACHE, /var/cache/hloop as root, else ~/.cache/hloop)"
                                     : "Cache directory for verified chunks (default: no disk cache)");
  app->add_option("--cache-size", o->cache_size,
                  "Most bytes the cache may hold; least recently used chunks are evicted (default 4G)")
      ->check(SizeValidator());
  app->add_option("--memory-cache", o->memory_cache, "In-memory cache of decompressed chunks (default 64M)")
      ->check(SizeValidator());
  app->add_option("--workers", o->workers, "Background fetch threads for read-ahead (default 8)")
      ->check(CLI::Range(0, 256));
  app->add_option("--readahead", o->readahead, "Chunks to read ahead of a sequential reader (default 16)")
      ->check(CLI::Range(0, 4096));
  app->add_option("--retries", o->retries,
                  "Attempts for a failing transfer before its read fails (default 0: keep trying, "
                  "with back-off, until the server answers or --io-timeout passes)")
      ->check(CLI::Range(0, 1000000));
  app->add_option("--io-timeout", o->io_timeout,
                  "Seconds a read may wait for the network before it fails with EIO "
                  "(default 0: wait, as a root file system needs)")
      ->check(CLI::Range(0, 86400));
  app->add_option("--stall-timeout", o->stall_timeout,
                  "Seconds without a byte after which a transfer is abandoned and retried (default 10)")
      ->check(CLI::Range(1, 3600));
  app->add_flag("-v,--verbose", o->verbose, "Log retries and cache decisions");
  app->add_option("--log", o->log_file, "Append log lines to this file instead of stderr "
                                        "(useful with --daemon, which detaches from the terminal)");
}

Result<disk::OpenOptions> MakeOpenOptions(const ImageCliOptions& o, bool with_cache_default) {
  if (o.verbose) SetLogLevel(LogLevel::kInfo);
  if (!o.log_file.empty() && !SetLogFile(o.log_file))
    return Status::FromErrno(errno, "log file " + o.log_file);
  disk::OpenOptions opts;
  opts.fetch.max_attempts = o.retries;
  opts.fetch.io_timeout_s = o.io_timeout;
  opts.fetch.stall_timeout_s = o.stall_timeout;
  opts.image.workers = o.workers;
  opts.image.readahead_chunks = o.readahead;
  auto mem = ParseSize(o.memory_cache);
  if (!mem.ok()) return mem.status();
  opts.image.memory_cache_bytes = *mem;
  std::string dir = o.cache_dir;
  if (dir.empty() && with_cache_default) dir = DefaultCacheDir();
  if (!dir.empty()) {
    auto size = ParseSize(o.cache_size);
    if (!size.ok()) return size.status();
    cache::DiskCacheOptions c;
    c.dir = dir;
    c.max_bytes = *size;
    opts.cache = c;
  }
  return opts;
}

int Fail(const Status& st) { return Fail(st.message().empty() ? st.ToString() : st.message()); }

int Fail(const std::string& message) {
  std::fprintf(stderr, "hloop: %s\n", message.c_str());
  return kExitFailure;
}

Progress::Progress(std::string label) : label_(std::move(label)), tty_(::isatty(2)), start_(Now()) {}
Progress::~Progress() { Done(); }

void Progress::Update(uint64_t done, uint64_t total) {
  if (!tty_ || total == 0) return;
  const int width = 30;
  int fill = int(double(done) / double(total) * width);
  double secs = Now() - start_;
  double mbs = secs > 0 ? double(done) / secs / 1e6 : 0;
  std::fprintf(stderr, "\r%s [%-*s] %3d%% %s/%s %.0f MB/s ", label_.c_str(), width,
               std::string(size_t(fill), '#').c_str(), int(100.0 * double(done) / double(total)),
               FormatSize(done).c_str(), FormatSize(total).c_str(), mbs);
  drawn_ = true;
}

void Progress::Done() {
  if (drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace hloop::cli
