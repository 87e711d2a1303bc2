#include "format/codec.h"

#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <memory>

namespace hloop::format {

Result<Codec> ParseCodec(const std::string& name) {
  if (name == "zstd") return Codec::kZstd;
  if (name == "zlib") return Codec::kZlib;
  if (name == "none") return Codec::kNone;
  return Status::InvalidArgument("unknown codec '" + name + "' (use zstd, zlib or none)");
}

const char* CodecName(Codec c) {
  switch (c) {
    case Codec::kNone: return "none";
    case Codec::kZstd: return "zstd";
    case Codec::kZlib: return "zlib";
  }
  return "unknown";
}

int DefaultLevel(Codec c) {
  switch (c) {
    case Codec::kZstd: return 3;
    case Codec::kZlib: return 6;
    default: return 0;
  }
}

namespace {
struct ZstdCctxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDctxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};
}  // namespace

Status Compress(Codec codec, int level, std::string_view raw, std::string* out) {
  switch (codec) {
    case Codec::kNone: out->assign(raw); return Status::Ok();
    case Codec::kZstd: {
      thread_local std::unique_ptr<ZSTD_CCtx, ZstdCctxDeleter> cctx(ZSTD_createCCtx());
      out->resize(ZSTD_compressBound(raw.size()));
      size_t n =
          ZSTD_compressCCtx(cctx.get(), out->data(), out->size(), raw.data(), raw.size(), level);
      if (ZSTD_isError(n)) return Status::IOError(std::string("zstd: ") + ZSTD_getErrorName(n));
      out->resize(n);
      return Status::Ok();
    }
    case Codec::kZlib: {
      uLongf n = compressBound(uLong(raw.size()));
      out->resize(n);
      int rc = compress2(reinterpret_cast<Bytef*>(out->data()), &n,
                         reinterpret_cast<const Bytef*>(raw.data()), uLong(raw.size()), level);
      if (rc != Z_OK) return Status::IOError("zlib compress failed: " + std::to_string(rc));
      out->resize(n);
      return Status::Ok();
    }
  }
  return Status::InvalidArgument("unknown codec");
}

Status Decompress(Codec codec, std::string_view data, char* out, size_t raw_size) {
  switch (codec) {
    case Codec::kNone:
      if (data.size() != raw_size) return Status::Corruption("stored chunk has the wrong length");
      std::memcpy(out, data.data(), raw_size);
      return Status::Ok();
    case Codec::kZstd: {
      thread_local std::unique_ptr<ZSTD_DCtx, ZstdDctxDeleter> dctx(ZSTD_createDCtx());
      size_t n = ZSTD_decompressDCtx(dctx.get(), out, raw_size, data.data(), data.size());
      if (ZSTD_isError(n)) return Status::Corruption(std::string("zstd: ") + ZSTD_getErrorName(n));
      if (n != raw_size) return Status::Corruption("zstd stream decodes to the wrong length");
      return Status::Ok();
    }
    case Codec::kZlib: {
      uLongf n = uLongf(raw_size);
      int rc = uncompress(reinterpret_cast<Bytef*>(out), &n,
                          reinterpret_cast<const Bytef*>(data.data()), uLong(data.size()));
      if (rc != Z_OK)
        return Status::Corruption("zlib stream is malformed (" + std::to_string(rc) + ")");
      if (n != raw_size) return Status::Corruption("zlib stream decodes to the wrong length");
      return Status::Ok();
    }
  }
  return Status::Corruption("unknown codec " + std::to_string(int(codec)));
}

}  // namespace hloop::format
