// hloop relayout URL --profile FILE... --store STORE --name NEW: the blocks
// the profiles read, packed into few "hot" chunk files in the order they
// were first read; the image itself is unchanged (writer/layout_writer.h).
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/layout_cli.h"
#include "fetch/checked_get.h"
#include "util/file.h"
#include "util/size.h"
#include "writer/image_bytes.h"
#include "writer/image_writer.h"

namespace hloop::cli {

namespace {
struct RelayoutArgs {
  std::string url, store, name;
  std::vector<std::string> profiles;
  int level = -1;
  unsigned threads = 0;
  bool json = false, quiet = false;
  ImageCliOptions image;
};

int RunRelayout(RelayoutArgs& a) {
  if (!writer::IsValidImageName(a.name))
    return Fail("--name " + a.name + ": not a valid image name (no '/', not starting with '.')");
  auto opts = MakeOpenOptions(a.image, /*with_cache_default=*/false);
  if (!opts.ok()) return Fail(opts.status());
  auto device = disk::OpenImage(a.url, *opts);
  if (!device.ok()) return Fail(device.status());
  disk::ImageDevice& dev = **device;
  const format::Index& index = dev.index();

  // The profiles' reads, first profile first, each byte once.
  writer::LayoutPlan plan;
  std::string boot_profile;  // the first profile's text
  for (const std::string& p : a.profiles) {
    auto ranges =
        LoadProfileRanges(p, index, opts->fetch, boot_profile.empty() ? &boot_profile : nullptr);
    if (!ranges.ok()) return Fail(ranges.status());
    writer::AddToPlan(*ranges, index.image_size(), &plan);
  }
  uint64_t planned = 0;
  for (const auto& r : plan.ranges) planned += r.length;
  if (planned == 0) return Fail("the profiles read nothing of this image: nothing to lay out");

  // Fetch what the plan reads in parallel, in its order, ahead of the
  // writer reading it block by block (it matters for a remote image).
  {
    std::vector<uint64_t> slots, all;
    std::unordered_set<uint64_t> seen;
    for (const auto& r : plan.ranges) {
      slots.clear();
      index.SlotsOf(r.offset, r.length, &slots);
      for (uint64_t s : slots)
        if (seen.insert(s).second) all.push_back(s);
    }
    dev.StartPrefetch(std::move(all));
  }

  auto store = store::LocalStore::Open(a.store, /*create=*/true);
  if (!store.ok()) return Fail(store.status());
  if (auto old = store->ReadIndex(a.name); old.ok()) {
    auto parsed = format::Index::Parse(std::move(old.value()), store->IndexPath(a.name));
    // Replacing the image itself, or an earlier relayout of it, is fine.
    const bool same = parsed.ok() && (parsed->digest() == index.digest() ||
                                      parsed->meta().parent_digest == index.digest());
    if (!same)
      return Fail(store->IndexPath(a.name) +
                  " exists and is neither this image nor a relayout "
                  "of it; choose another --name");
  }
  // The image is unchanged: every table chunk is reused (and copied from the
  // image when this store lacks it), only the hot chunks are new.
  writer::DeviceBytes bytes(dev, [](uint64_t, uint64_t) { return false; });
  writer::WriteOptions o;
  o.name = a.name;
  o.chunk_size = index.chunk_size();
  o.codec = index.codec();
  o.level = a.level;
  o.threads = a.threads;
  o.base = &index;
  o.parent_digest = index.digest();
  o.parent_name = index.meta().name;
  o.layout = &plan;
  Progress bar("relayout");
  if (!a.quiet && !a.json) o.progress = [&](uint64_t d, uint64_t t) { bar.Update(d, t); };
  auto sum = writer::WriteImage(bytes, *store, o);
  bar.Done();
  if (!sum.ok()) return Fail(sum.status());
  // The first profile beside the new index, where clients find it and
  // prefetch it: on the new layout its reads walk the hot chunks in order.
  const std::string profile_path = a.store + "/" + a.name + ".profile";
  if (Status st =
          WriteFileAtomic(profile_path, boot_profile.data(), boot_profile.size(), Sync::kFull);
      !st.ok())
    return Fail(st.Annotate("writing the profile beside the index"));
  auto written = store->ReadIndex(a.name);
  if (!written.ok()) return Fail(written.status());
  auto relaid = format::Index::Parse(std::move(written.value()), sum->index_path);
  if (!relaid.ok()) return Fail(relaid.status());
  const FetchEstimate before = EstimateFetch(index, plan.ranges);
  const FetchEstimate after = EstimateFetch(*relaid, plan.ranges);
  const writer::LayoutSummary& l = sum->layout;
  if (a.json) {
    nlohmann::json j = {{"index", sum->index_path},
                        {"digest", format::ToHex(sum->digest)},
                        {"profile_bytes", planned},
                        {"hot_chunks", l.hot_chunks},
                        {"hot_chunks_new", l.hot_new},
                        {"hot_bytes_packed", l.hot_raw_bytes},
                        {"extents", l.extents},
                        {"zero_extents", l.zero_extents},
                        {"mapped_bytes", l.mapped_bytes},
                        {"dropped_bytes", l.dropped_bytes},
                        {"bytes_added", sum->bytes_new},
                        {"chunks_copied", sum->chunks_copied},
                        {"store_bytes", sum->stored_bytes},
                        {"profile", profile_path},
                        {"before", EstimateJson(before)},
                        {"after", EstimateJson(after)},
                        {"seconds", sum->seconds}};
    std::printf("%s\n", JsonText(j).c_str());
    return kExitOk;
  }
  if (a.quiet) return kExitOk;
  std::printf("relaid out %s as %s\n", a.url.c_str(), sum->index_path.c_str());
  std::printf(
      "profiles:   %s read, %s of it packed into %llu hot chunks (%llu new), "
      "%llu extents (%llu of zeros)\n",
      FormatSize(planned).c_str(), FormatSize(l.hot_raw_bytes).c_str(),
      (unsigned long long)l.hot_chunks, (unsigned long long)l.hot_new,
      (unsigned long long)l.extents, (unsigned long long)l.zero_extents);
  if (l.dropped_bytes)
    std::printf("            %s of the profiles left out: the index's extent table is full\n",
                FormatSize(l.dropped_bytes).c_str());
  std::printf(
      "store:      %s added (%.1f%% of the image's %s)%s\n", FormatSize(sum->bytes_new).c_str(),
      sum->stored_bytes ? 100.0 * double(sum->bytes_new) / double(sum->stored_bytes) : 0,
      FormatSize(sum->stored_bytes).c_str(),
      sum->chunks_copied
          ? (", " + std::to_string(sum->chunks_copied) + " chunk files copied from the image")
                .c_str()
          : "");
  std::printf(
      "cold boot:  fetches %s in %llu chunk files, against %s in %llu before "
      "(%.0f%%)\n",
      FormatSize(after.stored_bytes).c_str(), (unsigned long long)after.files,
      FormatSize(before.stored_bytes).c_str(), (unsigned long long)before.files,
      before.stored_bytes ? 100.0 * double(after.stored_bytes) / double(before.stored_bytes) : 0);
  return kExitOk;
}
}  // namespace

Command RelayoutCommand() {
  return {
      "relayout", "Pack the blocks boot profiles read into few chunk files; the image is unchanged",
      [](CLI::App* app) -> std::function<int()> {
        auto a = std::make_shared<RelayoutArgs>();
        app->add_option("URL", a->url,
                        "Index or channel of the image: http(s):// or file:// URL, or a path")
            ->required();
        app->add_option("--profile", a->profiles,
                        "Profile recorded with --record-profile (file or URL); repeat it for "
                        "several, in priority order: the boot first, then an application's "
                        "start")
            ->required();
        app->add_option("--store", a->store,
                        "Store to write to (created if missing); normally the image's own")
            ->required();
        app->add_option("--name", a->name, "The new index: writes STORE/NAME.idx")->required();
        app->add_option("--level", a->level,
                        "Compression level of the hot chunks (default: the codec's)")
            ->check(CLI::Range(0, 22));
        app->add_option("--threads", a->threads,
                        "Threads for chunks the store lacks (default: one per core)")
            ->check(CLI::Range(0, 1024));
        app->add_flag("--json", a->json, "Print the summary as JSON");
        app->add_flag("-q,--quiet", a->quiet, "Print nothing on success");
        AddImageOptions(app, &a->image, /*with_cache_default=*/false);
        app->footer(
            "A file system reads 4 KiB blocks scattered over the image; the store fetches whole\n"
            "chunks, so a cold boot fetches mostly bytes nobody reads. relayout copies the\n"
            "blocks the profiles read, in the order they were first read, into new \"hot\"\n"
            "chunk files, and writes NAME.idx: the same image (bit for bit, any file system,\n"
            "any partition table) whose index maps those blocks to the hot chunks (the EXTENTS\n"
            "record of docs/format.md). Every other chunk file is reused; blocks of zeros cost\n"
            "nothing. A boot through NAME.idx fetches a few dense chunks instead of many sparse\n"
            "ones. The first profile is copied beside it as NAME.profile, which clients\n"
            "prefetch. Keep the layout in later versions with `hloop pack --layout-from NAME` "
            "(and\n"
            "`hloop commit`, which keeps its base's layout).");
        return [a] { return RunRelayout(*a); };
      }};
}

}  // namespace hloop::cli
