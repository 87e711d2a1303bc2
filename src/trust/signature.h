// NAME.idx.sig: the detached signature of an index, beside it in the store.
// It covers the index's SHA-256 digest and its file name, so a signature
// cannot be moved onto another index or another name. One per index.
// Byte layout: docs/format.md, "Index signature (.idx.sig)".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "format/hash.h"
#include "trust/keys.h"
#include "util/status.h"

namespace hloop::trust {

inline constexpr char kSignatureMagic[8] = {'H', 'L', 'O', 'O', 'P', 'S', 'I', 'G'};
inline constexpr uint32_t kSignatureVersion = 1;
// Domain separation: the first bytes of the signed message (the NUL included).
inline constexpr std::string_view kSignatureDomain{"hloop-index-sig-v1\0", 19};
inline constexpr size_t kMaxSignatureFileSize = 4096;
inline constexpr size_t kMaxIndexNameSize = 255;

struct IndexSignature {
  KeyId key_id{};
  format::Hash index_digest{};  // SHA-256 of the whole index file (format::Index::digest())
  std::string index_name;       // the index file name, e.g. "v2.idx" (no directory)
  std::string signature;        // 64 bytes
  // Domain-separated: what Sign/Verify cover (everything but the signature).
  std::string SignedMessage() const;
};

// REQUIRES: s.index_name passes CheckIndexName, s.signature is 64 bytes.
std::string EncodeSignature(const IndexSignature& s);
// Refuses input over kMaxSignatureFileSize (before anything else), a wrong
// magic or version, truncation, trailing bytes and a bad name. Does not
// check the signature (TrustSet::VerifyIndex does).
Result<IndexSignature> ParseSignature(std::string_view bytes, const std::string& origin);
// Signs index `name` (a file name, no directory) whose digest is `digest`.
IndexSignature SignIndex(const PrivateKey& key, const format::Hash& digest,
                         const std::string& name);
// An index file name: 1..255 bytes, no '/', no NUL, not "." or "..".
Status CheckIndexName(std::string_view name);

}  // namespace hloop::trust
