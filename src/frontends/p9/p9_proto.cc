#include "frontends/p9/p9_proto.h"

#include <type_traits>
#include <utility>

#include "util/bytes.h"

namespace hloop::p9 {

namespace {

// Reads fields from a byte range; the first overrun makes every later read a
// no-op and ok() false, so a decoder can read everything and check once.
class Reader {
 public:
  explicit Reader(std::string_view b)
      : p_(reinterpret_cast<const uint8_t*>(b.data())), n_(b.size()) {}
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == n_; }

  void operator()(uint8_t& v) {
    if (Need(1)) v = p_[pos_++];
  }
  void operator()(uint16_t& v) {
    if (Need(2)) {
      v = GetU16(p_ + pos_);
      pos_ += 2;
    }
  }
  void operator()(uint32_t& v) {
    if (Need(4)) {
      v = GetU32(p_ + pos_);
      pos_ += 4;
    }
  }
  void operator()(uint64_t& v) {
    if (Need(8)) {
      v = GetU64(p_ + pos_);
      pos_ += 8;
    }
  }
  void operator()(Qid& q) {
    (*this)(q.type);
    (*this)(q.version);
    (*this)(q.path);
  }
  void operator()(std::string& s) {
    uint16_t len = 0;
    (*this)(len);
    Bytes(len, &s);
  }
  void operator()(std::vector<std::string>& v) { List(v); }
  void operator()(std::vector<Qid>& v) { List(v); }
  void Data(std::string& s) {
    uint32_t len = 0;
    (*this)(len);
    Bytes(len, &s);
  }

 private:
  bool Need(size_t k) {
    if (ok_ && n_ - pos_ >= k) return true;
    ok_ = false;
    return false;
  }
  void Bytes(size_t len, std::string* s) {
    if (!Need(len)) return;
    s->assign(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
  }
  template <class T>
  void List(std::vector<T>& v) {
    uint16_t count = 0;
    (*this)(count);
    if (count > kMaxWalkNames) ok_ = false;
    if (!ok_) return;
    v.resize(count);
    for (T& item : v) (*this)(item);
  }

  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  bool ok_ = true;
};

class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  bool ok() const { return ok_; }

  void operator()(uint8_t v) { out_->push_back(char(v)); }
  void operator()(uint16_t v) { Put<2>(v); }
  void operator()(uint32_t v) { Put<4>(v); }
  void operator()(uint64_t v) { Put<8>(v); }
  void operator()(const Qid& q) {
    (*this)(q.type);
    (*this)(q.version);
    (*this)(q.path);
  }
  void operator()(const std::string& s) {
    if (s.size() > 0xffff) ok_ = false;
    (*this)(uint16_t(s.size()));
    out_->append(s);
  }
  void operator()(const std::vector<std::string>& v) { List(v); }
  void operator()(const std::vector<Qid>& v) { List(v); }
  void Data(const std::string& s) {
    if (s.size() > 0xffffffffu) ok_ = false;
    (*this)(uint32_t(s.size()));
    out_->append(s);
  }

 private:
  template <int N>
  void Put(uint64_t v) {
    for (int i = 0; i < N; i++) out_->push_back(char(uint8_t(v >> (8 * i))));
  }
  template <class T>
  void List(const std::vector<T>& v) {
    if (v.size() > kMaxWalkNames) ok_ = false;
    (*this)(uint16_t(v.size()));
    for (const T& item : v) (*this)(item);
  }

  std::string* out_;
  bool ok_ = true;
};

// Decodes the body of the alternative whose kType is `type`.
template <size_t... I>
DecodeError DecodeBody(uint8_t type, Reader& r, Body* body, std::index_sequence<I...>) {
  DecodeError result = DecodeError::kUnknownType;
  auto try_one = [&]<size_t K>() {
    using M = std::variant_alternative_t<K, Body>;
    if (M::kType != type) return false;
    M m;
    M::Visit(m, r);
    if (!r.ok() || !r.at_end()) {
      result = DecodeError::kMalformed;
    } else {
      *body = std::move(m);
      result = DecodeError::kNone;
    }
    return true;
  };
  (void)(try_one.template operator()<I>() || ...);
  return result;
}

template <size_t... I>
const char* NameOf(uint8_t type, std::index_sequence<I...>) {
  static constexpr const char* kNames[] = {
      "Rlerror",   "Tstatfs",    "Rstatfs",    "Tlopen",       "Rlopen",       "Tlcreate",
      "Rlcreate",  "Tsymlink",   "Rsymlink",   "Tmknod",       "Rmknod",       "Trename",
      "Rrename",   "Treadlink",  "Rreadlink",  "Tgetattr",     "Rgetattr",     "Tsetattr",
      "Rsetattr",  "Txattrwalk", "Rxattrwalk", "Txattrcreate", "Rxattrcreate", "Treaddir",
      "Rreaddir",  "Tfsync",     "Rfsync",     "Tlock",        "Rlock",        "Tgetlock",
      "Rgetlock",  "Tlink",      "Rlink",      "Tmkdir",       "Rmkdir",       "Trenameat",
      "Rrenameat", "Tunlinkat",  "Runlinkat",  "Tversion",     "Rversion",     "Tauth",
      "Rauth",     "Tattach",    "Rattach",    "Tflush",       "Rflush",       "Twalk",
      "Rwalk",     "Tread",      "Rread",      "Twrite",       "Rwrite",       "Tclunk",
      "Rclunk",    "Tremove",    "Rremove"};
  static_assert(sizeof kNames / sizeof kNames[0] == std::variant_size_v<Body>);
  const char* found = nullptr;
  (void)((std::variant_alternative_t<I, Body>::kType == type ? (found = kNames[I], true) : false) ||
         ...);
  return found;
}

}  // namespace

uint8_t Message::type() const {
  return std::visit([](const auto& m) { return std::decay_t<decltype(m)>::kType; }, body);
}

Header PeekHeader(std::string_view frame) {
  const auto* p = reinterpret_cast<const uint8_t*>(frame.data());
  return {GetU32(p), p[4], GetU16(p + 5)};
}

DecodeError Decode(std::string_view frame, Message* out) {
  if (frame.size() < kHeaderSize) return DecodeError::kShort;
  Header h = PeekHeader(frame);
  out->tag = h.tag;
  if (h.size != frame.size()) return DecodeError::kShort;
  Reader r(frame.substr(kHeaderSize));
  return DecodeBody(h.type, r, &out->body, std::make_index_sequence<std::variant_size_v<Body>>());
}

bool Encode(const Message& m, std::string* out) {
  out->assign(4, '\0');
  Writer w(out);
  w(m.type());
  w(m.tag);
  std::visit([&](const auto& body) { std::decay_t<decltype(body)>::Visit(body, w); }, m.body);
  if (!w.ok() || out->size() > 0xffffffffu) return false;
  PutU32(reinterpret_cast<uint8_t*>(out->data()), uint32_t(out->size()));
  return true;
}

std::string TypeName(uint8_t type) {
  const char* name = NameOf(type, std::make_index_sequence<std::variant_size_v<Body>>());
  return name ? name : "type " + std::to_string(type);
}

void AppendDirent(const Dirent& d, std::string* out) {
  Writer w(out);
  w(d.qid);
  w(d.offset);
  w(d.type);
  w(d.name);
}

bool ParseDirents(std::string_view data, std::vector<Dirent>* out) {
  Reader r(data);
  while (r.ok() && !r.at_end()) {
    Dirent d;
    r(d.qid);
    r(d.offset);
    r(d.type);
    r(d.name);
    if (r.ok()) out->push_back(std::move(d));
  }
  return r.ok();
}

}  // namespace hloop::p9
