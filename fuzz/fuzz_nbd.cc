// libFuzzer target: whatever a client sends, the NBD server's protocol code
// (handshake, option parsing, request framing and checks, execution on a
// device) answers or ends the connection; it never crashes, overruns, or
// allocates what the client claims. The input is the client's byte stream;
// its first byte picks a read-only or a writable export.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "frontends/nbd/nbd_negotiate.h"
#include "frontends/nbd/nbd_transmit.h"
#include "testing/memory_device.h"

using namespace hloop::nbd;

namespace {

// 64 KiB with zero runs, so reads produce holes and block status extents.
const std::string& Content() {
  static const std::string c = [] {
    std::string s(65536, '\0');
    for (size_t i = 0; i < s.size(); i++) s[i] = (i / 4096) % 3 == 1 ? '\0' : char(i * 131 + 7);
    return s;
  }();
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool writable = data[0] & 1;
  hloop::testing::MemoryDevice device(Content(), writable);
  MemoryStream stream(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  stream.set_keep_output(false);
  Negotiator negotiator(ExportInfo{"fuzz", device.size(), writable});
  if (!RunHandshake(stream, negotiator).ok()) return 0;
  const Transmission t = negotiator.transmission();
  hloop::Status st = ReadRequests(
      stream, t,
      [](uint64_t cost) {
        if (cost > kMaxPayload) std::abort();  // never admitted beyond the limit
      },
      [&](Command&& c) {
        if (c.payload && c.request.length > kMaxPayload) std::abort();
        Reply reply = Execute(device, t, c);
        if (reply.size() == 0) std::abort();  // every request gets an answer
        stream.Write(reply.Pieces());
      });
  (void)st;
  return 0;
}
