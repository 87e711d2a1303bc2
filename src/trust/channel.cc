#include "trust/channel.h"

#include <cstring>

#include "trust/record.h"

namespace hloop::trust {

namespace {
// The fields both the file and the signed message carry, in file order.
void WriteBody(const Channel& c, internal::RecordWriter* w) {
  w->U64(c.sequence);
  w->U64(c.image_size);
  w->U64(uint64_t(c.issued_at));
  w->U64(uint64_t(c.expires_at));
  w->Bytes(c.index_digest.data(), c.index_digest.size());
  w->Bytes(c.key_id.data(), c.key_id.size());
  w->String(c.name);
  w->String(c.index_path);
}
}  // namespace

Status CheckChannelName(std::string_view name) {
  if (name.empty() || name.size() > kMaxChannelNameSize)
    return Status::InvalidArgument("channel name of " + std::to_string(name.size()) +
                                   " bytes (1 to 64 allowed)");
  for (char ch : name) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-';
    if (!ok || name[0] == '.')
      return Status::InvalidArgument("channel name '" + std::string(name) +
                                     "': only letters, digits, '.', '_' and '-', "
                                     "not starting with '.'");
  }
  return Status::Ok();
}

Status CheckIndexPath(std::string_view path) {
  auto bad = [&](const char* why) {
    return Status::InvalidArgument("index path '" + std::string(path) + "': " + why);
  };
  if (path.empty() || path.size() > kMaxIndexPathSize) return bad("empty or over 1024 bytes");
  if (path.find('\0') != std::string_view::npos) return bad("contains a NUL byte");
  if (path[0] == '/') return bad("absolute (must be relative to the channel's directory)");
  if (path.find("..") != std::string_view::npos) return bad("contains \"..\"");
  return Status::Ok();
}

std::string Channel::SignedMessage() const {
  internal::RecordWriter w;
  w.Bytes(kChannelDomain.data(), kChannelDomain.size());
  w.U32(version);
  WriteBody(*this, &w);
  return std::move(w.out());
}

std::string EncodeChannel(const Channel& c) {
  internal::RecordWriter w;
  w.Bytes(kChannelMagic, sizeof kChannelMagic);
  w.U32(c.version);
  WriteBody(c, &w);
  w.Bytes(c.signature.data(), c.signature.size());
  return std::move(w.out());
}

Result<Channel> ParseChannel(std::string_view bytes, const std::string& origin) {
  auto bad = [&](const std::string& why) {
    return Status::Corruption("channel " + origin + ": " + why);
  };
  constexpr internal::RecordFrame kFrame{kChannelMagic, kChannelVersion, kMaxChannelFileSize,
                                         "an hloop .channel file"};
  internal::RecordReader r(bytes);
  if (std::string why = kFrame.Check(bytes, &r); !why.empty()) return bad(why);
  Channel c;
  c.sequence = r.U64();
  c.image_size = r.U64();
  c.issued_at = int64_t(r.U64());
  c.expires_at = int64_t(r.U64());
  r.Bytes(c.index_digest.data(), c.index_digest.size());
  r.Bytes(c.key_id.data(), c.key_id.size());
  c.name = r.String();
  c.index_path = r.String();
  if (std::string why = kFrame.Finish(bytes, &r, &c.signature); !why.empty()) return bad(why);
  Status st = CheckChannelName(c.name);
  if (st.ok()) st = CheckIndexPath(c.index_path);
  if (!st.ok()) return bad(st.message());
  if (c.expires_at < c.issued_at)
    return bad("expires at " + std::to_string(c.expires_at) + ", before it was issued (" +
               std::to_string(c.issued_at) + ")");
  return c;
}

void SignChannel(const PrivateKey& key, Channel* c) {
  c->key_id = key.public_key().id();
  c->signature = key.Sign(c->SignedMessage());
}

}  // namespace hloop::trust
