// hloop key generate KEYFILE: an Ed25519 signing key and KEYFILE.pub.
#include "cli/common.h"
#include "trust/keys.h"
#include "trust/trust_set.h"

namespace hloop::cli {

namespace {
int RunKeyGenerate(const std::string& path) {
  auto key = trust::GenerateKeyFiles(path);
  if (!key.ok()) return Fail(key.status());
  std::printf("private key: %s (mode 0600; keep it secret)\n", path.c_str());
  std::printf("public key:  %s%s (give it to clients: --trust, or %s/)\n", path.c_str(),
              trust::kPublicKeySuffix, trust::kDefaultTrustDir);
  std::printf("key id:      %s\n", trust::KeyIdText(key->public_key().id()).c_str());
  return kExitOk;
}
}  // namespace

Command KeyCommand() {
  return {
      "key", "Make signing keys (key generate KEYFILE)", [](CLI::App* app) -> std::function<int()> {
        app->require_subcommand(1);
        auto path = std::make_shared<std::string>();
        CLI::App* gen =
            app->add_subcommand("generate",
                                "Write a new Ed25519 private key to KEYFILE and its public key to "
                                "KEYFILE.pub, and print its key id");
        gen->add_option("KEYFILE", *path,
                        "Private key file to create (PEM PKCS#8, mode 0600); the public key "
                        "goes to KEYFILE.pub (PEM). Neither may exist already")
            ->required();
        return [path] { return RunKeyGenerate(*path); };
      }};
}

}  // namespace hloop::cli
