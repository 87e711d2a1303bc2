// hloop overlay info FILE: what an overlay file holds (no base needed).
#include <ctime>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "overlay/overlay_file.h"
#include "util/size.h"

namespace hloop::cli {

namespace {
struct OverlayInfoArgs {
  std::string path;
  bool json = false;
};

int RunOverlayInfo(const OverlayInfoArgs& a) {
  auto info = overlay::InspectOverlay(a.path);
  if (!info.ok()) return Fail(info.status());
  const overlay::Header& h = info->header;
  const uint64_t bytes = info->counts.data_blocks * overlay::kBlockSize;
  if (a.json) {
    nlohmann::json j = {{"path", a.path},
                        {"base", {{"name", h.base_name}, {"digest", format::ToHex(h.base_digest)}}},
                        {"image_size", h.image_size},
                        {"block_size", overlay::kBlockSize},
                        {"blocks", h.block_count},
                        {"blocks_written", info->counts.data_blocks + info->counts.zero_blocks},
                        {"data_blocks", info->counts.data_blocks},
                        {"zero_blocks", info->counts.zero_blocks},
                        {"bytes", bytes},
                        {"file_size", info->file_size},
                        {"allocated_bytes", info->allocated_bytes},
                        {"created", h.created}};
    std::printf("%s\n", JsonText(j, 2).c_str());
    return kExitOk;
  }
  std::printf("overlay:     %s\n", a.path.c_str());
  std::printf("base:        %s (index %s)\n", h.base_name.c_str(),
              format::ToHex(h.base_digest).c_str());
  std::printf("image size:  %llu bytes (%s)\n", (unsigned long long)h.image_size,
              FormatSize(h.image_size).c_str());
  std::printf("written:     %llu of %llu blocks of 4 KiB: %llu with data, %llu zero\n",
              (unsigned long long)(info->counts.data_blocks + info->counts.zero_blocks),
              (unsigned long long)h.block_count, (unsigned long long)info->counts.data_blocks,
              (unsigned long long)info->counts.zero_blocks);
  std::printf("bytes:       %llu (%s) of data\n", (unsigned long long)bytes,
              FormatSize(bytes).c_str());
  std::printf("file:        %s apparent, %s on disk\n", FormatSize(info->file_size).c_str(),
              FormatSize(info->allocated_bytes).c_str());
  std::printf("created:     %s\n", FormatUtc(int64_t(h.created)).c_str());
  return kExitOk;
}
}  // namespace

Command OverlayCommand() {
  return {"overlay", "Inspect a copy-on-write overlay file",
          [](CLI::App* app) -> std::function<int()> {
            auto a = std::make_shared<OverlayInfoArgs>();
            app->require_subcommand(1);
            CLI::App* info =
                app->add_subcommand("info", "Show an overlay's base, blocks written and bytes");
            info->add_option("FILE", a->path, "Overlay file (made by mount --overlay)")->required();
            info->add_flag("--json", a->json, "Print JSON");
            return [a, info]() -> int {
              if (info->parsed()) return RunOverlayInfo(*a);
              return kExitUsage;
            };
          }};
}

}  // namespace hloop::cli
