// Resolving what a user named (an index, or a channel that points at one) to
// an index the client may serve, and deciding whether to trust it.
//
// With trusted keys (trust::TrustSet not empty):
//  - a channel must carry a valid signature by a trusted key, must not have
//    expired while the server is reachable (freeze), must not have a lower
//    sequence number than the highest seen for its URL (rollback; kept
//    durably in a trust::SequenceStore), and the index it names must have
//    the digest it names (mix-and-match);
//  - an index named directly must have a NAME.idx.sig beside it, by a
//    trusted key, over its digest and name.
// Offline (no server reachable) the last verified channel, index and
// signature kept in the disk cache are used, even past expiry, with a
// warning naming the version and its age; `require_fresh` refuses that.
// Every refusal is one message naming the file, the key id and the rule.
//
// Small files (channels, signatures, indexes) are fetched through a MetaGet,
// which retries a body that fails its check like a corrupt chunk.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cache/disk_cache.h"
#include "disk/image_version.h"
#include "fetch/checked_get.h"
#include "fetch/url.h"
#include "format/index.h"
#include "trust/trust_set.h"
#include "util/status.h"

namespace hloop::disk {

struct TrustOptions {
  // The keys to trust; null or empty: nothing is authenticated, and the
  // image is served as before (with a notice).
  std::shared_ptr<const trust::TrustSet> keys;
  // Refuse the cached channel when no server is reachable.
  bool require_fresh = false;
  // Where the highest channel sequence numbers seen are remembered (a
  // directory, made if missing). Empty: not remembered across restarts.
  std::string state_dir;
  // Seconds since the epoch; tests set it. Default: the system clock.
  std::function<int64_t()> now;
};

using fetch::BodyCheck;
// Gets the small file `rel` (relative to the directory of the URL the user
// named), at most `max_size` bytes, that `check` accepts; retried up to
// `attempts` times (0: the fetcher's default). Unavailable: no server could
// be reached. NotFound: the server says there is no such file.
using MetaGet = std::function<Status(const std::string& rel, uint64_t max_size, int attempts,
                                     const BodyCheck& check, std::string* out)>;

struct Resolved {
  format::Index index;
  ImageVersion version;
  std::string index_rel;  // the index's path relative to the directory of the URL
};

// Whether `file_name` names a channel ("stable.channel").
bool IsChannelName(const std::string& file_name);

// Resolves `loc` (an index or a channel) to a verified index. `cache` (may be
// null) keeps the last good copies for offline use. `attempts`: how often to
// try each file before falling back on the cache.
Result<Resolved> Resolve(const fetch::Location& loc, const TrustOptions& trust,
                         cache::DiskCache* cache, const MetaGet& get, int attempts);

// Fetches the channel at `loc` again and says which version it names now
// (verified as Resolve does, but without recording its sequence number).
Result<ImageVersion> LatestVersion(const fetch::Location& loc, const TrustOptions& trust,
                                   const MetaGet& get);

}  // namespace hloop::disk
