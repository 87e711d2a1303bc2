// hloop-synth-store STORE: a synthetic store of many chunks and versions, fast
// to make, for timing gc and diff (bench/history.sh). Not for reading: the
// indexes and their PARENT chain are real, but each chunk file holds only a
// few bytes (a counter; codec none), standing in for a chunk of
// --chunk-size bytes. gc and diff never read chunk contents, only names,
// sizes and mtimes, so their timings are those of a real store of as many
// chunks and versions (bar the page cache's view of bigger files).
//
// Version k (1..N) has --chunks chunks; v1's are all distinct, and each later
// version replaces --change of its parent's chunks (a sliding window) with new
// content. Every index names the previous one as its parent.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "format/chunk_file.h"
#include "format/index.h"
#include "store/local_store.h"

namespace {

using namespace hloop;

int Run(const std::string& root, int versions, uint64_t chunks, uint64_t change,
        uint32_t chunk_size, bool files, const std::string& prefix) {
  auto store = store::LocalStore::Open(root, /*create=*/true);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  std::vector<uint64_t> content(chunks);  // chunk i of the current version: a counter
  uint64_t next = 0;
  for (auto& c : content) c = next++;
  std::optional<format::Hash> parent;
  std::string parent_name;
  for (int v = 1; v <= versions; v++) {
    if (v > 1)
      for (uint64_t k = 0; k < change; k++) content[((v - 2) * change + k) % chunks] = next++;
    format::IndexBuilder b(chunks * chunk_size, chunk_size, format::Codec::kNone);
    for (uint64_t i = 0; i < chunks; i++) {
      const std::string raw = prefix + std::to_string(content[i]);
      std::string file;
      if (!format::EncodeChunk(raw, format::Codec::kNone, 0, &file).ok()) return 1;
      format::ChunkEntry e{.hash = format::Sha256(raw), .stored_size = uint32_t(file.size())};
      bool written;
      if (files) {
        Status st = store->PutChunk(e.hash, file, /*durable=*/false, &written);
        if (!st.ok()) {
          std::fprintf(stderr, "%s\n", st.ToString().c_str());
          return 1;
        }
      }
      b.set_entry(i, e);
    }
    const std::string name = "v" + std::to_string(v);
    b.meta().name = name;
    b.meta().created = 1700000000 + v;
    b.meta().parent_digest = parent;
    if (parent) b.meta().parent_name = parent_name;
    const std::string bytes = b.Encode();
    if (!store->PutIndex(name, bytes).ok()) return 1;
    parent = format::Sha256(bytes);
    parent_name = name;
  }
  std::printf("%s: %d versions of %llu chunks, %llu distinct chunks\n", root.c_str(), versions,
              (unsigned long long)chunks, (unsigned long long)next);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("A synthetic store for timing gc and diff (tiny stand-in chunk files)");
  std::string root, prefix = "synthetic chunk ";
  int versions = 10;
  uint64_t chunks = 20000, change = 8889;
  uint32_t chunk_size = 262144;
  bool no_files = false;
  app.add_option("STORE", root, "Store directory to create")->required();
  app.add_option("--versions", versions, "Versions v1..vN, each the next one's parent (10)");
  app.add_option("--chunks", chunks, "Chunks per version (20000)");
  app.add_option("--change", change, "Chunks each version replaces (8889)");
  app.add_option("--chunk-size", chunk_size, "Chunk size the indexes declare (262144)");
  app.add_option("--prefix", prefix, "Chunk content prefix: another value, other chunks");
  app.add_flag("--no-files", no_files, "Write the indexes only (for diff)");
  CLI11_PARSE(app, argc, argv);
  return Run(root, versions, chunks, change, chunk_size, !no_files, prefix);
}
