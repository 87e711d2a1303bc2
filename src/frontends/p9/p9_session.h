// One 9P connection's state (negotiated msize, fid table) and the handling of
// each request against the exported file systems. The server (p9_server.h)
// owns the socket, the threads and the tags; a Session only turns a request
// into a reply.
//
// Thread safety: Handle() is called by several workers at once; the fid table
// has its own mutex, and each Node guards itself. Version() must not run
// alongside Handle() (the server waits for requests in flight first).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "frontends/p9/p9_fs.h"
#include "frontends/p9/p9_proto.h"
#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace hloop::p9 {

struct Export {
  std::string name;  // what Tattach's aname selects (when there are several)
  std::shared_ptr<FileSystem> fs;
};

struct SessionLimits {
  uint32_t max_msize = 1 << 20;  // Linux's TCP transport takes at most 1 MiB
  size_t max_fids = 65536;       // more fids get EMFILE
};

class Session {
 public:
  // `exports` must outlive the session.
  Session(const std::vector<Export>* exports, const SessionLimits& limits);
  ~Session();  // clunks what is left
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Tversion: drops every fid and agrees on msize. The reply says "unknown"
  // for anything but 9P2000.L or an msize below kMinMsize.
  Rversion Version(const Tversion& t) EXCLUDES(mu_);
  // 0 until a version is agreed.
  uint32_t msize() const EXCLUDES(mu_);

  // Any request but Tversion and Tflush. Returns the reply body: the R message,
  // or Rlerror with the errno.
  Body Handle(const Message& request);

  // Clunks every fid (on a closed connection or a new version).
  void ClunkAll() EXCLUDES(mu_);
  size_t fid_count() EXCLUDES(mu_);

  // How many exports there are matters to Find: with one, any aname is it.
  static const Export* Find(const std::vector<Export>& exports, const std::string& aname);

 private:
  struct Fid {
    std::shared_ptr<Node> node;
    FileSystem* fs = nullptr;  // the export it belongs to
  };
  template <class M>
  Body Do(const M& m);

  int Get(uint32_t fid, Fid* out) EXCLUDES(mu_);
  // Binds `fid`; EEXIST if it is taken (unless `replace`), EMFILE at the limit.
  int Put(uint32_t fid, Fid f, bool replace) EXCLUDES(mu_);
  bool Take(uint32_t fid, Fid* out) EXCLUDES(mu_);
  uint32_t iounit() const { return msize() - kIoHeaderSize; }

  const std::vector<Export>* exports_;
  const SessionLimits limits_;
  mutable Mutex mu_;
  uint32_t msize_ GUARDED_BY(mu_) = 0;
  std::unordered_map<uint32_t, Fid> fids_ GUARDED_BY(mu_);
};

}  // namespace hloop::p9
