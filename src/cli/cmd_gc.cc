// hloop gc STORE: remove old index files and unreferenced chunk files.
#include <chrono>
#include <cstdlib>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "history/gc.h"
#include "trust/channel.h"
#include "util/duration.h"
#include "util/file.h"
#include "util/size.h"

namespace hloop::cli {

namespace {
struct GcArgs {
  std::string store, grace = "24h";
  uint32_t keep_last = 0;
  bool dry_run = false, json = false;
};

int RunGc(const GcArgs& a) {
  auto grace = ParseDuration(a.grace, /*allow_zero=*/true);
  if (!grace.ok()) return Fail(grace.status().Annotate("--grace"));
  auto store = store::LocalStore::Open(a.store, /*create=*/false);
  if (!store.ok()) return Fail(store.status());
  history::GcOptions o;
  if (a.keep_last) o.keep_last = a.keep_last;
  o.grace_s = int64_t(*grace);
  o.dry_run = a.dry_run;
  o.channel_index = [](const std::string& path) -> Result<std::string> {
    auto bytes = ReadFileLimited(path, trust::kMaxChannelFileSize);
    if (!bytes.ok()) return bytes.status();
    auto channel = trust::ParseChannel(*bytes, path);
    if (!channel.ok()) return channel.status();
    return channel->index_path;
  };
  // Test only (tests/test_gc.sh): pause before each deletion, so that a test
  // can kill gc in the middle.
  if (const char* ms = std::getenv("HLOOP_TEST_GC_PAUSE_MS")) {
    const int pause = std::atoi(ms);
    o.before_delete = [pause] { std::this_thread::sleep_for(std::chrono::milliseconds(pause)); };
  }
  auto rep = history::Gc(store.value(), o);
  if (!rep.ok()) return Fail(rep.status());
  std::vector<std::string> chunks;
  for (const auto& h : rep->chunks_removed) chunks.push_back(format::ToHex(h));
  if (a.json) {
    nlohmann::json j = {{"dry_run", rep->dry_run},
                        {"roots", rep->roots},
                        {"indexes_kept", rep->indexes_kept},
                        {"indexes_removed", rep->indexes_removed},
                        {"index_bytes_removed", rep->index_bytes_removed},
                        {"chunks_total", rep->chunks_total},
                        {"chunks_referenced", rep->chunks_referenced},
                        {"chunks_young", rep->chunks_young},
                        {"chunks_removed", chunks},
                        {"chunk_bytes_removed", rep->chunk_bytes_removed},
                        {"bytes_freed", rep->index_bytes_removed + rep->chunk_bytes_removed}};
    std::printf("%s\n", JsonText(j).c_str());
    return kExitOk;
  }
  const char* verb = rep->dry_run ? "would remove" : "removed";
  for (const auto& n : rep->indexes_removed) std::printf("%s index %s.idx\n", verb, n.c_str());
  for (const auto& c : chunks) std::printf("%s chunk %s\n", verb, c.c_str());
  std::printf("indexes: %zu kept, %zu %s\n", rep->indexes_kept.size(), rep->indexes_removed.size(),
              rep->dry_run ? "to remove" : "removed");
  std::printf(
      "chunks:  %llu in the store, %llu referenced, %llu unreferenced but within the "
      "grace period, %zu %s\n",
      (unsigned long long)rep->chunks_total, (unsigned long long)rep->chunks_referenced,
      (unsigned long long)rep->chunks_young, rep->chunks_removed.size(),
      rep->dry_run ? "to remove" : "removed");
  std::printf("%s %s\n", rep->dry_run ? "would free" : "freed",
              FormatSize(rep->index_bytes_removed + rep->chunk_bytes_removed).c_str());
  return kExitOk;
}
}  // namespace

Command GcCommand() {
  return {"gc", "Remove old versions' indexes and chunk files no index uses",
          [](CLI::App* app) -> std::function<int()> {
            auto a = std::make_shared<GcArgs>();
            app->add_option("STORE", a->store, "Store directory")->required();
            app->add_option("--keep-last", a->keep_last,
                            "Delete the index files (and .idx.sig) that are not among the last N "
                            "versions of a history (see below). Default: delete no index")
                ->check(CLI::Range(1u, 1000000u));
            app->add_option("--grace", a->grace,
                            "Keep unreferenced chunk files modified less than this long ago (s, m, "
                            "h or d; default 24h), so that a pack or commit in progress, which "
                            "writes its index last, is not broken");
            app->add_flag("-n,--dry-run", a->dry_run,
                          "Print what would be removed; remove nothing");
            app->add_flag("--json", a->json, "Print the report as JSON (one line)");
            app->footer(
                "A mark-and-sweep. Every index in STORE is read (gc refuses if one cannot be);\n"
                "with --keep-last N, a history is a root index and its PARENT chain in the store,\n"
                "and the last N versions of each are kept. The roots are the indexes STORE's\n"
                "channels (*.channel) point at; in a store without channels, every index that no\n"
                "other index names as its parent. Then every chunk file that no remaining index\n"
                "uses and that is older than the grace period is removed. Indexes go first, so a\n"
                "gc killed at any point leaves every remaining index complete. Clients still\n"
                "reading the version a publish just replaced need --keep-last 2 or more.");
            return [a] { return RunGc(*a); };
          }};
}

}  // namespace hloop::cli
