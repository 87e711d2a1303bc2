#include "disk/profile_recorder.h"

#include "util/file.h"
#include "util/log.h"

namespace hloop::disk {

ProfileRecorder::ProfileRecorder(const format::Index& index) : index_(index) {}

void ProfileRecorder::Start(std::string save_to) {
  MutexLock lock(&mu_);
  start_ = std::chrono::steady_clock::now();
  save_to_ = std::move(save_to);
  seen_.assign(index_.chunk_count(), false);
  recorded_.clear();
  recording_.store(true, std::memory_order_release);
}

void ProfileRecorder::OnRead(uint64_t offset, uint64_t len) {
  if (!recording_.load(std::memory_order_acquire) || len == 0) return;
  const uint64_t first = offset / index_.chunk_size(),
                 last = (offset + len - 1) / index_.chunk_size();
  MutexLock lock(&mu_);
  for (uint64_t i = first; i <= last; i++) {
    if (seen_[i]) continue;
    seen_[i] = true;
    if (index_.entry(i).zero()) continue;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start_);
    recorded_.push_back(ProfileEntry{uint64_t(ms.count()), i});
  }
}

std::string ProfileRecorder::Text() {
  MutexLock lock(&mu_);
  return FormatProfile(index_, recorded_);
}

uint64_t ProfileRecorder::recorded() {
  MutexLock lock(&mu_);
  return recorded_.size();
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
  LogInfo("profile of " + std::to_string(recorded()) + " chunks written to " + path);
  return st;
}

}  // namespace hloop::disk
