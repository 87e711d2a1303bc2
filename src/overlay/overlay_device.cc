#include "overlay/overlay_device.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "util/bytes.h"
#include "util/log.h"

namespace hloop::overlay {

namespace {

Status PwriteFull(int fd, const char* buf, size_t len, uint64_t offset) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pwrite(fd, buf + done, len - done, off_t(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write");
    }
    done += size_t(n);
  }
  return Status::Ok();
}

}  // namespace

// Stripe locks of the groups of blocks [first, last], in ascending stripe
// order. Callers keep ranges short (WriteWhole works in batches) so that a
// big write does not hold every stripe.
class OverlayDevice::RangeLock {
 public:
  // The analysis cannot follow a set of locks chosen at run time.
  RangeLock(OverlayDevice& d, uint64_t first, uint64_t last) NO_THREAD_SAFETY_ANALYSIS {
    const uint64_t g0 = first >> kGroupShift, g1 = last >> kGroupShift;
    if (g1 - g0 + 1 >= kStripes) {
      for (unsigned s = 0; s < kStripes; s++) held_.push_back(&d.stripes_[s]);
    } else {
      std::vector<unsigned> idx;
      for (uint64_t g = g0; g <= g1; g++) idx.push_back(unsigned(g % kStripes));
      std::sort(idx.begin(), idx.end());
      idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
      for (unsigned s : idx) held_.push_back(&d.stripes_[s]);
    }
    for (Mutex* m : held_) m->Lock();
  }
  ~RangeLock() NO_THREAD_SAFETY_ANALYSIS {
    for (auto it = held_.rbegin(); it != held_.rend(); ++it) (*it)->Unlock();
  }
  RangeLock(const RangeLock&) = delete;
  RangeLock& operator=(const RangeLock&) = delete;

 private:
  std::vector<Mutex*> held_;
};

Result<std::unique_ptr<OverlayDevice>> OverlayDevice::Open(const std::string& path,
                                                           BlockDevice& base,
                                                           const BaseIdentity& base_id,
                                                           const OverlayOptions& options) {
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0) {
    if (errno != ENOENT) return Status::FromErrno(errno, "overlay " + path);
    if (!options.create) return Status::NotFound("overlay " + path + " does not exist");
    if (base.size() > kMaxImageSize)
      return Status::InvalidArgument("image too large for an overlay");
    Header h = MakeHeader(base.size(), base_id.digest, base_id.name, uint64_t(std::time(nullptr)));
    Status st = CreateOverlayFile(path, h);
    // Someone else created it meanwhile: open theirs below.
    if (!st.ok() && ::stat(path.c_str(), &sb) != 0) return st;
    if (st.ok()) LogInfo("created overlay " + path + " over " + base_id.name);
  }
  ScopedFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, "overlay " + path);
  // One writer per overlay: a second mount of the same file would keep its
  // own map and overwrite the first one's.
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Status::Unavailable("overlay " + path +
                                 " is in use by another process (a mount or a commit)");
    return Status::FromErrno(errno, "lock overlay " + path);
  }
  if (::fstat(fd.get(), &sb) != 0) return Status::FromErrno(errno, "overlay " + path);
  std::string hbytes(kHeaderSize, '\0');
  size_t got = 0;
  HLOOP_RETURN_IF_ERROR(
      PreadFull(fd.get(), hbytes.data(), hbytes.size(), 0, &got).Annotate("overlay " + path));
  hbytes.resize(got);
  auto header = ParseHeader(hbytes, path);
  if (!header.ok()) return header.status();
  const Header& h = header.value();
  if (uint64_t(sb.st_size) != h.file_size())
    return Status::Corruption("overlay " + path + ": " + std::to_string(sb.st_size) +
                              " bytes, expected " + std::to_string(h.file_size()) +
                              " (truncated or extended)");
  if (h.image_size != base.size())
    return Status::InvalidArgument("overlay " + path + " was made for an image of " +
                                   std::to_string(h.image_size) + " bytes; this image has " +
                                   std::to_string(base.size()));
  if (h.base_digest != base_id.digest) {
    std::string msg = "overlay " + path + " was made on " + h.base_name + " (index " +
                      format::ToHex(h.base_digest).substr(0, 16) + "…), not on " + base_id.name +
                      " (index " + format::ToHex(base_id.digest).substr(0, 16) + "…)";
    if (!options.force)
      return Status::InvalidArgument(
          msg +
          ". Keep its changes with `hloop commit` on the version it was made on, discard them "
          "by deleting the overlay, or use it on this version anyway with --force (only safe if "
          "the two versions differ outside the blocks it holds)");
    LogWarn(msg + "; using it anyway (--force)");
  }
  std::vector<uint8_t> map(h.map_length);
  HLOOP_RETURN_IF_ERROR(
      PreadFull(fd.get(), map.data(), map.size(), h.map_offset, &got).Annotate("overlay " + path));
  map.resize(got);
  auto counts = CheckMap(map, h, path);
  if (!counts.ok()) return counts.status();
  return std::unique_ptr<OverlayDevice>(new OverlayDevice(
      path, std::move(fd), std::move(header.value()), std::move(map), *counts, base));
}

OverlayDevice::OverlayDevice(std::string path, ScopedFd fd, Header header, std::vector<uint8_t> map,
                             MapCounts counts, BlockDevice& base)
    : path_(std::move(path)),
      fd_(std::move(fd)),
      header_(std::move(header)),
      base_(base),
      map_(std::move(map)),
      dirty_pages_(header_.map_length / kMapPageSize, 0),
      counts_(counts) {}

OverlayDevice::~OverlayDevice() {
  Status st = Flush();
  if (!st.ok()) LogError("overlay " + path_ + ": final flush failed: " + st.ToString());
}

OverlayStats OverlayDevice::stats() {
  MutexLock lock(&map_mu_);
  return OverlayStats{counts_.data_blocks, counts_.zero_blocks};
}

BlockState OverlayDevice::state(uint64_t b) {
  MutexLock lock(&map_mu_);
  return GetState(map_.data(), b);
}

bool OverlayDevice::Touches(uint64_t offset, uint64_t len) {
  if (len == 0 || offset >= size()) return false;
  const uint64_t first = offset / kBlockSize,
                 last = (std::min(offset + len, size()) - 1) / kBlockSize;
  MutexLock lock(&map_mu_);
  for (uint64_t b = first; b <= last; b++)
    if (GetState(map_.data(), b) != BlockState::kBase) return true;
  return false;
}

void OverlayDevice::SetStates(uint64_t first, uint64_t last, BlockState s) {
  {
    MutexLock lock(&map_mu_);
    for (uint64_t b = first; b <= last; b++) {
      BlockState old = GetState(map_.data(), b);
      if (old == s) continue;
      if (old == BlockState::kData) counts_.data_blocks--;
      if (old == BlockState::kZero) counts_.zero_blocks--;
      if (s == BlockState::kData) counts_.data_blocks++;
      if (s == BlockState::kZero) counts_.zero_blocks++;
      SetState(map_.data(), b, s);
      dirty_pages_[b / kBlocksPerMapPage] = 1;
    }
  }
  writes_++;
}

// ---- reading

namespace {
// A run of blocks in the same state, as the byte range of the request it covers.
struct Run {
  uint64_t from, to;  // image bytes
  BlockState state;
};
}  // namespace

Status OverlayDevice::Read(uint64_t offset, size_t len, char* buf) {
  if (len == 0) return Status::Ok();
  if (offset > size() || len > size() - offset)
    return Status::InvalidArgument("read past the end of the image");
  const uint64_t end = offset + len;
  const uint64_t first = offset / kBlockSize, last = (end - 1) / kBlockSize;
  std::vector<Run> runs;
  {
    MutexLock lock(&map_mu_);
    for (uint64_t b = first; b <= last; b++) {
      BlockState s = GetState(map_.data(), b);
      uint64_t to = std::min(end, BlockEnd(b));
      if (!runs.empty() && runs.back().state == s)
        runs.back().to = to;
      else
        runs.push_back(Run{std::max(offset, b * kBlockSize), to, s});
    }
  }
  for (const Run& r : runs) {
    char* out = buf + (r.from - offset);
    const size_t n = size_t(r.to - r.from);
    switch (r.state) {
      case BlockState::kBase: HLOOP_RETURN_IF_ERROR(base_.Read(r.from, n, out)); break;
      case BlockState::kZero: std::memset(out, 0, n); break;
      case BlockState::kData: {
        size_t got = 0;
        Status st = PreadFull(fd_.get(), out, n, DataPos(r.from), &got);
        if (!st.ok()) return st.Annotate("overlay " + path_);
        if (got != n) return Status::Corruption("overlay " + path_ + ": data area truncated");
        break;
      }
    }
  }
  return Status::Ok();
}

Result<std::vector<Extent>> OverlayDevice::Extents(uint64_t offset, uint64_t len) {
  if (offset >= size()) return Status::InvalidArgument("extents past the end of the image");
  len = std::min<uint64_t>(len, size() - offset);
  std::vector<Extent> out;
  auto add = [&](uint64_t n, bool zero) {
    if (n == 0) return;
    if (!out.empty() && out.back().zero == zero)
      out.back().length += n;
    else
      out.push_back(Extent{n, zero});
  };
  if (len == 0) return out;
  const uint64_t end = offset + len;
  std::vector<Run> runs;
  {
    MutexLock lock(&map_mu_);
    for (uint64_t b = offset / kBlockSize; b <= (end - 1) / kBlockSize; b++) {
      BlockState s = GetState(map_.data(), b);
      uint64_t to = std::min(end, BlockEnd(b));
      if (!runs.empty() && runs.back().state == s)
        runs.back().to = to;
      else
        runs.push_back(Run{std::max(offset, b * kBlockSize), to, s});
    }
  }
  for (const Run& r : runs) {
    const uint64_t n = r.to - r.from;
    if (r.state != BlockState::kBase) {
      add(n, r.state == BlockState::kZero);
      continue;
    }
    auto base = base_.Extents(r.from, n);
    if (!base.ok()) return base.status();
    uint64_t left = n;  // the base may answer past the run: clip
    for (const Extent& e : *base) {
      if (left == 0) break;
      uint64_t take = std::min(left, e.length);
      add(take, e.zero);
      left -= take;
    }
    add(left, false);  // a base that said too little: call the rest data
  }
  return out;
}

void OverlayDevice::Prefetch(uint64_t offset, uint64_t len) { base_.Prefetch(offset, len); }

// ---- writing

Status OverlayDevice::WritePartialLocked(uint64_t b, uint64_t offset, size_t len, const char* buf) {
  const BlockState s = state(b);
  if (s == BlockState::kZero && !buf) return Status::Ok();  // already zeros
  if (s == BlockState::kData) {
    // The block is in the file: change just these bytes in place.
    std::string zeros;
    if (!buf) zeros.assign(len, '\0');
    HLOOP_RETURN_IF_ERROR(PwriteFull(fd_.get(), buf ? buf : zeros.data(), len, DataPos(offset))
                              .Annotate("overlay " + path_));
    writes_++;
    return Status::Ok();
  }
  // Read-modify-write: the block as it reads now, with the new bytes in it.
  const uint64_t start = b * kBlockSize;
  std::string block(size_t(BlockEnd(b) - start), '\0');
  if (s == BlockState::kBase) HLOOP_RETURN_IF_ERROR(base_.Read(start, block.size(), block.data()));
  if (buf)
    std::memcpy(block.data() + (offset - start), buf, len);
  else
    std::memset(block.data() + (offset - start), 0, len);
  if (IsAllZero(block)) {
    SetStates(b, b, BlockState::kZero);
    return Status::Ok();
  }
  HLOOP_RETURN_IF_ERROR(PwriteFull(fd_.get(), block.data(), block.size(), DataPos(start))
                            .Annotate("overlay " + path_));
  SetStates(b, b, BlockState::kData);
  return Status::Ok();
}

Status OverlayDevice::WriteWhole(uint64_t first, uint64_t last, const char* buf) {
  // Batches of 256 blocks (1 MiB) hold 16 of the 256 stripes at a time.
  constexpr uint64_t kBatch = 256;
  for (uint64_t bf = first; bf <= last; bf += kBatch) {
    const uint64_t bl = std::min(last, bf + kBatch - 1);
    const uint64_t from = bf * kBlockSize, to = BlockEnd(bl);
    RangeLock lock(*this, bf, bl);
    if (buf) {
      HLOOP_RETURN_IF_ERROR(
          PwriteFull(fd_.get(), buf + (from - first * kBlockSize), size_t(to - from), DataPos(from))
              .Annotate("overlay " + path_));
      SetStates(bf, bl, BlockState::kData);
      continue;
    }
    SetStates(bf, bl, BlockState::kZero);
    // Give the space back. Either order of this and the map reaching the
    // disk reads the same (zeros), so no sync is needed in between; where
    // the file system cannot punch holes the old bytes just stay, unused.
    const uint64_t span = (bl - bf + 1) * kBlockSize;
    if (::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(DataPos(from)),
                    off_t(span)) != 0 &&
        errno != EOPNOTSUPP)
      LogDebug("overlay " + path_ + ": punch hole: " + std::strerror(errno));
  }
  return Status::Ok();
}

Status OverlayDevice::WriteRange(uint64_t offset, uint64_t len, const char* buf) {
  if (len == 0) return Status::Ok();
  if (offset > size() || len > size() - offset)
    return Status::InvalidArgument("write past the end of the image");
  const uint64_t end = offset + len;
  const uint64_t first = offset / kBlockSize, last = (end - 1) / kBlockSize;
  auto whole = [&](uint64_t b) { return offset <= b * kBlockSize && end >= BlockEnd(b); };
  auto src = [&](uint64_t at) { return buf ? buf + (at - offset) : nullptr; };
  uint64_t body_first = first, body_last = last;
  // Unaligned head.
  if (!whole(first)) {
    MutexLock lock(&stripes_[(first >> kGroupShift) % kStripes]);
    HLOOP_RETURN_IF_ERROR(WritePartialLocked(
        first, offset, size_t(std::min(end, BlockEnd(first)) - offset), src(offset)));
    if (first == last) return Status::Ok();
    body_first = first + 1;
  }
  // Unaligned tail.
  if (!whole(last)) {
    MutexLock lock(&stripes_[(last >> kGroupShift) % kStripes]);
    const uint64_t at = last * kBlockSize;
    HLOOP_RETURN_IF_ERROR(WritePartialLocked(last, at, size_t(end - at), src(at)));
    if (last == body_first) return Status::Ok();
    body_last = last - 1;
  }
  // Aligned body.
  if (body_first <= body_last)
    return WriteWhole(body_first, body_last, src(body_first * kBlockSize));
  return Status::Ok();
}

Status OverlayDevice::Write(uint64_t offset, size_t len, const char* buf, bool fua) {
  HLOOP_RETURN_IF_ERROR(WriteRange(offset, len, buf));
  return fua ? Flush() : Status::Ok();
}

Status OverlayDevice::WriteZeroes(uint64_t offset, uint64_t len, bool fua) {
  HLOOP_RETURN_IF_ERROR(WriteRange(offset, len, nullptr));
  return fua ? Flush() : Status::Ok();
}

// ---- durability

// Order (docs/format.md, "Overlay file"): the data of every write counted
// in the map snapshot is in the file before the snapshot is taken; it is
// synced; only then are the map pages written, and synced again. So the
// map on disk never names a block whose data is not on disk, and an
// acknowledged flush has both.
Status OverlayDevice::Flush() {
  MutexLock flush_lock(&flush_mu_);
  if (broken_)
    return Status::IOError("overlay " + path_ +
                           ": an earlier sync failed; writes since may be lost");
  const uint64_t writes = writes_.load();
  std::vector<std::pair<uint64_t, std::string>> pages;  // (page number, bytes)
  {
    MutexLock lock(&map_mu_);
    for (uint64_t p = 0; p < dirty_pages_.size(); p++) {
      if (!dirty_pages_[p]) continue;
      dirty_pages_[p] = 0;
      pages.emplace_back(
          p,
          std::string(reinterpret_cast<const char*>(map_.data()) + p * kMapPageSize, kMapPageSize));
    }
  }
  if (pages.empty() && writes == flushed_writes_) return Status::Ok();
  auto fail = [&](Status st) {
    // The pages were not written: they stay dirty for the next flush.
    MutexLock lock(&map_mu_);
    for (const auto& pg : pages) dirty_pages_[pg.first] = 1;
    return st.Annotate("overlay " + path_);
  };
  // A failed fsync may have dropped the dirty pages it could not write
  // (Linux marks them clean): a later fsync would succeed without them, so
  // the overlay refuses every later flush instead of claiming durability.
  if (::fdatasync(fd_.get()) != 0) {
    broken_ = true;
    return fail(Status::FromErrno(errno, "sync data"));
  }
  if (pages.empty()) {
    flushed_writes_ = writes;
    return Status::Ok();
  }
  for (const auto& [p, bytes] : pages) {
    Status st =
        PwriteFull(fd_.get(), bytes.data(), bytes.size(), header_.map_offset + p * kMapPageSize);
    if (!st.ok()) return fail(st.Annotate("write block map"));
  }
  if (::fdatasync(fd_.get()) != 0) {
    broken_ = true;
    return fail(Status::FromErrno(errno, "sync block map"));
  }
  flushed_writes_ = writes;
  return Status::Ok();
}

}  // namespace hloop::overlay
