#include "writer/image_writer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <thread>
#include <unordered_map>
#include <vector>

#include "format/chunk_file.h"
#include "format/codec.h"
#include "util/bytes.h"
#include "util/log.h"
#include "util/mutex.h"
#include "util/version.h"

namespace hloop::writer {

namespace {

// One WriteImage call: the chunk work its threads share.
class Run {
 public:
  Run(ImageBytes& bytes, store::LocalStore& store, const WriteOptions& options)
      : bytes_(bytes),
        store_(store),
        options_(options),
        level_(options.level >= 0 ? options.level : format::DefaultLevel(options.codec)),
        count_(format::ChunkCount(bytes.size(), options.chunk_size)),
        entries_(count_) {}

  // Runs `threads` workers over every chunk; reports progress meanwhile.
  Status WriteChunks(unsigned threads) EXCLUDES(mu_);
  // Builds, after WriteChunks, the index, and fills in `sum` but for what
  // concerns the index file.
  format::IndexBuilder MakeIndex(WriteSummary* sum) EXCLUDES(mu_);
  // After WriteChunks: the table's entries (stored sizes not yet filled in).
  const std::vector<format::ChunkEntry>& entries() const { return entries_; }
  // Counts the hot chunks of `layout` not among the table's chunks in `sum`.
  void CountHotChunks(const format::Layout& layout, WriteSummary* sum) EXCLUDES(mu_);

 private:
  void Worker() EXCLUDES(mu_);
  // Fills entries_[i] and stores its chunk file if this is the first chunk
  // with its content and the store lacks it. Buffers are the worker's.
  Status WriteChunk(uint64_t i, std::string& raw, std::string& file) EXCLUDES(mu_);
  Status Read(uint64_t offset, uint32_t len, std::string& raw);
  void Fail(const Status& st) EXCLUDES(mu_);

  ImageBytes& bytes_;
  store::LocalStore& store_;
  const WriteOptions& options_;
  const int level_;
  const uint64_t count_;
  // entries_[i] is written by the worker that claimed chunk i only.
  std::vector<format::ChunkEntry> entries_;

  Mutex mu_;
  // Chunk-file size of each distinct content; 0 while its claimer stores it.
  std::unordered_map<format::Hash, uint32_t, format::HashKey> sizes_ GUARDED_BY(mu_);
  Status error_ GUARDED_BY(mu_);  // the first failure
  unsigned running_ GUARDED_BY(mu_) = 0;
  CondVar finished_;  // running_ reached 0

  std::atomic<uint64_t> next_{0}, bytes_done_{0}, bytes_read_{0};
  std::atomic<uint64_t> changed_{0}, fresh_{0}, fresh_bytes_{0}, copied_{0};
  std::atomic<bool> failed_{false};
};

Status Run::WriteChunks(unsigned threads) {
  std::vector<std::thread> pool;
  {
    MutexLock lock(&mu_);
    running_ = threads;
  }
  for (unsigned t = 0; t < threads; t++) pool.emplace_back([this] { Worker(); });
  const uint64_t total = bytes_.size();
  {
    MutexLock lock(&mu_);
    while (running_ > 0) {
      if (!options_.progress) {
        finished_.Wait(&mu_);
        continue;
      }
      lock.Unlock();
      options_.progress(bytes_done_, total);
      lock.Lock();
      finished_.WaitFor(&mu_, std::chrono::milliseconds(200));
    }
  }
  for (auto& t : pool) t.join();
  MutexLock lock(&mu_);
  if (!error_.ok()) return error_;
  if (options_.progress) options_.progress(total, total);
  return Status::Ok();
}

void Run::Worker() {
  std::string raw, file;
  for (uint64_t i; !failed_ && (i = next_++) < count_;) {
    Status st = WriteChunk(i, raw, file);
    if (!st.ok()) Fail(st.Annotate("chunk " + std::to_string(i)));
  }
  MutexLock lock(&mu_);
  if (--running_ == 0) finished_.SignalAll();
}

void Run::Fail(const Status& st) {
  MutexLock lock(&mu_);
  if (error_.ok()) error_ = st;
  failed_ = true;
}

Status Run::Read(uint64_t offset, uint32_t len, std::string& raw) {
  raw.resize(len);
  HLOOP_RETURN_IF_ERROR(bytes_.ReadAt(offset, len, raw.data()));
  bytes_read_ += len;
  return Status::Ok();
}

Status Run::WriteChunk(uint64_t i, std::string& raw, std::string& file) {
  const uint64_t offset = i * options_.chunk_size;
  const uint32_t len = uint32_t(std::min<uint64_t>(options_.chunk_size, bytes_.size() - offset));
  format::ChunkEntry& e = entries_[i];
  const bool reuse = options_.base && !bytes_.MayDiffer(offset, len);
  bool have_raw = false;
  if (reuse) {
    e = options_.base->entry(i);
  } else {
    changed_++;
    HLOOP_RETURN_IF_ERROR(Read(offset, len, raw));
    have_raw = true;
    if (IsAllZero(raw)) {
      e.flags = format::kEntryFlagZero;
    } else {
      e.hash = format::Sha256(raw.data(), len);
    }
  }
  bool first = false;
  if (!e.zero()) {
    MutexLock lock(&mu_);
    // Another chunk with this content is (being) handled: its size is
    // filled in at the end.
    first = sizes_.emplace(e.hash, 0).second;
  }
  if (first) {
    uint32_t stored = store_.ChunkFileSize(e.hash);
    if (stored != 0) {
      // Reused: fresh again, so that gc's grace period keeps it until the
      // index being written names it.
      if (Status st = store_.TouchChunk(e.hash); !st.ok())
        LogWarn(st.ToString() + ": a concurrent `hloop gc` may remove this reused chunk");
    } else {
      // Not in the store: encode it. For a reused chunk this means the store
      // is not the base's own; copy it so the new version is whole.
      if (!have_raw) HLOOP_RETURN_IF_ERROR(Read(offset, len, raw));
      HLOOP_RETURN_IF_ERROR(format::EncodeChunk(raw, options_.codec, level_, &file));
      bool written = false;
      HLOOP_RETURN_IF_ERROR(store_.PutChunk(e.hash, file, /*durable=*/false, &written));
      // Not written: the store kept a valid file, maybe of another codec.
      stored = written ? uint32_t(file.size()) : store_.ChunkFileSize(e.hash);
      if (stored == 0)
        return Status::IOError(store_.ChunkFilePath(e.hash) + " vanished after writing");
      if (written) {
        fresh_++;
        fresh_bytes_ += stored;
        if (reuse) copied_++;
      }
    }
    MutexLock lock(&mu_);
    sizes_[e.hash] = stored;
  }
  bytes_done_ += len;
  return Status::Ok();
}

format::IndexBuilder Run::MakeIndex(WriteSummary* sum) {
  format::IndexBuilder builder(bytes_.size(), options_.chunk_size, options_.codec);
  MutexLock lock(&mu_);
  for (uint64_t i = 0; i < count_; i++) {
    if (entries_[i].zero()) {
      sum->chunks_zero++;
    } else {
      entries_[i].stored_size = sizes_[entries_[i].hash];
    }
    builder.set_entry(i, entries_[i]);
  }
  builder.meta().name = options_.name;
  builder.meta().created = uint64_t(std::time(nullptr));
  builder.meta().tool = std::string("hloop ") + HLOOP_VERSION;
  builder.meta().parent_digest = options_.parent_digest;
  if (options_.parent_digest) builder.meta().parent_name = options_.parent_name;
  sum->chunks_total = count_;
  sum->chunks_changed = changed_;
  sum->chunks_unique = sizes_.size();
  sum->chunks_new = fresh_;
  sum->bytes_new = fresh_bytes_;
  sum->chunks_copied = copied_;
  sum->bytes_read = bytes_read_;
  for (const auto& [h, size] : sizes_) sum->stored_bytes += size;
  return builder;
}

void Run::CountHotChunks(const format::Layout& layout, WriteSummary* sum) {
  MutexLock lock(&mu_);
  for (const auto& h : layout.hot) {
    if (!sizes_.emplace(h.hash, h.stored_size).second) continue;
    sum->chunks_unique++;
    sum->stored_bytes += h.stored_size;
  }
  sum->chunks_new += sum->layout.hot_new;
  sum->bytes_new += sum->layout.hot_bytes_new;
  sum->bytes_read += sum->layout.hot_raw_bytes;
}

}  // namespace

bool IsValidImageName(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && name[0] != '.';
}

Result<WriteSummary> WriteImage(ImageBytes& bytes, store::LocalStore& store,
                                const WriteOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (!format::IsValidChunkSize(options.chunk_size))
    return Status::InvalidArgument("chunk size must be a power of two from 4 KiB to 4 MiB");
  if (!IsValidImageName(options.name))
    return Status::InvalidArgument("bad image name '" + options.name + "'");
  if (bytes.size() > format::kMaxImageSize)
    return Status::InvalidArgument("image too large: " + std::to_string(bytes.size()) + " bytes");
  if (options.base && (options.base->image_size() != bytes.size() ||
                       options.base->chunk_size() != options.chunk_size))
    return Status::InvalidArgument("the image and its base index differ in size or chunk size");

  Run run(bytes, store, options);
  const unsigned threads =
      options.threads ? options.threads
                      : std::clamp(std::thread::hardware_concurrency(), 1u, kMaxDefaultThreads);
  HLOOP_RETURN_IF_ERROR(run.WriteChunks(threads));
  WriteSummary sum;
  format::Layout layout;
  if (options.layout) {
    auto written = WriteLayout(
        bytes, run.entries(), options.chunk_size, *options.layout, store, options.codec,
        options.level >= 0 ? options.level : format::DefaultLevel(options.codec), &sum.layout);
    if (!written.ok()) return written.status().Annotate("hot chunks");
    layout = std::move(written.value());
  }
  format::IndexBuilder builder = run.MakeIndex(&sum);
  if (!layout.empty()) {
    run.CountHotChunks(layout, &sum);
    builder.set_layout(std::move(layout));
  }
  // The chunk files must be on disk before an index can point at them.
  HLOOP_RETURN_IF_ERROR(store.SyncChunks());
  const std::string index = builder.Encode();
  HLOOP_RETURN_IF_ERROR(store.PutIndex(options.name, index));
  sum.bytes_written = sum.bytes_new + index.size();
  sum.index_path = store.IndexPath(options.name);
  sum.digest = format::Sha256(index);
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return sum;
}

}  // namespace hloop::writer
