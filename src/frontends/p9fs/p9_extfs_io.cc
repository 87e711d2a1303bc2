#include "frontends/p9fs/p9_extfs_io.h"

#include <ext2fs/ext2fs.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

#include "util/log.h"
#include "util/mutex.h"
#include "util/no_throw.h"

namespace hloop::p9 {

struct ExtIoName::Entry {
  std::shared_ptr<BlockDevice> device;
  Mutex mu;
  Status last_error GUARDED_BY(mu);

  void Failed(const Status& st) {
    MutexLock lock(&mu);
    last_error = st;
  }
};

namespace {

using Entry = ExtIoName::Entry;

// Name -> device, for the io_manager's open().
class Registry {
 public:
  std::string Add(std::shared_ptr<Entry> entry) {
    MutexLock lock(&mu_);
    std::string name = "hloop-dev:" + std::to_string(next_++);
    entries_[name] = std::move(entry);
    return name;
  }
  void Remove(const std::string& name) {
    MutexLock lock(&mu_);
    entries_.erase(name);
  }
  std::shared_ptr<Entry> Find(const char* name) {
    MutexLock lock(&mu_);
    auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : it->second;
  }

 private:
  Mutex mu_;
  uint64_t next_ GUARDED_BY(mu_) = 0;
  std::map<std::string, std::shared_ptr<Entry>> entries_ GUARDED_BY(mu_);
};

Registry& TheRegistry() {
  static Registry* registry = new Registry;  // never destroyed: no exit-time order to get wrong
  return *registry;
}

// What a channel's private_data points to.
struct Channel {
  std::shared_ptr<Entry> entry;
  struct_io_stats stats{};
};

Channel* Of(io_channel ch) { return static_cast<Channel*>(ch->private_data); }

errcode_t Open(const char* name, int flags, io_channel* out);

// libext2fs is C: no exception may unwind through it. The operations that
// allocate or call the device run under CallNoThrow, which turns one into EIO.

errcode_t Close(io_channel ch) {
  if (--ch->refcount > 0) return 0;
  delete Of(ch);
  ext2fs_free_mem(&ch->name);
  ext2fs_free_mem(&ch);
  return 0;
}

errcode_t SetBlockSize(io_channel ch, int size) {
  if (size <= 0) return EXT2_ET_INVALID_ARGUMENT;
  ch->block_size = size;
  return 0;
}

// `count` blocks of the channel's block size from `block`, or -count bytes
// when count is negative (libext2fs reads the superblock that way).
errcode_t Read64Unguarded(io_channel ch, unsigned long long block, int count, void* data) {
  Channel* c = Of(ch);
  const uint64_t len =
      count < 0 ? uint64_t(-int64_t(count)) : uint64_t(count) * uint64_t(ch->block_size);
  const uint64_t bs = uint64_t(ch->block_size);
  BlockDevice& dev = *c->entry->device;
  if (block > dev.size() / bs) return EXT2_ET_SHORT_READ;  // also keeps block * bs from overflowing
  const uint64_t offset = block * bs;
  if (len > dev.size() - offset) return EXT2_ET_SHORT_READ;
  Status st = dev.Read(offset, size_t(len), static_cast<char*>(data));
  if (!st.ok()) {
    LogWarn("ext2/3/4 metadata at byte " + std::to_string(offset) + ": " + st.ToString());
    c->entry->Failed(st);
    return EIO;
  }
  c->stats.bytes_read += len;
  return 0;
}

errcode_t Read64(io_channel ch, unsigned long long block, int count, void* data) {
  return CallNoThrow("ext2 I/O read", errcode_t(EIO),
                     [&] { return Read64Unguarded(ch, block, count, data); });
}

errcode_t Read(io_channel ch, unsigned long block, int count, void* data) {
  return Read64(ch, block, count, data);
}

errcode_t Write(io_channel, unsigned long, int, const void*) { return EXT2_ET_RO_FILSYS; }
errcode_t Write64(io_channel, unsigned long long, int, const void*) { return EXT2_ET_RO_FILSYS; }
errcode_t WriteByte(io_channel, unsigned long, int, const void*) { return EXT2_ET_RO_FILSYS; }
errcode_t Discard(io_channel, unsigned long long, unsigned long long) { return EXT2_ET_RO_FILSYS; }
errcode_t ZeroOut(io_channel, unsigned long long, unsigned long long) { return EXT2_ET_RO_FILSYS; }
errcode_t Flush(io_channel) { return 0; }
errcode_t SetOption(io_channel, const char*, const char*) { return EXT2_ET_INVALID_ARGUMENT; }

errcode_t GetStats(io_channel ch, io_stats* out) {
  Channel* c = Of(ch);
  c->stats.num_fields = 2;
  *out = &c->stats;
  return 0;
}

// libext2fs announces reads it is about to make (inode table scans): the
// device may start fetching those chunks.
errcode_t ReadAhead(io_channel ch, unsigned long long block, unsigned long long count) {
  return CallNoThrow("ext2 I/O read-ahead", errcode_t(EIO), [&] {
    const uint64_t bs = uint64_t(ch->block_size);
    BlockDevice& dev = *Of(ch)->entry->device;
    if (block < dev.size() / bs) dev.Prefetch(block * bs, count * bs);
    return errcode_t(0);
  });
}

struct_io_manager MakeManager() {
  struct_io_manager m{};
  m.magic = EXT2_ET_MAGIC_IO_MANAGER;
  m.name = "hloop BlockDevice I/O manager";
  m.open = Open;
  m.close = Close;
  m.set_blksize = SetBlockSize;
  m.read_blk = Read;
  m.write_blk = Write;
  m.flush = Flush;
  m.write_byte = WriteByte;
  m.set_option = SetOption;
  m.get_stats = GetStats;
  m.read_blk64 = Read64;
  m.write_blk64 = Write64;
  m.discard = Discard;
  m.cache_readahead = ReadAhead;
  m.zeroout = ZeroOut;
  return m;
}

struct_io_manager the_manager = MakeManager();

errcode_t OpenUnguarded(const char* name, int flags, io_channel* out) {
  if (!name) return EXT2_ET_BAD_DEVICE_NAME;
  if (flags & IO_FLAG_RW) return EXT2_ET_RO_FILSYS;
  std::shared_ptr<Entry> entry = TheRegistry().Find(name);
  if (!entry) return EXT2_ET_BAD_DEVICE_NAME;
  auto channel = std::make_unique<Channel>(Channel{std::move(entry)});  // before C allocations
  io_channel ch = nullptr;
  if (errcode_t e = ext2fs_get_memzero(sizeof *ch, &ch)) return e;
  if (errcode_t e = ext2fs_get_mem(std::strlen(name) + 1, &ch->name)) {
    ext2fs_free_mem(&ch);
    return e;
  }
  std::strcpy(ch->name, name);
  ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
  ch->manager = &the_manager;
  ch->block_size = 1024;
  ch->refcount = 1;
  ch->private_data = channel.release();
  *out = ch;
  return 0;
}

errcode_t Open(const char* name, int flags, io_channel* out) {
  return CallNoThrow("ext2 I/O open", errcode_t(EIO),
                     [&] { return OpenUnguarded(name, flags, out); });
}

}  // namespace

struct struct_io_manager* ExtIoManager() {
  return &the_manager;
}

ExtIoName::ExtIoName(std::shared_ptr<BlockDevice> device) : entry_(std::make_shared<Entry>()) {
  entry_->device = std::move(device);
  name_ = TheRegistry().Add(entry_);
}

ExtIoName::~ExtIoName() { TheRegistry().Remove(name_); }

Status ExtIoName::last_error() const {
  MutexLock lock(&entry_->mu);
  return entry_->last_error;
}

}  // namespace hloop::p9
