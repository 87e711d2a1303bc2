#include "publish/publish.h"

#include <ctime>
#include <unordered_set>

#include "util/file.h"

namespace hloop::publish {

namespace {

constexpr size_t kListedMissing = 5;

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Result<format::Index> ReadIndexFile(const std::string& path) {
  auto bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status().Annotate("index");
  return format::Index::Parse(std::move(bytes).value(), path);
}

// Signs the already parsed `index` found at `path`.
Result<trust::IndexSignature> WriteSignature(const format::Index& index, const std::string& path,
                                             const trust::PrivateKey& key) {
  std::string name = BaseName(path);
  HLOOP_RETURN_IF_ERROR(trust::CheckIndexName(name).Annotate(path));
  trust::IndexSignature sig = trust::SignIndex(key, index.digest(), name);
  HLOOP_RETURN_IF_ERROR(WriteFileDurable(path + kSignatureSuffix, trust::EncodeSignature(sig)));
  return sig;
}

}  // namespace

Result<trust::IndexSignature> SignIndexFile(const std::string& index_path,
                                            const trust::PrivateKey& key) {
  auto index = ReadIndexFile(index_path);
  if (!index.ok()) return index.status();
  return WriteSignature(*index, index_path, key);
}

Status CheckChunksPresent(const store::LocalStore& store, const format::Index& index,
                          const std::string& origin) {
  std::unordered_set<format::Hash, format::HashKey> seen;
  uint64_t missing = 0;
  std::string listed;
  // Every slot: the table's chunks and the hot chunks of a layout.
  for (uint64_t i = 0; i < index.slot_count(); i++) {
    format::ChunkEntry e = index.entry(i);
    if (e.zero() || !seen.insert(e.hash).second) continue;
    uint32_t size = store.ChunkFileSize(e.hash);
    if (size == e.stored_size) continue;
    if (++missing <= kListedMissing) {
      listed += "\n  " + store.ChunkFilePath(e.hash) +
                (size == 0 ? " (missing)"
                           : " (" + std::to_string(size) + " bytes, the index says " +
                                 std::to_string(e.stored_size) + ")");
    }
  }
  if (missing == 0) return Status::Ok();
  return Status::NotFound("index " + origin + ": " + std::to_string(missing) + " of " +
                          std::to_string(seen.size()) +
                          " chunk files missing or of the wrong size in store " + store.root() +
                          "; not publishing it. First ones:" + listed);
}

Result<PublishResult> Publish(const store::LocalStore& store, const trust::PrivateKey& key,
                              const PublishOptions& o) {
  HLOOP_RETURN_IF_ERROR(trust::CheckChannelName(o.channel));
  if (o.renew != o.index.empty())
    return Status::InvalidArgument(o.renew ? "--renew keeps the channel's index: give no --index"
                                           : "no index to publish");
  if (o.expires_in <= 0)
    return Status::InvalidArgument("expiry of " + std::to_string(o.expires_in) + " s");
  PublishResult r;
  r.channel_path = store.root() + "/" + o.channel + trust::kChannelSuffix;

  // The channel as it is now, if there is one.
  std::optional<trust::Channel> old;
  auto old_bytes = ReadFileLimited(r.channel_path, trust::kMaxChannelFileSize);
  if (old_bytes.ok()) {
    auto parsed = trust::ParseChannel(*old_bytes, r.channel_path);
    if (!parsed.ok())
      return parsed.status().Annotate(
          "refusing to replace a channel file that does not parse (move it away to start the "
          "channel over)");
    old = std::move(parsed).value();
    if (old->name != o.channel)
      return Status::InvalidArgument("channel file " + r.channel_path + " names channel '" +
                                     old->name + "', not '" + o.channel + "'");
  } else if (!old_bytes.status().IsNotFound()) {
    return old_bytes.status();
  } else if (o.renew) {
    return Status::NotFound("channel " + r.channel_path + ": none to renew (publish one first)");
  }
  if (old && old->sequence == UINT64_MAX)
    return Status::InvalidArgument("channel " + r.channel_path + ": sequence number exhausted");

  std::string index_rel = o.renew ? old->index_path : o.index;
  HLOOP_RETURN_IF_ERROR(trust::CheckIndexPath(index_rel));
  std::string index_path = store.root() + "/" + index_rel;
  auto index = ReadIndexFile(index_path);
  if (!index.ok()) return index.status();
  if (o.renew && index->digest() != old->index_digest)
    return Status::Corruption("channel " + r.channel_path + " points at " + index_rel +
                              " with digest " + format::ToHex(old->index_digest) +
                              ", but that file now has digest " + format::ToHex(index->digest()) +
                              "; publish it with --index instead of renewing");
  HLOOP_RETURN_IF_ERROR(CheckChunksPresent(store, *index, index_path));
  auto sig = WriteSignature(*index, index_path, key);
  if (!sig.ok()) return sig.status();

  trust::Channel& c = r.channel;
  c.name = o.channel;
  c.sequence = old ? old->sequence + 1 : 1;
  c.index_path = index_rel;
  c.index_digest = index->digest();
  c.image_size = index->image_size();
  c.issued_at = o.now != 0 ? o.now : int64_t(std::time(nullptr));
  c.expires_at = c.issued_at + o.expires_in;
  trust::SignChannel(key, &c);
  HLOOP_RETURN_IF_ERROR(WriteFileDurable(r.channel_path, trust::EncodeChannel(c)));
  r.previous_sequence = old ? old->sequence : 0;
  return r;
}

}  // namespace hloop::publish
