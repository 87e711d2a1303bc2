// Test-only: a raw 9P client over a connected socket. It sends whatever it is
// given (including malformed bytes) and reads replies one frame at a time, so
// tests can pipeline requests, flush them and check the exact replies.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "frontends/p9/p9_proto.h"
#include "util/bytes.h"

namespace hloop::p9::testing {

class RawClient {
 public:
  explicit RawClient(int fd) : fd_(fd) {}
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool SendRaw(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += size_t(n);
    }
    return true;
  }
  bool Send(uint16_t tag, Body body) {
    std::string frame;
    return Encode(Message{tag, std::move(body)}, &frame) && SendRaw(frame);
  }
  // The next reply, or nothing on end of stream, a bad frame or a timeout.
  std::optional<Message> Receive(int timeout_ms = 10000) {
    uint8_t size_bytes[4];
    if (!ReadFull(size_bytes, 4, timeout_ms)) return std::nullopt;
    uint32_t size = GetU32(size_bytes);
    if (size < kHeaderSize || size > (1u << 26)) return std::nullopt;
    std::string frame(size, '\0');
    std::copy(size_bytes, size_bytes + 4, frame.begin());
    if (!ReadFull(frame.data() + 4, size - 4, timeout_ms)) return std::nullopt;
    Message m;
    if (Decode(frame, &m) != DecodeError::kNone) return std::nullopt;
    return m;
  }
  // True if the server closed the connection within `timeout_ms`.
  bool Closed(int timeout_ms = 10000) {
    char c;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    return ::recv(fd_, &c, 1, 0) <= 0;
  }

  // Sends with a fresh tag and returns the reply (Rlerror{~0u} if none came).
  Message Call(Body body) {
    uint16_t tag = next_tag_++;
    if (next_tag_ == kNoTag) next_tag_ = 1;
    if (!Send(tag, std::move(body))) return Message{tag, Rlerror{~0u}};
    auto r = Receive();
    if (!r || r->tag != tag) return Message{tag, Rlerror{~0u}};
    return *r;
  }
  // The reply's errno: 0 for anything but Rlerror.
  static int Errno(const Message& m) {
    auto* e = std::get_if<Rlerror>(&m.body);
    return e ? int(e->ecode) : 0;
  }
  int Err(Body body) { return Errno(Call(std::move(body))); }
  template <class R>
  std::optional<R> As(Body body) {
    Message m = Call(std::move(body));
    if (auto* r = std::get_if<R>(&m.body)) return *r;
    return std::nullopt;
  }

  // Tversion (tag NOTAG) + Tattach; the errno of the attach.
  int Connect(uint32_t fid = 0, const std::string& aname = "", uint32_t uid = 0, uint32_t msize = 65536) {
    if (!Send(kNoTag, Tversion{msize, kVersion})) return EIO;
    auto v = Receive();
    if (!v || !std::holds_alternative<Rversion>(v->body)) return EPROTO;
    return Err(Tattach{fid, kNoFid, "", aname, uid});
  }

 private:
  bool ReadFull(void* buf, size_t len, int timeout_ms) {
    auto* p = static_cast<char*>(buf);
    while (len > 0) {
      pollfd pf{fd_, POLLIN, 0};
      if (::poll(&pf, 1, timeout_ms) <= 0) return false;
      ssize_t n = ::recv(fd_, p, len, 0);
      if (n <= 0) return false;
      p += n;
      len -= size_t(n);
    }
    return true;
  }

  int fd_;
  uint16_t next_tag_ = 1;
};

}  // namespace hloop::p9::testing
