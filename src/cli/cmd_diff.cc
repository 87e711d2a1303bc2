// hloop diff A B: what changed from one image version to another.
#include <chrono>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "history/diff.h"
#include "history/log.h"
#include "util/size.h"

namespace hloop::cli {

namespace {
struct DiffArgs {
  std::string a, b;
  bool json = false;
};

int RunDiff(const DiffArgs& a) {
  const auto start = std::chrono::steady_clock::now();
  auto ia = history::ReadIndex(a.a, fetch::FetchOptions{});
  if (!ia.ok()) return Fail(ia.status());
  auto ib = history::ReadIndex(a.b, fetch::FetchOptions{});
  if (!ib.ok()) return Fail(ib.status());
  auto d = history::Diff(*ia, *ib);
  if (!d.ok()) return Fail(d.status());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (a.json) {
    nlohmann::json ranges = nlohmann::json::array();
    for (const auto& r : d->ranges) ranges.push_back({{"offset", r.offset}, {"length", r.length}});
    nlohmann::json j = {{"a", {{"url", a.a}, {"digest", format::ToHex(ia->digest())}}},
                        {"b", {{"url", a.b}, {"digest", format::ToHex(ib->digest())}}},
                        {"chunk_size", ia->chunk_size()},
                        {"chunks_a", d->chunks_a},
                        {"chunks_b", d->chunks_b},
                        {"chunks_added", d->chunks_added},
                        {"chunks_removed", d->chunks_removed},
                        {"chunks_changed", d->chunks_changed},
                        {"chunks_unchanged", d->chunks_unchanged},
                        {"new_files", d->download.files},
                        {"new_bytes", d->download.bytes},
                        {"bytes_changed", d->bytes_changed},
                        {"ranges", ranges},
                        {"layout_a", d->layout_a},
                        {"layout_b", d->layout_b},
                        {"hot_chunks_a", d->hot_chunks_a},
                        {"hot_chunks_b", d->hot_chunks_b},
                        {"new_hot_files", d->hot_download.files},
                        {"new_hot_bytes", d->hot_download.bytes},
                        {"seconds", seconds}};
    std::printf("%s\n", JsonText(j).c_str());
    return kExitOk;
  }
  std::printf("chunks:   %llu added, %llu removed, %llu changed, %llu unchanged\n",
              (unsigned long long)d->chunks_added, (unsigned long long)d->chunks_removed,
              (unsigned long long)d->chunks_changed, (unsigned long long)d->chunks_unchanged);
  std::printf("download: %s in %llu new chunk files\n", FormatSize(d->download.bytes).c_str(),
              (unsigned long long)d->download.files);
  if (d->layout_a || d->layout_b) {
    auto side = [](bool layout, uint64_t hot) {
      return layout ? std::to_string(hot) + " hot chunks" : std::string("no layout");
    };
    std::printf(
        "layout:   A %s, B %s; %llu hot chunk files of B are new (%s of the download)\n",
        side(d->layout_a, d->hot_chunks_a).c_str(), side(d->layout_b, d->hot_chunks_b).c_str(),
        (unsigned long long)d->hot_download.files, FormatSize(d->hot_download.bytes).c_str());
  }
  std::printf("changed:  %s of the image in %zu range(s)\n", FormatSize(d->bytes_changed).c_str(),
              d->ranges.size());
  for (const auto& r : d->ranges)
    std::printf("  %llu-%llu (%s)\n", (unsigned long long)r.offset,
                (unsigned long long)(r.offset + r.length - 1), FormatSize(r.length).c_str());
  return kExitOk;
}
}  // namespace

Command DiffCommand() {
  return {
      "diff", "Compare two image versions: changed chunks, image ranges, bytes to download",
      [](CLI::App* app) -> std::function<int()> {
        auto a = std::make_shared<DiffArgs>();
        app->add_option("A", a->a, "The old version's index: URL or path")->required();
        app->add_option("B", a->b, "The new version's index: URL or path")->required();
        app->add_flag("--json", a->json, "Print the comparison as JSON (one line)");
        app->footer(
            "Chunks are compared by number (both indexes must have the same chunk size);\n"
            "a chunk past the end of an image is absent. 'data' is a chunk with a file,\n"
            "'zero' an all-zero chunk (no file):\n"
            "  added      data in B, zero or absent in A\n"
            "  removed    data in A, zero or absent in B\n"
            "  changed    data in both, different content\n"
            "  unchanged  the same content in both\n"
            "'download' is the stored size of B's distinct chunk files that A does not have:\n"
            "what a client holding A fetches to get B, and what pack or commit added for B\n"
            "over a store holding A. The ranges are the image bytes (offsets inclusive)\n"
            "whose content differs, adjacent chunks merged. 'seconds' (JSON) is the time taken\n"
            "to read both indexes and compare them.\n"
            "A relaid-out index (hloop relayout) also names hot chunks: its table still\n"
            "describes every chunk, so the comparison above holds; 'layout' says which side\n"
            "has hot chunks and how many of B's hot chunk files A lacks (they are part of\n"
            "'download').");
        return [a] { return RunDiff(*a); };
      }};
}

}  // namespace hloop::cli
