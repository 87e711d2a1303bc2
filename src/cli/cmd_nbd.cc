// hloop nbd URL (--socket PATH | --listen HOST:PORT): serve the image over
// NBD, fetched lazily, to qemu, nbdcopy, nbdinfo or nbd-client.
#include <chrono>
#include <cstdio>

#include "cli/common.h"
#include "disk/stats_json.h"
#include "disk/version_watch.h"
#include "frontends/nbd/nbd_server.h"
#include "server/host_port.h"
#include "server/stop_signals.h"
#include "util/daemon.h"
#include "util/file.h"

namespace hloop::cli {

namespace {
struct NbdArgs {
  std::string url, socket_path, listen, stats_file;
  bool read_only = false, daemon = false;
  unsigned threads = 16;
  ImageCliOptions image;
  OverlayCliOptions overlay;
};

int RunNbd(NbdArgs& a) {
  if (!a.listen.empty()) {
    auto where = server::ParseHostPort(a.listen);
    if (!where.ok()) {
      Fail(where.status().Annotate("--listen"));
      return kExitUsage;
    }
  }
  auto opts = MakeOpenOptions(a.image, /*with_cache_default=*/true);
  if (!opts.ok()) return Fail(opts.status());
  Daemonizer daemon;
  if (a.daemon) daemon.Start();  // before any thread exists
  server::StopSignals signals;   // the first thread
  auto fail = [&](const Status& st) { return FailDetached(daemon, st); };
  auto device = disk::OpenImage(a.url, *opts);
  if (!device.ok()) return fail(device.status());
  AnnounceVersion((*device)->version());
  auto overlay = OpenOverlay(a.overlay, **device, a.url);
  if (!overlay.ok()) return fail(overlay.status());
  BlockDevice& served = *overlay ? static_cast<BlockDevice&>(**overlay) : **device;
  nbd::NbdServerOptions n;
  n.socket_path = a.socket_path;
  n.listen = a.listen;
  n.export_name = disk::ImageName((*device)->index(), a.url);
  n.read_only = a.read_only;
  n.threads = a.threads;
  const auto started = std::chrono::steady_clock::now();
  nbd::NbdServer server(served, n);
  Status st = server.Listen();
  if (!st.ok()) return fail(st);
  signals.OnStop([&] { server.Stop(); });
  std::printf("serving %s on %s\n", n.export_name.c_str(), server.uri().c_str());
  std::fflush(stdout);
  daemon.Ready();
  server.Run();
  signals.Finishing();
  // Stopped: make every acknowledged write durable, flushed or not. Signals
  // stay blocked: none cuts this (or the recorded profile the image writes
  // when it closes) short.
  if (*overlay) {
    st = (*overlay)->Flush();
    if (!st.ok()) return Fail(st);
  }
  if (!a.stats_file.empty()) {
    double up = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    nlohmann::json j = disk::ImageStatsJson(**device, a.url, up);
    j["version"]["latest"] =
        disk::VersionWatch((*device)->version(), opts->fetch, opts->trust).Json();
    std::string json = JsonText(j, 2) + "\n";
    st = WriteFileAtomic(a.stats_file, json.data(), json.size(), Sync::kNone);
    if (!st.ok()) return Fail(st.Annotate("--stats-file"));
  }
  return kExitOk;
}
}  // namespace

Command NbdCommand() {
  return {
      "nbd",
      "Serve an image over NBD (qemu, nbdcopy, nbd-client), fetching chunks as they are read",
      [](CLI::App* app) -> std::function<int()> {
        auto a = std::make_shared<NbdArgs>();
        app->add_option("URL", a->url,
                        "Index or channel (NAME.channel): http(s):// or file:// URL, or a path")
            ->required();
        auto* where = app->add_option_group("Listen", "Where clients connect (one of these)");
        where->add_option("--socket", a->socket_path,
                          "Unix socket to listen on (created; removed at exit)");
        where->add_option("--listen", a->listen,
                          "TCP address HOST:PORT to listen on (port 0: any free port, printed)");
        where->require_option(1);
        app->add_flag("--read-only", a->read_only,
                      "Refuse writes even if the device could take them");
        AddImageOptions(app, &a->image, /*with_cache_default=*/true);
        AddProfileOptions(app, &a->image);
        AddOverlayOptions(app, &a->overlay);
        app->add_flag("--daemon", a->daemon, "Detach once the server is listening");
        app->add_option("--threads", a->threads,
                        "Requests executed at once, over all connections (default 16)")
            ->check(CLI::Range(1, 1024));
        app->add_option(
            "--stats-file", a->stats_file,
            "When the server stops, write its statistics there (the JSON of `hloop stats --json`)");
        app->footer(
            "Serves one export, under any name, until SIGINT, SIGTERM or SIGHUP (which finish the\n"
            "requests in flight, close the connections and remove the socket file). Prints\n"
            "\"serving NAME on URI\" once clients may connect. Without --overlay the export is\n"
            "read-only (writes fail with EPERM); with it, writes go to the overlay file and FLUSH\n"
            "or FUA make them durable. Zero chunks are holes (nbdinfo --map, sparse nbdcopy). "
            "Several\n"
            "connections may share it (CAN_MULTI_CONN); every chunk is checked against its\n"
            "SHA-256, and a chunk that stays wrong fails its reads with EIO.\n"
            "\n"
            "Examples:\n"
            "  hloop nbd http://server/debian.idx --socket /run/debian.sock --daemon\n"
            "  nbdinfo 'nbd+unix:///?socket=/run/debian.sock'\n"
            "  nbdcopy 'nbd+unix:///?socket=/run/debian.sock' debian.img\n"
            "  qemu-system-x86_64 -drive "
            "file=nbd+unix:///?socket=/run/debian.sock,format=raw,snapshot=on\n"
            "  hloop nbd http://server/debian.idx --listen 127.0.0.1:10809\n"
            "  qemu-img info nbd://127.0.0.1:10809");
        return [a] { return RunNbd(*a); };
      }};
}

}  // namespace hloop::cli
