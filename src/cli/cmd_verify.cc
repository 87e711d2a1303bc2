// hloop verify STORE: every chunk present and hashing right.
#include "cli/common.h"
#include "pack/verify.h"
#include "util/size.h"

namespace hloop::cli {

namespace {
struct VerifyArgs {
  std::string store;
  std::vector<std::string> indexes;
  unsigned threads = 0;
};

int RunVerify(const VerifyArgs& a) {
  auto store = store::LocalStore::Open(a.store, /*create=*/false);
  if (!store.ok()) return Fail(store.status());
  std::vector<std::string> names;
  for (std::string n : a.indexes) {
    if (n.ends_with(".idx")) n.resize(n.size() - 4);
    names.push_back(n);
  }
  auto report = pack::VerifyStore(store.value(), names, a.threads);
  if (!report.ok()) return Fail(report.status());
  for (const auto& p : report->problems)
    std::printf("%s: %s%s%s\n", p.what.c_str(), p.hash.c_str(), p.hash.empty() ? "" : " ",
                p.detail.c_str());
  std::printf("checked %llu index(es), %llu chunk files (%s): %zu problem(s)\n",
              (unsigned long long)report->indexes, (unsigned long long)report->chunks_checked,
              FormatSize(report->bytes_checked).c_str(), report->problems.size());
  return report->problems.empty() ? kExitOk : kExitFailure;
}
}  // namespace

Command VerifyCommand() {
  return {"verify", "Check that every chunk of a store's indexes is present and intact",
          [](CLI::App* app) -> std::function<int()> {
            auto a = std::make_shared<VerifyArgs>();
            app->add_option("STORE", a->store, "Store directory")->required();
            app->add_option("--index", a->indexes,
                            "Check only this index (NAME or NAME.idx; repeatable). "
                            "Default: every index, and every chunk file in the store");
            app->add_option("--threads", a->threads, "Worker threads (default: one per core)");
            app->footer(
                "Exit status 0 when everything is intact, 1 when anything is missing or corrupt.");
            return [a] { return RunVerify(*a); };
          }};
}

}  // namespace hloop::cli
