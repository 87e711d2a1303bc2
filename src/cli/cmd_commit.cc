// hloop commit URL --overlay FILE --store STORE --name NEW: base + overlay
// as a new image version in a local store.
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/layout_cli.h"
#include "store/local_store.h"
#include "util/size.h"
#include "writer/commit.h"
#include "writer/image_bytes.h"

namespace hloop::cli {

namespace {
struct CommitArgs {
  std::string url, store, name, layout_from;
  bool json = false, no_layout = false;
  unsigned threads = 0;
  ImageCliOptions image;
  OverlayCliOptions overlay;
};

int RunCommit(CommitArgs& a) {
  auto opts = MakeOpenOptions(a.image, /*with_cache_default=*/true);
  if (!opts.ok()) return Fail(opts.status());
  auto device = disk::OpenImage(a.url, *opts);
  if (!device.ok()) return Fail(device.status());
  auto ov = OpenOverlay(a.overlay, **device, a.url, /*create=*/false);
  if (!ov.ok()) return Fail(ov.status());
  auto store = store::LocalStore::Open(a.store, /*create=*/true);
  if (!store.ok()) return Fail(store.status());
  const format::Index& base = (*device)->index();
  writer::CommitOptions o;
  o.name = a.name;
  o.parent_name = disk::ImageName(base, a.url);
  o.threads = a.threads;
  if (a.no_layout) o.layout = writer::LayoutPlan{};
  if (!a.layout_from.empty()) {
    auto p = LayoutFrom(a.layout_from, a.store, opts->fetch);
    if (!p.ok()) return Fail(p.status());
    o.layout = std::move(p.value());
  }
  Progress bar("commit");
  if (!a.json) o.progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  // Chunks the overlay does not touch read as the base's: their entries are reused.
  writer::DeviceBytes image(**ov,
                            [&](uint64_t off, uint64_t len) { return (*ov)->Touches(off, len); });
  auto sum = writer::Commit(base, image, store.value(), o);
  bar.Done();
  if (!sum.ok()) return Fail(sum.status());
  if (a.json) {
    nlohmann::json j = {
        {"index", sum->index_path},
        {"digest", format::ToHex(sum->digest)},
        {"parent", {{"name", o.parent_name}, {"digest", format::ToHex(base.digest())}}},
        {"chunks_total", sum->chunks_total},
        {"chunks_changed", sum->chunks_changed},
        {"chunks_new", sum->chunks_new},
        {"bytes_new", sum->bytes_new},
        {"chunks_copied", sum->chunks_copied},
        {"chunks_zero", sum->chunks_zero}};
    if (sum->layout.hot_chunks || sum->layout.extents) j["layout"] = LayoutJson(sum->layout);
    std::printf("%s\n", JsonText(j).c_str());
    return kExitOk;
  }
  std::printf("committed %s over %s into %s\n", a.name.c_str(), o.parent_name.c_str(),
              sum->index_path.c_str());
  std::printf("chunks: %llu total, %llu changed, %llu new (%s), %llu zero\n",
              (unsigned long long)sum->chunks_total, (unsigned long long)sum->chunks_changed,
              (unsigned long long)sum->chunks_new, FormatSize(sum->bytes_new).c_str(),
              (unsigned long long)sum->chunks_zero);
  if (sum->chunks_copied)
    std::printf(
        "        %llu unchanged chunks were missing from the store and copied from the base\n",
        (unsigned long long)sum->chunks_copied);
  if (std::string line = LayoutLine(sum->layout); !line.empty()) std::printf("%s\n", line.c_str());
  std::printf("digest: %s\n", format::ToHex(sum->digest).c_str());
  return kExitOk;
}
}  // namespace

Command CommitCommand() {
  return {"commit", "Make a new image version from an image and its overlay",
          [](CLI::App* app) -> std::function<int()> {
            auto a = std::make_shared<CommitArgs>();
            app->add_option("URL", a->url,
                            "Index of the base image: http(s):// or file:// URL, or a path")
                ->required();
            AddOverlayOptions(app, &a->overlay)
                ->required()
                ->check(CLI::ExistingFile)
                ->description(
                    "The overlay written over URL's image (by mount --overlay or nbd --overlay)");
            app->add_option("--store", a->store,
                            "Store directory to write the new version into (usually the "
                            "base's own, so unchanged chunks are shared)")
                ->required();
            app->add_option("--name", a->name, "Name of the new version: writes STORE/NAME.idx")
                ->required();
            app->add_option("--threads", a->threads,
                            "Worker threads (default: one per core, at most 16)")
                ->check(CLI::Range(0, 1024));
            auto* from = app->add_option(
                "--layout-from", a->layout_from,
                "Lay the new version out as this index is (NAME in STORE, a path or a URL; "
                "default: as the base is, if `hloop relayout` made it)");
            app->add_flag("--no-layout", a->no_layout,
                          "Write the new version without hot chunks, even if the base has them")
                ->excludes(from);
            app->add_flag("--json", a->json, "Print the summary as JSON");
            AddImageOptions(app, &a->image, /*with_cache_default=*/true);
            app->footer(
                "Only chunks the overlay touched are read and hashed; a new chunk file is written\n"
                "for each whose content the store does not have. Unchanged chunks keep their\n"
                "entries. The new index names the base as its parent and is written last,\n"
                "atomically. The overlay must not be in use (unmount first); it is left as is.\n"
                "A base relaid out by `hloop relayout` keeps its layout: its hot chunks are\n"
                "written again from the new image, and those whose blocks did not change are\n"
                "the same files.");
            return [a] { return RunCommit(*a); };
          }};
}

}  // namespace hloop::cli
