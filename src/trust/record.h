// Internal to trust/: the encoding both signed records (.idx.sig and
// .channel) share: fixed little-endian fields and u16-length-prefixed
// strings, read with bounds checks.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "trust/keys.h"
#include "util/bytes.h"

namespace hloop::trust::internal {

class RecordWriter {
 public:
  void Bytes(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  void U16(uint16_t v) {
    uint8_t b[2];
    PutU16(b, v);
    Bytes(b, 2);
  }
  void U32(uint32_t v) {
    uint8_t b[4];
    PutU32(b, v);
    Bytes(b, 4);
  }
  void U64(uint64_t v) {
    uint8_t b[8];
    PutU64(b, v);
    Bytes(b, 8);
  }
  // REQUIRES: s.size() <= 0xffff (the encoders check their bounds first).
  void String(std::string_view s) {
    U16(uint16_t(s.size()));
    Bytes(s.data(), s.size());
  }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

// Reads fields in order; once a read runs past the end, every later read
// fails too, so callers may check ok() once.
class RecordReader {
 public:
  explicit RecordReader(std::string_view in) : in_(in) {}
  bool Bytes(void* p, size_t n) {
    if (!ok_ || in_.size() - pos_ < n) return ok_ = false;
    std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  uint16_t U16() {
    uint8_t b[2] = {};
    Bytes(b, 2);
    return GetU16(b);
  }
  uint32_t U32() {
    uint8_t b[4] = {};
    Bytes(b, 4);
    return GetU32(b);
  }
  uint64_t U64() {
    uint8_t b[8] = {};
    Bytes(b, 8);
    return GetU64(b);
  }
  std::string String() {
    uint16_t n = U16();
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return "";
    }
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  bool ok() const { return ok_; }
  size_t pos() const { return pos_; }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// The framing both formats share. `Check` takes the size limit (before
// anything else), the magic and the version; `Finish` the signature, the
// end of input and no trailing bytes. Each returns "" when fine, else why
// not (the caller names the file).
struct RecordFrame {
  const char* magic;  // 8 bytes
  uint32_t version;
  size_t max_size;
  const char* what;  // "an hloop .channel file"

  std::string Check(std::string_view bytes, RecordReader* r) const {
    if (bytes.size() > max_size)
      return std::to_string(bytes.size()) + " bytes, more than the limit of " +
             std::to_string(max_size);
    char m[8] = {};
    if (!r->Bytes(m, sizeof m) || std::memcmp(m, magic, sizeof m) != 0)
      return std::string("bad magic (not ") + what + ")";
    uint32_t v = r->U32();
    if (!r->ok()) return "truncated header";
    if (v != version)
      return "format version " + std::to_string(v) + " (this hloop reads version " +
             std::to_string(version) + ")";
    return "";
  }
  std::string Finish(std::string_view bytes, RecordReader* r, std::string* signature) const {
    signature->resize(kSignatureSize);
    r->Bytes(signature->data(), signature->size());
    if (!r->ok()) return "truncated (" + std::to_string(bytes.size()) + " bytes)";
    if (r->remaining() != 0) return std::to_string(r->remaining()) + " trailing bytes";
    return "";
  }
};

}  // namespace hloop::trust::internal
