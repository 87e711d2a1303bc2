// hloop fetch URL --cache DIR: fill the cache so that later mounts work
// without the network.
#include <atomic>
#include <thread>

#include "cli/common.h"
#include "util/mutex.h"
#include "util/size.h"

namespace hloop::cli {

namespace {
struct FetchArgs {
  std::string url;
  bool all = false;
  unsigned jobs = 8;
  ImageCliOptions image;
};

int RunFetch(FetchArgs& a) {
  auto opts = MakeOpenOptions(a.image, /*with_cache_default=*/true);
  if (!opts.ok()) return Fail(opts.status());
  opts->image.workers = 0;                      // this command drives its own threads
  auto device = disk::OpenImage(a.url, *opts);  // caches the index
  if (!device.ok()) return Fail(device.status());
  AnnounceVersion((*device)->version());
  disk::ImageDevice& dev = **device;
  if (!a.all) {
    std::printf("cached the index of %s in %s\n", a.url.c_str(), opts->cache->dir.c_str());
    return kExitOk;
  }
  const uint64_t count = dev.index().chunk_count();
  std::atomic<uint64_t> next{0}, done_bytes{0}, failed{0};
  Mutex mu;
  std::string first_error;  // guarded by mu
  auto worker = [&] {
    for (uint64_t i; (i = next++) < count;) {
      Status st = dev.EnsureCached(i);
      done_bytes += dev.index().chunk_length(i);
      if (!st.ok()) {
        failed++;
        MutexLock lock(&mu);
        if (first_error.empty()) first_error = st.ToString();
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < std::max(1u, a.jobs); t++) pool.emplace_back(worker);
  Progress bar("fetch");
  while (next < count) {
    bar.Update(done_bytes, dev.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (auto& t : pool) t.join();
  bar.Done();
  if (failed)
    return Fail(std::to_string(failed.load()) +
                " chunks could not be fetched; first: " + first_error);
  auto cs = dev.disk_cache()->stats();
  auto is = dev.stats();
  std::printf("cached all %llu chunks of %s: %llu fetched (%s), cache holds %s\n",
              (unsigned long long)count, a.url.c_str(), (unsigned long long)is.chunks_fetched,
              FormatSize(is.bytes_fetched).c_str(), FormatSize(cs.used_bytes).c_str());
  if (cs.skipped_for_space)
    return Fail(std::to_string(cs.skipped_for_space) +
                " chunks did not fit in the cache (see --cache-size)");
  return kExitOk;
}
}  // namespace

Command FetchCommand() {
  return {
      "fetch", "Fill the local cache with an image's index (and with --all, every chunk)",
      [](CLI::App* app) -> std::function<int()> {
        auto a = std::make_shared<FetchArgs>();
        app->add_option("URL", a->url, "Index or channel (NAME.channel): http(s):// or file:// URL, or a path")
            ->required();
        AddImageOptions(app, &a->image, /*with_cache_default=*/true);
        app->add_flag("--all", a->all, "Fetch every chunk, so the image can be mounted offline");
        app->add_option("-j,--jobs", a->jobs, "Parallel transfers (default 8)")
            ->check(CLI::Range(1, 256));
        return [a] { return RunFetch(*a); };
      }};
}

}  // namespace hloop::cli
