// hloop mirrors URL: probe the image's servers and rank them.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/common.h"
#include "fetch/mirror_control.h"
#include "format/chunk_file.h"
#include "util/size.h"

namespace hloop::cli {

namespace {
struct MirrorsArgs {
  std::string url;
  bool json = false;
  int probes = 3, chunks = 4;
  ImageCliOptions image;
};

// What probing one mirror found, besides what the engine measured.
struct Probe {
  std::string problem;  // empty: answered every request correctly
};

// Round trips with HEAD requests, then a few chunk files (checked against
// their hashes) for throughput. Everything is pinned to mirror `m`.
Probe ProbeMirror(fetch::Source& source, fetch::MirrorControl& mirrors, int m,
                  const std::string& index_rel, const format::Index& ix, int probes, int chunks) {
  Probe p;
  for (int i = 0; i < probes; i++) {
    std::string body;
    Status st = mirrors.GetFrom(m, index_rel, 0, /*head=*/true, &body);
    if (!st.ok()) {
      p.problem = "unreachable: " + st.message();
      return p;
    }
  }
  // The first non-zero slots: a layout's hot chunks first (a boot fetches
  // them; a mirror that lacks them fails it), then the table's chunks.
  int done = 0;
  for (uint64_t k = 0; k < ix.slot_count() && done < chunks; k++) {
    const uint64_t i = (k + ix.chunk_count()) % ix.slot_count();
    format::ChunkEntry e = ix.entry(i);
    if (e.zero()) continue;
    done++;
    std::string file;
    Status st = mirrors.GetFrom(m, format::ChunkPath(e.hash), e.stored_size, /*head=*/false, &file);
    if (st.ok()) {
      std::string raw;
      st = format::DecodeChunk(file, e.hash, ix.chunk_length(i), &raw);
      if (!st.ok()) {
        source.ReportCorrupt(m);
        p.problem = "corrupt: " + format::SlotName(ix, i) + " fails its hash check";
        return p;
      }
    } else {
      p.problem = (st.IsNotFound() ? "incomplete: " : "failing: ") + st.message();
      return p;
    }
  }
  return p;
}

int RunMirrors(MirrorsArgs& a) {
  auto opts = MakeOpenOptions(a.image, /*with_cache_default=*/false);
  if (!opts.ok()) return Fail(opts.status());
  opts->image.workers = 0;
  auto loc = fetch::ParseLocation(a.url);
  if (!loc.ok()) return Fail(loc.status());
  if (loc->kind != fetch::Location::Kind::kHttp)
    return Fail("hloop mirrors needs an http:// or https:// URL");
  auto device = disk::OpenImage(a.url, *opts);
  if (!device.ok()) return Fail(device.status());
  fetch::Source& source = (*device)->source();
  fetch::MirrorControl* mirrors = source.mirror_control();
  if (!mirrors) return Fail("not an HTTP source");
  const format::Index& ix = (*device)->index();
  const int n = int(mirrors->mirror_stats().size());

  std::vector<Probe> probes(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int m = 0; m < n; m++) {
    threads.emplace_back([&, m] {
      probes[size_t(m)] = ProbeMirror(source, *mirrors, m, loc->index_name, ix, a.probes, a.chunks);
    });
  }
  for (auto& t : threads) t.join();

  // Rank by the time a typical chunk would take: round trip plus body.
  const double typical =
      double(ix.summary().stored_bytes) / double(std::max<uint64_t>(1, ix.summary().unique_chunks));
  auto stats = mirrors->mirror_stats();
  std::vector<int> order(static_cast<size_t>(n));
  for (int m = 0; m < n; m++) order[size_t(m)] = m;
  auto cost = [&](int m) {
    const auto& s = stats[size_t(m)];
    if (!probes[size_t(m)].problem.empty() || s.base_rtt_s < 0) return 1e18 + m;
    return s.base_rtt_s + (s.bytes_per_s > 0 ? typical / s.bytes_per_s : 0);
  };
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return cost(x) < cost(y); });

  if (a.json) {
    nlohmann::json out = nlohmann::json::array();
    int rank = 0;
    for (int m : order) {
      const auto& s = stats[size_t(m)];
      bool good = probes[size_t(m)].problem.empty();
      out.push_back(
          {{"rank", good ? nlohmann::json(++rank) : nlohmann::json(nullptr)},
           {"url", s.base},
           {"rtt_ms", s.rtt_s < 0 ? nlohmann::json(nullptr) : nlohmann::json(s.rtt_s * 1000)},
           {"bytes_per_s",
            s.bytes_per_s < 0 ? nlohmann::json(nullptr) : nlohmann::json(s.bytes_per_s)},
           {"ok", good},
           {"problem", probes[size_t(m)].problem}});
    }
    std::printf("%s\n", JsonText(out, 2).c_str());
  } else {
    std::printf("%-4s %-48s %10s %12s  %s\n", "rank", "mirror", "rtt", "throughput", "state");
    int rank = 0;
    for (int m : order) {
      const auto& s = stats[size_t(m)];
      bool good = probes[size_t(m)].problem.empty();
      char rtt[32] = "-", thr[32] = "-";
      if (s.rtt_s >= 0) std::snprintf(rtt, sizeof rtt, "%.1f ms", s.rtt_s * 1000);
      if (s.bytes_per_s > 0)
        std::snprintf(thr, sizeof thr, "%s/s", FormatSize(uint64_t(s.bytes_per_s)).c_str());
      std::printf("%-4s %-48s %10s %12s  %s\n", good ? std::to_string(++rank).c_str() : "-",
                  s.base.c_str(), rtt, thr, good ? "ok" : probes[size_t(m)].problem.c_str());
    }
  }
  bool any =
      std::any_of(probes.begin(), probes.end(), [](const Probe& p) { return p.problem.empty(); });
  return any ? kExitOk : kExitFailure;
}
}  // namespace

Command MirrorsCommand() {
  return {"mirrors", "Probe an image's servers and rank them by round-trip time and throughput",
          [](CLI::App* app) -> std::function<int()> {
            auto a = std::make_shared<MirrorsArgs>();
            app->add_option("URL", a->url, "Index URL (http:// or https://)")->required();
            app->add_flag("--json", a->json, "Print the ranking as JSON");
            app->add_option("--probes", a->probes,
                            "Round-trip probes (HEAD requests) per mirror (default 3)")
                ->check(CLI::Range(1, 100));
            app->add_option(
                   "--chunks", a->chunks,
                   "Chunk files fetched and verified per mirror to measure throughput (default 4)")
                ->check(CLI::Range(0, 100));
            AddImageOptions(app, &a->image, /*with_cache_default=*/false);
            app->footer(
                "Mirrors are the index's own server, every --mirror, and those listed in\n"
                "NAME.mirrors next to the index. A mirror that cannot be reached, lacks chunks or\n"
                "serves chunks that fail their hash check is listed without a rank.\n"
                "Exit status 1 if no mirror works.");
            return [a] { return RunMirrors(*a); };
          }};
}

}  // namespace hloop::cli
