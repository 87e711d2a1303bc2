#include "disk/profile_recorder.h"

#include <algorithm>

#include "disk/profile_format.h"
#include "util/file.h"
#include "util/log.h"

namespace hloop::disk {

namespace {

constexpr uint64_t kBlock = kProfileBlockSize;

// A run of blocks [first, end).
struct BlockRun {
  uint64_t first = 0, end = 0;
};

// The blocks of image bytes [offset, offset + len) that do not read as
// zeros (some byte of the block is in a segment Locate does not call zero),
// in ascending runs. REQUIRES: 0 < len, offset + len <= image size.
std::vector<BlockRun> NonZeroBlocks(const format::Index& index, uint64_t offset, uint64_t len) {
  std::vector<BlockRun> runs;
  const uint64_t end = std::min(index.image_size(), (offset + len + kBlock - 1) / kBlock * kBlock);
  for (uint64_t pos = offset / kBlock * kBlock; pos < end;) {
    const format::Segment seg = index.Locate(pos);
    const uint64_t n = std::min(seg.length, end - pos);
    if (n == 0) break;
    if (!seg.zero) {
      const uint64_t first = pos / kBlock, last_end = (pos + n + kBlock - 1) / kBlock;
      if (!runs.empty() && runs.back().end >= first)
        runs.back().end = std::max(runs.back().end, last_end);
      else
        runs.push_back(BlockRun{.first = first, .end = last_end});
    }
    pos += n;
  }
  return runs;
}

}  // namespace

ProfileRecorder::ProfileRecorder(const format::Index& index)
    : index_(index), blocks_per_chunk_(std::max<uint64_t>(1, index.chunk_size() / kBlock)) {}

void ProfileRecorder::Start(std::string save_to) {
  MutexLock lock(&mu_);
  start_ = std::chrono::steady_clock::now();
  save_to_ = std::move(save_to);
  seen_.clear();
  recorded_.clear();
  blocks_ = 0;
  recording_.store(true, std::memory_order_release);
}

bool ProfileRecorder::See(uint64_t block) {
  std::vector<uint64_t>& bits = seen_[block / blocks_per_chunk_];
  if (bits.empty()) bits.assign((blocks_per_chunk_ + 63) / 64, 0);
  const uint64_t k = block % blocks_per_chunk_;
  const uint64_t mask = uint64_t(1) << (k % 64);
  if (bits[k / 64] & mask) return false;
  bits[k / 64] |= mask;
  return true;
}

void ProfileRecorder::OnRead(uint64_t offset, uint64_t len) {
  if (!recording_.load(std::memory_order_acquire) || len == 0) return;
  if (offset >= index_.image_size()) return;
  len = std::min(len, index_.image_size() - offset);
  // Locate needs no lock: the index does not change.
  const std::vector<BlockRun> runs = NonZeroBlocks(index_, offset, len);
  if (runs.empty()) return;
  MutexLock lock(&mu_);
  const uint64_t ms = uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now() - start_)
                                   .count());
  for (const BlockRun& run : runs) {
    for (uint64_t b = run.first; b < run.end; b++) {
      if (!See(b)) continue;
      blocks_++;
      const uint64_t at = b * kBlock, n = std::min(kBlock, index_.image_size() - at);
      // Consecutive new blocks of this read (or of another in the same
      // millisecond) extend the last entry.
      if (!recorded_.empty() && recorded_.back().ms == ms &&
          recorded_.back().offset + recorded_.back().length == at)
        recorded_.back().length += n;
      else
        recorded_.push_back(ProfileEntry{.ms = ms, .offset = at, .length = n});
    }
  }
}

std::string ProfileRecorder::Text() {
  MutexLock lock(&mu_);
  return FormatProfile(index_, recorded_);
}

uint64_t ProfileRecorder::recorded() {
  MutexLock lock(&mu_);
  return blocks_;
}

Status ProfileRecorder::Save() {
  std::string path;
  {
    MutexLock lock(&mu_);
    path = save_to_;
  }
  if (path.empty()) return Status::Ok();
  std::string text = Text();
  Status st = WriteFileAtomic(path, text.data(), text.size(), Sync::kFull);
  if (!st.ok()) return st.Annotate("profile");
  LogInfo("profile of " + std::to_string(recorded()) + " blocks (4 KiB) written to " + path);
  return st;
}

}  // namespace hloop::disk
