// hloop info INDEX: what an index says.
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "disk/version_watch.h"
#include "format/codec.h"
#include "util/size.h"

namespace hloop::cli {

namespace {
struct InfoArgs {
  std::string url;
  bool json = false;
  TrustCliOptions trust;
};

int RunInfo(const InfoArgs& a) {
  auto trust = MakeTrustOptions(a.trust, TrustStateDir(DefaultCacheDir()));
  if (!trust.ok()) return Fail(trust.status());
  auto resolved = disk::ResolveUrl(a.url, fetch::FetchOptions{}, *trust, nullptr);
  if (!resolved.ok()) return Fail(resolved.status());
  const format::Index& ix = resolved->index;
  const disk::ImageVersion& v = resolved->version;
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
                        {"parent", nullptr},
                        {"version", disk::VersionJson(v)}};
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
  return {"info", "Show what an index says (path or URL)",
          [](CLI::App* app) -> std::function<int()> {
            auto a = std::make_shared<InfoArgs>();
            app->add_option("INDEX", a->url,
                            "Index or channel (NAME.channel): http(s):// or file:// URL, or a path")
                ->required();
            app->add_flag("--json", a->json, "Print JSON");
            AddTrustOptions(app, &a->trust);
            return [a] { return RunInfo(*a); };
          }};
}

}  // namespace hloop::cli
