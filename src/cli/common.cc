#include "cli/common.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "format/index.h"
#include "trust/trust_set.h"
#include "util/file.h"
#include "util/log.h"
#include "util/size.h"

namespace hloop::cli {

static double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string DefaultCacheDir() {
  if (const char* env = std::getenv("HLOOP_CACHE"); env && *env) return env;
  if (::geteuid() == 0) return "/var/cache/hloop";
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::string(xdg) + "/hloop";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/hloop";
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
  const char* kCache = "Cache";
  const char* kNet = "Network";
  app->add_option("--cache", o->cache_dir,
                  with_cache_default
                      ? "Cache directory for verified chunks, shared by all images "
                        "(default: $HLOOP_CACHE, /var/cache/hloop as root, else ~/.cache/hloop)"
                      : "Cache directory for verified chunks (default: no disk cache)")
      ->group(kCache);
  app->add_option(
         "--cache-size", o->cache_size,
         "Most bytes the cache may hold; least recently used chunks are evicted (default 4G)")
      ->check(SizeValidator())
      ->group(kCache);
  app->add_option("--cache-reserve", o->cache_reserve,
                  "Free space the cache leaves on its file system: at least this much and 2% of "
                  "its size (default 256M, for a cache on a shared disk; 0 on a file system of "
                  "its own)")
      ->check(SizeValidator())
      ->group(kCache);
  app->add_option("--memory-cache", o->memory_cache,
                  "In-memory cache of decompressed chunks (default 64M)")
      ->check(SizeValidator())
      ->group(kCache);
  app->add_option(
         "--workers", o->workers,
         "Background fetch threads for read-ahead: each keeps one chunk in flight (default 16)")
      ->check(CLI::Range(0, 256))
      ->group(kCache);
  app->add_option("--readahead", o->readahead,
                  "Chunks to read ahead of a sequential reader (default: follows the measured "
                  "bandwidth-delay product of the link, 4 to 256; 0: no read-ahead)")
      ->check(CLI::Range(0, 4096))
      ->group(kCache);
  app->add_option(
         "--cluster", o->cluster,
         "When a read has to wait for the network, also fetch the rest of its aligned cluster "
         "of this size in the background, if the link carries it within the round trip "
         "(default 1M; smaller on slower links, off on a LAN; 0: never)")
      ->check(SizeValidator())
      ->group(kCache);
  app->add_option("--mirror", o->mirrors,
                  "Another server with the same files: base URL (the directory of the index), "
                  "optionally with #http2 and/or #connections=N; repeatable. Mirrors are probed, "
                  "ranked by measured latency and throughput, and failed over")
      ->check([](const std::string& m) {
        auto spec = fetch::ParseMirrorSpec(m);
        return spec.ok() ? std::string() : spec.status().message();
      })
      ->group(kNet);
  app->add_flag("--no-mirror-list", o->no_mirror_list,
                "Do not read NAME.mirrors (the mirror list published next to the index)")
      ->group(kNet);
  app->add_option("--connections", o->connections,
                  "Transfers in flight at once per mirror (default 16)")
      ->check(CLI::Range(1, 256))
      ->group(kNet);
  app->add_flag("--http2", o->http2,
                "Offer HTTP/2 to every server (multiplexes transfers on one connection)")
      ->group(kNet);
  app->add_option("--proxy", o->proxy,
                  "HTTP proxy URL for every transfer (default: $http_proxy, $https_proxy, "
                  "$all_proxy, honouring $no_proxy)")
      ->group(kNet);
  app->add_option("--cacert", o->cacert,
                  "CA certificates (PEM) to verify HTTPS servers with "
                  "(default: the system's); certificates are always verified")
      ->check(CLI::ExistingFile)
      ->group(kNet);
  app->add_option("--header", o->headers,
                  "Extra HTTP request header 'Name: value', e.g. a token; repeatable")
      ->check([](const std::string& h) {
        size_t colon = h.find(':');
        if (colon == std::string::npos || colon == 0 ||
            h.find_first_of("\r\n") != std::string::npos)
          return std::string("header must look like 'Name: value'");
        return std::string();
      })
      ->group(kNet);
  app->add_option("--retries", o->retries,
                  "Attempts for a failing transfer before its read fails (default 0: keep trying, "
                  "with back-off, until the server answers or --io-timeout passes)")
      ->check(CLI::Range(0, 1000000))
      ->group(kNet);
  app->add_option("--io-timeout", o->io_timeout,
                  "Seconds a read may wait for the network before it fails with EIO "
                  "(default 0: wait, as a root file system needs)")
      ->check(CLI::Range(0, 86400))
      ->group(kNet);
  app->add_option(
         "--stall-timeout", o->stall_timeout,
         "Seconds without a byte after which a transfer is abandoned and retried (default 10)")
      ->check(CLI::Range(1, 3600))
      ->group(kNet);
  AddTrustOptions(app, &o->trust);
  app->add_flag("-v,--verbose", o->verbose, "Log retries, mirror changes and cache decisions");
  app->add_option("--log", o->log_file,
                  "Append log lines to this file instead of stderr "
                  "(useful with --daemon, which detaches from the terminal)");
}

void AddTrustOptions(CLI::App* app, TrustCliOptions* o) {
  const char* kTrust = "Trust";
  o->dir = trust::kDefaultTrustDir;
  app->add_option("--trust", o->keys,
                  "Trust this Ed25519 public key (KEY.pub from `hloop key generate`); repeatable. "
                  "With any trusted key, an index must be signed (NAME.idx.sig) and a channel "
                  "signed, unexpired and not older than one seen before, or it is refused")
      ->check(CLI::ExistingFile)
      ->group(kTrust);
  app->add_option("--trust-dir", o->dir,
                  std::string("Also trust every *.pub in this directory (default ") +
                      trust::kDefaultTrustDir + "; a missing directory trusts nothing)")
      ->group(kTrust);
  app->add_flag("--require-fresh", o->require_fresh,
                "When no server is reachable, refuse the cached copy of a channel instead of "
                "serving it past its expiry")
      ->group(kTrust);
}

std::string TrustStateDir(const std::string& cache_dir) { return cache_dir + "/trust"; }

Result<disk::TrustOptions> MakeTrustOptions(const TrustCliOptions& o,
                                            const std::string& state_dir) {
  auto keys = std::make_shared<trust::TrustSet>();
  for (const auto& path : o.keys) {
    Status st = keys->AddFile(path);
    if (!st.ok()) return st.Annotate("--trust");
  }
  if (!o.dir.empty()) {
    Status st = keys->AddDirectory(o.dir);
    if (!st.ok()) return st.Annotate("--trust-dir");
  }
  disk::TrustOptions t;
  t.keys = std::move(keys);
  t.require_fresh = o.require_fresh;
  t.state_dir = state_dir;
  return t;
}

void AnnounceVersion(const disk::ImageVersion& v) {
  std::string what = v.index_name;
  if (v.channel)
    what += " (channel " + v.channel_name + ", sequence " + std::to_string(v.sequence) + ")";
  if (v.authenticated) {
    LogInfo(v.url + ": serving " + what + ", signed by trusted key " + v.key_id);
  } else {
    LogWarn(v.url + ": serving " + what +
            ", which is not authenticated: no trusted key is configured (--trust KEY.pub, "
            "--trust-dir)");
  }
}

void AddProfileOptions(CLI::App* app, ImageCliOptions* o) {
  const char* kProfile = "Boot profile";
  o->profile_options = true;
  auto* profile =
      app->add_option(
             "--profile", o->profile,
             "Prefetch the chunks holding the blocks of this boot profile (file or URL) in the "
             "background, in the order they were read when it was recorded (default: "
             "NAME.profile next to the index, when there is one)")
          ->group(kProfile);
  app->add_flag("--no-profile", o->no_profile, "Do not prefetch NAME.profile")
      ->group(kProfile)
      ->excludes(profile);
  app->add_option(
         "--record-profile", o->record_profile,
         "Record the image blocks (4 KiB) read, in order with their times, into this file "
         "(written when the image is closed, e.g. at unmount); publish it as NAME.profile, "
         "or give it to hloop relayout")
      ->group(kProfile);
}

CLI::Option* AddOverlayOptions(CLI::App* app, OverlayCliOptions* o) {
  const char* kOverlay = "Overlay";
  auto* opt =
      app->add_option(
             "--overlay", o->path,
             "Copy-on-write overlay file: writes go there (created if missing, bound to this "
             "image version), reads of written blocks come from it; the image, its store and "
             "the cache are never written")
          ->group(kOverlay);
  app->add_flag(
         "--force", o->force,
         "Use the overlay even though it was made on another version of the image (same size)")
      ->group(kOverlay)
      ->needs(opt);
  return opt;
}

Result<std::unique_ptr<overlay::OverlayDevice>> OpenOverlay(const OverlayCliOptions& o,
                                                            disk::ImageDevice& image,
                                                            const std::string& url, bool create) {
  if (o.path.empty()) return std::unique_ptr<overlay::OverlayDevice>();
  overlay::BaseIdentity id{image.index().digest(), disk::ImageName(image.index(), url)};
  overlay::OverlayOptions opts;
  opts.create = create;
  opts.force = o.force;
  return overlay::OverlayDevice::Open(o.path, image, id, opts);
}

Result<disk::OpenOptions> MakeOpenOptions(const ImageCliOptions& o, bool with_cache_default) {
  if (o.verbose) SetLogLevel(LogLevel::kInfo);
  if (!o.log_file.empty() && !SetLogFile(o.log_file))
    return Status::FromErrno(errno, "log file " + o.log_file);
  disk::OpenOptions opts;
  opts.fetch.max_attempts = o.retries;
  opts.fetch.io_timeout_s = o.io_timeout;
  opts.fetch.stall_timeout_s = o.stall_timeout;
  opts.fetch.max_inflight = o.connections;
  opts.fetch.http2 = o.http2;
  opts.fetch.proxy = o.proxy;
  opts.fetch.cacert = o.cacert;
  opts.fetch.headers = o.headers;
  for (const auto& m : o.mirrors) {
    auto spec = fetch::ParseMirrorSpec(m);
    if (!spec.ok()) return spec.status();
    opts.mirrors.push_back(std::move(spec.value()));
  }
  opts.mirror_list = !o.no_mirror_list;
  opts.image.workers = o.workers;
  if (o.readahead >= 0) {
    opts.image.readahead_chunks = unsigned(o.readahead);
    opts.image.adaptive_readahead = false;
  }
  auto cluster = ParseSize(o.cluster);
  if (!cluster.ok()) return cluster.status();
  opts.image.cluster_max_bytes = *cluster;
  opts.no_profile = !o.profile_options || o.no_profile;
  opts.profile = o.profile;
  opts.record_profile = o.record_profile;
  if (!o.profile.empty() && o.no_profile)
    return Status::InvalidArgument("--profile and --no-profile exclude each other");
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
    auto reserve = ParseSize(o.cache_reserve);
    if (!reserve.ok()) return reserve.status();
    c.reserve_bytes = *reserve;
    opts.cache = c;
  }
  auto trust = MakeTrustOptions(o.trust, TrustStateDir(dir.empty() ? DefaultCacheDir() : dir));
  if (!trust.ok()) return trust.status();
  opts.trust = std::move(trust.value());
  return opts;
}

int Fail(const Status& st) { return Fail(st.message().empty() ? st.ToString() : st.message()); }

int FailDetached(Daemonizer& daemon, const Status& st) {
  if (!daemon.active()) return Fail(st);
  daemon.Failed(st.message());
  return kExitFailure;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "hloop: %s\n", message.c_str());
  return kExitFailure;
}

Progress::Progress(std::string label)
    : label_(std::move(label)), tty_(::isatty(2)), start_(Now()) {}
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

std::string JsonText(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {
int g_argc = 0;
char** g_argv = nullptr;

// systemd spares processes whose argv[0] starts with '@' when it kills
// everything at shutdown. Re-executes hloop as "@hloop ..." (readable in ps);
// where that is impossible (no /proc), overwrites the first character.
void MarkRootStorage() {
  if (!g_argv || !g_argv[0] || g_argv[0][0] == '@') return;
  std::vector<std::string> args(g_argv, g_argv + g_argc);
  args[0] = "@" + args[0];
  std::vector<char*> exec_argv;
  for (std::string& a : args) exec_argv.push_back(a.data());
  exec_argv.push_back(nullptr);
  ::execv("/proc/self/exe", exec_argv.data());
  g_argv[0][0] = '@';  // execv failed
}
}  // namespace

void SetArgs(int argc, char** argv) {
  g_argc = argc;
  g_argv = argv;
}

void AddRootOptions(CLI::App* app, RootCliOptions* o) {
  const char* kRoot = "Root file system";
  app->add_option("--chroot", o->chroot_dir,
                  "Change the root directory to DIR once started, so that the daemon keeps "
                  "its files when the system switches root (the initramfs boot keeps DIR on "
                  "/run, which moves with the switch). Every path given (mount point, --cache, "
                  "--overlay, --trust, --log...) must lie inside DIR; defaults (--trust-dir, "
                  "the cache) are then read inside DIR")
      ->check(CLI::ExistingDirectory)
      ->group(kRoot);
  app->add_flag("--root-storage", o->root_storage,
                "This daemon serves the root file system: mark it as systemd's root-storage "
                "daemons are marked (argv[0] starts with '@') so that shutdown does not kill "
                "it before the root is remounted read-only")
      ->group(kRoot);
}

std::vector<std::string*> ImagePaths(ImageCliOptions* o, std::string* url) {
  // Paths and file:// URLs; other URLs are not touched by a chroot.
  auto local = [](const std::string& s) {
    return s.find("://") == std::string::npos || s.rfind("file://", 0) == 0;
  };
  std::vector<std::string*> paths = {&o->cache_dir, &o->log_file, &o->cacert, &o->record_profile};
  for (std::string& k : o->trust.keys) paths.push_back(&k);
  if (o->trust.dir != trust::kDefaultTrustDir) paths.push_back(&o->trust.dir);
  if (local(o->profile)) paths.push_back(&o->profile);
  if (url && local(*url)) paths.push_back(url);
  return paths;
}

Status EnterRoot(const RootCliOptions& o, const std::vector<std::string*>& paths) {
  // First: the re-execution starts this command again from the beginning.
  if (o.root_storage) MarkRootStorage();
  if (!o.chroot_dir.empty()) {
    for (std::string* p : paths) {
      if (p->empty()) continue;
      const std::string scheme = p->rfind("file://", 0) == 0 ? "file://" : "";
      auto inside = PathInside(o.chroot_dir, p->substr(scheme.size()));
      if (!inside.ok())
        return Status::InvalidArgument("--chroot " + o.chroot_dir + ": '" + *p +
                                       "' is outside it; every path must lie inside");
      *p = scheme + *inside;
    }
    if (::chroot(o.chroot_dir.c_str()) != 0)
      return Status::FromErrno(errno, "chroot " + o.chroot_dir);
    if (::chdir("/") != 0) return Status::FromErrno(errno, "chdir / after chroot");
  }
  return Status::Ok();
}

}  // namespace hloop::cli
