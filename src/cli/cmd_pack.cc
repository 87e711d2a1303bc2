// hloop pack IMAGE STORE: split, compress and store an image.
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/layout_cli.h"
#include "fetch/url.h"
#include "format/codec.h"
#include "pack/packer.h"
#include "util/size.h"

namespace hloop::cli {

namespace {
struct PackArgs {
  std::string image, store, name, chunk_size = "256K", codec = "zstd", layout_from;
  int level = -1;
  unsigned threads = 0;
  bool json = false, quiet = false;
};

int RunPack(const PackArgs& a) {
  pack::PackOptions o;
  o.name = a.name.empty() ? fetch::StemOf(a.image) : a.name;
  auto cs = ParseSize(a.chunk_size);
  if (!cs.ok()) return Fail(cs.status());
  if (!format::IsValidChunkSize(*cs))
    return Fail("--chunk-size " + a.chunk_size + ": must be a power of two from 4K to 4M");
  o.chunk_size = uint32_t(*cs);
  auto codec = format::ParseCodec(a.codec);
  if (!codec.ok()) return Fail(codec.status());
  o.codec = *codec;
  o.level = a.level;
  o.threads = a.threads;
  std::optional<writer::LayoutPlan> plan;
  if (!a.layout_from.empty()) {
    auto p = LayoutFrom(a.layout_from, a.store, fetch::FetchOptions{});
    if (!p.ok()) return Fail(p.status());
    plan = std::move(p.value());
    o.layout = &*plan;
  }
  Progress bar("packing");
  if (!a.quiet && !a.json) o.progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  auto store = store::LocalStore::Open(a.store, /*create=*/true);
  if (!store.ok()) return Fail(store.status());
  auto sum = pack::Pack(a.image, store.value(), o);
  bar.Done();
  if (!sum.ok()) return Fail(sum.status());
  double ratio = sum->stored_bytes ? double(sum->bytes_read) / double(sum->stored_bytes) : 0;
  if (a.json) {
    nlohmann::json j = {{"index", sum->index_path},
                        {"digest", format::ToHex(sum->digest)},
                        {"chunks_total", sum->chunks_total},
                        {"chunks_unique", sum->chunks_unique},
                        {"chunks_new", sum->chunks_new},
                        {"bytes_new", sum->bytes_new},
                        {"chunks_zero", sum->chunks_zero},
                        {"bytes_read", sum->bytes_read},
                        {"bytes_written", sum->bytes_written},
                        {"stored_bytes", sum->stored_bytes},
                        {"ratio", ratio},
                        {"seconds", sum->seconds}};
    if (plan) j["layout"] = LayoutJson(sum->layout);
    std::printf("%s\n", JsonText(j).c_str());
  } else if (!a.quiet) {
    std::printf("packed %s into %s\n", a.image.c_str(), sum->index_path.c_str());
    std::printf("chunks: %llu total, %llu unique, %llu new (%s), %llu zero\n",
                (unsigned long long)sum->chunks_total, (unsigned long long)sum->chunks_unique,
                (unsigned long long)sum->chunks_new, FormatSize(sum->bytes_new).c_str(),
                (unsigned long long)sum->chunks_zero);
    std::printf("bytes:  %s read, %s written, image stored in %s (ratio %.2f)\n",
                FormatSize(sum->bytes_read).c_str(), FormatSize(sum->bytes_written).c_str(),
                FormatSize(sum->stored_bytes).c_str(), ratio);
    if (std::string line = LayoutLine(sum->layout); !line.empty())
      std::printf("%s\n", line.c_str());
    std::printf("time:   %.2f s (%.0f MB/s)\n", sum->seconds,
                sum->seconds > 0 ? double(sum->bytes_read) / sum->seconds / 1e6 : 0.0);
  }
  return kExitOk;
}
}  // namespace

Command PackCommand() {
  return {
      "pack", "Pack an image (file or block device) into a store of chunk files and an index",
      [](CLI::App* app) -> std::function<int()> {
        auto a = std::make_shared<PackArgs>();
        app->add_option("IMAGE", a->image, "Image file or block device to pack")->required();
        app->add_option("STORE", a->store,
                        "Store directory (created if missing); serve it over HTTP")
            ->required();
        app->add_option("--name", a->name,
                        "Index name: writes STORE/NAME.idx (default: IMAGE's file name "
                        "without extension)");
        app->add_option("--chunk-size", a->chunk_size,
                        "Chunk size, a power of two from 4K to 4M (default 256K)")
            ->check(ChunkSizeValidator());
        app->add_option("--codec", a->codec, "Compression: zstd (default), zlib or none")
            ->check(CLI::IsMember({"zstd", "zlib", "none"}));
        app->add_option("--level", a->level, "Compression level (default: zstd 3, zlib 6)")
            ->check(CLI::Range(0, 22));
        app->add_option("--threads", a->threads,
                        "Worker threads (default: one per core, at most 16)")
            ->check(CLI::Range(0, 1024));
        app->add_option("--layout-from", a->layout_from,
                        "Lay the image out as this earlier version is (an index relaid out by "
                        "`hloop relayout`: NAME in STORE, a path or a URL): the blocks it packs "
                        "into hot chunks are packed the same way, and hot chunks whose blocks "
                        "did not change are shared, not stored again");
        app->add_flag("--json", a->json, "Print the summary as JSON");
        app->add_flag("-q,--quiet", a->quiet, "Print nothing on success");
        app->footer(
            "Chunks already in the store are not written again, so packing a new version of an\n"
            "image into the same store adds only the chunks that changed. All-zero chunks are\n"
            "not stored. The index is written last, atomically.");
        return [a] { return RunPack(*a); };
      }};
}

}  // namespace hloop::cli
