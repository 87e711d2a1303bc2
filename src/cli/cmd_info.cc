// hloop info INDEX: what an index says.
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/layout_cli.h"
#include "disk/occupancy.h"
#include "disk/profile.h"
#include "disk/version_watch.h"
#include "format/codec.h"
#include "util/file.h"
#include "util/size.h"

namespace hloop::cli {

namespace {
struct InfoArgs {
  std::string url;
  bool json = false;
  std::vector<std::string> profiles;  // --profile FILE, in order
  TrustCliOptions trust;
};

struct ProfileFigures {
  std::string file;
  disk::Occupancy o;
};

// The image byte ranges a profile (file or URL) read through `ix`.
Result<disk::ByteRanges> ProfileRanges(const std::string& path, const format::Index& ix) {
  auto ranges = LoadProfileRanges(path, ix, fetch::FetchOptions{});
  if (!ranges.ok()) return ranges.status();
  disk::ByteRanges out;
  for (const auto& r : *ranges) out.emplace_back(r.offset, r.length);
  return out;
}

nlohmann::json LayoutJson(const format::Index& ix) {
  if (ix.layout().empty()) return nullptr;
  const disk::LayoutFigures f = disk::SummarizeLayout(ix);
  return {{"hot_chunks", f.hot_chunks},
          {"hot_raw_bytes", f.hot_raw_bytes},
          {"hot_stored_bytes", f.hot_stored_bytes},
          {"extents", f.extents},
          {"zero_extents", f.zero_extents},
          {"mapped_bytes", f.mapped_bytes},
          {"mapped_share", f.mapped_share()}};
}

nlohmann::json ProfileJson(const ProfileFigures& p) {
  const disk::Occupancy& o = p.o;
  return {{"file", p.file},
          {"bytes_read", o.bytes_read},
          {"zero_bytes", o.zero_bytes},
          {"chunks_touched", o.chunks},
          {"hot_chunks_touched", o.hot_chunks},
          {"raw_bytes", o.raw_bytes},
          {"bytes_fetched", o.stored_bytes},
          {"occupancy", o.occupancy()},
          {"read_per_fetched_byte", o.per_fetched_byte()}};
}

void PrintLayout(const format::Index& ix, const std::vector<ProfileFigures>& profiles) {
  if (ix.layout().empty()) {
    std::printf("layout:      none (every image byte is read from its table chunk)\n");
  } else {
    const disk::LayoutFigures f = disk::SummarizeLayout(ix);
    std::printf("layout:      %llu hot chunks (%s raw, %s stored), %llu extents (%llu zero)\n",
                (unsigned long long)f.hot_chunks, FormatSize(f.hot_raw_bytes).c_str(),
                FormatSize(f.hot_stored_bytes).c_str(), (unsigned long long)f.extents,
                (unsigned long long)f.zero_extents);
    std::printf("mapped:      %s by extents, %.1f %% of the image\n",
                FormatSize(f.mapped_bytes).c_str(), 100 * f.mapped_share());
  }
  for (const ProfileFigures& p : profiles) {
    const disk::Occupancy& o = p.o;
    std::printf("profile:     %s\n", p.file.c_str());
    std::printf("  read:      %s (%s of it zeros)\n", FormatSize(o.bytes_read).c_str(),
                FormatSize(o.zero_bytes).c_str());
    std::printf("  touches:   %llu chunk files (%llu hot), %s raw\n", (unsigned long long)o.chunks,
                (unsigned long long)o.hot_chunks, FormatSize(o.raw_bytes).c_str());
    std::printf("  fetches:   %s\n", FormatSize(o.stored_bytes).c_str());
    std::printf("  occupancy: %.1f %% of the raw bytes touched; %.2f bytes read per byte fetched\n",
                100 * o.occupancy(), o.per_fetched_byte());
  }
}

int RunInfo(const InfoArgs& a) {
  auto trust = MakeTrustOptions(a.trust, TrustStateDir(DefaultCacheDir()));
  if (!trust.ok()) return Fail(trust.status());
  auto resolved = disk::ResolveUrl(a.url, fetch::FetchOptions{}, *trust, nullptr);
  if (!resolved.ok()) return Fail(resolved.status());
  const format::Index& ix = resolved->index;
  const disk::ImageVersion& v = resolved->version;
  const auto& m = ix.meta();
  std::string name = disk::ImageName(ix, a.url);
  std::vector<ProfileFigures> profiles;
  for (const std::string& path : a.profiles) {
    auto ranges = ProfileRanges(path, ix);
    if (!ranges.ok()) return Fail(ranges.status());
    profiles.push_back({path, disk::ComputeOccupancy(ix, std::move(ranges.value()))});
  }
  if (a.json) {
    nlohmann::json j = {{"url", a.url},
                        {"name", name},
                        {"image_size", ix.image_size()},
                        {"chunk_size", ix.chunk_size()},
                        {"codec", format::CodecName(ix.codec())},
                        {"hash", "sha256"},
                        {"chunk_count", ix.chunk_count()},
                        {"unique_chunks", ix.summary().unique_chunks},
                        {"zero_chunks", ix.summary().zero_chunks},
                        {"stored_bytes", ix.summary().stored_bytes},
                        {"digest", format::ToHex(ix.digest())},
                        {"index_bytes", ix.bytes().size()},
                        {"created", m.created},
                        {"tool", m.tool},
                        {"parent", nullptr},
                        {"version", disk::VersionJson(v)},
                        {"hot_chunks", ix.layout().hot.size()},
                        {"layout", LayoutJson(ix)}};
    if (!profiles.empty()) {
      j["profiles"] = nlohmann::json::array();
      for (const ProfileFigures& p : profiles) j["profiles"].push_back(ProfileJson(p));
    }
    if (m.parent_digest)
      j["parent"] = {{"name", m.parent_name}, {"digest", format::ToHex(*m.parent_digest)}};
    std::printf("%s\n", JsonText(j, 2).c_str());
    return kExitOk;
  }
  if (v.channel) {
    std::printf("channel:     %s (%s, sequence %llu)\n", a.url.c_str(), v.channel_name.c_str(),
                (unsigned long long)v.sequence);
    std::printf("issued:      %s; expires %s\n", FormatUtc(v.issued_at).c_str(),
                FormatUtc(v.expires_at).c_str());
  }
  std::printf("index:       %s\n", v.index_url.c_str());
  std::printf("signed:      %s\n", v.authenticated
                                       ? ("yes, by trusted key " + v.key_id).c_str()
                                       : "not authenticated (no trusted key: see --trust)");
  std::printf("name:        %s\n", name.c_str());
  std::printf("image size:  %llu bytes (%s)\n", (unsigned long long)ix.image_size(),
              FormatSize(ix.image_size()).c_str());
  std::printf("chunk size:  %s\n", FormatSize(ix.chunk_size()).c_str());
  std::printf("codec:       %s\n", format::CodecName(ix.codec()));
  std::printf("hash:        sha256\n");
  if (ix.layout().empty()) {
    std::printf("chunks:      %llu total, %llu unique, %llu zero (not stored)\n",
                (unsigned long long)ix.chunk_count(),
                (unsigned long long)ix.summary().unique_chunks,
                (unsigned long long)ix.summary().zero_chunks);
  } else {
    std::printf(
        "chunks:      %llu in the table, %llu zero (not stored); %llu distinct files with "
        "the %llu hot chunks\n",
        (unsigned long long)ix.chunk_count(), (unsigned long long)ix.summary().zero_chunks,
        (unsigned long long)ix.summary().unique_chunks, (unsigned long long)ix.layout().hot.size());
  }
  std::printf("stored:      %s in chunk files\n", FormatSize(ix.summary().stored_bytes).c_str());
  std::printf("created:     %s by %s\n", FormatUtc(m.created).c_str(),
              m.tool.empty() ? "?" : m.tool.c_str());
  std::printf("digest:      %s\n", format::ToHex(ix.digest()).c_str());
  if (m.parent_digest)
    std::printf("parent:      %s (%s)\n", m.parent_name.c_str(),
                format::ToHex(*m.parent_digest).c_str());
  PrintLayout(ix, profiles);
  return kExitOk;
}
}  // namespace

Command InfoCommand() {
  return {"info", "Show what an index says (path or URL)",
          [](CLI::App* app) -> std::function<int()> {
            auto a = std::make_shared<InfoArgs>();
            app->add_option("INDEX", a->url,
                            "Index or channel (NAME.channel): http(s):// or file:// URL, or a path")
                ->required();
            app->add_flag("--json", a->json, "Print JSON");
            app->add_option("--profile", a->profiles,
                            "A boot profile (NAME.profile, a local file; repeatable): show how "
                            "its reads fall on the chunk files: bytes read, chunk files touched, "
                            "bytes fetched, and occupancy (bytes read per raw byte of the chunks "
                            "touched, and per byte fetched)")
                ->allow_extra_args(false)
                ->check(CLI::ExistingFile);
            AddTrustOptions(app, &a->trust);
            return [a] { return RunInfo(*a); };
          }};
}

}  // namespace hloop::cli
