// Content hashes (SHA-256 through OpenSSL) and their text form.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "format/format.h"

namespace hloop::format {

using Hash = std::array<uint8_t, kHashSize>;

// For unordered containers keyed by hash: the first bytes are already uniform.
struct HashKey {
  size_t operator()(const Hash& h) const {
    size_t v;
    std::memcpy(&v, h.data(), sizeof v);
    return v;
  }
};

Hash Sha256(const void* data, size_t len);
inline Hash Sha256(std::string_view s) { return Sha256(s.data(), s.size()); }
std::string ToHex(const Hash& h);
// Parses 64 hex digits; false if `hex` is anything else.
bool ParseHash(std::string_view hex, Hash* out);
// "chunks/ab/abcdef..." : where the chunk file with this hash lives,
// relative to the store root (and to the index URL's directory).
std::string ChunkPath(const Hash& h);

// Incremental SHA-256. Not thread-safe; one per thread.
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void Update(const void* data, size_t len);
  Hash Finish();

 private:
  void* ctx_;  // EVP_MD_CTX
};

}  // namespace hloop::format
