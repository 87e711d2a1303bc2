// libFuzzer target: 9P messages from a hostile client. The input is a stream
// of frames; each must decode without reading outside its bytes, anything
// that decodes must encode back to the same bytes, and the frames are then
// handled by a session over a read-only export of a small directory tree
// (walks, opens, reads, readdir with whatever names and offsets).
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "frontends/p9/p9_proto.h"
#include "frontends/p9/p9_session.h"
#include "frontends/p9fs/p9_dirfs.h"
#include "util/bytes.h"

namespace {

using namespace hloop::p9;

const std::vector<Export>& Exports() {
  static std::vector<Export>* exports = [] {
    static char tmpl[] = "/tmp/hloop-fuzz-9p-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    std::string dir = tmpl;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(tmpl, ec);
    });
    ::mkdir((dir + "/export").c_str(), 0755);
    ::mkdir((dir + "/export/sub").c_str(), 0755);
    FILE* f = std::fopen((dir + "/export/sub/file").c_str(), "w");
    std::fputs("inside", f);
    std::fclose(f);
    f = std::fopen((dir + "/secret").c_str(), "w");
    std::fputs("secret", f);
    std::fclose(f);
    (void)!::symlink("../secret", (dir + "/export/link").c_str());
    auto fs = DirFs::Open(dir + "/export", DirFsOptions{/*read_only=*/true});
    if (!fs.ok()) std::abort();
    return new std::vector<Export>{{"x", *fs}};
  }();
  return *exports;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Session session(&Exports(), SessionLimits{1 << 16, 64});
  bool versioned = false;
  while (in.size() >= 4) {
    uint32_t len = hloop::GetU32(reinterpret_cast<const uint8_t*>(in.data()));
    std::string_view frame = in.substr(0, std::min<size_t>(len, in.size()));
    in.remove_prefix(frame.size() < 4 ? 4 : frame.size());
    Message m;
    if (Decode(frame, &m) != DecodeError::kNone) continue;
    std::string again;
    if (!Encode(m, &again) || again != frame) std::abort();
    if (auto* v = std::get_if<Tversion>(&m.body)) {
      session.Version(*v);
      versioned = true;
      continue;
    }
    if (!versioned) session.Version(Tversion{1 << 16, kProtocolVersion});
    versioned = true;
    Body reply = session.Handle(m);
    if (auto* rd = std::get_if<Rreaddir>(&reply)) {
      std::vector<Dirent> entries;
      if (!ParseDirents(rd->data, &entries)) std::abort();
    }
    std::string out;
    if (!Encode(Message{m.tag, std::move(reply)}, &out) || out.size() > (1u << 16)) std::abort();
  }
  std::vector<Dirent> entries;
  ParseDirents(std::string_view(reinterpret_cast<const char*>(data), size), &entries);
  return 0;
}
