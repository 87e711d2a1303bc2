// The public keys a client trusts. Empty: no trust configured (hloop then
// works unauthenticated and says so). Removing a key's file from the trust
// directory revokes it; adding one trusts it, without re-packing anything.
//
// Not thread-safe while being filled; const methods may be called from many
// threads once it is.
#pragma once

#include <string>
#include <vector>

#include "format/hash.h"
#include "trust/channel.h"
#include "trust/keys.h"
#include "trust/signature.h"
#include "util/status.h"

namespace hloop::trust {

inline constexpr char kDefaultTrustDir[] = "/etc/hloop/trusted.d";

class TrustSet {
 public:
  // One PEM public key.
  Status AddFile(const std::string& path);
  // Every *.pub file in `dir` (other names are skipped); a missing dir is fine.
  Status AddDirectory(const std::string& dir);
  // A key already in the set is not added twice.
  void Add(PublicKey key);
  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }
  // "a1b2...,c3d4..." for messages ("none" when empty).
  std::string KeyIdsText() const;

  // OK iff `c` is signed by a trusted key and the signature checks. The
  // message names `origin`, the key id and the rule broken.
  Status VerifyChannel(const Channel& c, const std::string& origin) const;
  // OK iff `s` is a good signature by a trusted key over `index_digest`
  // and `index_name` (the digest and name of the index actually fetched).
  Status VerifyIndex(const IndexSignature& s, const format::Hash& index_digest,
                     const std::string& index_name, const std::string& origin) const;

 private:
  // The trusted key with this id, or an error naming `origin` and the key.
  Result<const PublicKey*> Find(const KeyId& id, const std::string& origin) const;
  std::vector<PublicKey> keys_;
};

}  // namespace hloop::trust
