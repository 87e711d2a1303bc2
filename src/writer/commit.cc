#include "writer/commit.h"

namespace hloop::writer {

Result<WriteSummary> Commit(const format::Index& base, ImageBytes& image, store::LocalStore& store,
                            const CommitOptions& options) {
  if (!IsValidImageName(options.name))
    return Status::InvalidArgument("bad image name '" + options.name + "'");
  if (image.size() != base.image_size())
    return Status::InvalidArgument(
        "the overlay and the base index are for images of different sizes");
  if (auto old = store.ReadIndex(options.name); old.ok()) {
    auto parsed = format::Index::Parse(std::move(old.value()), store.IndexPath(options.name));
    if (!parsed.ok() || parsed->digest() != base.digest())
      return Status::InvalidArgument(store.IndexPath(options.name) +
                                     " exists and is not the base image; choose another --name");
  }
  WriteOptions o;
  o.name = options.name;
  o.chunk_size = base.chunk_size();
  o.codec = base.codec();
  o.level = options.level;
  o.threads = options.threads;
  o.base = &base;
  o.parent_digest = base.digest();
  o.parent_name = options.parent_name.empty() ? base.meta().name : options.parent_name;
  o.progress = options.progress;
  // A relaid-out base stays relaid out: its hot chunks whose blocks did not
  // change come out identical and are shared.
  const LayoutPlan plan = options.layout ? *options.layout : PlanFromLayout(base);
  if (!plan.ranges.empty() || !plan.zero_ranges.empty()) o.layout = &plan;
  return WriteImage(image, store, o);
}

}  // namespace hloop::writer
