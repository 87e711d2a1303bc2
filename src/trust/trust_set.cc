#include "trust/trust_set.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>

#include "util/file.h"

namespace hloop::trust {

Status TrustSet::AddFile(const std::string& path) {
  auto key = PublicKey::Load(path);
  if (!key.ok()) return key.status().Annotate("trusted key");
  Add(std::move(key).value());
  return Status::Ok();
}

Status TrustSet::AddDirectory(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return errno == ENOENT ? Status::Ok() : Status::FromErrno(errno, dir);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 4 && name.ends_with(".pub")) names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) HLOOP_RETURN_IF_ERROR(AddFile(dir + "/" + n));
  return Status::Ok();
}

void TrustSet::Add(PublicKey key) {
  for (const PublicKey& k : keys_)
    if (k.id() == key.id()) return;
  keys_.push_back(std::move(key));
}

std::string TrustSet::KeyIdsText() const {
  if (keys_.empty()) return "none";
  std::string out;
  for (const PublicKey& k : keys_) out += (out.empty() ? "" : ",") + KeyIdText(k.id());
  return out;
}

Result<const PublicKey*> TrustSet::Find(const KeyId& id, const std::string& origin) const {
  for (const PublicKey& k : keys_)
    if (k.id() == id) return &k;
  return Status::Corruption(origin + ": signed by key " + KeyIdText(id) +
                            " which is not trusted (trusted: " + KeyIdsText() + ")");
}

Status TrustSet::VerifyChannel(const Channel& c, const std::string& origin) const {
  auto key = Find(c.key_id, "channel " + origin);
  if (!key.ok()) return key.status();
  if (!(*key)->Verify(c.SignedMessage(), c.signature))
    return Status::Corruption("channel " + origin + ": bad signature by key " +
                              KeyIdText(c.key_id));
  return Status::Ok();
}

Status TrustSet::VerifyIndex(const IndexSignature& s, const format::Hash& index_digest,
                             const std::string& index_name, const std::string& origin) const {
  auto key = Find(s.key_id, "index signature " + origin);
  if (!key.ok()) return key.status();
  if (!(*key)->Verify(s.SignedMessage(), s.signature))
    return Status::Corruption("index signature " + origin + ": bad signature by key " +
                              KeyIdText(s.key_id));
  if (s.index_digest != index_digest)
    return Status::Corruption("index signature " + origin + " (key " + KeyIdText(s.key_id) +
                              "): signs digest " + format::ToHex(s.index_digest) +
                              ", the index has digest " + format::ToHex(index_digest));
  if (s.index_name != index_name)
    return Status::Corruption("index signature " + origin + " (key " + KeyIdText(s.key_id) +
                              "): signs index name '" + s.index_name + "', the index is '" +
                              index_name + "'");
  return Status::Ok();
}

}  // namespace hloop::trust
