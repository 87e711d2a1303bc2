#include "trust/keys.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>

#include "format/hash.h"
#include "util/bytes.h"
#include "util/file.h"
#include "util/log.h"

namespace hloop::trust {

namespace {

std::shared_ptr<void> Own(EVP_PKEY* k) {
  return std::shared_ptr<void>(k, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
}
EVP_PKEY* Get(const std::shared_ptr<void>& p) { return static_cast<EVP_PKEY*>(p.get()); }

// The last OpenSSL error as text, and the queue cleared.
std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, size_t(n));
}

}  // namespace

std::string KeyIdText(const KeyId& id) { return HexEncode(id.data(), id.size()); }

KeyId KeyIdOf(std::string_view raw_public_key) {
  format::Hash h = format::Sha256(raw_public_key);
  KeyId id;
  std::copy_n(h.begin(), id.size(), id.begin());
  return id;
}

Result<PublicKey> PublicKey::FromPkey(std::shared_ptr<void> pkey, const std::string& origin) {
  if (EVP_PKEY_get_id(Get(pkey)) != EVP_PKEY_ED25519)
    return Status::InvalidArgument(origin + ": not an Ed25519 key");
  uint8_t raw[kPublicKeySize];
  size_t len = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(Get(pkey), raw, &len) != 1 || len != kPublicKeySize)
    return Status::InvalidArgument(origin + ": no raw Ed25519 public key: " + OpenSslError());
  return PublicKey(std::move(pkey), KeyIdOf(std::string_view(reinterpret_cast<char*>(raw), len)));
}

Result<PublicKey> PublicKey::FromRaw(std::string_view raw32) {
  if (raw32.size() != kPublicKeySize)
    return Status::InvalidArgument("Ed25519 public key of " + std::to_string(raw32.size()) +
                                   " bytes (expected " + std::to_string(kPublicKeySize) + ")");
  EVP_PKEY* k = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const uint8_t*>(raw32.data()), raw32.size());
  if (!k) return Status::InvalidArgument("Ed25519 public key: " + OpenSslError());
  return FromPkey(Own(k), "raw public key");
}

Result<PublicKey> PublicKey::ParsePem(std::string_view pem, const std::string& origin) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  if (!bio) return Status::IOError(origin + ": " + OpenSslError());
  EVP_PKEY* k = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (!k)
    return Status::InvalidArgument(origin +
                                   ": not a PEM public key (BEGIN PUBLIC KEY): " + OpenSslError());
  return FromPkey(Own(k), origin);
}

Result<PublicKey> PublicKey::Load(const std::string& path) {
  auto pem = ReadFileLimited(path, kMaxKeyFileSize);
  if (!pem.ok()) return pem.status();
  return ParsePem(*pem, path);
}

std::string PublicKey::raw() const {
  std::string out(kPublicKeySize, '\0');
  size_t len = out.size();
  EVP_PKEY_get_raw_public_key(Get(pkey_), reinterpret_cast<uint8_t*>(out.data()), &len);
  out.resize(len);
  return out;
}

std::string PublicKey::Pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), Get(pkey_)) != 1) return "";
  return BioText(bio.get());
}

bool PublicKey::Verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != kSignatureSize) return false;
  MdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, Get(pkey_)) == 1 &&
            EVP_DigestVerify(ctx.get(), reinterpret_cast<const uint8_t*>(signature.data()),
                             signature.size(), reinterpret_cast<const uint8_t*>(message.data()),
                             message.size()) == 1;
  ERR_clear_error();
  return ok;
}

Status PublicKey::Save(const std::string& path) const {
  std::string pem = Pem();
  if (pem.empty()) return Status::IOError(path + ": cannot encode the public key");
  return WriteNewFile(path, pem, 0644);
}

Result<PrivateKey> PrivateKey::FromPkey(std::shared_ptr<void> pkey, const std::string& origin) {
  auto pub = PublicKey::FromPkey(pkey, origin);
  if (!pub.ok()) return pub.status();
  return PrivateKey(std::move(pkey), std::move(pub).value());
}

Result<PrivateKey> PrivateKey::Generate() {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!k) return Status::IOError("Ed25519 key generation: " + OpenSslError());
  return FromPkey(Own(k), "generated key");
}

Result<PrivateKey> PrivateKey::FromRawSeed(std::string_view seed32) {
  if (seed32.size() != kPublicKeySize)
    return Status::InvalidArgument("Ed25519 secret seed of " + std::to_string(seed32.size()) +
                                   " bytes (expected 32)");
  EVP_PKEY* k = EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const uint8_t*>(seed32.data()), seed32.size());
  if (!k) return Status::InvalidArgument("Ed25519 secret seed: " + OpenSslError());
  return FromPkey(Own(k), "raw secret seed");
}

Result<PrivateKey> PrivateKey::Load(const std::string& path) {
  auto pem = ReadFileLimited(path, kMaxKeyFileSize);
  if (!pem.ok()) return pem.status();
  struct stat sb;
  if (::stat(path.c_str(), &sb) == 0 && (sb.st_mode & 077) != 0)
    LogWarn("private key " + path + " may be read by group or others (mode " +
            std::to_string((sb.st_mode >> 6) & 7) + std::to_string((sb.st_mode >> 3) & 7) +
            std::to_string(sb.st_mode & 7) + "); chmod 600 it");
  BioPtr bio(BIO_new_mem_buf(pem->data(), int(pem->size())));
  if (!bio) return Status::IOError(path + ": " + OpenSslError());
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (!k)
    return Status::InvalidArgument(
        path + ": not a PEM private key (BEGIN PRIVATE KEY): " + OpenSslError());
  return FromPkey(Own(k), path);
}

Status PrivateKey::Save(const std::string& path) const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), Get(pkey_), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return Status::IOError(path + ": cannot encode the private key: " + OpenSslError());
  return WriteNewFile(path, BioText(bio.get()), 0600);
}

std::string PrivateKey::Sign(std::string_view message) const {
  std::string sig(kSignatureSize, '\0');
  size_t len = sig.size();
  MdCtxPtr ctx(EVP_MD_CTX_new());
  // Ed25519 signing cannot fail for a valid key and an allocated context.
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, Get(pkey_)) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<uint8_t*>(sig.data()), &len,
                     reinterpret_cast<const uint8_t*>(message.data()), message.size()) != 1 ||
      len != kSignatureSize) {
    LogError("Ed25519 signing failed: " + OpenSslError());
    std::abort();
  }
  return sig;
}

Result<PrivateKey> GenerateKeyFiles(const std::string& key_path) {
  std::string pub_path = key_path + kPublicKeySuffix;
  for (const std::string& p : {key_path, pub_path}) {
    struct stat sb;
    if (::lstat(p.c_str(), &sb) == 0)
      return Status::InvalidArgument(p + ": exists already; refusing to overwrite it");
  }
  auto key = PrivateKey::Generate();
  if (!key.ok()) return key.status();
  HLOOP_RETURN_IF_ERROR(key->Save(key_path));
  HLOOP_RETURN_IF_ERROR(key->public_key().Save(pub_path));
  return key;
}

}  // namespace hloop::trust
