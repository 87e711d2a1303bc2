#include "disk/stats_json.h"

#include "disk/version_watch.h"
#include "fetch/mirror_control.h"

namespace hloop::disk {

nlohmann::json ImageStatsJson(ImageDevice& device, const std::string& url, double uptime_s) {
  const ImageStats s = device.stats();
  const format::Index& ix = device.index();
  nlohmann::json j;
  j["url"] = url;
  j["uptime_s"] = uptime_s;
  j["image"] = {{"size", ix.image_size()},
                {"chunk_size", ix.chunk_size()},
                {"chunks", ix.chunk_count()},
                {"digest", format::ToHex(ix.digest())}};
  j["version"] = VersionJson(device.version());
  j["reads"] = {{"count", s.reads},
                {"bytes", s.bytes_read},
                {"waits", s.waits},
                {"wait_ms_avg", s.waits ? double(s.wait_us_total) / double(s.waits) / 1000.0 : 0.0},
                {"wait_ms_max", double(s.wait_us_max) / 1000.0}};
  j["cache"] = {
      {"memory_hits", s.memory_hits}, {"disk_hits", s.disk_hits}, {"zero_reads", s.zero_reads}};
  if (auto* c = device.disk_cache()) {
    auto cs = c->stats();
    j["cache"]["disk_bytes"] = cs.used_bytes;
    j["cache"]["disk_chunks"] = cs.entries;
  }
  nlohmann::json f = {{"chunks", s.chunks_fetched},
                      {"bytes", s.bytes_fetched},
                      {"hash_mismatches", s.hash_mismatches},
                      {"collapsed", s.collapsed}};
  fetch::MirrorControl* control = device.source().mirror_control();
  if (control) {
    const fetch::EngineStats e = control->engine_stats();
    f["requests"] = e.requests;
    f["transfers"] = e.transfers;
    f["retries"] = e.retries;
    f["failures"] = e.failures;
    f["inflight"] = e.inflight;
    f["max_inflight"] = e.max_inflight_seen;
    f["waiting"] = e.waiting;
  }
  j["fetch"] = f;
  j["readahead"] = {{"issued", s.readahead_issued},
                    {"window", s.readahead_window},
                    {"max", s.readahead_max},
                    {"cluster_issued", s.cluster_issued},
                    {"cluster", s.cluster_chunks}};
  j["prefetch"] = {{"total", s.prefetch_total},
                   {"done", s.prefetch_done},
                   {"failed", s.prefetch_failed},
                   {"useful", s.prefetch_useful}};
  j["profile_recorded"] = s.profile_recorded;
  nlohmann::json mirrors = nlohmann::json::array();
  for (const auto& m : control ? control->mirror_stats() : std::vector<fetch::MirrorStats>()) {
    mirrors.push_back(
        {{"url", m.base},
         {"rtt_ms", m.rtt_s < 0 ? nlohmann::json(nullptr) : nlohmann::json(m.rtt_s * 1000.0)},
         {"base_rtt_ms",
          m.base_rtt_s < 0 ? nlohmann::json(nullptr) : nlohmann::json(m.base_rtt_s * 1000.0)},
         {"bytes_per_s",
          m.bytes_per_s < 0 ? nlohmann::json(nullptr) : nlohmann::json(m.bytes_per_s)},
         {"transfers", m.transfers},
         {"bytes", m.bytes},
         {"errors", m.errors},
         {"corrupt", m.corrupt},
         {"not_found", m.not_found},
         {"active", m.active},
         {"connections", m.connections},
         {"http2", m.http2},
         {"state", m.set_aside ? "set-aside" : "ok"},
         {"aside_s", m.aside_s}});
  }
  j["mirrors"] = mirrors;
  return j;
}

}  // namespace hloop::disk
