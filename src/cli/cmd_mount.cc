// hloop mount URL MOUNTPOINT: show the image as a file, fetched lazily;
// writable through a copy-on-write overlay with --overlay FILE.
#include <chrono>

#include "cli/common.h"
#include "disk/stats_json.h"
#include "disk/version_watch.h"
#include "frontends/fuse/fuse_file.h"
#include "server/stop_signals.h"
#include "util/daemon.h"
#include "util/size.h"

namespace hloop::cli {

namespace {
struct MountArgs {
  std::string url, mountpoint;
  bool daemon = false, debug = false;
  unsigned threads = 16;
  std::string kernel_readahead = "4M";
  ImageCliOptions image;
  OverlayCliOptions overlay;
  RootCliOptions root;
};

int RunMount(MountArgs& a) {
  std::vector<std::string*> paths = ImagePaths(&a.image, &a.url);
  paths.insert(paths.end(), {&a.mountpoint, &a.overlay.path});
  if (Status st = EnterRoot(a.root, paths); !st.ok()) return Fail(st);
  auto opts = MakeOpenOptions(a.image, /*with_cache_default=*/true);
  if (!opts.ok()) return Fail(opts.status());
  Daemonizer daemon;
  if (a.daemon) daemon.Start();  // before any thread exists
  // The first thread. Every later one (fetches, FUSE) has the stop signals
  // blocked, so none can cut the shutdown below short.
  server::StopSignals signals;
  auto fail = [&](const Status& st) { return FailDetached(daemon, st); };
  auto device = disk::OpenImage(a.url, *opts);
  if (!device.ok()) return fail(device.status());
  AnnounceVersion((*device)->version());
  disk::VersionWatch watch((*device)->version(), opts->fetch, opts->trust);
  auto overlay = OpenOverlay(a.overlay, **device, a.url);
  if (!overlay.ok()) return fail(overlay.status());
  BlockDevice& served = *overlay ? static_cast<BlockDevice&>(**overlay) : **device;
  fuse::FuseOptions f;
  f.mountpoint = a.mountpoint;
  f.file_name = disk::ImageName((*device)->index(), a.url);
  f.max_threads = a.threads;
  f.readahead_kb = unsigned(ParseSize(a.kernel_readahead).value() / 1024);
  f.debug = a.debug;
  f.on_ready = [&] { daemon.Ready(); };
  const auto started = std::chrono::steady_clock::now();
  f.stats = [&] {
    double up = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    nlohmann::json j = disk::ImageStatsJson(**device, a.url, up);
    j["version"]["latest"] = watch.Json();
    if (*overlay) {
      overlay::OverlayStats os = (*overlay)->stats();
      j["overlay"] = {{"path", (*overlay)->path()},
                      {"data_blocks", os.data_blocks},
                      {"zero_blocks", os.zero_blocks}};
    }
    // Paths are bytes, JSON text is UTF-8: replace what is not (dump would
    // throw inside the FUSE callback).
    return JsonText(j);
  };
  fuse::FuseMount mount(served, f);
  Status st = mount.Mount();
  if (!st.ok()) return fail(st);
  signals.OnStop([&] { mount.Stop(); });
  st = mount.Run();
  signals.Finishing();
  if (!st.ok()) return Fail(st);
  // Unmounted: make every write durable (the kernel has sent them all).
  // Then the image writes its recorded profile as it closes. A signal now
  // (a service manager's SIGTERM right after `fusermount -u`) is only logged.
  if (*overlay) {
    st = (*overlay)->Flush();
    if (!st.ok()) return Fail(st);
  }
  return kExitOk;
}
}  // namespace

Command MountCommand() {
  return {
      "mount",
      "Mount an image as a file, fetching chunks as they are read (writable with --overlay)",
      [](CLI::App* app) -> std::function<int()> {
        auto a = std::make_shared<MountArgs>();
        app->add_option("URL", a->url,
                        "Index or channel (NAME.channel): http(s):// or file:// URL, or a path")
            ->required();
        app->add_option("MOUNTPOINT", a->mountpoint, "Directory where the image file appears")
            ->required()
            ->check(CLI::ExistingDirectory);
        AddImageOptions(app, &a->image, /*with_cache_default=*/true);
        AddProfileOptions(app, &a->image);
        AddOverlayOptions(app, &a->overlay);
        AddRootOptions(app, &a->root);
        app->add_flag("--daemon", a->daemon, "Detach once the mount is ready");
        app->add_option("--threads", a->threads, "FUSE request threads (default 16)")
            ->check(CLI::Range(1, 256));
        app->add_option("--kernel-readahead", a->kernel_readahead,
                        "Kernel read-ahead for the mount (default 4M; 0 keeps the kernel's 128K)")
            ->check(SizeValidator());
        app->add_flag("--fuse-debug", a->debug, "Print every FUSE request");
        app->footer(
            "The image appears as MOUNTPOINT/NAME; attach it with `losetup -r` or\n"
            "`mount -o loop,ro`. With --overlay it is writable (`losetup`, `mount -o loop`):\n"
            "writes land in the overlay file, fsync makes them durable, `hloop commit` turns\n"
            "them into a new image version. Stays in the foreground until unmounted (umount "
            "MOUNTPOINT)\n"
            "or signalled (SIGINT/SIGTERM/SIGHUP unmount cleanly). Every chunk is checked against\n"
            "its SHA-256 before use; a chunk that stays wrong fails its reads with EIO.\n"
            "`hloop stats MOUNTPOINT` shows what the mount is doing.");
        return [a] { return RunMount(*a); };
      }};
}

}  // namespace hloop::cli
