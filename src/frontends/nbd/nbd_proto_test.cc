// The NBD protocol without sockets: message round trips, every malformed
// input, the option state machine, and requests executed on a memory device.
#include "frontends/nbd/nbd_proto.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "frontends/nbd/nbd_negotiate.h"
#include "frontends/nbd/nbd_transmit.h"
#include "testing/memory_device.h"
#include "testing/temp_dir.h"
#include "util/bytes.h"

namespace hloop::nbd {
namespace {

using hloop::testing::MemoryDevice;

const uint8_t* U8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

struct OptionReply {
  uint32_t option, type;
  std::string data;
};

// Splits server output into option replies; fails the test on garbage.
std::vector<OptionReply> ParseOptionReplies(const std::string& bytes) {
  std::vector<OptionReply> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    EXPECT_GE(bytes.size() - pos, 20u);
    if (bytes.size() - pos < 20) break;
    const uint8_t* p = U8(bytes) + pos;
    EXPECT_EQ(GetBE64(p), kOptReplyMagic);
    uint32_t len = GetBE32(p + 16);
    EXPECT_LE(len, bytes.size() - pos - 20);
    if (len > bytes.size() - pos - 20) break;
    out.push_back({GetBE32(p + 8), GetBE32(p + 12), bytes.substr(pos + 20, len)});
    pos += 20 + len;
  }
  return out;
}

// ---- Handshake messages

TEST(NbdProtoTest, GreetingIsFixedNewstyleWithNoZeroes) {
  std::string g = EncodeGreeting();
  ASSERT_EQ(g.size(), kGreetingSize);
  EXPECT_EQ(g.substr(0, 16), "NBDMAGICIHAVEOPT");
  EXPECT_EQ(GetBE16(U8(g) + 16), kFlagFixedNewstyle | kFlagNoZeroes);
}

TEST(NbdProtoTest, OptionHeaderRoundTripsAndRejectsBadMagic) {
  std::string o = EncodeOption(kOptGo, "abc");
  ASSERT_EQ(o.size(), kOptionHeaderSize + 3);
  auto h = ParseOptionHeader(U8(o));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->option, kOptGo);
  EXPECT_EQ(h->length, 3u);
  o[0] ^= 1;
  EXPECT_TRUE(ParseOptionHeader(U8(o)).status().IsCorruption());
}

TEST(NbdProtoTest, InfoRequestRoundTrips) {
  InfoRequest r{"disk", {kInfoName, kInfoBlockSize}};
  auto back = ParseInfoRequest(EncodeInfoRequest(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->name, "disk");
  EXPECT_EQ(back->infos, r.infos);
  auto empty = ParseInfoRequest(EncodeInfoRequest(InfoRequest{}));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->name, "");
  EXPECT_TRUE(empty->infos.empty());
}

TEST(NbdProtoTest, InfoRequestRejectsEveryMalformedShape) {
  std::string good = EncodeInfoRequest(InfoRequest{"disk", {kInfoName}});
  EXPECT_FALSE(ParseInfoRequest("").ok());                               // nothing
  EXPECT_FALSE(ParseInfoRequest(good.substr(0, 3)).ok());                // short name length
  EXPECT_FALSE(ParseInfoRequest(good.substr(0, 6)).ok());                // name cut
  EXPECT_FALSE(ParseInfoRequest(good.substr(0, 9)).ok());                // count cut
  EXPECT_FALSE(ParseInfoRequest(good.substr(0, good.size() - 1)).ok());  // request cut
  EXPECT_FALSE(ParseInfoRequest(good + "xx").ok());                      // more than counted
  std::string huge_name(4, '\xff');                                      // 4 GB name
  EXPECT_FALSE(ParseInfoRequest(huge_name + "ab").ok());
  InfoRequest long_name{std::string(kMaxStringLength + 1, 'n'), {}};
  EXPECT_FALSE(ParseInfoRequest(EncodeInfoRequest(long_name)).ok());
}

TEST(NbdProtoTest, MetaContextRequestRoundTrips) {
  MetaContextRequest r{"", {"base:allocation", "qemu:dirty-bitmap:x"}};
  auto back = ParseMetaContextRequest(EncodeMetaContextRequest(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->queries, r.queries);
}

TEST(NbdProtoTest, MetaContextRequestRejectsEveryMalformedShape) {
  std::string good = EncodeMetaContextRequest(MetaContextRequest{"d", {"base:allocation"}});
  for (size_t cut = 0; cut < good.size(); cut++)
    EXPECT_FALSE(ParseMetaContextRequest(good.substr(0, cut)).ok()) << "cut at " << cut;
  EXPECT_FALSE(ParseMetaContextRequest(good + "x").ok());  // trailing byte
  // A count of 2^32-1 queries with no data: refused before reserving anything.
  std::string absurd = EncodeMetaContextRequest(MetaContextRequest{"", {}});
  PutBE32(reinterpret_cast<uint8_t*>(absurd.data()) + 4, 0xffffffff);
  EXPECT_FALSE(ParseMetaContextRequest(absurd).ok());
  // A query claiming more bytes than there are.
  std::string liar = EncodeMetaContextRequest(MetaContextRequest{"", {"base:allocation"}});
  PutBE32(reinterpret_cast<uint8_t*>(liar.data()) + 8, 1000);
  EXPECT_FALSE(ParseMetaContextRequest(liar).ok());
}

// ---- Transmission messages

TEST(NbdProtoTest, RequestRoundTripsAndRejectsBadMagic) {
  Request r{kCmdFlagFua, kCmdWrite, 0x0102030405060708, 1ull << 40, 4096};
  std::string b = EncodeRequest(r);
  ASSERT_EQ(b.size(), kRequestSize);
  auto back = ParseRequest(U8(b));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->flags, r.flags);
  EXPECT_EQ(back->type, r.type);
  EXPECT_EQ(back->cookie, r.cookie);
  EXPECT_EQ(back->offset, r.offset);
  EXPECT_EQ(back->length, r.length);
  b[3] ^= 0x10;
  EXPECT_TRUE(ParseRequest(U8(b)).status().IsCorruption());
}

TEST(NbdProtoTest, RepliesRoundTrip) {
  std::string s;
  AppendSimpleReply(&s, kEio, 77);
  ASSERT_EQ(s.size(), kSimpleReplySize);
  auto simple = ParseSimpleReply(U8(s));
  ASSERT_TRUE(simple.ok());
  EXPECT_EQ(simple->error, kEio);
  EXPECT_EQ(simple->cookie, 77u);
  EXPECT_FALSE(ParseChunkHeader(U8(s + std::string(4, '\0'))).ok());  // not a chunk

  std::string hole;
  AppendHoleChunk(&hole, kReplyFlagDone, 9, 4096, 512);
  ASSERT_EQ(hole.size(), kStructuredChunkHeaderSize + 12);
  auto h = ParseChunkHeader(U8(hole));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->type, kReplyOffsetHole);
  EXPECT_EQ(h->flags, kReplyFlagDone);
  EXPECT_EQ(h->cookie, 9u);
  EXPECT_EQ(h->length, 12u);
  EXPECT_EQ(GetBE64(U8(hole) + 20), 4096u);
  EXPECT_EQ(GetBE32(U8(hole) + 28), 512u);
  EXPECT_FALSE(ParseSimpleReply(U8(hole)).ok());

  std::string err;
  AppendErrorChunk(&err, 5, kEinval, "no");
  auto e = ParseChunkHeader(U8(err));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->type, kReplyError);
  EXPECT_EQ(e->length, 8u);
  EXPECT_EQ(GetBE32(U8(err) + 20), kEinval);
  EXPECT_EQ(GetBE16(U8(err) + 24), 2u);
  EXPECT_EQ(err.substr(26), "no");
  std::string long_err;
  AppendErrorChunk(&long_err, 5, kEio, std::string(70000, 'x'));  // a u16 length cannot say 70000
  EXPECT_EQ(GetBE16(U8(long_err) + 24), kMaxStringLength);
  EXPECT_EQ(long_err.size(), kStructuredChunkHeaderSize + 6 + kMaxStringLength);

  std::string bs;
  AppendBlockStatusChunk(&bs, kReplyFlagDone, 3, kBaseAllocationId, {{4096, 3}, {512, 0}});
  auto b = ParseChunkHeader(U8(bs));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->type, kReplyBlockStatus);
  EXPECT_EQ(b->length, 4u + 16u);
  EXPECT_EQ(GetBE32(U8(bs) + 20), kBaseAllocationId);
  EXPECT_EQ(GetBE32(U8(bs) + 24), 4096u);
  EXPECT_EQ(GetBE32(U8(bs) + 28), 3u);
}

// ---- CheckRequest: every refusal

struct CheckCase {
  const char* what;
  Request r;
  bool writable, structured, base_allocation;
  uint32_t want;
};

TEST(NbdProtoTest, CheckRequestAnswersEveryBadRequestAsTheSpecSays) {
  const uint64_t size = uint64_t(64) << 20;  // more than one payload
  const uint64_t max = ~uint64_t(0);
  const CheckCase cases[] = {
      {"read inside", {0, kCmdRead, 1, 0, 4096}, false, false, false, 0},
      {"read to the very end", {0, kCmdRead, 1, size - 1, 1}, false, false, false, 0},
      {"read of 0 bytes at the end", {0, kCmdRead, 1, size, 0}, false, false, false, 0},
      {"read past the end", {0, kCmdRead, 1, size - 1, 2}, false, false, false, kEinval},
      {"read far past the end", {0, kCmdRead, 1, max, 1}, false, false, false, kEinval},
      {"read offset+length overflows",
       {0, kCmdRead, 1, max - 10, 100},
       false,
       false,
       false,
       kEinval},
      {"read too large, simple",
       {0, kCmdRead, 1, 0, kMaxPayload + 1},
       false,
       false,
       false,
       kEinval},
      {"read too large, structured",
       {0, kCmdRead, 1, 0, kMaxPayload + 1},
       false,
       true,
       false,
       kEoverflow},
      {"read with DF, simple", {kCmdFlagDf, kCmdRead, 1, 0, 1}, false, false, false, kEinval},
      {"read with DF, structured", {kCmdFlagDf, kCmdRead, 1, 0, 1}, false, true, false, 0},
      {"read with FUA", {kCmdFlagFua, kCmdRead, 1, 0, 1}, false, false, false, 0},
      {"read with REQ_ONE", {kCmdFlagReqOne, kCmdRead, 1, 0, 1}, false, true, true, kEinval},
      {"read with unknown flag", {1 << 9, kCmdRead, 1, 0, 1}, false, true, true, kEinval},
      {"unknown command", {0, 99, 1, 0, 0}, true, true, true, kEinval},
      {"RESIZE is not offered", {0, 8, 1, 0, 0}, true, true, true, kEinval},
      {"write on a read-only export", {0, kCmdWrite, 1, 0, 1}, false, false, false, kEperm},
      {"4 GB write on a read-only export",
       {0, kCmdWrite, 1, 0, 0xffffffff},
       false,
       false,
       false,
       kEinval},
      {"4 GB write, structured", {0, kCmdWrite, 1, 0, 0xffffffff}, true, true, false, kEoverflow},
      {"write past the end", {0, kCmdWrite, 1, size, 1}, true, false, false, kEnospc},
      {"write inside", {kCmdFlagFua, kCmdWrite, 1, 0, 1}, true, false, false, 0},
      {"trim on a read-only export", {0, kCmdTrim, 1, 0, 1}, false, false, false, kEperm},
      {"trim past the end", {0, kCmdTrim, 1, size, 1}, true, false, false, kEinval},
      {"write zeroes past the end",
       {0, kCmdWriteZeroes, 1, 0, size + 1},
       true,
       false,
       false,
       kEnospc},
      {"write zeroes NO_HOLE", {kCmdFlagNoHole, kCmdWriteZeroes, 1, 0, 1}, true, false, false, 0},
      {"write zeroes FAST_ZERO (not offered)",
       {kCmdFlagFastZero, kCmdWriteZeroes, 1, 0, 1},
       true,
       false,
       false,
       kEinval},
      {"write zeroes on a read-only export",
       {0, kCmdWriteZeroes, 1, 0, 1},
       false,
       false,
       false,
       kEperm},
      {"flush", {0, kCmdFlush, 1, 0, 0}, true, false, false, 0},
      {"flush on a read-only export", {0, kCmdFlush, 1, 0, 0}, false, false, false, 0},
      {"cache inside", {0, kCmdCache, 1, 0, size}, false, false, false, 0},
      {"cache past the end", {0, kCmdCache, 1, 1, size}, false, false, false, kEinval},
      {"cache of more than a payload", {0, kCmdCache, 1, 0, size}, false, false, false, 0},
      {"block status", {kCmdFlagReqOne, kCmdBlockStatus, 1, 0, size}, false, true, true, 0},
      {"block status without a context",
       {0, kCmdBlockStatus, 1, 0, 1},
       false,
       true,
       false,
       kEinval},
      {"block status past the end", {0, kCmdBlockStatus, 1, size, 1}, false, true, true, kEinval},
      {"block status of 0 bytes", {0, kCmdBlockStatus, 1, 0, 0}, false, true, true, kEinval},
  };
  for (const CheckCase& c : cases) {
    Transmission t{size, c.writable, c.structured, c.base_allocation};
    Check got = CheckRequest(c.r, t);
    EXPECT_EQ(got.error, c.want) << c.what << ": " << got.message;
    if (c.want) {
      EXPECT_FALSE(got.message.empty()) << c.what;
    }
  }
}

// ---- Negotiator

TEST(NbdNegotiateTest, RefusesUnknownClientFlags) {
  Negotiator n(ExportInfo{"disk", 4096, false});
  EXPECT_TRUE(n.AcceptClientFlags(kClientFixedNewstyle | kClientNoZeroes));
  EXPECT_TRUE(n.AcceptClientFlags(0));
  EXPECT_FALSE(n.AcceptClientFlags(1 << 2));
  EXPECT_FALSE(n.AcceptClientFlags(0x80000000));
}

TEST(NbdNegotiateTest, ExportNameAnswersSizeFlagsAndZeroesUnlessNoZeroes) {
  for (bool no_zeroes : {false, true}) {
    Negotiator n(ExportInfo{"disk", 123456, false});
    ASSERT_TRUE(n.AcceptClientFlags(kClientFixedNewstyle | (no_zeroes ? kClientNoZeroes : 0)));
    std::string out;
    EXPECT_EQ(n.HandleOption(kOptExportName, "any name at all", &out),
              Negotiator::Next::kTransmission);
    ASSERT_EQ(out.size(), no_zeroes ? 10u : 134u);
    EXPECT_EQ(GetBE64(U8(out)), 123456u);
    uint16_t flags = GetBE16(U8(out) + 8);
    EXPECT_EQ(flags, kFlagHasFlags | kFlagReadOnly | kFlagCanMultiConn | kFlagSendCache);
    if (!no_zeroes) {
      EXPECT_EQ(out.substr(10), std::string(124, '\0'));
    }
  }
}

TEST(NbdNegotiateTest, WritableExportAdvertisesWritesAndNoReadOnly) {
  Negotiator n(ExportInfo{"disk", 4096, true});
  uint16_t f = n.TransmissionFlags();
  EXPECT_FALSE(f & kFlagReadOnly);
  for (uint16_t want :
       {kFlagSendFlush, kFlagSendFua, kFlagSendTrim, kFlagSendWriteZeroes, kFlagCanMultiConn})
    EXPECT_TRUE(f & want) << want;
  EXPECT_FALSE(f & kFlagSendDf);  // not before structured replies
  Negotiator ro(ExportInfo{"disk", 4096, false});
  for (uint16_t never : {kFlagSendFlush, kFlagSendFua, kFlagSendTrim, kFlagSendWriteZeroes})
    EXPECT_FALSE(ro.TransmissionFlags() & never) << never;
}

TEST(NbdNegotiateTest, ListNamesTheOneExport) {
  Negotiator n(ExportInfo{"debian", 4096, false});
  std::string out;
  EXPECT_EQ(n.HandleOption(kOptList, "", &out), Negotiator::Next::kContinue);
  auto r = ParseOptionReplies(out);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].type, kRepServer);
  EXPECT_EQ(r[0].option, kOptList);
  EXPECT_EQ(GetBE32(U8(r[0].data)), 6u);
  EXPECT_EQ(r[0].data.substr(4), "debian");
  EXPECT_EQ(r[1].type, kRepAck);
  EXPECT_TRUE(r[1].data.empty());
  out.clear();
  n.HandleOption(kOptList, "junk", &out);
  r = ParseOptionReplies(out);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, kRepErrInvalid);
}

TEST(NbdNegotiateTest, GoSendsExportAndBlockSizesThenAckAnyName) {
  for (std::string name : {"", "debian", "no such export"}) {
    Negotiator n(ExportInfo{"debian", 1 << 20, false});
    std::string out;
    EXPECT_EQ(n.HandleOption(kOptGo, EncodeInfoRequest(InfoRequest{name, {}}), &out),
              Negotiator::Next::kTransmission);
    auto r = ParseOptionReplies(out);
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0].type, kRepInfo);
    ASSERT_EQ(r[0].data.size(), 12u);  // libnbd insists on exactly 12
    EXPECT_EQ(GetBE16(U8(r[0].data)), kInfoExport);
    EXPECT_EQ(GetBE64(U8(r[0].data) + 2), 1u << 20);
    EXPECT_EQ(r[1].type, kRepInfo);
    ASSERT_EQ(r[1].data.size(), 14u);
    EXPECT_EQ(GetBE16(U8(r[1].data)), kInfoBlockSize);
    EXPECT_EQ(GetBE32(U8(r[1].data) + 2), kMinBlockSize);
    EXPECT_EQ(GetBE32(U8(r[1].data) + 6), kPreferredBlockSize);
    EXPECT_EQ(GetBE32(U8(r[1].data) + 10), kMaxPayload);
    EXPECT_EQ(r[2].type, kRepAck);
  }
}

TEST(NbdNegotiateTest, InfoContinuesAndNamesTheExportWhenAsked) {
  Negotiator n(ExportInfo{"debian", 4096, false});
  std::string out;
  EXPECT_EQ(n.HandleOption(kOptInfo,
                           EncodeInfoRequest(InfoRequest{"", {kInfoName, kInfoDescription}}), &out),
            Negotiator::Next::kContinue);
  auto r = ParseOptionReplies(out);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(GetBE16(U8(r[1].data)), kInfoName);
  EXPECT_EQ(r[1].data.substr(2), "debian");
  EXPECT_EQ(r.back().type, kRepAck);
}

TEST(NbdNegotiateTest, MalformedGoIsInvalidAndKeepsNegotiating) {
  Negotiator n(ExportInfo{"d", 4096, false});
  std::string out;
  EXPECT_EQ(n.HandleOption(kOptGo, "\x00\x00\x00\x09short", &out), Negotiator::Next::kContinue);
  auto r = ParseOptionReplies(out);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, kRepErrInvalid);
  EXPECT_FALSE(r[0].data.empty());  // says why
}

TEST(NbdNegotiateTest, StructuredRepliesThenMetaContext) {
  Negotiator n(ExportInfo{"d", 4096, false});
  std::string set = EncodeMetaContextRequest(MetaContextRequest{"d", {"base:allocation"}});
  std::string out;
  n.HandleOption(kOptSetMetaContext, set, &out);  // too early
  auto r = ParseOptionReplies(out);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, kRepErrInvalid);
  EXPECT_FALSE(n.transmission().base_allocation);

  out.clear();
  n.HandleOption(kOptStructuredReply, "", &out);
  r = ParseOptionReplies(out);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, kRepAck);
  EXPECT_TRUE(n.transmission().structured);
  EXPECT_TRUE(n.TransmissionFlags() & kFlagSendDf);

  out.clear();
  n.HandleOption(kOptSetMetaContext, set, &out);
  r = ParseOptionReplies(out);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].type, kRepMetaContext);
  EXPECT_EQ(GetBE32(U8(r[0].data)), kBaseAllocationId);
  EXPECT_EQ(r[0].data.substr(4), "base:allocation");
  EXPECT_EQ(r[1].type, kRepAck);
  EXPECT_TRUE(n.transmission().base_allocation);

  // SET replaces the selection: an unknown context selects nothing.
  out.clear();
  n.HandleOption(kOptSetMetaContext,
                 EncodeMetaContextRequest(MetaContextRequest{"d", {"qemu:dirty-bitmap:a"}}), &out);
  r = ParseOptionReplies(out);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, kRepAck);
  EXPECT_FALSE(n.transmission().base_allocation);
  // "base:" is a wildcard only when listing.
  out.clear();
  n.HandleOption(kOptSetMetaContext, EncodeMetaContextRequest(MetaContextRequest{"d", {"base:"}}),
                 &out);
  EXPECT_EQ(ParseOptionReplies(out).size(), 1u);
}

TEST(NbdNegotiateTest, ListMetaContextMatchesWildcardsAndEmptyQueries) {
  Negotiator n(ExportInfo{"d", 4096, false});
  std::string out;
  n.HandleOption(kOptStructuredReply, "", &out);
  for (auto queries : std::vector<std::vector<std::string>>{{}, {"base:"}, {"base:allocation"}}) {
    out.clear();
    n.HandleOption(kOptListMetaContext, EncodeMetaContextRequest(MetaContextRequest{"", queries}),
                   &out);
    auto r = ParseOptionReplies(out);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].type, kRepMetaContext);
    EXPECT_EQ(GetBE32(U8(r[0].data)), 0u);
    EXPECT_EQ(r[0].data.substr(4), "base:allocation");
  }
  out.clear();
  n.HandleOption(kOptListMetaContext,
                 EncodeMetaContextRequest(MetaContextRequest{"", {"x-foo:bar"}}), &out);
  EXPECT_EQ(ParseOptionReplies(out).size(), 1u);
  EXPECT_FALSE(n.transmission().base_allocation);  // listing selects nothing
}

TEST(NbdNegotiateTest, UnknownOptionsAreUnsupportedAbortIsAcked) {
  Negotiator n(ExportInfo{"d", 4096, false});
  for (uint32_t opt : {kOptStartTls, kOptExtendedHeaders, 4u, 12345u, 0u, 0xffffffffu}) {
    std::string out;
    EXPECT_EQ(n.HandleOption(opt, "payload", &out), Negotiator::Next::kContinue);
    auto r = ParseOptionReplies(out);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].option, opt);
    EXPECT_EQ(r[0].type, kRepErrUnsup);
  }
  std::string out;
  EXPECT_EQ(n.HandleOption(kOptAbort, "", &out), Negotiator::Next::kClose);
  EXPECT_EQ(ParseOptionReplies(out)[0].type, kRepAck);
}

// RunHandshake over memory: a whole conversation.
std::string ClientHello(uint32_t flags = kClientFixedNewstyle | kClientNoZeroes) {
  std::string s(4, '\0');
  PutBE32(reinterpret_cast<uint8_t*>(s.data()), flags);
  return s;
}

TEST(NbdNegotiateTest, HandshakeLikeQemuReachesTransmission) {
  std::string in =
      ClientHello() + EncodeOption(kOptExtendedHeaders, "") +
      EncodeOption(kOptStructuredReply, "") +
      EncodeOption(kOptSetMetaContext,
                   EncodeMetaContextRequest(MetaContextRequest{"", {"base:allocation"}})) +
      EncodeOption(kOptGo, EncodeInfoRequest(InfoRequest{"", {kInfoBlockSize}}));
  MemoryStream s(in);
  Negotiator n(ExportInfo{"d", 4096, false});
  ASSERT_TRUE(RunHandshake(s, n).ok());
  EXPECT_TRUE(n.transmission().structured);
  EXPECT_TRUE(n.transmission().base_allocation);
  auto r = ParseOptionReplies(s.output().substr(kGreetingSize));
  ASSERT_EQ(r.size(), 7u);
  EXPECT_EQ(r[0].type, kRepErrUnsup);
  EXPECT_EQ(r.back().type, kRepAck);
  EXPECT_EQ(r.back().option, kOptGo);
}

TEST(NbdNegotiateTest, HandshakeFailsOnBadInput) {
  Negotiator n1(ExportInfo{"d", 4096, false});
  MemoryStream unknown_flags(ClientHello(0x10));
  EXPECT_EQ(RunHandshake(unknown_flags, n1).code(), Status::Code::kInvalidArgument);

  Negotiator n2(ExportInfo{"d", 4096, false});
  std::string bad = ClientHello() + EncodeOption(kOptGo, "");
  bad[4] = 'X';  // option magic
  MemoryStream bad_magic(bad);
  EXPECT_TRUE(RunHandshake(bad_magic, n2).IsCorruption());

  // A 4 GB option: ERR_TOO_BIG, then the connection ends; nothing is
  // allocated for it (the stream holds only the header).
  Negotiator n3(ExportInfo{"d", 4096, false});
  std::string huge = ClientHello() + EncodeOption(kOptGo, "");
  PutBE32(reinterpret_cast<uint8_t*>(huge.data()) + 4 + 12, 0xffffffff);
  MemoryStream too_big(huge);
  EXPECT_EQ(RunHandshake(too_big, n3).code(), Status::Code::kInvalidArgument);
  auto r = ParseOptionReplies(too_big.output().substr(kGreetingSize));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, kRepErrTooBig);

  Negotiator n4(ExportInfo{"d", 4096, false});
  std::string cut = ClientHello() + EncodeOption(kOptList, "");
  MemoryStream truncated(cut.substr(0, cut.size() - 3));
  EXPECT_TRUE(RunHandshake(truncated, n4).IsUnavailable());

  Negotiator n5(ExportInfo{"d", 4096, false});
  MemoryStream aborted(ClientHello() + EncodeOption(kOptAbort, ""));
  EXPECT_TRUE(RunHandshake(aborted, n5).IsUnavailable());
}

// ---- Transmission: requests run on a memory device

// 64 KiB: data, 8 KiB of zeros, data, zeros to the end of the second half.
std::string TestContent() {
  std::string c = hloop::testing::RandomBytes(65536, 7);
  std::fill(c.begin() + 8192, c.begin() + 16384, '\0');
  std::fill(c.begin() + 32768, c.end(), '\0');
  return c;
}

struct Chunk {
  ChunkHeader h;
  std::string payload;
};

std::vector<Chunk> ParseChunks(const std::string& bytes) {
  std::vector<Chunk> out;
  size_t pos = 0;
  while (pos + kStructuredChunkHeaderSize <= bytes.size()) {
    auto h = ParseChunkHeader(U8(bytes) + pos);
    EXPECT_TRUE(h.ok());
    if (!h.ok()) break;
    out.push_back({*h, bytes.substr(pos + kStructuredChunkHeaderSize, h->length)});
    pos += kStructuredChunkHeaderSize + h->length;
  }
  EXPECT_EQ(pos, bytes.size());
  return out;
}

std::string Flatten(const Reply& r) {
  std::string s;
  for (std::string_view p : r.Pieces()) s.append(p);
  EXPECT_EQ(s.size(), r.size());
  return s;
}

Reply RunCommand(MemoryDevice& dev, const Transmission& t, Request r, std::string payload = "") {
  Command c;
  c.request = r;
  c.check = CheckRequest(r, t);
  if (!payload.empty()) {
    c.payload = std::make_unique<char[]>(payload.size());
    std::memcpy(c.payload.get(), payload.data(), payload.size());
  }
  return Execute(dev, t, c);
}

TEST(NbdTransmitTest, StructuredReadSendsZeroRunsAsHolesAndCoversTheRange) {
  const std::string content = TestContent();
  MemoryDevice dev(content);
  Transmission t{content.size(), false, true, true};
  std::string out = Flatten(RunCommand(
      dev, t, Request{.flags = 0, .type = kCmdRead, .cookie = 42, .offset = 100, .length = 40000}));
  auto chunks = ParseChunks(out);
  ASSERT_EQ(chunks.size(), 4u);  // data, hole, data, hole
  std::string rebuilt(40000, '?');
  int holes = 0;
  for (size_t i = 0; i < chunks.size(); i++) {
    const Chunk& c = chunks[i];
    EXPECT_EQ(c.h.cookie, 42u);
    EXPECT_EQ(c.h.flags, i + 1 == chunks.size() ? kReplyFlagDone : 0);
    uint64_t off = GetBE64(U8(c.payload)) - 100;
    if (c.h.type == kReplyOffsetHole) {
      holes++;
      uint32_t n = GetBE32(U8(c.payload) + 8);
      rebuilt.replace(off, n, std::string(n, '\0'));
    } else {
      ASSERT_EQ(c.h.type, kReplyOffsetData);
      rebuilt.replace(off, c.payload.size() - 8, c.payload.substr(8));
    }
  }
  EXPECT_EQ(holes, 2);
  EXPECT_EQ(rebuilt, content.substr(100, 40000));
}

TEST(NbdTransmitTest, DontFragmentSendsOneDataChunkAndAllZerosOneHole) {
  const std::string content = TestContent();
  MemoryDevice dev(content);
  Transmission t{content.size(), false, true, false};
  auto chunks = ParseChunks(Flatten(RunCommand(
      dev, t,
      Request{.flags = kCmdFlagDf, .type = kCmdRead, .cookie = 1, .offset = 0, .length = 20000})));
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].h.type, kReplyOffsetData);
  EXPECT_EQ(chunks[0].h.flags, kReplyFlagDone);
  EXPECT_EQ(chunks[0].payload.substr(8), content.substr(0, 20000));

  chunks = ParseChunks(Flatten(RunCommand(
      dev, t,
      Request{
          .flags = kCmdFlagDf, .type = kCmdRead, .cookie = 2, .offset = 40000, .length = 8192})));
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].h.type, kReplyOffsetHole);
  EXPECT_EQ(GetBE32(U8(chunks[0].payload) + 8), 8192u);
}

TEST(NbdTransmitTest, SimpleReadIsHeaderThenData) {
  const std::string content = TestContent();
  MemoryDevice dev(content);
  Transmission t{content.size(), false, false, false};
  std::string out = Flatten(RunCommand(
      dev, t, Request{.flags = 0, .type = kCmdRead, .cookie = 5, .offset = 12345, .length = 777}));
  ASSERT_EQ(out.size(), kSimpleReplySize + 777);
  auto s = ParseSimpleReply(U8(out));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->error, 0u);
  EXPECT_EQ(s->cookie, 5u);
  EXPECT_EQ(out.substr(kSimpleReplySize), content.substr(12345, 777));
}

TEST(NbdTransmitTest, ReadErrorsBecomeEioWithoutData) {
  MemoryDevice dev(hloop::testing::RandomBytes(8192, 1));
  dev.FailReads(Status::Corruption("chunk 3: hash mismatch"));
  Transmission simple{8192, false, false, false};
  std::string out = Flatten(RunCommand(
      dev, simple, Request{.flags = 0, .type = kCmdRead, .cookie = 5, .offset = 0, .length = 100}));
  ASSERT_EQ(out.size(), kSimpleReplySize);  // no payload after an error
  EXPECT_EQ(ParseSimpleReply(U8(out))->error, kEio);

  Transmission structured{8192, false, true, false};
  auto chunks = ParseChunks(Flatten(
      RunCommand(dev, structured,
                 Request{.flags = 0, .type = kCmdRead, .cookie = 6, .offset = 0, .length = 100})));
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].h.type, kReplyError);
  EXPECT_EQ(chunks[0].h.flags, kReplyFlagDone);
  EXPECT_EQ(GetBE32(U8(chunks[0].payload)), kEio);
  EXPECT_NE(chunks[0].payload.find("hash mismatch"), std::string::npos);
}

TEST(NbdTransmitTest, RefusedReadIsAnsweredStructuredWhenNegotiated) {
  MemoryDevice dev(std::string(4096, 'a'));
  Transmission t{4096, false, true, false};
  auto chunks = ParseChunks(Flatten(RunCommand(
      dev, t, Request{.flags = 0, .type = kCmdRead, .cookie = 8, .offset = 4000, .length = 200})));
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].h.type, kReplyError);
  EXPECT_EQ(GetBE32(U8(chunks[0].payload)), kEinval);
}

TEST(NbdTransmitTest, BlockStatusReportsHolesAndStaysInsideTheRequest) {
  const std::string content = TestContent();
  MemoryDevice dev(content);
  Transmission t{content.size(), false, true, true};
  auto chunks = ParseChunks(Flatten(RunCommand(
      dev, t,
      Request{.flags = 0, .type = kCmdBlockStatus, .cookie = 3, .offset = 4096, .length = 20000})));
  ASSERT_EQ(chunks.size(), 1u);
  ASSERT_EQ(chunks[0].h.type, kReplyBlockStatus);
  EXPECT_EQ(chunks[0].h.flags, kReplyFlagDone);
  const std::string& p = chunks[0].payload;
  EXPECT_EQ(GetBE32(U8(p)), kBaseAllocationId);
  ASSERT_EQ(p.size(), 4u + 3 * 8);  // data 4096, zero 8192, data to the end of the request
  EXPECT_EQ(GetBE32(U8(p) + 4), 4096u);
  EXPECT_EQ(GetBE32(U8(p) + 8), 0u);
  EXPECT_EQ(GetBE32(U8(p) + 12), 8192u);
  EXPECT_EQ(GetBE32(U8(p) + 16), kStateHole | kStateZero);
  EXPECT_EQ(GetBE32(U8(p) + 20), 20000u - 4096 - 8192);

  chunks = ParseChunks(Flatten(RunCommand(dev, t,
                                          Request{.flags = kCmdFlagReqOne,
                                                  .type = kCmdBlockStatus,
                                                  .cookie = 4,
                                                  .offset = 9000,
                                                  .length = 100})));
  ASSERT_EQ(chunks.size(), 1u);
  ASSERT_EQ(chunks[0].payload.size(), 12u);
  EXPECT_EQ(GetBE32(U8(chunks[0].payload) + 4), 100u);  // never past the request
  EXPECT_EQ(GetBE32(U8(chunks[0].payload) + 8), kStateHole | kStateZero);
}

TEST(NbdTransmitTest, WritesFlushAndCacheReachTheDevice) {
  MemoryDevice dev(std::string(8192, 'a'), /*writable=*/true);
  Transmission t{8192, true, false, false};
  std::string out = Flatten(RunCommand(
      dev, t,
      Request{.flags = kCmdFlagFua, .type = kCmdWrite, .cookie = 1, .offset = 10, .length = 3},
      "xyz"));
  EXPECT_EQ(ParseSimpleReply(U8(out))->error, 0u);
  EXPECT_EQ(dev.data().substr(9, 5), "axyza");
  EXPECT_EQ(dev.fua_writes(), 1);
  out = Flatten(RunCommand(
      dev, t,
      Request{.flags = 0, .type = kCmdWriteZeroes, .cookie = 2, .offset = 100, .length = 10}));
  EXPECT_EQ(ParseSimpleReply(U8(out))->error, 0u);
  EXPECT_EQ(dev.data().substr(100, 10), std::string(10, '\0'));
  out = Flatten(RunCommand(
      dev, t, Request{.flags = 0, .type = kCmdTrim, .cookie = 3, .offset = 200, .length = 10}));
  EXPECT_EQ(ParseSimpleReply(U8(out))->error, 0u);
  out = Flatten(RunCommand(
      dev, t, Request{.flags = 0, .type = kCmdFlush, .cookie = 4, .offset = 0, .length = 0}));
  EXPECT_EQ(ParseSimpleReply(U8(out))->error, 0u);
  EXPECT_EQ(dev.flushes(), 1);
  out = Flatten(RunCommand(
      dev, t, Request{.flags = 0, .type = kCmdCache, .cookie = 5, .offset = 4096, .length = 4096}));
  EXPECT_EQ(ParseSimpleReply(U8(out))->error, 0u);
  ASSERT_EQ(dev.prefetched().size(), 1u);
  EXPECT_EQ(dev.prefetched()[0], (std::pair<uint64_t, uint64_t>{4096, 4096}));
}

TEST(NbdTransmitTest, StatusesMapToNbdErrors) {
  EXPECT_EQ(ToNbdError(Status::Ok()), 0u);
  EXPECT_EQ(ToNbdError(Status::InvalidArgument("x")), kEinval);
  EXPECT_EQ(ToNbdError(Status::Unsupported("read-only device")), kEperm);
  EXPECT_EQ(ToNbdError(Status::NoSpace("x")), kEnospc);
  EXPECT_EQ(ToNbdError(Status::NotFound("x")), kEio);
  EXPECT_EQ(ToNbdError(Status::Corruption("x")), kEio);
  EXPECT_EQ(ToNbdError(Status::Unavailable("x")), kEio);
  EXPECT_EQ(ToNbdError(Status::IOError("x")), kEio);
}

// ReadRequests: framing, payloads, and where it stops.
struct Collected {
  std::vector<Command> commands;
  std::vector<uint64_t> admitted;
};

Status ReadAll(const std::string& in, const Transmission& t, Collected* c) {
  MemoryStream s(in);
  return ReadRequests(
      s, t, [&](uint64_t cost) { c->admitted.push_back(cost); },
      [&](Command&& cmd) { c->commands.push_back(std::move(cmd)); });
}

TEST(NbdTransmitTest, ReadRequestsKeepsInStepPastRefusedWrites) {
  Transmission t{4096, false, false, false};
  std::string in = EncodeRequest({0, kCmdWrite, 1, 0, 5}) + "hello" +
                   EncodeRequest({0, kCmdRead, 2, 0, 10}) + EncodeRequest({0, kCmdDisc, 3, 0, 0}) +
                   "garbage after DISC is never read";
  Collected c;
  ASSERT_TRUE(ReadAll(in, t, &c).ok());
  ASSERT_EQ(c.commands.size(), 2u);
  EXPECT_EQ(c.commands[0].check.error, kEperm);
  EXPECT_EQ(c.commands[1].request.cookie, 2u);
  EXPECT_EQ(c.commands[1].check.error, 0u);
  EXPECT_EQ(c.admitted, (std::vector<uint64_t>{5, 10}));
}

TEST(NbdTransmitTest, ReadRequestsRefusesAHugeWriteWithoutReadingIt) {
  Transmission t{4096, true, true, false};
  Collected c;
  Status st = ReadAll(EncodeRequest({0, kCmdWrite, 1, 0, 0xffffffff}) + "a little data", t, &c);
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  ASSERT_EQ(c.commands.size(), 1u);
  EXPECT_EQ(c.commands[0].check.error, kEoverflow);
  EXPECT_EQ(c.commands[0].payload, nullptr);
}

TEST(NbdTransmitTest, ReadRequestsStopsOnBadMagicAndOnAClientThatLeaves) {
  Transmission t{4096, true, false, false};
  Collected c1;
  std::string bad = EncodeRequest({0, kCmdRead, 1, 0, 1});
  bad[0] = 0;
  EXPECT_TRUE(ReadAll(EncodeRequest({0, kCmdRead, 1, 0, 1}) + bad, t, &c1).IsCorruption());
  EXPECT_EQ(c1.commands.size(), 1u);

  Collected c2;  // mid-payload: the command is still run, to release what it was admitted for
  EXPECT_TRUE(
      ReadAll(EncodeRequest({0, kCmdWrite, 1, 0, 100}) + "only ten..", t, &c2).IsUnavailable());
  ASSERT_EQ(c2.commands.size(), 1u);
  EXPECT_NE(c2.commands[0].check.error, 0u);

  Collected c3;  // mid-header: just the end
  EXPECT_TRUE(ReadAll(EncodeRequest({0, kCmdRead, 1, 0, 1}).substr(0, 20), t, &c3).ok());
  EXPECT_TRUE(c3.commands.empty());
}

}  // namespace
}  // namespace hloop::nbd
