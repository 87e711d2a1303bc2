// hloop publish STORE --channel NAME --index V.idx --key KEYFILE: move a channel.
#include <ctime>

#include "cli/common.h"
#include "format/hash.h"
#include "publish/publish.h"
#include "util/duration.h"

namespace hloop::cli {

namespace {
struct PublishArgs {
  std::string store;
  std::string channel;
  std::string index;
  std::string key;
  std::string expires = "7d";
  bool renew = false;
};

int RunPublish(const PublishArgs& a) {
  auto expires = ParseDuration(a.expires);
  if (!expires.ok()) return Fail(expires.status().Annotate("--expires"));
  auto store = store::LocalStore::Open(a.store, /*create=*/false);
  if (!store.ok()) return Fail(store.status());
  auto key = trust::PrivateKey::Load(a.key);
  if (!key.ok()) return Fail(key.status());
  publish::PublishOptions o;
  o.channel = a.channel;
  o.index = a.index;
  o.renew = a.renew;
  o.expires_in = *expires;
  auto r = publish::Publish(*store, *key, o);
  if (!r.ok()) return Fail(r.status());
  const trust::Channel& c = r->channel;
  std::printf("channel:  %s (%s)\n", c.name.c_str(), r->channel_path.c_str());
  std::printf("sequence: %llu (was %llu)\n", (unsigned long long)c.sequence,
              (unsigned long long)r->previous_sequence);
  std::printf("index:    %s%s\n", c.index_path.c_str(), a.renew ? " (renewed)" : "");
  std::printf("digest:   %s\n", format::ToHex(c.index_digest).c_str());
  std::printf("key id:   %s\n", trust::KeyIdText(c.key_id).c_str());
  std::printf("expires:  %s (in %s)\n", FormatUtc(c.expires_at).c_str(), a.expires.c_str());
  return kExitOk;
}
}  // namespace

Command PublishCommand() {
  return {"publish", "Point a channel (STORE/NAME.channel) at an index, signed",
          [](CLI::App* app) -> std::function<int()> {
            auto a = std::make_shared<PublishArgs>();
            app->add_option("STORE", a->store, "Store directory")->required();
            app->add_option("--channel", a->channel,
                            "Channel name (letters, digits, '.', '_', '-'): writes "
                            "STORE/NAME.channel")
                ->required();
            auto* index = app->add_option(
                "--index", a->index,
                "Index to publish, relative to STORE (V.idx). Every chunk it names must be in "
                "the store. An older index is a rollback");
            app->add_option("--key", a->key, "Private key file (from `hloop key generate`)")
                ->required();
            app->add_option("--expires", a->expires,
                            "How long clients accept the channel without a newer one: 30s, "
                            "15m, 12h, 7d (default 7d)");
            auto* renew = app->add_flag(
                "--renew", a->renew,
                "Re-sign the channel's current index with a new expiry and the next sequence "
                "number, changing nothing else (for a timer)");
            index->excludes(renew);
            app->footer(
                "Writes V.idx.sig too, then the channel atomically with the next sequence number "
                "(1 for a new channel). Publishing again is an update; publishing an older index "
                "is a rollback.");
            return [a] {
              if (!a->renew && a->index.empty()) return Fail("publish: --index or --renew needed");
              return RunPublish(*a);
            };
          }};
}

}  // namespace hloop::cli
