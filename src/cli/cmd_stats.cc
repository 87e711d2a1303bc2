// hloop stats MOUNTPOINT: live statistics of a running mount.
#include <sys/xattr.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "frontends/fuse/fuse_file.h"
#include "util/size.h"

namespace hloop::cli {

namespace {
struct StatsArgs {
  std::string mountpoint;
  bool json = false;
};

Result<std::string> ReadStats(const std::string& mountpoint) {
  std::string buf(64 * 1024, '\0');
  ssize_t n = ::getxattr(mountpoint.c_str(), fuse::kStatsXattr, buf.data(), buf.size());
  if (n < 0) {
    if (errno == ENODATA || errno == ENOTSUP || errno == EOPNOTSUPP)
      return Status::InvalidArgument(mountpoint + " is not an hloop mount");
    return Status::FromErrno(errno, mountpoint);
  }
  buf.resize(size_t(n));
  return buf;
}

std::string Ms(const nlohmann::json& v) {
  if (!v.is_number()) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f ms", v.get<double>());
  return b;
}

std::string Rate(const nlohmann::json& v) {
  if (!v.is_number()) return "-";
  return FormatSize(uint64_t(v.get<double>())) + "/s";
}

void PrintHuman(const nlohmann::json& j) {
  auto u = [&](const nlohmann::json& v) { return v.is_number() ? v.get<uint64_t>() : 0; };
  if (j.contains("version") && j["version"].is_object()) {
    const auto& v = j["version"];
    std::string line = v["index"].get<std::string>();
    if (v["channel"].is_object())
      line += " (channel " + v["channel"]["name"].get<std::string>() + ", sequence " +
              std::to_string(u(v["channel"]["sequence"])) + ")";
    line += v["authenticated"].get<bool>()
                ? ", signed by trusted key " + v["key_id"].get<std::string>()
                : ", not authenticated";
    if (v["offline"].get<bool>()) line += ", opened offline from the cache";
    const auto& latest = v.value("latest", nlohmann::json());
    if (latest.is_object() && latest.contains("error")) {
      line += "; channel not checked: " + latest["error"].get<std::string>();
    } else if (latest.is_object() && latest["newer"].get<bool>()) {
      line += "; the channel now names " + latest["index"].get<std::string>() + " (sequence " +
              std::to_string(u(latest["sequence"])) + "): the next mount uses it";
    } else if (latest.is_object()) {
      line += "; the channel names no newer version";
    }
    std::printf("version    %s\n", line.c_str());
  }
  const auto& r = j["reads"];
  const auto& f = j["fetch"];
  const auto& c = j["cache"];
  std::printf("image      %s (%s, %s chunks of %s), up %.0f s\n",
              j["url"].get<std::string>().c_str(), FormatSize(u(j["image"]["size"])).c_str(),
              std::to_string(u(j["image"]["chunks"])).c_str(),
              FormatSize(u(j["image"]["chunk_size"])).c_str(), j["uptime_s"].get<double>());
  std::printf("reads      %lu (%s); %lu waited for a chunk: %s average, %s worst\n", u(r["count"]),
              FormatSize(u(r["bytes"])).c_str(), u(r["waits"]), Ms(r["wait_ms_avg"]).c_str(),
              Ms(r["wait_ms_max"]).c_str());
  std::printf("cache      %lu memory hits, %lu disk hits, %lu zero-chunk reads",
              u(c["memory_hits"]), u(c["disk_hits"]), u(c["zero_reads"]));
  if (c.contains("disk_bytes"))
    std::printf("; disk cache holds %s in %lu chunks", FormatSize(u(c["disk_bytes"])).c_str(),
                u(c["disk_chunks"]));
  std::printf("\n");
  std::printf(
      "fetched    %lu chunks, %s; %lu transfers, %lu in flight (most %lu), %lu waiting, "
      "%lu retries, %lu failed, %lu hash mismatches\n",
      u(f["chunks"]), FormatSize(u(f["bytes"])).c_str(), u(f["transfers"]), u(f["inflight"]),
      u(f["max_inflight"]), u(f["waiting"]), u(f["retries"]), u(f["failures"]),
      u(f["hash_mismatches"]));
  std::printf("read-ahead %lu chunks issued, window %lu chunks (grows to %lu)\n",
              u(j["readahead"]["issued"]), u(j["readahead"]["window"]), u(j["readahead"]["max"]));
  std::printf("clusters  %lu neighbours of missed chunks fetched, cluster %lu chunks\n",
              u(j["readahead"]["cluster_issued"]), u(j["readahead"]["cluster"]));
  const auto& p = j["prefetch"];
  if (u(p["total"]))
    std::printf(
        "profile    %lu/%lu chunks prefetched (%lu failed), %lu read after their prefetch\n",
        u(p["done"]), u(p["total"]), u(p["failed"]), u(p["useful"]));
  if (u(j["profile_recorded"]))
    std::printf("recording  %lu blocks (4 KiB) so far\n", u(j["profile_recorded"]));
  if (!j["mirrors"].empty()) {
    std::printf("%-44s %9s %12s %9s %10s %6s %7s  %s\n", "mirror", "rtt", "throughput", "transfers",
                "bytes", "errors", "corrupt", "state");
    for (const auto& m : j["mirrors"]) {
      std::printf("%-44s %9s %12s %9lu %10s %6lu %7lu  %s\n", m["url"].get<std::string>().c_str(),
                  Ms(m["rtt_ms"]).c_str(), Rate(m["bytes_per_s"]).c_str(), u(m["transfers"]),
                  FormatSize(u(m["bytes"])).c_str(), u(m["errors"]), u(m["corrupt"]),
                  m["state"].get<std::string>().c_str());
    }
  }
}

int RunStats(const StatsArgs& a) {
  auto text = ReadStats(a.mountpoint);
  if (!text.ok()) return Fail(text.status());
  if (a.json) {
    std::printf("%s\n", text->c_str());
    return kExitOk;
  }
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Fail(a.mountpoint + ": statistics are not valid JSON");
  try {
    PrintHuman(j);
  } catch (const nlohmann::json::exception& e) {
    return Fail(a.mountpoint + ": unexpected statistics: " + e.what());
  }
  return kExitOk;
}
}  // namespace

Command StatsCommand() {
  return {
      "stats", "Show live statistics of a running mount",
      [](CLI::App* app) -> std::function<int()> {
        auto a = std::make_shared<StatsArgs>();
        app->add_option("MOUNTPOINT", a->mountpoint, "Directory where `hloop mount` shows an image")
            ->required();
        app->add_flag("--json", a->json, "Print the statistics as JSON (fields in docs/design.md)");
        app->footer(
            "Reads, cache hits, time readers waited for the network, transfers in flight,\n"
            "read-ahead and profile prefetch progress, and per mirror: measured round-trip\n"
            "time, throughput, errors and whether it is set aside.");
        return [a] { return RunStats(*a); };
      }};
}

}  // namespace hloop::cli
