#include "pack/packer.h"

#include "format/index.h"
#include "writer/image_bytes.h"

namespace hloop::pack {

Result<writer::WriteSummary> Pack(const std::string& image_path, store::LocalStore& store,
                                  const PackOptions& options) {
  writer::WriteOptions o;
  o.name = options.name;
  o.chunk_size = options.chunk_size;
  o.codec = options.codec;
  o.level = options.level;
  o.threads = options.threads;
  o.progress = options.progress;
  o.layout = options.layout;
  if (!writer::IsValidImageName(o.name))
    return Status::InvalidArgument("bad image name '" + o.name + "'");
  if (auto old = store.ReadIndex(o.name); old.ok()) {
    auto parent = format::Index::Parse(std::move(old.value()), o.name);
    if (parent.ok()) {
      o.parent_digest = parent->digest();
      o.parent_name = o.name;
    }
  }
  auto image = writer::FileBytes::Open(image_path);
  if (!image.ok()) return image.status();
  return writer::WriteImage(**image, store, o);
}

}  // namespace hloop::pack
