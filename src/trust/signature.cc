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
  constexpr internal::RecordFrame kFrame{kSignatureMagic, kSignatureVersion, kMaxSignatureFileSize,
                                         "an hloop .idx.sig file"};
  internal::RecordReader r(bytes);
  if (std::string why = kFrame.Check(bytes, &r); !why.empty()) return bad(why);
  IndexSignature s;
  r.Bytes(s.key_id.data(), s.key_id.size());
  r.Bytes(s.index_digest.data(), s.index_digest.size());
  s.index_name = r.String();
  if (std::string why = kFrame.Finish(bytes, &r, &s.signature); !why.empty()) return bad(why);
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
