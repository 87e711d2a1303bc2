#include "frontends/nbd/nbd_negotiate.h"

#include <vector>

#include "util/bytes.h"

namespace hloop::nbd {

bool Negotiator::AcceptClientFlags(uint32_t flags) {
  if (flags & ~(kClientFixedNewstyle | kClientNoZeroes)) return false;
  no_zeroes_ = flags & kClientNoZeroes;
  return true;
}

uint16_t Negotiator::TransmissionFlags() const {
  // CAN_MULTI_CONN: every connection serves the same BlockDevice object, so
  // there is one cache for all of them, and Flush() (FLUSH, FUA) makes every
  // completed write durable whichever connection made it; what one
  // connection sees after a FLUSH reply, all do.
  uint16_t f = kFlagHasFlags | kFlagCanMultiConn | kFlagSendCache;
  if (structured_) f |= kFlagSendDf;  // DF only means something with structured replies
  if (export_.writable)
    f |= kFlagSendFlush | kFlagSendFua | kFlagSendTrim | kFlagSendWriteZeroes;
  else
    f |= kFlagReadOnly;
  return f;
}

Transmission Negotiator::transmission() const {
  Transmission t;
  t.size = export_.size;
  t.writable = export_.writable;
  t.structured = structured_;
  t.base_allocation = base_allocation_;
  return t;
}

Negotiator::Next Negotiator::HandleOption(uint32_t option, std::string_view data,
                                          std::string* out) {
  switch (option) {
    case kOptExportName: return ExportName(out);  // any name: there is one export
    case kOptAbort: AppendOptionReply(out, option, kRepAck); return Next::kClose;
    case kOptList:
      if (!data.empty()) {
        AppendOptionReply(out, option, kRepErrInvalid, "LIST takes no data");
        return Next::kContinue;
      }
      AppendOptionReply(out, option, kRepServer, ServerReplyData(export_.name));
      AppendOptionReply(out, option, kRepAck);
      return Next::kContinue;
    case kOptInfo:
    case kOptGo: return InfoOrGo(option, data, out);
    case kOptStructuredReply:
      if (!data.empty()) {
        AppendOptionReply(out, option, kRepErrInvalid, "STRUCTURED_REPLY takes no data");
        return Next::kContinue;
      }
      structured_ = true;
      AppendOptionReply(out, option, kRepAck);
      return Next::kContinue;
    case kOptListMetaContext:
    case kOptSetMetaContext: return MetaContext(option, data, out);
    default:
      // STARTTLS, EXTENDED_HEADERS and anything unknown: clients fall back.
      AppendOptionReply(out, option, kRepErrUnsup, "option not supported by hloop");
      return Next::kContinue;
  }
}

Negotiator::Next Negotiator::ExportName(std::string* out) {
  out->append(ExportNameReply(export_.size, TransmissionFlags(), no_zeroes_));
  return Next::kTransmission;
}

Negotiator::Next Negotiator::InfoOrGo(uint32_t option, std::string_view data, std::string* out) {
  auto req = ParseInfoRequest(data);
  if (!req.ok()) {
    AppendOptionReply(out, option, kRepErrInvalid, req.status().message());
    return Next::kContinue;
  }
  AppendOptionReply(out, option, kRepInfo, InfoExportData(export_.size, TransmissionFlags()));
  bool name_asked = false;
  for (uint16_t info : req->infos) name_asked |= info == kInfoName;
  if (name_asked) AppendOptionReply(out, option, kRepInfo, InfoNameData(export_.name));
  // Block sizes go to every client, asked or not (the spec allows it): they
  // tell it how large a request may be.
  AppendOptionReply(out, option, kRepInfo,
                    InfoBlockSizeData(kMinBlockSize, kPreferredBlockSize, kMaxPayload));
  AppendOptionReply(out, option, kRepAck);
  return option == kOptGo ? Next::kTransmission : Next::kContinue;
}

Negotiator::Next Negotiator::MetaContext(uint32_t option, std::string_view data, std::string* out) {
  auto req = ParseMetaContextRequest(data);
  if (!req.ok()) {
    AppendOptionReply(out, option, kRepErrInvalid, req.status().message());
    return Next::kContinue;
  }
  // Block status replies are structured: no contexts without them.
  if (!structured_) {
    AppendOptionReply(out, option, kRepErrInvalid, "negotiate STRUCTURED_REPLY first");
    return Next::kContinue;
  }
  const bool list = option == kOptListMetaContext;
  bool match = list && req->queries.empty();  // LIST with no query: everything
  for (const std::string& q : req->queries) {
    // "base:" is a wildcard for the whole namespace, but only when listing.
    match |= q == kBaseAllocation || (list && q == "base:");
  }
  if (match) {
    // LIST's ids are reserved (0); SET's is what BLOCK_STATUS replies carry.
    uint32_t id = list ? 0 : kBaseAllocationId;
    AppendOptionReply(out, option, kRepMetaContext, MetaContextReplyData(id, kBaseAllocation));
  }
  if (!list) base_allocation_ = match;  // SET replaces the selection
  AppendOptionReply(out, option, kRepAck);
  return Next::kContinue;
}

Status RunHandshake(Stream& s, Negotiator& negotiator) {
  if (!s.Write(EncodeGreeting())) return Status::Unavailable("client left before the greeting");
  uint8_t flags[4];
  if (!s.ReadFull(flags, sizeof flags))
    return Status::Unavailable("client left during the handshake");
  if (!negotiator.AcceptClientFlags(GetBE32(flags)))
    return Status::InvalidArgument("unknown client flags " + std::to_string(GetBE32(flags)));
  for (;;) {
    uint8_t head[kOptionHeaderSize];
    if (!s.ReadFull(head, sizeof head))
      return Status::Unavailable("client left during the handshake");
    auto h = ParseOptionHeader(head);
    if (!h.ok()) return h.status();
    std::string out;
    if (h->length > kMaxOptionLength) {
      AppendOptionReply(&out, h->option, kRepErrTooBig, "option data too long");
      s.Write(out);
      return Status::InvalidArgument("option " + std::to_string(h->option) + " claims " +
                                     std::to_string(h->length) + " bytes of data");
    }
    std::string data(h->length, '\0');  // bounded by the check above
    if (!s.ReadFull(data.data(), data.size()))
      return Status::Unavailable("client left during the handshake");
    Negotiator::Next next = negotiator.HandleOption(h->option, data, &out);
    if (!s.Write(out)) return Status::Unavailable("client left during the handshake");
    if (next == Negotiator::Next::kTransmission) return Status::Ok();
    if (next == Negotiator::Next::kClose)
      return Status::Unavailable("client aborted the handshake");
  }
}

}  // namespace hloop::nbd
