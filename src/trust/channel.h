// STORE/NAME.channel: the only mutable file of a store. A small signed
// record naming the index a channel currently points at, with a sequence
// number that only grows (rollback protection) and an expiry (freeze
// protection). Byte layout: docs/format.md, "Channel (.channel)".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "format/hash.h"
#include "trust/keys.h"
#include "util/status.h"

namespace hloop::trust {

inline constexpr char kChannelMagic[8] = {'H', 'L', 'O', 'O', 'P', 'C', 'H', 'N'};
inline constexpr uint32_t kChannelVersion = 1;
// Domain separation: the first bytes of the signed message (the NUL included).
inline constexpr std::string_view kChannelDomain{"hloop-channel-v1\0", 17};
inline constexpr size_t kMaxChannelFileSize = 4096;
inline constexpr size_t kMaxChannelNameSize = 64;
inline constexpr size_t kMaxIndexPathSize = 1024;
inline constexpr char kChannelSuffix[] = ".channel";

struct Channel {
  uint32_t version = kChannelVersion;
  std::string name;        // "stable"
  uint64_t sequence = 0;   // only grows
  std::string index_path;  // relative to the channel's directory, e.g. "v2.idx"
  format::Hash index_digest{};
  uint64_t image_size = 0;
  int64_t issued_at = 0, expires_at = 0;  // seconds since the epoch (UTC)
  KeyId key_id{};
  std::string signature;  // 64 bytes
  // Domain-separated: what Sign/Verify cover (everything but the signature).
  std::string SignedMessage() const;
};

// REQUIRES: the fields pass the checks ParseChannel makes; signature is 64 bytes.
std::string EncodeChannel(const Channel& c);
// Refuses input over kMaxChannelFileSize (before anything else), a wrong
// magic or version, truncation, trailing bytes, a bad name, an index path
// that is empty, absolute, has a ".." or a NUL, and an expiry before the
// issue time. Does not check the signature (TrustSet::VerifyChannel does).
Result<Channel> ParseChannel(std::string_view bytes, const std::string& origin);
// Sets c->key_id and c->signature.
void SignChannel(const PrivateKey& key, Channel* c);

// A channel name: 1..64 of [A-Za-z0-9._-], not starting with '.'.
Status CheckChannelName(std::string_view name);
// An index path relative to the channel's directory: 1..1024 bytes, no
// leading '/', no "..", no NUL.
Status CheckIndexPath(std::string_view path);

}  // namespace hloop::trust
