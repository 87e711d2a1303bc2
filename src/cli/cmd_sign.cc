// hloop sign STORE/NAME.idx --key KEYFILE: the detached signature NAME.idx.sig.
#include "cli/common.h"
#include "format/hash.h"
#include "publish/publish.h"

namespace hloop::cli {

namespace {
struct SignArgs {
  std::string index;
  std::string key;
};

int RunSign(const SignArgs& a) {
  auto key = trust::PrivateKey::Load(a.key);
  if (!key.ok()) return Fail(key.status());
  auto sig = publish::SignIndexFile(a.index, *key);
  if (!sig.ok()) return Fail(sig.status());
  std::printf("signed %s -> %s%s\n", a.index.c_str(), a.index.c_str(), publish::kSignatureSuffix);
  std::printf("key id: %s\n", trust::KeyIdText(sig->key_id).c_str());
  std::printf("digest: %s\n", format::ToHex(sig->index_digest).c_str());
  return kExitOk;
}
}  // namespace

Command SignCommand() {
  return {
      "sign", "Sign an index: write NAME.idx.sig beside it",
      [](CLI::App* app) -> std::function<int()> {
        auto a = std::make_shared<SignArgs>();
        app->add_option("INDEX", a->index, "The index file to sign (STORE/NAME.idx)")->required();
        app->add_option("--key", a->key, "Private key file (from `hloop key generate`)")
            ->required();
        app->footer(
            "The signature covers the index's SHA-256 digest and file name. An existing "
            "NAME.idx.sig is replaced (one signature per index).");
        return [a] { return RunSign(*a); };
      }};
}

}  // namespace hloop::cli
