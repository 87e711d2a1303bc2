// hloop 9p: export host directories (--export) and the ext2/3/4 file systems
// of hloop images (--image, read-only, fetched lazily) over 9P2000.L, for QEMU
// guests and other v9fs clients.
#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <set>

#include "cli/common.h"
#include "frontends/p9/p9_server.h"
#include "frontends/p9fs/p9_dirfs.h"
#include "frontends/p9fs/p9_extfs.h"
#include "server/host_port.h"
#include "server/stop_signals.h"
#include "util/daemon.h"
#include "util/log.h"

namespace hloop::cli {

namespace {
struct NinePArgs {
  std::string listen, socket;
  std::vector<std::string> exports, images;
  bool read_only = false, daemon = false;
  unsigned threads = 16;
  ImageCliOptions image;  // how --image URLs are fetched and cached; -v and --log for all
};

// "NAME=THING" or "THING" (then *name is left empty). A name has no '/' or
// ':', so a path or URL with an '=' of its own is never split.
std::string SplitName(const std::string& spec, std::string* name) {
  size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || spec.find_first_of("/:") < eq) return spec;
  *name = spec.substr(0, eq);
  return spec.substr(eq + 1);
}

// One --export DIR: named by its absolute path unless NAME= is given (as
// diod's anames are).
Result<p9::Export> OpenDirExport(const std::string& spec, bool read_only, std::string* shown) {
  std::string name;
  std::string dir = SplitName(spec, &name);
  if (name.empty()) {
    std::error_code ec;
    name = std::filesystem::absolute(dir, ec).lexically_normal().string();
    if (ec) name = dir;
  }
  auto fs = p9::DirFs::Open(dir, p9::DirFsOptions{read_only});
  if (!fs.ok()) return fs.status();
  *shown = dir;
  return p9::Export{name, *fs};
}

// One --image URL: the image, read lazily through the cache, and the file
// system in it. Named by the image's name unless NAME= is given.
Result<p9::Export> OpenImageExport(const std::string& spec, const disk::OpenOptions& opts,
                                   std::string* shown) {
  std::string name;
  std::string url = SplitName(spec, &name);
  auto image = disk::OpenImage(url, opts);
  if (!image.ok()) return image.status();
  AnnounceVersion((*image)->version());
  if (name.empty()) name = disk::ImageName((*image)->index(), url);
  std::shared_ptr<BlockDevice> device(std::move(image.value()));
  auto fs = p9::ExtFs::Open(std::move(device), url);
  if (!fs.ok()) return fs.status();
  *shown = url;
  return p9::Export{name, *fs};
}

// Every export, in the order given (--export first); `shown` gets what the
// "serving" lines name.
Status OpenExports(const NinePArgs& a, const disk::OpenOptions& opts,
                   std::vector<p9::Export>* exports, std::vector<std::string>* shown) {
  std::set<std::string> names;
  for (size_t i = 0; i < a.exports.size() + a.images.size(); i++) {
    std::string what;
    auto e = i < a.exports.size() ? OpenDirExport(a.exports[i], a.read_only, &what)
                                  : OpenImageExport(a.images[i - a.exports.size()], opts, &what);
    if (!e.ok()) return e.status();
    if (!names.insert(e->name).second)
      return Status::InvalidArgument("two exports are named " + e->name + ": name them with NAME=");
    shown->push_back(a.exports.size() + a.images.size() == 1 ? what : e->name + "=" + what);
    exports->push_back(std::move(e.value()));
  }
  return Status::Ok();
}

int Run9P(const NinePArgs& a) {
  if (a.listen.empty() == a.socket.empty()) {
    Fail("give one of --listen HOST:PORT and --socket PATH");
    return kExitUsage;
  }
  server::HostPort where;
  if (!a.listen.empty()) {
    auto parsed = server::ParseHostPort(a.listen);
    if (!parsed.ok()) {
      Fail(parsed.status().Annotate("--listen"));
      return kExitUsage;
    }
    where = *parsed;
  }
  if (a.exports.empty() && a.images.empty()) {
    Fail("give at least one --export DIR or --image URL");
    return kExitUsage;
  }
  auto opts = MakeOpenOptions(a.image, /*with_cache_default=*/true);  // also opens --log
  if (!opts.ok()) return Fail(opts.status());
  if (a.image.verbose) SetLogLevel(LogLevel::kDebug);

  Daemonizer daemon;
  if (a.daemon) daemon.Start();  // before any thread exists
  auto fail = [&](const Status& st) { return FailDetached(daemon, st); };
  server::StopSignals signals;  // the first thread
  std::vector<p9::Export> exports;
  std::vector<std::string> shown;
  Status opened = OpenExports(a, *opts, &exports, &shown);
  if (!opened.ok()) return fail(opened);
  // Each fid holds a descriptor: allow as many as the hard limit does.
  rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }

  p9::ServerOptions o;
  o.workers = a.threads;
  p9::Server server(std::move(exports), o);
  std::string listening;
  if (!a.socket.empty()) {
    Status st = server.ListenUnix(a.socket);
    if (!st.ok()) return fail(st);
    listening = "unix " + a.socket;
  } else {
    auto bound = server.ListenTcp(where);
    if (!bound.ok()) return fail(bound.status());
    listening = "tcp " + bound->ToString();
  }
  // The client applies its own umask; modes arrive as they should be made.
  ::umask(0);
  for (const std::string& s : shown)
    std::printf("serving %s on %s\n", s.c_str(), listening.c_str());
  std::fflush(stdout);
  signals.OnStop([&] { server.Stop(); });
  daemon.Ready();
  Status st = server.Run();
  signals.Finishing();
  if (!st.ok()) return Fail(st);
  return kExitOk;
}
}  // namespace

Command NinePCommand() {
  return {
      "9p",
      "Export host directories and hloop images' ext2/3/4 files over 9P2000.L (QEMU guests, v9fs)",
      [](CLI::App* app) -> std::function<int()> {
        auto a = std::make_shared<NinePArgs>();
        app->add_option("--listen", a->listen,
                        "HOST:PORT to listen on (port 0 picks one; 564 is 9P's)");
        app->add_option("--socket", a->socket, "Unix socket to listen on instead (mode 0600)");
        app->add_option(
            "--export", a->exports,
            "Directory to export: DIR, or NAME=DIR to be chosen by aname=NAME; repeatable. "
            "With one export (of either kind) every aname reaches it");
        app->add_option(
            "--image", a->images,
            "hloop image whose ext2/3/4 file system to export read-only: URL of its index or "
            "channel (http(s)://, file:// or a path), or NAME=URL; repeatable, mixes with "
            "--export. "
            "Named by the image's name unless NAME= is given");
        app->add_flag(
            "--read-only", a->read_only,
            "Refuse every change to --export directories with EROFS (an --image always does)");
        app->add_flag("--daemon", a->daemon, "Detach once listening");
        app->add_option("--threads", a->threads,
                        "Threads running requests, for all clients (default 16)")
            ->check(CLI::Range(1, 256));
        AddImageOptions(app, &a->image, /*with_cache_default=*/true);
        app->footer(
            "In a guest (QEMU user networking reaches the host's 127.0.0.1 as 10.0.2.2):\n"
            "  mount -t 9p -o trans=tcp,port=PORT,version=9p2000.L,aname=NAME HOST /mnt\n"
            "Directories: nothing outside an export is reachable: not by '..', not by names\n"
            "with '/', not through symbolic links (they are never followed on the server).\n"
            "Running as root, new files belong to the attaching user (the client's uid) and\n"
            "the group the client asks for; otherwise to the server's user. Permissions are\n"
            "checked by the client; anyone who can connect can change what the server's user\n"
            "can in the export: bind to 127.0.0.1 or use --read-only.\n"
            "Images: the files of the ext2/3/4 file system inside the image, read-only, with\n"
            "their owners, modes, times, links, device nodes and xattrs as stored. Only the\n"
            "chunks holding what clients read are fetched (verified, and kept in --cache as\n"
            "`hloop mount` does). The journal is not replayed: an image taken from a file\n"
            "system that was not cleanly unmounted is refused (run e2fsck on it first).\n"
            "  hloop 9p --listen 127.0.0.1:5640 --image http://server/debian.idx\n"
            "  hloop 9p --listen 127.0.0.1:5640 --image root=http://server/debian.idx --export "
            "work=/srv/w\n"
            "Stops on SIGINT, SIGTERM or SIGHUP.");
        return [a] { return Run9P(*a); };
      }};
}

}  // namespace hloop::cli
