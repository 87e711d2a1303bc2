// Test-only: a BlockDevice over bytes in memory, for front-end tests and the
// NBD fuzzer. Runs of zeros at `zero_granularity` alignment are reported as
// holes by Extents(). Optionally writable; failures can be injected; reads
// can be held at a gate to test concurrency. Thread-safe: mu_ guards the
// data and counters, gate_mu_ the gate; a read waits at the gate before it
// takes mu_, and no method holds both (no lock order to keep).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "blockdev/block_device.h"
#include "util/mutex.h"

namespace hloop::testing {

class MemoryDevice : public BlockDevice {
 public:
  explicit MemoryDevice(std::string data, bool writable = false, uint64_t zero_granularity = 4096)
      : data_(std::move(data)),
        size_(data_.size()),
        writable_(writable),
        granularity_(zero_granularity) {}

  uint64_t size() const override { return size_; }
  bool can_write() const override { return writable_; }

  Status Read(uint64_t offset, size_t len, char* buf) override {
    WaitAtGate();
    MutexLock lock(&mu_);
    reads_++;
    if (!fail_reads_.ok()) return fail_reads_;
    if (offset > data_.size() || len > data_.size() - offset)
      return Status::InvalidArgument("read past the end");
    std::memcpy(buf, data_.data() + offset, len);
    return Status::Ok();
  }
  Status Write(uint64_t offset, size_t len, const char* buf, bool fua) override {
    MutexLock lock(&mu_);
    if (!writable_) return Status::Unsupported("read-only device");
    if (offset > data_.size() || len > data_.size() - offset)
      return Status::NoSpace("write past the end");
    std::memcpy(data_.data() + offset, buf, len);
    fua_writes_ += fua;
    return Status::Ok();
  }
  Status Flush() override {
    MutexLock lock(&mu_);
    flushes_++;
    return Status::Ok();
  }
  Status WriteZeroes(uint64_t offset, uint64_t len, bool) override {
    MutexLock lock(&mu_);
    if (!writable_) return Status::Unsupported("read-only device");
    if (offset > data_.size() || len > data_.size() - offset)
      return Status::NoSpace("write past the end");
    std::memset(data_.data() + offset, 0, len);
    return Status::Ok();
  }
  void Prefetch(uint64_t offset, uint64_t len) override {
    MutexLock lock(&mu_);
    prefetched_.push_back({offset, len});
  }
  Result<std::vector<Extent>> Extents(uint64_t offset, uint64_t len) override {
    MutexLock lock(&mu_);
    if (offset >= data_.size()) return Status::InvalidArgument("extents past the end");
    len = std::min<uint64_t>(len, data_.size() - offset);
    std::vector<Extent> out;
    uint64_t pos = offset, end = offset + len;
    while (pos < end) {
      uint64_t block_end =
          std::min<uint64_t>((pos / granularity_ + 1) * granularity_, data_.size());
      uint64_t n = std::min(block_end, end) - pos;
      uint64_t bs = pos / granularity_ * granularity_;
      bool zero = std::all_of(data_.begin() + long(bs), data_.begin() + long(block_end),
                              [](char c) { return c == 0; });
      if (!out.empty() && out.back().zero == zero)
        out.back().length += n;
      else
        out.push_back(Extent{n, zero});
      pos += n;
    }
    return out;
  }

  // Every later read fails with `st` (Ok: reads work again).
  void FailReads(Status st) {
    MutexLock lock(&mu_);
    fail_reads_ = std::move(st);
  }
  // Closes the gate: reads wait there until OpenGate(). waiting() counts them.
  void CloseGate() {
    MutexLock lock(&gate_mu_);
    gate_closed_ = true;
  }
  void OpenGate() {
    {
      MutexLock lock(&gate_mu_);
      gate_closed_ = false;
    }
    gate_cv_.SignalAll();
  }
  int waiting() const { return waiting_; }
  int max_waiting() const { return max_waiting_; }
  std::string data() const {
    MutexLock lock(&mu_);
    return data_;
  }
  int flushes() const {
    MutexLock lock(&mu_);
    return flushes_;
  }
  int fua_writes() const {
    MutexLock lock(&mu_);
    return fua_writes_;
  }
  std::vector<std::pair<uint64_t, uint64_t>> prefetched() const {
    MutexLock lock(&mu_);
    return prefetched_;
  }

 private:
  void WaitAtGate() EXCLUDES(gate_mu_) {
    MutexLock lock(&gate_mu_);
    if (!gate_closed_) return;
    int now = ++waiting_;
    max_waiting_ = std::max(max_waiting_.load(), now);
    while (gate_closed_) gate_cv_.Wait(&gate_mu_);
    waiting_--;
  }

  mutable Mutex mu_;
  std::string data_ GUARDED_BY(mu_);
  const uint64_t size_;  // data_ never changes size
  const bool writable_;
  const uint64_t granularity_;
  Status fail_reads_ GUARDED_BY(mu_);
  int reads_ GUARDED_BY(mu_) = 0;
  int flushes_ GUARDED_BY(mu_) = 0;
  int fua_writes_ GUARDED_BY(mu_) = 0;
  std::vector<std::pair<uint64_t, uint64_t>> prefetched_ GUARDED_BY(mu_);

  Mutex gate_mu_;
  CondVar gate_cv_;
  bool gate_closed_ GUARDED_BY(gate_mu_) = false;
  std::atomic<int> waiting_{0}, max_waiting_{0};
};

}  // namespace hloop::testing
