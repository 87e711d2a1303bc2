#include "frontends/p9/p9_proto.h"

#include <gtest/gtest.h>

#include <set>
#include <utility>

#include "util/bytes.h"

namespace hloop::p9 {
namespace {

// Gives every field of a message a distinct, non-default value.
struct Filler {
  uint64_t n = 1;
  void operator()(uint8_t& v) { v = uint8_t(n++); }
  void operator()(uint16_t& v) { v = uint16_t(0x100 + n++); }
  void operator()(uint32_t& v) { v = uint32_t(0x10000 + n++); }
  void operator()(uint64_t& v) { v = 0x100000000ull + n++; }
  void operator()(Qid& q) {
    (*this)(q.type);
    (*this)(q.version);
    (*this)(q.path);
  }
  void operator()(std::string& s) { s = "name" + std::to_string(n++); }
  void operator()(std::vector<std::string>& v) { v = {"a" + std::to_string(n++), "bb", "ccc"}; }
  void operator()(std::vector<Qid>& v) {
    v.resize(2);
    for (Qid& q : v) (*this)(q);
  }
  void Data(std::string& s) { s = std::string(100 + n++, 'x'); }
};

template <size_t... I>
std::vector<Message> AllSamples(std::index_sequence<I...>) {
  std::vector<Message> out;
  uint16_t tag = 1;
  auto one = [&]<size_t K>() {
    std::variant_alternative_t<K, Body> m;
    Filler f;
    decltype(m)::Visit(m, f);
    out.push_back(Message{tag++, std::move(m)});
  };
  (one.template operator()<I>(), ...);
  return out;
}
std::vector<Message> AllSamples() {
  return AllSamples(std::make_index_sequence<std::variant_size_v<Body>>());
}

std::string Enc(const Message& m) {
  std::string out;
  EXPECT_TRUE(Encode(m, &out)) << TypeName(m.type());
  return out;
}

void SetSize(std::string* frame) {
  PutU32(reinterpret_cast<uint8_t*>(frame->data()), uint32_t(frame->size()));
}

TEST(P9ProtoTest, RoundTripsEveryMessageType) {
  std::set<uint8_t> types;
  for (const Message& m : AllSamples()) {
    std::string frame = Enc(m);
    ASSERT_GE(frame.size(), kHeaderSize);
    Header h = PeekHeader(frame);
    EXPECT_EQ(h.size, frame.size());
    EXPECT_EQ(h.type, m.type());
    EXPECT_EQ(h.tag, m.tag);
    Message back;
    ASSERT_EQ(Decode(frame, &back), DecodeError::kNone) << TypeName(m.type());
    EXPECT_EQ(back, m) << TypeName(m.type());
    types.insert(m.type());
  }
  // Every 9P2000.L message: 28 requests, their replies, and Rlerror.
  EXPECT_EQ(types.size(), 57u);
  for (uint8_t t : {7,   8,   9,   12,  13,  14,  15,  16,  17,  18,  19,  20,  21,  22,  23,
                    24,  25,  26,  27,  30,  31,  32,  33,  40,  41,  50,  51,  52,  53,  54,
                    55,  70,  71,  72,  73,  74,  75,  76,  77,  100, 101, 102, 103, 104, 105,
                    108, 109, 110, 111, 116, 117, 118, 119, 120, 121, 122, 123})
    EXPECT_TRUE(types.count(t)) << int(t);
}

TEST(P9ProtoTest, EncodesTheBytesLinuxSends) {
  // Tversion as the kernel sends it at mount.
  std::string frame = Enc(Message{kNoTag, Tversion{8192, "9P2000.L"}});
  EXPECT_EQ(HexEncode(reinterpret_cast<const uint8_t*>(frame.data()), frame.size()),
            "1500000064ffff002000000800395032303030"
            "2e4c");
  // Rgetattr is 160 bytes with its header; Rlerror 11; Rlopen 24 (qid + iounit).
  EXPECT_EQ(Enc(Message{1, Rgetattr{}}).size(), 160u);
  EXPECT_EQ(Enc(Message{1, Rlerror{2}}).size(), 11u);
  EXPECT_EQ(Enc(Message{1, Rlopen{}}).size(), 24u);
  // Twalk: fid, newfid, nwname, then each name.
  frame = Enc(Message{3, Twalk{1, 2, {"a", "bc"}}});
  EXPECT_EQ(HexEncode(reinterpret_cast<const uint8_t*>(frame.data()), frame.size()),
            "180000006e0300"
            "01000000"
            "02000000"
            "0200"
            "010061"
            "02006263");
}

TEST(P9ProtoTest, RejectsEveryTruncation) {
  for (const Message& m : AllSamples()) {
    std::string frame = Enc(m);
    for (size_t len = 0; len < frame.size(); len++) {
      std::string cut = frame.substr(0, len);
      Message out;
      // The size field still claims the whole frame.
      EXPECT_EQ(Decode(cut, &out), DecodeError::kShort) << TypeName(m.type()) << " at " << len;
      if (len < kHeaderSize) continue;
      SetSize(&cut);  // consistent size, body cut short
      EXPECT_EQ(Decode(cut, &out), DecodeError::kMalformed) << TypeName(m.type()) << " at " << len;
      EXPECT_EQ(out.tag, m.tag);
    }
  }
}

TEST(P9ProtoTest, RejectsTrailingBytesAndOversizedFields) {
  for (const Message& m : AllSamples()) {
    std::string frame = Enc(m) + "z";
    Message out;
    EXPECT_EQ(Decode(frame, &out), DecodeError::kShort) << TypeName(m.type());
    SetSize(&frame);
    EXPECT_EQ(Decode(frame, &out), DecodeError::kMalformed) << TypeName(m.type());
  }
  Message out;
  // A string length past the end of the frame.
  std::string frame = Enc(Message{1, Tlcreate{1, "abc", 0, 0, 0}});
  frame[11] = char(0xff);
  EXPECT_EQ(Decode(frame, &out), DecodeError::kMalformed);
  // A data count past the end.
  frame = Enc(Message{1, Twrite{1, 0, "hello"}});
  PutU32(reinterpret_cast<uint8_t*>(frame.data()) + 19, 0xfffffff0u);
  EXPECT_EQ(Decode(frame, &out), DecodeError::kMalformed);
  // 17 walk names.
  frame = Enc(Message{1, Twalk{1, 2, std::vector<std::string>(16, "a")}});
  frame[15] = 17;
  frame += std::string(
      "\x01\x00"
      "a",
      3);
  SetSize(&frame);
  EXPECT_EQ(Decode(frame, &out), DecodeError::kMalformed);
  // A size field larger than the frame, and one smaller than a header.
  frame = Enc(Message{1, Tclunk{1}});
  PutU32(reinterpret_cast<uint8_t*>(frame.data()), 1000);
  EXPECT_EQ(Decode(frame, &out), DecodeError::kShort);
  PutU32(reinterpret_cast<uint8_t*>(frame.data()), 3);
  EXPECT_EQ(Decode(frame, &out), DecodeError::kShort);
}

TEST(P9ProtoTest, RejectsUnknownTypes) {
  for (uint8_t type : {0, 6, 106, 107, 112, 113, 114, 124, 126, 255}) {
    std::string frame = Enc(Message{9, Tclunk{1}});
    frame[4] = char(type);
    Message out;
    EXPECT_EQ(Decode(frame, &out), DecodeError::kUnknownType) << int(type);
    EXPECT_EQ(out.tag, 9);
  }
  EXPECT_EQ(TypeName(110), "Twalk");
  EXPECT_EQ(TypeName(112), "type 112");
}

TEST(P9ProtoTest, EncodeRefusesWhatCannotBeSent) {
  std::string out;
  EXPECT_FALSE(Encode(Message{1, Rreadlink{std::string(70000, 'a')}}, &out));
  EXPECT_FALSE(Encode(Message{1, Twalk{1, 2, std::vector<std::string>(17, "a")}}, &out));
  EXPECT_FALSE(Encode(Message{1, Rwalk{std::vector<Qid>(17)}}, &out));
  EXPECT_TRUE(Encode(Message{1, Rreadlink{std::string(65535, 'a')}}, &out));
}

TEST(P9ProtoTest, DirentsRoundTripAndRejectTruncation) {
  std::vector<Dirent> in = {{{kQidDir, 0, 2}, 1, 4, "."},
                            {{kQidDir, 0, 1}, 2, 4, ".."},
                            {{kQidSymlink, 7, 12345678901ull}, 0x7fffffffffffffffull, 10, "link"}};
  std::string data;
  for (const Dirent& d : in) AppendDirent(d, &data);
  EXPECT_EQ(data.size(), DirentSize(1) + DirentSize(2) + DirentSize(4));
  std::vector<Dirent> out;
  ASSERT_TRUE(ParseDirents(data, &out));
  EXPECT_EQ(out, in);
  for (size_t len = 1; len < data.size(); len++) {
    if (len == DirentSize(1) || len == DirentSize(1) + DirentSize(2)) continue;  // whole entries
    out.clear();
    EXPECT_FALSE(ParseDirents(std::string_view(data).substr(0, len), &out)) << len;
  }
}

}  // namespace
}  // namespace hloop::p9
