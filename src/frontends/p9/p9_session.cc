#include "frontends/p9/p9_session.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace hloop::p9 {

namespace {

// The uid of a user named in Tattach when the client sent no number.
uint32_t LookupUid(const std::string& name) {
  if (name.empty()) return kNoUid;
  struct passwd pw, *found = nullptr;
  char buf[4096];
  if (::getpwnam_r(name.c_str(), &pw, buf, sizeof buf, &found) != 0 || !found) return kNoUid;
  return uint32_t(pw.pw_uid);
}

// Read-only exports refuse changes here already, whatever the backend does.
int Writable(FileSystem* fs) { return fs->read_only() ? EROFS : 0; }

std::string_view TrimSlashes(std::string_view s) {
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return s;
}

}  // namespace

Session::Session(const std::vector<Export>* exports, const SessionLimits& limits)
    : exports_(exports), limits_(limits) {}

Session::~Session() { ClunkAll(); }

const Export* Session::Find(const std::vector<Export>& exports, const std::string& aname) {
  if (exports.size() == 1) return &exports[0];
  for (const Export& e : exports)
    if (e.name == aname) return &e;
  for (const Export& e : exports)
    if (TrimSlashes(e.name) == TrimSlashes(aname)) return &e;
  return nullptr;
}

Rversion Session::Version(const Tversion& t) {
  ClunkAll();
  Rversion r;
  r.msize = std::min(t.msize, limits_.max_msize);
  bool ok = t.version.rfind(kProtocolVersion, 0) == 0 && r.msize >= kMinMsize;
  r.version = ok ? kProtocolVersion : "unknown";
  MutexLock lock(&mu_);
  msize_ = ok ? r.msize : 0;
  return r;
}

uint32_t Session::msize() const {
  MutexLock lock(&mu_);
  return msize_;
}

void Session::ClunkAll() {
  std::unordered_map<uint32_t, Fid> fids;
  {
    MutexLock lock(&mu_);
    fids.swap(fids_);
  }
  for (auto& [id, f] : fids) f.node->Clunk();
}

size_t Session::fid_count() {
  MutexLock lock(&mu_);
  return fids_.size();
}

int Session::Get(uint32_t fid, Fid* out) {
  MutexLock lock(&mu_);
  auto it = fids_.find(fid);
  if (it == fids_.end()) return EBADF;
  *out = it->second;
  return 0;
}

int Session::Put(uint32_t fid, Fid f, bool replace) {
  if (fid == kNoFid) return EBADF;
  MutexLock lock(&mu_);
  auto it = fids_.find(fid);
  if (it != fids_.end()) {
    if (!replace) return EEXIST;
    it->second = std::move(f);
    return 0;
  }
  if (fids_.size() >= limits_.max_fids) return EMFILE;
  fids_.emplace(fid, std::move(f));
  return 0;
}

bool Session::Take(uint32_t fid, Fid* out) {
  MutexLock lock(&mu_);
  auto it = fids_.find(fid);
  if (it == fids_.end()) return false;
  *out = std::move(it->second);
  fids_.erase(it);
  return true;
}

// Everything not handled below (R messages, legacy ones) is refused.
template <class M>
Body Session::Do(const M&) {
  return Rlerror{EOPNOTSUPP};
}

#define P9_TRY(expr)                                   \
  do {                                                 \
    if (int _e = (expr)) return Rlerror{uint32_t(_e)}; \
  } while (0)

template <>
Body Session::Do(const Tauth&) {
  return Rlerror{EOPNOTSUPP};  // no authentication: attach with afid = NOFID
}

template <>
Body Session::Do(const Tattach& t) {
  if (t.afid != kNoFid) return Rlerror{EBADF};  // no auth fid was ever made
  const Export* e = Find(*exports_, t.aname);
  if (!e) return Rlerror{ENOENT};
  uint32_t uid = t.n_uname != kNoUid ? t.n_uname : LookupUid(t.uname);
  std::shared_ptr<Node> root;
  P9_TRY(e->fs->Attach(uid, &root));
  Qid q = root->qid();
  P9_TRY(Put(t.fid, {std::move(root), e->fs.get()}, false));
  return Rattach{q};
}

template <>
Body Session::Do(const Twalk& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  if (t.newfid != t.fid) {
    Fid taken;
    if (Get(t.newfid, &taken) == 0) return Rlerror{EEXIST};
  }
  Rwalk r;
  std::shared_ptr<Node> node;
  if (t.names.empty()) {
    node = f.node->Clone();
  } else {
    node = f.node;
    for (const std::string& name : t.names) {
      std::shared_ptr<Node> next;
      if (int e = node->Walk(name, &next)) {
        if (r.qids.empty()) return Rlerror{uint32_t(e)};
        return r;  // a partial walk: newfid is not made
      }
      r.qids.push_back(next->qid());
      node = std::move(next);
    }
  }
  P9_TRY(Put(t.newfid, {std::move(node), f.fs}, t.newfid == t.fid));
  return r;
}

template <>
Body Session::Do(const Tlopen& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  if ((t.flags & (kDotlAccMode | kDotlTrunc)) != 0) P9_TRY(Writable(f.fs));
  P9_TRY(f.node->Open(t.flags));
  return Rlopen{f.node->qid(), iounit()};
}

template <>
Body Session::Do(const Tlcreate& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  P9_TRY(Writable(f.fs));
  Rlcreate r;
  P9_TRY(f.node->Create(t.name, t.flags, t.mode, t.gid, &r.qid));
  r.iounit = iounit();
  return r;
}

template <>
Body Session::Do(const Tread& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  Rread r;
  P9_TRY(f.node->Read(t.offset, std::min(t.count, iounit()), &r.data));
  return r;
}

template <>
Body Session::Do(const Twrite& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  Rwrite r;
  P9_TRY(f.node->Write(t.offset, t.data, &r.count));
  return r;
}

template <>
Body Session::Do(const Tclunk& t) {
  Fid f;
  if (!Take(t.fid, &f)) return Rlerror{EBADF};
  P9_TRY(f.node->Clunk());
  return Rclunk{};
}

template <>
Body Session::Do(const Tremove& t) {
  Fid f;
  if (!Take(t.fid, &f)) return Rlerror{EBADF};  // clunked even when the removal fails
  int e = Writable(f.fs);
  if (!e) e = f.node->Remove();
  int c = f.node->Clunk();
  P9_TRY(e ? e : c);
  return Rremove{};
}

template <>
Body Session::Do(const Tgetattr& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  Rgetattr r;
  P9_TRY(f.node->GetAttr(&r));
  return r;
}

template <>
Body Session::Do(const Tsetattr& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  P9_TRY(Writable(f.fs));
  P9_TRY(f.node->SetAttr(t));
  return Rsetattr{};
}

template <>
Body Session::Do(const Treaddir& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  std::vector<Dirent> entries;
  P9_TRY(f.node->ReadDir(t.offset, std::min(t.count, iounit()), &entries));
  Rreaddir r;
  for (const Dirent& d : entries) AppendDirent(d, &r.data);
  return r;
}

template <>
Body Session::Do(const Tstatfs& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  Rstatfs r;
  P9_TRY(f.node->StatFs(&r));
  return r;
}

template <>
Body Session::Do(const Tmkdir& t) {
  Fid f;
  P9_TRY(Get(t.dfid, &f));
  P9_TRY(Writable(f.fs));
  Rmkdir r;
  P9_TRY(f.node->Mkdir(t.name, t.mode, t.gid, &r.qid));
  return r;
}

template <>
Body Session::Do(const Tsymlink& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  P9_TRY(Writable(f.fs));
  Rsymlink r;
  P9_TRY(f.node->Symlink(t.name, t.target, t.gid, &r.qid));
  return r;
}

template <>
Body Session::Do(const Tmknod& t) {
  Fid f;
  P9_TRY(Get(t.dfid, &f));
  P9_TRY(Writable(f.fs));
  Rmknod r;
  P9_TRY(f.node->Mknod(t.name, t.mode, t.major, t.minor, t.gid, &r.qid));
  return r;
}

template <>
Body Session::Do(const Trename& t) {
  Fid f, d;
  P9_TRY(Get(t.fid, &f));
  P9_TRY(Get(t.dfid, &d));
  P9_TRY(Writable(f.fs));
  if (f.fs != d.fs) return Rlerror{EXDEV};
  P9_TRY(f.node->Rename(*d.node, t.name));
  return Rrename{};
}

template <>
Body Session::Do(const Trenameat& t) {
  Fid from, to;
  P9_TRY(Get(t.olddirfid, &from));
  P9_TRY(Get(t.newdirfid, &to));
  P9_TRY(Writable(from.fs));
  if (from.fs != to.fs) return Rlerror{EXDEV};
  P9_TRY(from.node->RenameAt(t.oldname, *to.node, t.newname));
  return Rrenameat{};
}

template <>
Body Session::Do(const Tunlinkat& t) {
  Fid f;
  P9_TRY(Get(t.dirfid, &f));
  P9_TRY(Writable(f.fs));
  P9_TRY(f.node->UnlinkAt(t.name, t.flags));
  return Runlinkat{};
}

template <>
Body Session::Do(const Treadlink& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  Rreadlink r;
  P9_TRY(f.node->ReadLink(&r.target));
  return r;
}

template <>
Body Session::Do(const Tlink& t) {
  Fid dir, target;
  P9_TRY(Get(t.dfid, &dir));
  P9_TRY(Get(t.fid, &target));
  P9_TRY(Writable(dir.fs));
  if (dir.fs != target.fs) return Rlerror{EXDEV};
  P9_TRY(dir.node->Link(*target.node, t.name));
  return Rlink{};
}

template <>
Body Session::Do(const Tfsync& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  P9_TRY(f.node->Fsync(t.datasync != 0));
  return Rfsync{};
}

template <>
Body Session::Do(const Tlock& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  Rlock r;
  P9_TRY(f.node->Lock(t, &r.status));
  return r;
}

template <>
Body Session::Do(const Tgetlock& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  Rgetlock r;
  P9_TRY(f.node->GetLock(t, &r));
  return r;
}

template <>
Body Session::Do(const Txattrwalk& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  if (t.newfid != t.fid) {
    Fid taken;
    if (Get(t.newfid, &taken) == 0) return Rlerror{EEXIST};
  }
  Rxattrwalk r;
  std::shared_ptr<Node> node;
  P9_TRY(f.node->XattrWalk(t.name, &node, &r.size));
  P9_TRY(Put(t.newfid, {std::move(node), f.fs}, t.newfid == t.fid));
  return r;
}

template <>
Body Session::Do(const Txattrcreate& t) {
  Fid f;
  P9_TRY(Get(t.fid, &f));
  P9_TRY(Writable(f.fs));
  P9_TRY(f.node->XattrCreate(t.name, t.attr_size, t.flags));
  return Rxattrcreate{};
}

#undef P9_TRY

Body Session::Handle(const Message& request) {
  if (msize() == 0) return Rlerror{EPROTO};  // no version agreed yet
  return std::visit([this](const auto& m) { return Do(m); }, request.body);
}

}  // namespace hloop::p9
