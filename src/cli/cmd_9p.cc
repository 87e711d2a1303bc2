// hloop 9p: export host directories over 9P2000.L (for QEMU guests and other
// v9fs clients).
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <thread>

#include "cli/common.h"
#include "frontends/p9/p9_dirfs.h"
#include "frontends/p9/p9_server.h"
#include "util/daemon.h"
#include "util/log.h"

namespace hloop::cli {

namespace {
struct NinePArgs {
  std::string listen, socket, log_file;
  std::vector<std::string> exports;
  bool read_only = false, daemon = false, verbose = false;
  unsigned threads = 16;
};

// "NAME=DIR" or "DIR" (then named by its absolute path, as diod's anames are).
std::pair<std::string, std::string> SplitExport(const std::string& spec) {
  size_t eq = spec.find('=');
  if (eq != std::string::npos && eq > 0 && spec.substr(0, eq).find('/') == std::string::npos)
    return {spec.substr(0, eq), spec.substr(eq + 1)};
  std::error_code ec;
  std::string abs = std::filesystem::absolute(spec, ec).lexically_normal().string();
  return {ec ? spec : abs, spec};
}

int Run9P(const NinePArgs& a) {
  if (a.listen.empty() == a.socket.empty()) {
    Fail("give one of --listen HOST:PORT and --socket PATH");
    return kExitUsage;
  }
  std::string host;
  int port = 0;
  if (!a.listen.empty()) {
    size_t colon = a.listen.rfind(':');
    if (colon == std::string::npos) {
      Fail("--listen " + a.listen + ": expected HOST:PORT");
      return kExitUsage;
    }
    host = a.listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    try {
      port = std::stoi(a.listen.substr(colon + 1));
    } catch (...) {
      port = -1;
    }
    if (port < 0 || port > 65535) {
      Fail("--listen " + a.listen + ": bad port");
      return kExitUsage;
    }
  }
  if (a.verbose) SetLogLevel(LogLevel::kDebug);
  if (!a.log_file.empty() && !SetLogFile(a.log_file)) return Fail(Status::FromErrno(errno, "log file " + a.log_file));

  Daemonizer daemon;
  if (a.daemon) daemon.Start();  // before any thread exists
  auto fail = [&](const Status& st) {
    daemon.Failed(st.message());
    return Fail(st);
  };
  std::vector<p9::Export> exports;
  std::vector<std::string> shown;
  for (const std::string& spec : a.exports) {
    auto [name, dir] = SplitExport(spec);
    auto fs = p9::DirFs::Open(dir, p9::DirFsOptions{a.read_only});
    if (!fs.ok()) return fail(fs.status());
    exports.push_back({name, *fs});
    shown.push_back(a.exports.size() == 1 ? dir : name + "=" + dir);
  }
  // Each fid holds a descriptor: allow as many as the hard limit does.
  rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  // Signals are taken by one thread with sigwait; every other thread
  // (started below) inherits the blocked mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  p9::ServerOptions o;
  o.workers = a.threads;
  p9::Server server(std::move(exports), o);
  std::string where;
  if (!a.socket.empty()) {
    Status st = server.ListenUnix(a.socket);
    if (!st.ok()) return fail(st);
    where = "unix " + a.socket;
  } else {
    auto bound = server.ListenTcp(host, port);
    if (!bound.ok()) return fail(bound.status());
    where = "tcp " + *bound;
  }
  // The client applies its own umask; modes arrive as they should be made.
  ::umask(0);
  for (const std::string& s : shown) std::printf("serving %s on %s\n", s.c_str(), where.c_str());
  std::fflush(stdout);
  std::thread waiter([set, &server] {
    int sig = 0;
    sigwait(&set, &sig);
    server.Stop();
  });
  waiter.detach();
  daemon.Ready();
  Status st = server.Run();
  if (!st.ok()) return Fail(st);
  return kExitOk;
}
}  // namespace

Command NinePCommand() {
  return {"9p", "Export host directories over 9P2000.L (for QEMU guests and other v9fs clients)",
          [](CLI::App* app) -> std::function<int()> {
            auto a = std::make_shared<NinePArgs>();
            app->add_option("--listen", a->listen, "HOST:PORT to listen on (port 0 picks one; 564 is 9P's)");
            app->add_option("--socket", a->socket, "Unix socket to listen on instead (mode 0600)");
            app->add_option("--export", a->exports,
                            "Directory to export: DIR, or NAME=DIR to be chosen by aname=NAME; repeatable. "
                            "With one export every aname reaches it")
                ->required();
            app->add_flag("--read-only", a->read_only, "Refuse every change with EROFS");
            app->add_flag("--daemon", a->daemon, "Detach once listening");
            app->add_option("--threads", a->threads, "Threads running requests, for all clients (default 16)")
                ->check(CLI::Range(1, 256));
            app->add_flag("-v,--verbose", a->verbose, "Log connections and refused messages");
            app->add_option("--log", a->log_file, "Append log lines to this file instead of stderr");
            app->footer(
                "In a guest (QEMU user networking reaches the host's 127.0.0.1 as 10.0.2.2):\n"
                "  mount -t 9p -o trans=tcp,port=PORT,version=9p2000.L,aname=NAME HOST /mnt\n"
                "Nothing outside an export is reachable: not by '..', not by names with '/', not\n"
                "through symbolic links (they are never followed on the server). Running as root,\n"
                "new files belong to the attaching user (the client's uid) and the group the\n"
                "client asks for; otherwise to the server's user. Permissions are checked by the\n"
                "client; anyone who can connect can change what the server's user can in the\n"
                "export: bind to 127.0.0.1 or use --read-only. Stops on SIGINT or SIGTERM.");
            return [a] { return Run9P(*a); };
          }};
}

}  // namespace hloop::cli
