#include "cli/layout_cli.h"

#include <unordered_set>

#include "disk/open_image.h"
#include "disk/profile.h"
#include "fetch/checked_get.h"
#include "util/file.h"
#include "util/size.h"

namespace hloop::cli {

namespace {
// A profile is text of at most this size (a full read of a 16 TiB image).
constexpr uint64_t kMaxProfileFile = uint64_t(1) << 30;
}  // namespace

Result<std::vector<format::ByteRange>> LoadProfileRanges(const std::string& profile,
                                                         const format::Index& index,
                                                         const fetch::FetchOptions& fetch,
                                                         std::string* text_out) {
  Result<std::string> text =
      profile.find("://") != std::string::npos
          ? fetch::FetchUrlChecked(
                profile, fetch, [](const std::string&) { return Status::Ok(); }, kMaxProfileFile,
                "a profile")
          : ReadFileLimited(profile, kMaxProfileFile);
  if (!text.ok()) return text.status().Annotate("profile");
  auto parsed = disk::ParseProfile(*text, profile);
  if (!parsed.ok()) return parsed.status();
  if (text_out) *text_out = std::move(text.value());
  return disk::ProfileByteRanges(*parsed, index);
}

FetchEstimate EstimateFetch(const format::Index& index,
                            const std::vector<format::ByteRange>& ranges) {
  FetchEstimate e;
  std::unordered_set<uint64_t> seen;
  std::vector<uint64_t> slots;
  for (const auto& r : ranges) {
    if (r.offset >= index.image_size()) continue;
    e.read_bytes += std::min(r.length, index.image_size() - r.offset);
    slots.clear();
    index.SlotsOf(r.offset, r.length, &slots);
    for (uint64_t s : slots) {
      if (!seen.insert(s).second) continue;
      e.files++;
      e.stored_bytes += index.entry(s).stored_size;
      e.raw_bytes += index.chunk_length(s);
    }
  }
  return e;
}

nlohmann::json EstimateJson(const FetchEstimate& e) {
  return {{"chunk_files", e.files},
          {"bytes_fetched", e.stored_bytes},
          {"chunk_bytes", e.raw_bytes},
          {"bytes_read", e.read_bytes},
          {"occupancy", e.raw_bytes ? double(e.read_bytes) / double(e.raw_bytes) : 0.0}};
}

Result<format::Index> LoadIndexArg(const std::string& arg, const std::string& store_dir,
                                   const fetch::FetchOptions& fetch) {
  if (!store_dir.empty() && arg.find('/') == std::string::npos &&
      arg.find("://") == std::string::npos) {
    std::string name = arg;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".idx") == 0)
      name.resize(name.size() - 4);
    const std::string path = store_dir + "/" + name + ".idx";
    auto bytes = ReadFile(path);
    if (bytes.ok()) return format::Index::Parse(std::move(bytes.value()), path);
    if (!bytes.status().IsNotFound()) return bytes.status();
  }
  return disk::LoadIndex(arg, fetch, nullptr);
}

Result<writer::LayoutPlan> LayoutFrom(const std::string& from, const std::string& store_dir,
                                      const fetch::FetchOptions& fetch) {
  auto index = LoadIndexArg(from, store_dir, fetch);
  if (!index.ok()) return index.status().Annotate("--layout-from");
  if (!index->has_extents())
    return Status::InvalidArgument("--layout-from " + from +
                                   ": that index has no layout to carry (make one with "
                                   "`hloop relayout`)");
  return writer::PlanFromLayout(*index);
}

std::string LayoutLine(const writer::LayoutSummary& l) {
  if (l.hot_chunks == 0 && l.extents == 0) return "";
  std::string line = "layout: " + std::to_string(l.hot_chunks) + " hot chunks (" +
                     std::to_string(l.hot_new) + " new, " + FormatSize(l.hot_bytes_new) + "), " +
                     std::to_string(l.extents) + " extents mapping " + FormatSize(l.mapped_bytes);
  if (l.dropped_bytes) line += ", " + FormatSize(l.dropped_bytes) + " left out (table full)";
  return line;
}

nlohmann::json LayoutJson(const writer::LayoutSummary& l) {
  return {{"hot_chunks", l.hot_chunks},
          {"hot_chunks_new", l.hot_new},
          {"hot_bytes_new", l.hot_bytes_new},
          {"hot_bytes_packed", l.hot_raw_bytes},
          {"extents", l.extents},
          {"zero_extents", l.zero_extents},
          {"mapped_bytes", l.mapped_bytes},
          {"dropped_bytes", l.dropped_bytes}};
}

}  // namespace hloop::cli
