#include "pack/verify.h"

#include <atomic>
#include <map>
#include <thread>

#include "format/chunk_file.h"
#include "format/index.h"
#include "util/mutex.h"

namespace hloop::pack {

namespace {
struct Want {
  uint32_t raw_size = 0;  // 0: unknown (a chunk file found, not referenced)
  std::string where;      // "debian.idx chunk 17"
};
}  // namespace

Result<VerifyReport> VerifyStore(const store::LocalStore& store,
                                 const std::vector<std::string>& index_names, unsigned threads) {
  VerifyReport report;
  std::vector<std::string> names = index_names;
  if (names.empty()) {
    auto all = store.ListIndexes();
    if (!all.ok()) return all.status();
    names = all.value();
  }
  std::map<format::Hash, Want> wanted;
  for (const auto& name : names) {
    auto bytes = store.ReadIndex(name);
    if (!bytes.ok()) {
      report.problems.push_back(
          {"missing", "", "index " + store.IndexPath(name) + ": " + bytes.status().ToString()});
      continue;
    }
    auto index = format::Index::Parse(std::move(bytes.value()), store.IndexPath(name));
    if (!index.ok()) {
      report.problems.push_back({"corrupt", "", index.status().ToString()});
      continue;
    }
    report.indexes++;
    // Every slot: the table's chunks, then the hot chunks of a layout.
    for (uint64_t i = 0; i < index->slot_count(); i++) {
      format::ChunkEntry e = index->entry(i);
      if (e.zero()) continue;
      auto [it, added] = wanted.emplace(e.hash, Want{index->chunk_length(i), ""});
      if (!added) continue;
      it->second.where = name + ".idx " + format::SlotName(*index, i);
    }
  }
  if (index_names.empty()) {
    auto present = store.ListChunks();
    if (!present.ok()) return present.status();
    for (const auto& h : present.value()) wanted.emplace(h, Want{0, "unreferenced chunk file"});
  }

  std::vector<std::pair<format::Hash, Want>> work(wanted.begin(), wanted.end());
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> bytes{0};
  Mutex mu;  // guards report.problems while the workers run
  auto worker = [&] {
    std::string raw;
    for (size_t k; (k = next++) < work.size();) {
      const auto& [h, want] = work[k];
      auto file = store.ReadChunk(h);
      VerifyProblem p{"", format::ToHex(h), want.where};
      if (!file.ok()) {
        p.what = file.status().IsNotFound() ? "missing" : "unreadable";
        p.detail += ": " + store.ChunkFilePath(h);
      } else {
        bytes += file->size();
        Status st;
        uint32_t size = want.raw_size;
        if (size == 0) {
          auto header = format::ParseChunkHeader(file.value());
          st = header.status();
          if (st.ok()) size = header->raw_size;
        }
        if (st.ok()) st = format::DecodeChunk(file.value(), h, size, &raw);
        if (st.ok()) continue;
        p.what = "corrupt";
        p.detail += ": " + store.ChunkFilePath(h) + ": " + st.message();
      }
      MutexLock lock(&mu);
      report.problems.push_back(std::move(p));
    }
  };
  unsigned n = threads ? threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < n; t++) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  report.chunks_checked = work.size();
  report.bytes_checked = bytes;
  return report;
}

}  // namespace hloop::pack
