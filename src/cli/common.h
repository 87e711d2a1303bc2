// What the subcommands share: the command table entry, options for opening
// an image (cache, fetching), and turning a Status into a message and an
// exit code. No logic of the tool lives in cli/.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "disk/open_image.h"
#include "overlay/overlay_device.h"
#include "util/daemon.h"
#include "util/duration.h"
#include "util/status.h"

namespace hloop::cli {

// Exit codes: 0 success, 1 failure, 2 usage error.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct Command {
  const char* name;
  const char* summary;
  // Declares the subcommand's options on `app`; returns the function that
  // runs it once they are parsed.
  std::function<std::function<int()>(CLI::App* app)> setup;
};

// --trust, --trust-dir, --require-fresh: which keys an image must be signed
// by (every command that opens an image, and `info`).
struct TrustCliOptions {
  std::vector<std::string> keys;  // public key files
  std::string dir;                // every *.pub in it is trusted
  bool require_fresh = false;
};
void AddTrustOptions(CLI::App* app, TrustCliOptions* o);
// `state_dir`: where channel sequence numbers are remembered.
Result<disk::TrustOptions> MakeTrustOptions(const TrustCliOptions& o, const std::string& state_dir);
// The directory of channel sequence numbers under a cache directory.
std::string TrustStateDir(const std::string& cache_dir);
// Says on stderr, once, which version `url` is and whether it is
// authenticated (a warning when it is not).
void AnnounceVersion(const disk::ImageVersion& v);

// Options of every command that reads an image (mount, cat, fetch, ...).
struct ImageCliOptions {
  TrustCliOptions trust;
  std::string cache_dir;  // empty: the default for the command
  std::string cache_size = "4G";
  std::string cache_reserve = "256M";
  unsigned workers = 16;
  int readahead = -1;  // -1: adaptive
  std::string cluster = "1M";
  std::string memory_cache = "64M";
  int retries = 0;
  int io_timeout = 0;
  int stall_timeout = 10;
  bool verbose = false;
  std::string log_file;
  // Network
  std::vector<std::string> mirrors;
  bool no_mirror_list = false;
  unsigned connections = 16;
  bool http2 = false;
  std::string proxy, cacert;
  std::vector<std::string> headers;
  // Boot profile (only where AddProfileOptions was called)
  bool profile_options = false;
  std::string profile, record_profile;
  bool no_profile = false;
};

// `with_cache_default`: whether a cache is used when --cache is not given.
void AddImageOptions(CLI::App* app, ImageCliOptions* o, bool with_cache_default);
// --profile, --no-profile, --record-profile (mount, nbd).
void AddProfileOptions(CLI::App* app, ImageCliOptions* o);
// REQUIRES: AddImageOptions was called for `o`.
Result<disk::OpenOptions> MakeOpenOptions(const ImageCliOptions& o, bool with_cache_default);
// $HLOOP_CACHE, else /var/cache/hloop for root, else ~/.cache/hloop.
std::string DefaultCacheDir();

// --overlay FILE and --force: a persistent copy-on-write layer over the image
// (mount, nbd, commit).
struct OverlayCliOptions {
  std::string path;  // empty: no overlay
  bool force = false;
};
// Returns the --overlay option, for commands that make it required.
CLI::Option* AddOverlayOptions(CLI::App* app, OverlayCliOptions* o);
// Opens the overlay asked for over `image`, which was opened from `url` and
// must outlive it; null if no --overlay was given. `create`: make the file
// if it does not exist (bound to this image).
Result<std::unique_ptr<overlay::OverlayDevice>> OpenOverlay(const OverlayCliOptions& o,
                                                            disk::ImageDevice& image,
                                                            const std::string& url,
                                                            bool create = true);

// --chroot DIR and --root-storage: what a daemon that serves the machine's
// own root file system needs to outlive the initramfs (docs/netboot.md).
struct RootCliOptions {
  std::string chroot_dir;  // empty: stay where started
  bool root_storage = false;
};
void AddRootOptions(CLI::App* app, RootCliOptions* o);
// Applies `o`: with --chroot, rewrites every non-empty path in `paths` to
// what it is inside DIR (InvalidArgument, naming it, if one is outside), then
// changes the root directory to DIR; with --root-storage, marks the process
// as systemd's root-storage daemons are marked (argv[0][0] = '@': hloop
// executes itself again as "@hloop ..."; see SetArgs). Call before anything
// opens a file or starts a thread.
Status EnterRoot(const RootCliOptions& o, const std::vector<std::string*>& paths);
// The paths of `o` (and `url`, when it is a path or file:// URL) that
// EnterRoot must rewrite; defaults are left alone.
std::vector<std::string*> ImagePaths(ImageCliOptions* o, std::string* url);
// main() hands over its arguments, which --root-storage executes again.
void SetArgs(int argc, char** argv);

// A CLI11 validator for sizes with K/M/G/T suffixes.
CLI::Validator SizeValidator();
// Sizes that are a power of two from 4K to 4M.
CLI::Validator ChunkSizeValidator();

// Prints "hloop: <message>" on stderr and returns kExitFailure.
int Fail(const Status& st);
// The same for a command that may have detached with --daemon: the waiting
// parent prints the message (once), the child only reports it.
int FailDetached(Daemonizer& daemon, const Status& st);
int Fail(const std::string& message);

// A one-line progress bar on stderr, drawn only when stderr is a terminal.
class Progress {
 public:
  explicit Progress(std::string label);
  ~Progress();
  void Update(uint64_t done, uint64_t total);
  void Done();

 private:
  std::string label_;
  bool tty_;
  bool drawn_ = false;
  double start_;
};

// JSON text for output; strings that are not UTF-8 (a file name, an overlay
// path) come out with U+FFFD instead of throwing. `indent` < 0: one line.
std::string JsonText(const nlohmann::json& j, int indent = -1);

}  // namespace hloop::cli
