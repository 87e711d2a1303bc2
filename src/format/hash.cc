#include "format/hash.h"

#include <openssl/evp.h>

#include "util/bytes.h"

namespace hloop::format {

Hash Sha256(const void* data, size_t len) {
  Hash h;
  unsigned int n = 0;
  EVP_Digest(data, len, h.data(), &n, EVP_sha256(), nullptr);
  return h;
}

std::string ToHex(const Hash& h) { return HexEncode(h.data(), h.size()); }

bool ParseHash(std::string_view hex, Hash* out) { return HexDecode(hex, out->data(), out->size()); }

std::string ChunkPath(const Hash& h) {
  std::string hex = ToHex(h);
  return std::string(kChunkDir) + "/" + hex.substr(0, 2) + "/" + hex;
}

Sha256Stream::Sha256Stream() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}
Sha256Stream::~Sha256Stream() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256Stream::Update(const void* data, size_t len) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, len);
}
Hash Sha256Stream::Finish() {
  Hash h;
  unsigned int n = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), h.data(), &n);
  return h;
}

}  // namespace hloop::format
