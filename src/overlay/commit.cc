#include "overlay/commit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "format/chunk_file.h"
#include "format/codec.h"
#include "util/file.h"
#include "util/version.h"

namespace hloop::overlay {

namespace {

bool AllZero(const char* p, size_t n) { return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0); }

// Size of the chunk file for `h` in the store, or 0 if there is none that
// could be one (the packer's test: a file longer than a chunk header).
uint32_t StoredSize(const store::LocalStore& store, const format::Hash& h) {
  struct stat sb;
  if (::stat(store.ChunkFilePath(h).c_str(), &sb) != 0 || uint64_t(sb.st_size) <= format::kChunkHeaderSize)
    return 0;
  return uint32_t(sb.st_size);
}

struct Shared {
  std::mutex mu;
  // Chunk-file size of each distinct hash; 0 while its claimer works on it.
  std::unordered_map<format::Hash, uint32_t, format::HashKey> sizes;  // GUARDED_BY(mu)
  Status error;                                                      // GUARDED_BY(mu)
  std::atomic<uint64_t> next{0}, done{0}, changed{0}, fresh{0}, fresh_bytes{0}, copied{0};
  std::atomic<bool> failed{false};
};

}  // namespace

Result<CommitSummary> Commit(const format::Index& base, OverlayDevice& overlay, store::LocalStore& store,
                             const CommitOptions& options) {
  if (options.name.empty() || options.name.find('/') != std::string::npos || options.name[0] == '.')
    return Status::InvalidArgument("bad image name '" + options.name + "'");
  if (overlay.size() != base.image_size())
    return Status::InvalidArgument("the overlay and the base index are for images of different sizes");
  if (auto old = store.ReadIndex(options.name); old.ok()) {
    auto parsed = format::Index::Parse(std::move(old.value()), store.IndexPath(options.name));
    if (!parsed.ok() || parsed->digest() != base.digest())
      return Status::InvalidArgument(store.IndexPath(options.name) +
                                     " exists and is not the base image; choose another --name");
  }
  const uint64_t count = base.chunk_count();
  const uint32_t cs = base.chunk_size();
  const int level = options.level >= 0 ? options.level : format::DefaultLevel(base.codec());
  std::vector<format::ChunkEntry> entries(count);
  Shared sh;

  auto worker = [&] {
    std::string raw, file;
    for (;;) {
      const uint64_t i = sh.next++;
      if (i >= count || sh.failed) return;
      auto fail = [&](const Status& st) {
        std::lock_guard<std::mutex> lock(sh.mu);
        if (sh.error.ok()) sh.error = st.Annotate("chunk " + std::to_string(i));
        sh.failed = true;
      };
      const uint64_t off = i * cs;
      const uint32_t len = base.chunk_length(i);
      const bool changed = overlay.Touches(off, len);
      format::ChunkEntry& e = entries[i];
      bool have_raw = false;
      if (changed) {
        sh.changed++;
        raw.resize(len);
        Status st = overlay.Read(off, len, raw.data());
        if (!st.ok()) return fail(st);
        have_raw = true;
        if (AllZero(raw.data(), len)) {
          e.flags = format::kEntryFlagZero;
          sh.done++;
          continue;
        }
        e.hash = format::Sha256(raw.data(), len);
      } else {
        e = base.entry(i);
        if (e.zero()) {
          sh.done++;
          continue;
        }
      }
      {
        std::lock_guard<std::mutex> lock(sh.mu);
        // Another chunk with this content is (being) handled: its size is
        // filled in at the end.
        if (!sh.sizes.emplace(e.hash, 0).second) {
          sh.done++;
          continue;
        }
      }
      uint32_t stored = StoredSize(store, e.hash);
      if (stored == 0) {
        // Not in the store: encode it. For an unchanged chunk this means the
        // store is not the base's own; copy it so the new version is whole.
        if (!have_raw) {
          raw.resize(len);
          Status st = overlay.Read(off, len, raw.data());
          if (!st.ok()) return fail(st);
        }
        Status st = format::EncodeChunk(std::string_view(raw.data(), len), base.codec(), level, &file);
        bool written = false;
        if (st.ok()) st = store.PutChunk(e.hash, file, /*durable=*/false, &written);
        if (!st.ok()) return fail(st);
        stored = StoredSize(store, e.hash);  // PutChunk may keep a valid file of another codec
        if (stored == 0) return fail(Status::IOError(store.ChunkFilePath(e.hash) + " vanished after writing"));
        if (written) {
          sh.fresh++;
          sh.fresh_bytes += stored;
          if (!changed) sh.copied++;
        }
      }
      std::lock_guard<std::mutex> lock(sh.mu);
      sh.sizes[e.hash] = stored;
      sh.done++;
    }
  };

  unsigned threads = options.threads ? options.threads : std::min(16u, std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; t++) pool.emplace_back(worker);
  if (options.progress) {
    for (int tick = 0; sh.done < count && !sh.failed; tick++) {
      if (tick % 10 == 0) options.progress(sh.done, count);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  for (auto& t : pool) t.join();
  if (sh.failed) return sh.error;
  if (options.progress) options.progress(count, count);

  format::IndexBuilder builder(base.image_size(), cs, base.codec());
  CommitSummary sum;
  for (uint64_t i = 0; i < count; i++) {
    if (entries[i].zero()) sum.chunks_zero++;
    else entries[i].stored_size = sh.sizes[entries[i].hash];
    builder.set_entry(i, entries[i]);
  }
  builder.meta().name = options.name;
  builder.meta().created = uint64_t(std::time(nullptr));
  builder.meta().tool = std::string("hloop ") + HLOOP_VERSION;
  builder.meta().parent_digest = base.digest();
  builder.meta().parent_name = options.parent_name.empty() ? base.meta().name : options.parent_name;
  // The chunk files must be on disk before an index can point at them.
  ScopedFd root(::open(store.root().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid() || ::syncfs(root.get()) != 0) return Status::FromErrno(errno, "sync " + store.root());
  const std::string bytes = builder.Encode();
  HLOOP_RETURN_IF_ERROR(store.PutIndex(options.name, bytes));

  sum.chunks_total = count;
  sum.chunks_changed = sh.changed;
  sum.chunks_new = sh.fresh;
  sum.bytes_new = sh.fresh_bytes;
  sum.chunks_copied = sh.copied;
  sum.index_path = store.IndexPath(options.name);
  sum.digest = format::Sha256(bytes);
  return sum;
}

}  // namespace hloop::overlay
