// hloop log URL: the versions an index descends from.
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "history/log.h"
#include "util/size.h"

namespace hloop::cli {

namespace {
struct LogArgs {
  std::string url;
  bool json = false;
};

int RunLog(const LogArgs& a) {
  auto log = history::Log(a.url, fetch::FetchOptions{});
  if (!log.ok()) return Fail(log.status());
  if (a.json) {
    nlohmann::json versions = nlohmann::json::array();
    for (const auto& v : log->versions) {
      nlohmann::json j = {{"url", v.url},
                          {"name", v.name},
                          {"digest", format::ToHex(v.digest)},
                          {"created", v.created},
                          {"image_size", v.image_size},
                          {"stored_bytes", v.stored_bytes},
                          {"added_files", nullptr},
                          {"added_bytes", nullptr}};
      if (v.added) {
        j["added_files"] = v.added->files;
        j["added_bytes"] = v.added->bytes;
      }
      versions.push_back(j);
    }
    nlohmann::json j = {{"versions", versions}, {"stopped", nullptr}};
    if (!log->stopped.empty()) j["stopped"] = log->stopped;
    std::printf("%s\n", JsonText(j, 2).c_str());
    return kExitOk;
  }
  for (const auto& v : log->versions) {
    std::printf("version %s (%s)\n", v.name.c_str(), v.url.c_str());
    std::printf("  digest:  %s\n", format::ToHex(v.digest).c_str());
    std::printf("  created: %s\n", FormatUtc(v.created).c_str());
    std::printf("  image:   %s, stored in %s\n", FormatSize(v.image_size).c_str(),
                FormatSize(v.stored_bytes).c_str());
    if (v.added)
      std::printf("  added:   %s in %llu chunk files\n", FormatSize(v.added->bytes).c_str(),
                  (unsigned long long)v.added->files);
    else
      std::printf("  added:   unknown (parent not available)\n");
  }
  if (!log->stopped.empty()) std::printf("history ends: %s\n", log->stopped.c_str());
  return kExitOk;
}
}  // namespace

Command LogCommand() {
  return {
      "log", "Show the versions an index descends from (its PARENT records)",
      [](CLI::App* app) -> std::function<int()> {
        auto a = std::make_shared<LogArgs>();
        app->add_option("URL", a->url, "Index: http(s):// or file:// URL, or a path")->required();
        app->add_flag("--json", a->json, "Print the versions as JSON");
        app->footer(
            "Newest first. Each parent is read as PARENT_NAME.idx next to URL; the walk ends\n"
            "at a version without a parent, or (said on the last line) at a parent that is\n"
            "missing, unreadable or whose digest is not the one recorded (it was replaced).\n"
            "'added' is the stored size of the chunk files a version has and its parent has\n"
            "not: what pack or commit added to the store for it.");
        return [a] { return RunLog(*a); };
      }};
}

}  // namespace hloop::cli
