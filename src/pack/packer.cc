#include "pack/packer.h"

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
#include "format/index.h"
#include "util/file.h"
#include "util/version.h"

namespace hloop::pack {

namespace {

bool AllZero(const char* p, size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

Result<uint64_t> ImageSize(int fd, const std::string& path) {
  struct stat sb;
  if (::fstat(fd, &sb) != 0) return Status::FromErrno(errno, path);
  if (S_ISREG(sb.st_mode)) return uint64_t(sb.st_size);
  off_t end = ::lseek(fd, 0, SEEK_END);  // block devices
  if (end < 0) return Status::FromErrno(errno, path);
  return uint64_t(end);
}

// State shared by the packing threads.
struct Shared {
  std::mutex mu;
  // Size of the chunk file of each distinct hash seen so far. GUARDED_BY(mu)
  std::unordered_map<format::Hash, uint32_t, format::HashKey> stored_size;
  Status error;  // first failure. GUARDED_BY(mu)
  std::atomic<uint64_t> next{0}, bytes_done{0}, chunks_new{0}, bytes_written{0}, zeros{0};
  std::atomic<bool> failed{false};
};

}  // namespace

Result<PackSummary> Pack(const std::string& image_path, store::LocalStore& store,
                         const PackOptions& options) {
  auto start = std::chrono::steady_clock::now();
  if (!format::IsValidChunkSize(options.chunk_size))
    return Status::InvalidArgument("chunk size must be a power of two from 4 KiB to 4 MiB");
  if (options.name.empty() || options.name.find('/') != std::string::npos || options.name[0] == '.')
    return Status::InvalidArgument("bad image name '" + options.name + "'");
  ScopedFd fd(::open(image_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, image_path);
  auto size = ImageSize(fd.get(), image_path);
  if (!size.ok()) return size.status();
  if (*size > format::kMaxImageSize) return Status::InvalidArgument(image_path + ": image too large");
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);

  format::IndexBuilder builder(*size, options.chunk_size, options.codec);
  const uint64_t count = builder.chunk_count();
  Shared sh;
  std::vector<format::ChunkEntry> entries(count);

  auto worker = [&] {
    std::string raw(options.chunk_size, '\0');
    std::string file;
    for (;;) {
      uint64_t i = sh.next++;
      if (i >= count || sh.failed) return;
      uint64_t off = i * options.chunk_size;
      size_t len = size_t(std::min<uint64_t>(options.chunk_size, *size - off));
      size_t got = 0;
      Status st = PreadFull(fd.get(), raw.data(), len, off, &got);
      if (st.ok() && got != len) st = Status::IOError(image_path + ": file shrank while packing");
      auto fail = [&](Status s) {
        std::lock_guard<std::mutex> lock(sh.mu);
        if (sh.error.ok()) sh.error = s;
        sh.failed = true;
      };
      if (!st.ok()) return fail(st.Annotate(image_path));
      sh.bytes_done += len;
      format::ChunkEntry& e = entries[i];
      if (AllZero(raw.data(), len)) {
        e.flags = format::kEntryFlagZero;
        sh.zeros++;
        continue;
      }
      e.hash = format::Sha256(raw.data(), len);
      {
        std::lock_guard<std::mutex> lock(sh.mu);
        // Another thread has (or is storing) this content: its size is
        // filled in at the end.
        if (!sh.stored_size.emplace(e.hash, 0).second) continue;
      }
      uint32_t stored = 0;
      struct stat sb;
      if (::stat(store.ChunkFilePath(e.hash).c_str(), &sb) == 0 &&
          uint64_t(sb.st_size) > format::kChunkHeaderSize) {
        stored = uint32_t(sb.st_size);  // already in the store from an earlier pack
      } else {
        st = format::EncodeChunk(std::string_view(raw.data(), len), options.codec, options.level, &file);
        bool written = false;
        if (st.ok()) st = store.PutChunk(e.hash, file, /*durable=*/false, &written);
        if (!st.ok()) return fail(st.Annotate("chunk " + std::to_string(i)));
        stored = uint32_t(file.size());
        if (written) {
          sh.chunks_new++;
          sh.bytes_written += file.size();
        }
      }
      std::lock_guard<std::mutex> lock(sh.mu);
      sh.stored_size[e.hash] = stored;
    }
  };

  unsigned threads = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; t++) pool.emplace_back(worker);
  if (options.progress) {
    for (int tick = 0; sh.next < count && !sh.failed; tick++) {
      if (tick % 10 == 0) options.progress(sh.bytes_done, *size);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  for (auto& t : pool) t.join();
  if (sh.failed) return sh.error;
  if (options.progress) options.progress(*size, *size);

  for (uint64_t i = 0; i < count; i++) {
    if (!entries[i].zero()) entries[i].stored_size = sh.stored_size[entries[i].hash];
    builder.set_entry(i, entries[i]);
  }
  builder.meta().name = options.name;
  builder.meta().created = uint64_t(std::time(nullptr));
  builder.meta().tool = std::string("hloop ") + HLOOP_VERSION;
  if (auto old = store.ReadIndex(options.name); old.ok()) {
    auto parent = format::Index::Parse(std::move(old.value()), options.name);
    if (parent.ok()) {
      builder.meta().parent_digest = parent->digest();
      builder.meta().parent_name = options.name;
    }
  }
  // The chunk files must be on disk before an index can point at them.
  ScopedFd root(::open(store.root().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root.valid() && ::syncfs(root.get()) != 0) return Status::FromErrno(errno, "sync " + store.root());
  std::string bytes = builder.Encode();
  HLOOP_RETURN_IF_ERROR(store.PutIndex(options.name, bytes));

  PackSummary sum;
  sum.chunks_total = count;
  sum.chunks_unique = sh.stored_size.size();
  sum.chunks_new = sh.chunks_new;
  sum.chunks_zero = sh.zeros;
  sum.bytes_read = *size;
  sum.bytes_written = sh.bytes_written + bytes.size();
  for (const auto& [h, s] : sh.stored_size) sum.stored_bytes += s;
  sum.index_path = store.IndexPath(options.name);
  sum.digest = format::Sha256(bytes);
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return sum;
}

}  // namespace hloop::pack
