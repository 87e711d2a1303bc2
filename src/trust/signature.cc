#include "trust/signature.h"

#include <cstring>

#include "trust/record.h"

namespace hloop::trust {

namespace {
// The fields both the file and the signed message carry, in file order.
void WriteBody(const IndexSignature& s, internal::RecordWriter* w) {
  w->Bytes(s.key_id.data(), s.key_id.size());
  w->Bytes(s.index_digest.data(), s.index_digest.size());
  w->String(s.index_name);
}
}  // namespace

Status CheckIndexName(std::string_view name) {
  if (name.empty() || name.size() > kMaxIndexNameSize)
    return Status::InvalidArgument("index name of " + std::to_string(name.size()) +
                                   " bytes (1 to 255 allowed)");
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos ||
      name == "." || name == "..")
    return Status::InvalidArgument("index name '" + std::string(name) +
                                   "' is not a plain file name");
  return Status::Ok();
}

std::string IndexSignature::SignedMessage() const {
  internal::RecordWriter w;
  w.Bytes(kSignatureDomain.data(), kSignatureDomain.size());
  WriteBody(*this, &w);
  return std::move(w.out());
}

std::string EncodeSignature(const IndexSignature& s) {
  internal::RecordWriter w;
  w.Bytes(kSignatureMagic, sizeof kSignatureMagic);
  w.U32(kSignatureVersion);
  WriteBody(s, &w);
  w.Bytes(s.signature.data(), s.signature.size());
  return std::move(w.out());
}

Result<IndexSignature> ParseSignature(std::string_view bytes, const std::string& origin) {
  auto bad = [&](const std::string& why) {
    return Status::Corruption("index signature " + origin + ": " + why);
  };
  if (bytes.size() > kMaxSignatureFileSize)
    return bad(std::to_string(bytes.size()) + " bytes, more than the limit of " +
               std::to_string(kMaxSignatureFileSize));
  internal::RecordReader r(bytes);
  char magic[sizeof kSignatureMagic] = {};
  if (!r.Bytes(magic, sizeof magic) || std::memcmp(magic, kSignatureMagic, sizeof magic) != 0)
    return bad("bad magic (not an hloop .idx.sig file)");
  uint32_t version = r.U32();
  if (!r.ok()) return bad("truncated header");
  if (version != kSignatureVersion)
    return bad("format version " + std::to_string(version) + " (this hloop reads version " +
               std::to_string(kSignatureVersion) + ")");
  IndexSignature s;
  r.Bytes(s.key_id.data(), s.key_id.size());
  r.Bytes(s.index_digest.data(), s.index_digest.size());
  s.index_name = r.String();
  s.signature.resize(kSignatureSize);
  r.Bytes(s.signature.data(), s.signature.size());
  if (!r.ok()) return bad("truncated (" + std::to_string(bytes.size()) + " bytes)");
  if (r.remaining() != 0) return bad(std::to_string(r.remaining()) + " trailing bytes");
  Status name = CheckIndexName(s.index_name);
  if (!name.ok()) return bad(name.message());
  return s;
}

IndexSignature SignIndex(const PrivateKey& key, const format::Hash& digest,
                         const std::string& name) {
  IndexSignature s;
  s.key_id = key.public_key().id();
  s.index_digest = digest;
  s.index_name = name;
  s.signature = key.Sign(s.SignedMessage());
  return s;
}

}  // namespace hloop::trust
