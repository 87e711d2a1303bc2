// Test-only: a raw 9P client over a connected socket, for the tests of the 9P
// server and of its file-system views. It sends whatever it is given
// (including malformed bytes) and reads replies one frame at a time, so tests
// can pipeline requests, flush them and check the exact replies.
// Not thread-safe: one client per thread.
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

namespace hloop::testing {

class P9Client {
 public:
  explicit P9Client(int fd) : fd_(fd) {}
  ~P9Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  P9Client(const P9Client&) = delete;
  P9Client& operator=(const P9Client&) = delete;

  bool SendRaw(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += size_t(n);
    }
    return true;
  }
  bool Send(uint16_t tag, p9::Body body) {
    std::string frame;
    return p9::Encode(p9::Message{tag, std::move(body)}, &frame) && SendRaw(frame);
  }
  // The next reply, or nothing on end of stream, a bad frame or a timeout.
  std::optional<p9::Message> Receive(int timeout_ms = 10000) {
    uint8_t size_bytes[4];
    if (!ReadFull(size_bytes, 4, timeout_ms)) return std::nullopt;
    uint32_t size = GetU32(size_bytes);
    if (size < p9::kHeaderSize || size > (1u << 26)) return std::nullopt;
    std::string frame(size, '\0');
    std::copy(size_bytes, size_bytes + 4, frame.begin());
    if (!ReadFull(frame.data() + 4, size - 4, timeout_ms)) return std::nullopt;
    p9::Message m;
    if (p9::Decode(frame, &m) != p9::DecodeError::kNone) return std::nullopt;
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
  p9::Message Call(p9::Body body) {
    uint16_t tag = next_tag_++;
    if (next_tag_ == p9::kNoTag) next_tag_ = 1;
    if (!Send(tag, std::move(body))) return p9::Message{tag, p9::Rlerror{~0u}};
    auto r = Receive();
    if (!r || r->tag != tag) return p9::Message{tag, p9::Rlerror{~0u}};
    return *r;
  }
  // The reply's errno: 0 for anything but Rlerror.
  static int Errno(const p9::Message& m) {
    auto* e = std::get_if<p9::Rlerror>(&m.body);
    return e ? int(e->ecode) : 0;
  }
  int Err(p9::Body body) { return Errno(Call(std::move(body))); }
  template <class R>
  std::optional<R> As(p9::Body body) {
    p9::Message m = Call(std::move(body));
    if (auto* r = std::get_if<R>(&m.body)) return *r;
    return std::nullopt;
  }

  // Tversion (tag NOTAG) + Tattach; the errno of the attach.
  int Connect(uint32_t fid = 0, const std::string& aname = "", uint32_t uid = 0,
              uint32_t msize = 65536) {
    if (!Send(p9::kNoTag, p9::Tversion{msize, p9::kProtocolVersion})) return EIO;
    auto v = Receive();
    if (!v || !std::holds_alternative<p9::Rversion>(v->body)) return EPROTO;
    return Err(p9::Tattach{fid, p9::kNoFid, "", aname, uid});
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

}  // namespace hloop::testing
