#include "disk/resolve.h"

#include <algorithm>
#include <ctime>
#include <optional>

#include "trust/channel.h"
#include "trust/sequence_store.h"
#include "trust/signature.h"
#include "util/duration.h"
#include "util/log.h"

namespace hloop::disk {

namespace {

// An index is bounded by what a huge image needs: 16 TiB in 4 KiB chunks
// is about 4 Gi entries; nobody serves that, 1 GiB of index is 24 Mi chunks
// (6 TiB in 256 KiB chunks).
constexpr uint64_t kMaxIndexSize = uint64_t(1) << 30;

int64_t NowOf(const TrustOptions& t) { return t.now ? t.now() : int64_t(std::time(nullptr)); }

bool Trusted(const TrustOptions& t) { return t.keys && !t.keys->empty(); }

std::string BaseName(const std::string& rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string::npos ? rel : rel.substr(slash + 1);
}

// `st`, prefixed with "WHAT URL: " unless its message already names `url`.
Status NameFile(const Status& st, const std::string& what, const std::string& url) {
  if (st.message().find(url) != std::string::npos) return st;
  return st.Annotate(what + " " + url);
}

struct Fetched {
  std::string bytes;
  bool cached = false;  // the copy kept in the disk cache: no server reachable
};

// Gets `rel` (which `url` names in messages and in the cache) through `get`;
// when no server can be reached, falls back on the copy the cache kept,
// which must pass `cached_check`. A good fetched copy replaces the cached one.
Result<Fetched> GetOrCached(const MetaGet& get, const std::string& rel, const std::string& url,
                            uint64_t max_size, int attempts, const BodyCheck& check,
                            const BodyCheck& cached_check, cache::DiskCache* cache,
                            const std::string& what) {
  // Reads may wait for a server without limit, but opening an image should
  // say soon that there is nothing to open; with a cached copy to fall back
  // on, do not make the user wait through every retry of a server that is down.
  std::optional<std::string> copy;
  if (cache) {
    auto c = cache->GetUrlCopy(url);
    if (c.ok()) copy = std::move(c.value());
  }
  if (copy) attempts = std::min(attempts, 2);
  std::string body;
  Status st = get(rel, max_size, attempts, check, &body);
  if (st.ok()) {
    if (cache && (!copy || *copy != body)) {
      Status put = cache->PutUrlCopy(url, body);
      if (!put.ok()) LogWarn("could not cache the " + what + ": " + put.ToString());
    }
    return Fetched{std::move(body), false};
  }
  if (!st.IsUnavailable() || !copy) return st;
  Status ok = cached_check(*copy);
  if (!ok.ok()) return ok.Annotate("the cached copy of the " + what);
  LogWarn(st.message() + "; using the cached copy of the " + what);
  return Fetched{std::move(*copy), true};
}

// What a verified channel says, for messages.
std::string Describe(const trust::Channel& c) {
  return "sequence " + std::to_string(c.sequence) + ", index " + c.index_path + ", key " +
         trust::KeyIdText(c.key_id);
}

struct ChannelResult {
  trust::Channel channel;
  bool cached = false;
};

// Fetches and checks the channel at `loc`. `highest`: the highest sequence
// number already seen for it (0: none).
Result<ChannelResult> GetChannel(const fetch::Location& loc, const TrustOptions& trust,
                                 cache::DiskCache* cache, const MetaGet& get, int attempts,
                                 uint64_t highest, int64_t now) {
  const std::string& url = loc.url;
  const bool trusted = Trusted(trust);
  std::optional<trust::Channel> got;
  // What every copy must pass: it parses, it is signed by a trusted key, and
  // it is not older than one already seen.
  auto verify = [&](const std::string& body) -> Status {
    auto c = trust::ParseChannel(body, url);
    if (!c.ok()) return c.status();
    if (trusted) {
      Status st = trust.keys->VerifyChannel(*c, url);
      if (!st.ok()) return st;
      if (c->sequence < highest)
        return Status::Corruption(
            "channel " + url + " (" + Describe(*c) + "): sequence " + std::to_string(c->sequence) +
            " is lower than " + std::to_string(highest) +
            ", already seen for this URL: refusing a rollback to an older channel");
    }
    got = std::move(c.value());
    return Status::Ok();
  };
  // A fresh copy must also not have expired: the server is reachable, so a
  // channel past its expiry means someone holds the client on an old version.
  auto verify_fresh = [&](const std::string& body) -> Status {
    Status st = verify(body);
    if (!st.ok() || !trusted || now <= got->expires_at) return st;
    return Status::Corruption("channel " + url + " (" + Describe(*got) + ") expired at " +
                              FormatUtc(got->expires_at) + ", " + FormatAge(now - got->expires_at) +
                              " ago (issued " + FormatUtc(got->issued_at) +
                              "): refusing a frozen channel while the server is reachable; the "
                              "publisher renews it with `hloop publish --renew`");
  };
  auto fetched = GetOrCached(get, loc.index_name, url, trust::kMaxChannelFileSize, attempts,
                             verify_fresh, verify, cache, "channel");
  if (!fetched.ok()) return NameFile(fetched.status(), "channel", url);
  if (fetched->cached && trust.require_fresh)
    return Status::Unavailable("channel " + url +
                               ": no server is reachable, and --require-fresh refuses the cached "
                               "copy (" +
                               Describe(*got) + ", issued " + FormatAge(now - got->issued_at) +
                               " ago)");
  if (fetched->cached) {
    std::string age = "issued " + FormatAge(now - got->issued_at) + " ago";
    if (got->expires_at < now) age += ", expired " + FormatAge(now - got->expires_at) + " ago";
    LogWarn("offline: serving the cached channel " + url + " (" + Describe(*got) + "; " + age +
            ")");
  }
  return ChannelResult{std::move(*got), fetched->cached};
}

// The signature beside an index named directly, checked against its digest.
Result<trust::IndexSignature> GetIndexSignature(const std::string& index_rel,
                                                const std::string& index_url,
                                                const format::Hash& digest,
                                                const TrustOptions& trust, cache::DiskCache* cache,
                                                const MetaGet& get, int attempts) {
  const std::string url = index_url + ".sig", name = BaseName(index_rel);
  std::optional<trust::IndexSignature> got;
  auto verify = [&](const std::string& body) -> Status {
    auto s = trust::ParseSignature(body, url);
    if (!s.ok()) return s.status();
    Status st = trust.keys->VerifyIndex(*s, digest, name, url);
    if (!st.ok()) return st;
    got = std::move(s.value());
    return Status::Ok();
  };
  auto fetched = GetOrCached(get, index_rel + ".sig", url, trust::kMaxSignatureFileSize, attempts,
                             verify, verify, cache, "signature");
  if (fetched.ok()) return std::move(*got);
  if (fetched.status().IsNotFound())
    return Status::Corruption("index " + index_url + " is not signed (" + url +
                              ": not found), and trusted keys are configured (" +
                              trust.keys->KeyIdsText() + "): refusing it");
  return fetched.status();
}

}  // namespace

bool IsChannelName(const std::string& file_name) {
  constexpr std::string_view kSuffix = ".channel";
  return file_name.size() > kSuffix.size() &&
         file_name.compare(file_name.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0;
}

Result<Resolved> Resolve(const fetch::Location& loc, const TrustOptions& trust,
                         cache::DiskCache* cache, const MetaGet& get, int attempts) {
  const bool trusted = Trusted(trust);
  const int64_t now = NowOf(trust);
  ImageVersion v;
  v.url = loc.url;
  std::string index_rel = loc.index_name;

  std::optional<trust::Channel> channel;
  std::optional<trust::SequenceStore> sequences;
  if (IsChannelName(loc.index_name)) {
    uint64_t highest = 0;
    if (trusted && !trust.state_dir.empty()) {
      auto s = trust::SequenceStore::Open(trust.state_dir);
      if (!s.ok()) return s.status().Annotate("the store of channel sequence numbers");
      sequences.emplace(std::move(s.value()));
      auto h = sequences->Highest(loc.url);
      if (!h.ok()) return h.status();
      highest = *h;
    }
    auto c = GetChannel(loc, trust, cache, get, attempts, highest, now);
    if (!c.ok()) return c.status();
    channel = std::move(c->channel);
    v.channel = true;
    v.offline = c->cached;
    v.channel_name = channel->name;
    v.sequence = channel->sequence;
    v.issued_at = channel->issued_at;
    v.expires_at = channel->expires_at;
    index_rel = channel->index_path;
    if (trusted) {
      v.authenticated = true;
      v.key_id = trust::KeyIdText(channel->key_id);
    }
  }
  v.index_url = channel ? loc.base + index_rel : loc.url;
  v.index_name = BaseName(index_rel);

  std::optional<format::Index> index;
  auto check_index = [&](const std::string& body) -> Status {
    auto ix = format::Index::Parse(body, v.index_url);
    if (!ix.ok()) return ix.status();
    if (channel &&
        (ix->digest() != channel->index_digest || ix->image_size() != channel->image_size))
      return Status::Corruption("channel " + loc.url + " (" + Describe(*channel) +
                                ") names index digest " + format::ToHex(channel->index_digest) +
                                " (image size " + std::to_string(channel->image_size) + "), but " +
                                v.index_url + " has digest " + format::ToHex(ix->digest()) +
                                " (image size " + std::to_string(ix->image_size()) +
                                "): refusing a channel and an index that do not belong together");
    index.emplace(std::move(ix.value()));
    return Status::Ok();
  };
  auto fetched = GetOrCached(get, index_rel, v.index_url, kMaxIndexSize, attempts, check_index,
                             check_index, cache, "index");
  if (!fetched.ok()) return NameFile(fetched.status(), "index", v.index_url);
  if (!v.channel) v.offline = fetched->cached;
  v.digest = index->digest();

  if (trusted && !channel) {
    auto sig = GetIndexSignature(index_rel, v.index_url, v.digest, trust, cache, get, attempts);
    if (!sig.ok()) return sig.status();
    v.authenticated = true;
    v.key_id = trust::KeyIdText(sig->key_id);
  }
  if (sequences) {
    Status st = sequences->Record(loc.url, channel->sequence);
    if (!st.ok()) return st.Annotate("recording the sequence number of channel " + loc.url);
  }
  if (v.authenticated) {
    LogInfo(v.url + ": signed by trusted key " + v.key_id);
  } else {
    LogInfo(v.url + ": not authenticated (no trusted keys: see --trust)");
  }
  return Resolved{std::move(*index), std::move(v), index_rel};
}

Result<ImageVersion> LatestVersion(const fetch::Location& loc, const TrustOptions& trust,
                                   const MetaGet& get) {
  if (!IsChannelName(loc.index_name)) return Status::InvalidArgument(loc.url + " is not a channel");
  auto c = GetChannel(loc, trust, nullptr, get, 1, 0, NowOf(trust));
  if (!c.ok()) return c.status();
  ImageVersion v;
  v.url = loc.url;
  v.channel = true;
  v.channel_name = c->channel.name;
  v.sequence = c->channel.sequence;
  v.issued_at = c->channel.issued_at;
  v.expires_at = c->channel.expires_at;
  v.index_url = loc.base + c->channel.index_path;
  v.index_name = BaseName(c->channel.index_path);
  v.digest = c->channel.index_digest;
  v.authenticated = Trusted(trust);
  if (v.authenticated) v.key_id = trust::KeyIdText(c->channel.key_id);
  return v;
}

}  // namespace hloop::disk
