// Ed25519 keys (RFC 8032) through OpenSSL 3's EVP interface, and their key ids.
// A key id names a public key in files and messages: the first 8 bytes of
// SHA-256 of the raw 32-byte public key, written as 16 lowercase hex digits.
//
// Key files are PEM: a public key is SubjectPublicKeyInfo ("BEGIN PUBLIC
// KEY"), a private key PKCS#8 ("BEGIN PRIVATE KEY"), the forms
// `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` use.
//
// Thread-safe: both classes are immutable after construction and share
// their OpenSSL key object; copies are cheap.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "util/status.h"

namespace hloop::trust {

inline constexpr size_t kPublicKeySize = 32, kSignatureSize = 64, kKeyIdSize = 8;
// Key files are small; a larger one is refused before it is read.
inline constexpr size_t kMaxKeyFileSize = 16 * 1024;

using KeyId = std::array<uint8_t, kKeyIdSize>;
// 16 lowercase hex digits.
std::string KeyIdText(const KeyId& id);
// The key id of a raw 32-byte public key.
KeyId KeyIdOf(std::string_view raw_public_key);

class PublicKey {
 public:
  // REQUIRES nothing: a raw key of another size is InvalidArgument.
  static Result<PublicKey> FromRaw(std::string_view raw32);
  // A PEM SubjectPublicKeyInfo holding an Ed25519 key; `origin` names it in messages.
  static Result<PublicKey> ParsePem(std::string_view pem, const std::string& origin);
  // Reads a PEM public key file (at most kMaxKeyFileSize bytes).
  static Result<PublicKey> Load(const std::string& path);

  const KeyId& id() const { return id_; }
  // The 32-byte raw public key.
  std::string raw() const;
  std::string Pem() const;
  // Whether `signature` is a valid Ed25519 signature of `message` by this key.
  bool Verify(std::string_view message, std::string_view signature) const;
  // Writes Pem() to a new file `path` (mode 0644); refuses to overwrite one.
  Status Save(const std::string& path) const;

 private:
  PublicKey(std::shared_ptr<void> pkey, KeyId id) : pkey_(std::move(pkey)), id_(id) {}
  static Result<PublicKey> FromPkey(std::shared_ptr<void> pkey, const std::string& origin);
  friend class PrivateKey;
  std::shared_ptr<void> pkey_;  // EVP_PKEY
  KeyId id_{};
};

class PrivateKey {
 public:
  // A fresh key from OpenSSL's random generator.
  static Result<PrivateKey> Generate();
  // The key whose 32-byte secret seed is `seed32` (RFC 8032's "SECRET KEY").
  static Result<PrivateKey> FromRawSeed(std::string_view seed32);
  // Reads a PEM PKCS#8 Ed25519 private key file (at most kMaxKeyFileSize
  // bytes). A file that group or others may read is accepted with a warning.
  static Result<PrivateKey> Load(const std::string& path);
  // Writes the key as PEM PKCS#8 to a new file `path` with mode 0600,
  // durably; refuses to overwrite an existing file.
  Status Save(const std::string& path) const;

  const PublicKey& public_key() const { return public_key_; }
  // The 64-byte Ed25519 signature of `message`.
  std::string Sign(std::string_view message) const;

 private:
  PrivateKey(std::shared_ptr<void> pkey, PublicKey pub)
      : pkey_(std::move(pkey)), public_key_(std::move(pub)) {}
  static Result<PrivateKey> FromPkey(std::shared_ptr<void> pkey, const std::string& origin);
  std::shared_ptr<void> pkey_;  // EVP_PKEY
  PublicKey public_key_;
};

// `hloop key generate`: a new key written to `key_path` (mode 0600) and its
// public key to `key_path`.pub (0644). Refuses, before writing anything, if
// either file exists.
Result<PrivateKey> GenerateKeyFiles(const std::string& key_path);
inline constexpr char kPublicKeySuffix[] = ".pub";

}  // namespace hloop::trust
