// hloop cat URL: the whole image, verified, to stdout or a file.
#include <fcntl.h>
#include <unistd.h>

#include "cli/common.h"
#include "util/file.h"

namespace hloop::cli {

namespace {
struct CatArgs {
  std::string url, output;
  ImageCliOptions image;
};

int RunCat(CatArgs& a) {
  auto opts = MakeOpenOptions(a.image, /*with_cache_default=*/false);
  if (!opts.ok()) return Fail(opts.status());
  auto device = disk::OpenImage(a.url, *opts);
  if (!device.ok()) return Fail(device.status());
  ScopedFd out(a.output.empty() || a.output == "-"
                   ? ::dup(1)
                   : ::open(a.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out.valid()) return Fail(Status::FromErrno(errno, a.output));
  disk::ImageDevice& dev = **device;
  const uint64_t size = dev.size();
  const size_t step = std::max<size_t>(dev.index().chunk_size(), 1 << 20);
  std::string buf(step, '\0');
  Progress bar("cat");
  for (uint64_t off = 0; off < size; off += step) {
    size_t n = size_t(std::min<uint64_t>(step, size - off));
    Status st = dev.Read(off, n, buf.data());
    if (!st.ok()) return Fail(st);
    st = WriteFull(out.get(), buf.data(), n);
    if (!st.ok()) return Fail(st.Annotate(a.output.empty() ? "stdout" : a.output));
    if (!a.output.empty()) bar.Update(off + n, size);
  }
  if (::close(out.release()) != 0) return Fail(Status::FromErrno(errno, "close " + a.output));
  return kExitOk;
}
}  // namespace

Command CatCommand() {
  return {"cat", "Write the whole image, verified, to stdout or a file",
          [](CLI::App* app) -> std::function<int()> {
            auto a = std::make_shared<CatArgs>();
            app->add_option("URL", a->url,
                            "Index or channel (NAME.channel): http(s):// or file:// URL, or a path")
                ->required();
            app->add_option("-o,--output", a->output, "Write to this file instead of stdout");
            AddImageOptions(app, &a->image, /*with_cache_default=*/false);
            return [a] { return RunCat(*a); };
          }};
}

}  // namespace hloop::cli
