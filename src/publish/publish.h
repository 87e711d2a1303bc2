// The publisher's side of trust: signing an index in a store, and moving a
// channel (STORE/NAME.channel) to an index, with the checks that keep a
// client from being pointed at something it cannot read.
//
// Not safe against two publishers of the same channel at once: each reads
// the old sequence number and writes the next one (the last rename wins).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/index.h"
#include "store/local_store.h"
#include "trust/channel.h"
#include "trust/keys.h"
#include "trust/signature.h"
#include "util/status.h"

namespace hloop::publish {

inline constexpr int64_t kDefaultExpiry = 7 * 86400;  // seconds
inline constexpr char kSignatureSuffix[] = ".sig";

// Reads and fully parses the index file `index_path` (a local file), signs
// its digest and file name, and writes `index_path`.sig durably and
// atomically, replacing any signature there (one per index).
Result<trust::IndexSignature> SignIndexFile(const std::string& index_path,
                                            const trust::PrivateKey& key);

// Whether every distinct chunk file `index` names (non-zero table entries
// and the hot chunks of a layout) is in
// `store` with the size the index records. The error (NotFound) gives how
// many are missing or of another size, and the first few hashes.
Status CheckChunksPresent(const store::LocalStore& store, const format::Index& index,
                          const std::string& origin);

struct PublishOptions {
  std::string channel;  // channel name: STORE/<channel>.channel
  // The index, relative to the store ("v2.idx"). Empty with `renew`.
  std::string index;
  // Re-sign the channel's current index with the next sequence number and
  // a new expiry, changing nothing else. REQUIRES: index is empty.
  bool renew = false;
  int64_t expires_in = kDefaultExpiry;  // seconds after `now`
  int64_t now = 0;                      // seconds since the epoch; 0: the system clock
};

struct PublishResult {
  trust::Channel channel;          // what was written
  std::string channel_path;        // STORE/<channel>.channel
  uint64_t previous_sequence = 0;  // 0 when the channel is new
};

// Checks the index (parses, every chunk present), writes its .sig, then
// writes the channel atomically and durably (temporary file, fsync,
// rename, fsync of the directory) with sequence = old + 1 (1 if none).
// An existing channel file that does not parse is refused, never replaced.
// A rollback is a Publish of an older index: it gets a higher sequence.
Result<PublishResult> Publish(const store::LocalStore& store, const trust::PrivateKey& key,
                              const PublishOptions& options);

}  // namespace hloop::publish
