// hloop fetch URL --cache DIR: fill the cache so that later mounts work
// without the network (--all), or stage the version a URL names now so that
// the next mount or boot reads nothing from the network (--update).
#include <cstdio>

#include "cli/common.h"
#include "disk/stage.h"
#include "disk/version_watch.h"
#include "util/size.h"

namespace hloop::cli {

namespace {
struct FetchArgs {
  std::string url;
  bool all = false;
  bool update = false;
  bool json = false;
  unsigned jobs = 8;
  ImageCliOptions image;
};

// "v2 (channel stable, sequence 2; index 1f0c...)": which version was staged.
std::string VersionText(const disk::ImageVersion& v) {
  std::string out = v.index_name + " (";
  if (v.channel)
    out += "channel " + v.channel_name + ", sequence " + std::to_string(v.sequence) + "; ";
  return out + "index " + format::ToHex(v.digest) + ")";
}

nlohmann::json ReportJson(const FetchArgs& a, const disk::ImageVersion& v,
                          const disk::StageReport& r, const std::string& cache_dir) {
  return {{"url", a.url},
          {"cache", cache_dir},
          {"update", a.update},
          {"version", disk::VersionJson(v)},
          {"chunks", r.chunks},
          {"raw_bytes", r.raw_bytes},
          {"stored_bytes", r.stored_bytes},
          {"fetched",
           {{"chunks", r.fetched_chunks},
            {"stored_bytes", r.fetched_stored_bytes},
            {"raw_bytes", r.fetched_raw_bytes}}},
          {"cached",
           {{"chunks", r.cached_chunks},
            {"stored_bytes", r.cached_stored_bytes},
            {"raw_bytes", r.cached_raw_bytes}}}};
}

void PrintReport(const FetchArgs& a, const disk::ImageVersion& v, const disk::StageReport& r,
                 const std::string& cache_dir) {
  if (a.update) {
    std::printf("staged %s from %s in %s\n", VersionText(v).c_str(), a.url.c_str(),
                cache_dir.c_str());
  } else {
    std::printf("cached all %llu distinct chunks of %s, %s, in %s\n", (unsigned long long)r.chunks,
                a.url.c_str(), VersionText(v).c_str(), cache_dir.c_str());
  }
  std::printf("  fetched:        %llu chunks, %s over the wire (%s raw)\n",
              (unsigned long long)r.fetched_chunks, FormatSize(r.fetched_stored_bytes).c_str(),
              FormatSize(r.fetched_raw_bytes).c_str());
  std::printf("  already cached: %llu chunks, %s raw (%s stored)\n",
              (unsigned long long)r.cached_chunks, FormatSize(r.cached_raw_bytes).c_str(),
              FormatSize(r.cached_stored_bytes).c_str());
  if (a.update)
    std::printf("a running mount keeps its version; the next mount or boot of %s uses this one\n",
                a.url.c_str());
}

int RunFetch(FetchArgs& a) {
  auto opts = MakeOpenOptions(a.image, /*with_cache_default=*/true);
  if (!opts.ok()) return Fail(opts.status());
  opts->image.workers = 0;                      // this command drives its own threads
  auto device = disk::OpenImage(a.url, *opts);  // caches the index
  if (!device.ok()) return Fail(device.status());
  AnnounceVersion((*device)->version());
  disk::ImageDevice& dev = **device;
  const std::string cache_dir = opts->cache->dir;
  if (!a.all && !a.update) {
    if (a.json) {
      std::printf("%s\n", JsonText({{"url", a.url},
                                    {"cache", cache_dir},
                                    {"version", disk::VersionJson(dev.version())}},
                                   2)
                              .c_str());
    } else {
      std::printf("cached the index of %s in %s\n", a.url.c_str(), cache_dir.c_str());
    }
    return kExitOk;
  }
  Progress bar(a.update ? "update" : "fetch");
  disk::StageOptions so;
  so.jobs = a.jobs;
  so.progress = [&bar](uint64_t done, uint64_t total) { bar.Update(done, total); };
  auto report = disk::StageImage(dev, a.url, so);
  bar.Done();
  if (!report.ok()) return Fail(report.status());
  if (a.json)
    std::printf("%s\n", JsonText(ReportJson(a, dev.version(), *report, cache_dir), 2).c_str());
  else
    PrintReport(a, dev.version(), *report, cache_dir);
  return kExitOk;
}
}  // namespace

Command FetchCommand() {
  return {
      "fetch",
      "Fill the local cache with an image's index (with --all, every chunk; with --update, "
      "stage the version the URL names now)",
      [](CLI::App* app) -> std::function<int()> {
        auto a = std::make_shared<FetchArgs>();
        app->add_option("URL", a->url,
                        "Index or channel (NAME.channel): http(s):// or file:// URL, or a path")
            ->required();
        AddImageOptions(app, &a->image, /*with_cache_default=*/true);
        app->add_flag("--all", a->all, "Fetch every chunk, so the image can be mounted offline");
        app->add_flag("--update", a->update,
                      "Stage the version the URL names now: fetch only the chunks the cache "
                      "lacks, and print the bytes fetched and the bytes found cached (implies "
                      "--all)");
        app->add_flag("--json", a->json,
                      "Print the version and the figures (chunks, stored and raw bytes fetched "
                      "and found cached) as JSON");
        app->add_option("-j,--jobs", a->jobs, "Parallel transfers (default 8)")
            ->check(CLI::Range(1, 256));
        app->footer(
            "--update pre-stages a new version: a running mount, NBD or 9P export keeps the\n"
            "version it started with (a file system must not change under a mounted kernel);\n"
            "the next mount or boot of the URL finds the staged version's chunks in the cache\n"
            "and reads nothing but its index from the network. A chunk that cannot be fetched,\n"
            "or that does not fit in the cache (--cache-size), fails the command (exit 1).");
        return [a] { return RunFetch(*a); };
      }};
}

}  // namespace hloop::cli
