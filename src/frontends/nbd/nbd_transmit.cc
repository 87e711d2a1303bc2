#include "frontends/nbd/nbd_transmit.h"

#include <algorithm>
#include <cerrno>

#include "util/status_errno.h"

namespace hloop::nbd {

namespace {

// A BLOCK_STATUS reply lists at most this many extents; the spec lets a
// server answer a long range in parts, and the client asks again.
constexpr size_t kMaxBlockStatusExtents = 1 << 16;

std::string SimpleReplyBytes(uint32_t error, uint64_t cookie) {
  std::string out;
  AppendSimpleReply(&out, error, cookie);
  return out;
}

Reply OkReply(const Request& r) {
  Reply reply;
  reply.AddBytes(SimpleReplyBytes(0, r.cookie));
  return reply;
}

Reply StatusReply(const Transmission& t, const Request& r, const Status& st) {
  if (st.ok()) return OkReply(r);
  return ErrorReply(t, r, ToNbdError(st), CommandName(r.type) + ": " + st.ToString());
}

// A run of a read: `length` bytes at `pos` (relative to the request's
// offset), data or zeros.
struct Run {
  uint64_t pos, length;
  bool zero;
};

// The request's range cut into data and zero runs that cover it exactly.
// Unknown extents (the device failed to say) count as data: always safe.
std::vector<Run> ReadRuns(BlockDevice& device, const Request& r, bool one_chunk) {
  std::vector<Run> runs;
  auto extents = device.Extents(r.offset, r.length);
  uint64_t pos = 0;
  if (extents.ok()) {
    for (const Extent& e : *extents) {
      if (pos == r.length) break;
      uint64_t n = std::min<uint64_t>(e.length, r.length - pos);
      if (n == 0) continue;
      if (!runs.empty() && runs.back().zero == e.zero)
        runs.back().length += n;
      else
        runs.push_back(Run{pos, n, e.zero});
      pos += n;
    }
  }
  if (pos < r.length) runs.push_back(Run{pos, r.length - pos, false});
  if (one_chunk && runs.size() > 1) runs = {Run{0, r.length, false}};  // DF: data with its zeros
  return runs;
}

Reply ExecuteRead(BlockDevice& device, const Transmission& t, const Request& r) {
  Reply reply;
  if (r.length == 0) {
    std::string out;
    if (t.structured)
      AppendNoneChunk(&out, r.cookie);
    else
      AppendSimpleReply(&out, 0, r.cookie);
    reply.AddBytes(out);
    return reply;
  }
  char* buf = reply.Allocate(r.length);
  if (!t.structured) {
    Status st = device.Read(r.offset, r.length, buf);
    if (!st.ok()) return StatusReply(t, r, st);
    reply.AddBytes(SimpleReplyBytes(0, r.cookie));
    reply.AddData(0, r.length);
    return reply;
  }
  // Structured: every byte is read before the first chunk is built, so an
  // error becomes one ERROR chunk and nothing else.
  std::vector<Run> runs = ReadRuns(device, r, r.flags & kCmdFlagDf);
  for (const Run& run : runs) {
    if (run.zero) continue;
    Status st = device.Read(r.offset + run.pos, run.length, buf + run.pos);
    if (!st.ok()) return StatusReply(t, r, st);
  }
  for (size_t i = 0; i < runs.size(); i++) {
    const Run& run = runs[i];
    uint16_t flags = i + 1 == runs.size() ? kReplyFlagDone : 0;
    std::string head;
    if (run.zero) {
      AppendHoleChunk(&head, flags, r.cookie, r.offset + run.pos, uint32_t(run.length));
      reply.AddBytes(head);
    } else {
      AppendDataChunkHeader(&head, flags, r.cookie, r.offset + run.pos, uint32_t(run.length));
      reply.AddBytes(head);
      reply.AddData(run.pos, run.length);
    }
  }
  return reply;
}

Reply ExecuteBlockStatus(BlockDevice& device, const Transmission& t, const Request& r) {
  auto extents = device.Extents(r.offset, r.length);
  if (!extents.ok()) return StatusReply(t, r, extents.status());
  std::vector<BlockStatusExtent> out;
  uint64_t left = r.length;
  for (const Extent& e : *extents) {
    if (left == 0 || out.size() == kMaxBlockStatusExtents) break;
    // The device may run past the request; the reply never does.
    uint32_t n = uint32_t(std::min<uint64_t>(e.length, left));
    if (n == 0) continue;
    out.push_back({n, e.zero ? kStateHole | kStateZero : 0});
    left -= n;
    if (r.flags & kCmdFlagReqOne) break;
  }
  if (out.empty()) out.push_back({r.length, 0});  // 0: "data", always true enough
  std::string bytes;
  AppendBlockStatusChunk(&bytes, kReplyFlagDone, r.cookie, kBaseAllocationId, out);
  Reply reply;
  reply.AddBytes(bytes);
  return reply;
}

}  // namespace

void Reply::AddBytes(std::string_view bytes) {
  if (!segments_.empty() && !segments_.back().data) {
    segments_.back().length += bytes.size();  // contiguous in bytes_
  } else {
    segments_.push_back(Segment{false, bytes_.size(), bytes.size()});
  }
  bytes_.append(bytes);
}

char* Reply::Allocate(size_t n) {
  buffer_ = std::make_unique_for_overwrite<char[]>(n);
  return buffer_.get();
}

void Reply::AddData(size_t offset, size_t n) { segments_.push_back(Segment{true, offset, n}); }

std::vector<std::string_view> Reply::Pieces() const {
  std::vector<std::string_view> out;
  out.reserve(segments_.size());
  for (const Segment& s : segments_)
    out.emplace_back(s.data ? buffer_.get() + s.offset : bytes_.data() + s.offset, s.length);
  return out;
}

size_t Reply::size() const {
  size_t n = 0;
  for (const Segment& s : segments_) n += s.length;
  return n;
}

uint32_t ToNbdError(const Status& st) {
  // The errno every front end gives (util/status_errno.h), narrowed to the
  // values NBD carries. NBD's one exception: a write to a read-only export
  // is EPERM (the spec's word for it), where FUSE and 9P say EROFS.
  switch (ErrnoFromStatus(st)) {
    case 0: return 0;
    case EROFS:
    case EPERM: return kEperm;
    case EINVAL: return kEinval;
    case ENOSPC: return kEnospc;
    case ENOMEM: return kEnomem;
    case EOVERFLOW: return kEoverflow;
    case EOPNOTSUPP: return kEnotsup;
    case ESHUTDOWN: return kEshutdown;
    default: return kEio;  // EIO, and any errno NBD does not know
  }
}

Status ReadRequests(Stream& in, const Transmission& t,
                    const std::function<void(uint64_t cost)>& admit,
                    const std::function<void(Command&&)>& run) {
  for (;;) {
    uint8_t head[kRequestSize];
    if (!in.ReadFull(head, sizeof head)) return Status::Ok();  // the client closed the connection
    auto req = ParseRequest(head);
    if (!req.ok()) return req.status();
    if (req->type == kCmdDisc) return Status::Ok();
    Command c;
    c.request = *req;
    c.check = CheckRequest(*req, t);
    const bool write = req->type == kCmdWrite;
    if (write)
      c.cost = req->length;
    else if (req->type == kCmdRead && c.check.error == 0)
      c.cost = req->length;
    if (write && req->length > kMaxPayload) {
      // Reading 4 GB to stay in step is not worth it: refuse and close.
      c.cost = 0;
      admit(0);
      run(std::move(c));
      return Status::InvalidArgument("WRITE of " + std::to_string(req->length) +
                                     " bytes exceeds the limit");
    }
    admit(c.cost);
    if (write && req->length > 0) {
      // Read even when refusing it (read-only, past the end): the stream
      // must stay in step.
      c.payload = std::make_unique_for_overwrite<char[]>(req->length);
      if (!in.ReadFull(c.payload.get(), req->length)) {
        c.check = {kEio, "client left in the middle of a WRITE"};
        c.payload.reset();
        run(std::move(c));  // releases the admitted cost; the reply goes nowhere
        return Status::Unavailable("client left in the middle of a WRITE");
      }
    }
    run(std::move(c));
  }
}

Reply Execute(BlockDevice& device, const Transmission& t, const Command& c) {
  const Request& r = c.request;
  if (c.check.error != 0) return ErrorReply(t, r, c.check.error, c.check.message);
  const bool fua = r.flags & kCmdFlagFua;
  switch (r.type) {
    case kCmdRead: return ExecuteRead(device, t, r);
    case kCmdWrite:
      return StatusReply(
          t, r, r.length ? device.Write(r.offset, r.length, c.payload.get(), fua) : Status::Ok());
    case kCmdFlush: return StatusReply(t, r, device.Flush());
    case kCmdTrim:
      return StatusReply(t, r, r.length ? device.Trim(r.offset, r.length, fua) : Status::Ok());
    case kCmdWriteZeroes:
      return StatusReply(t, r,
                         r.length ? device.WriteZeroes(r.offset, r.length, fua) : Status::Ok());
    case kCmdCache:
      device.Prefetch(r.offset, r.length);  // a hint: never fails
      return OkReply(r);
    case kCmdBlockStatus: return ExecuteBlockStatus(device, t, r);
    default:  // CheckRequest refused the rest
      return ErrorReply(t, r, kEinval, "unknown command");
  }
}

Reply ErrorReply(const Transmission& t, const Request& r, uint32_t error,
                 std::string_view message) {
  std::string out;
  // With structured replies the error carries its message; a READ must be
  // answered structured anyway.
  if (t.structured)
    AppendErrorChunk(&out, r.cookie, error, message);
  else
    AppendSimpleReply(&out, error, r.cookie);
  Reply reply;
  reply.AddBytes(out);
  return reply;
}

}  // namespace hloop::nbd
