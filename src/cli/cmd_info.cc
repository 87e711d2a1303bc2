// hloop info INDEX: what an index says.
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "format/codec.h"
#include "util/size.h"

namespace hloop::cli {

namespace {
struct InfoArgs {
  std::string url;
  bool json = false;
};

int RunInfo(const InfoArgs& a) {
  auto index = disk::LoadIndex(a.url, fetch::FetchOptions{}, nullptr);
  if (!index.ok()) return Fail(index.status());
  const format::Index& ix = index.value();
  const auto& m = ix.meta();
  std::string name = disk::ImageName(ix, a.url);
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
                        {"parent", nullptr}};
    if (m.parent_digest)
      j["parent"] = {{"name", m.parent_name}, {"digest", format::ToHex(*m.parent_digest)}};
    std::printf("%s\n", JsonText(j, 2).c_str());
    return kExitOk;
  }
  std::printf("index:       %s\n", a.url.c_str());
  std::printf("name:        %s\n", name.c_str());
  std::printf("image size:  %llu bytes (%s)\n", (unsigned long long)ix.image_size(),
              FormatSize(ix.image_size()).c_str());
  std::printf("chunk size:  %s\n", FormatSize(ix.chunk_size()).c_str());
  std::printf("codec:       %s\n", format::CodecName(ix.codec()));
  std::printf("hash:        sha256\n");
  std::printf("chunks:      %llu total, %llu unique, %llu zero (not stored)\n",
              (unsigned long long)ix.chunk_count(), (unsigned long long)ix.summary().unique_chunks,
              (unsigned long long)ix.summary().zero_chunks);
  std::printf("stored:      %s in chunk files\n", FormatSize(ix.summary().stored_bytes).c_str());
  std::printf("created:     %s by %s\n", FormatUtc(m.created).c_str(),
              m.tool.empty() ? "?" : m.tool.c_str());
  std::printf("digest:      %s\n", format::ToHex(ix.digest()).c_str());
  if (m.parent_digest)
    std::printf("parent:      %s (%s)\n", m.parent_name.c_str(),
                format::ToHex(*m.parent_digest).c_str());
  return kExitOk;
}
}  // namespace

Command InfoCommand() {
  return {
      "info", "Show what an index says (path or URL)", [](CLI::App* app) -> std::function<int()> {
        auto a = std::make_shared<InfoArgs>();
        app->add_option("INDEX", a->url, "Index: http(s):// or file:// URL, or a path")->required();
        app->add_flag("--json", a->json, "Print JSON");
        return [a] { return RunInfo(*a); };
      }};
}

}  // namespace hloop::cli
