// Small files that must pass a check before they are used (an index, a
// mirror list, a profile, a channel, a signature), fetched as robustly as
// chunks: a copy that fails its check is a corrupt copy, like a chunk whose
// hash does not match, and is fetched again rather than ending the open.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "fetch/engine.h"
#include "fetch/source.h"
#include "util/status.h"

namespace hloop::fetch {

// Checks a whole body; not ok: this copy is bad (the message says why).
using BodyCheck = std::function<Status(const std::string& body)>;

// Bad copies in a row after which GetChecked gives up.
inline constexpr int kDefaultMaxVerdicts = 6;

// Fetches `request.rel` and runs `check` on the body. A body that fails the
// check (or that the engine refuses as Corruption: too large, wrong length)
// is handled like a corrupt chunk: the mirror that sent it is reported
// (ReportCorrupt) and the file is fetched again, from another mirror when
// there is one, with the engine's back-off (RetryPolicy, bounded by
// --io-timeout); the failure is final only when the same bad copy (same
// bytes, same verdict) came from every mirror (twice at least: from one
// mirror, twice in a row), or after `max_verdicts` bad copies in a row.
// Each bad copy fetched again is logged at info level (-v). Returns the
// body that passed in *out, or the last status: the engine's
// own (NotFound, Unavailable: already retried) or the check's, with its
// code and message, annotated with the URL that served it.
Status GetChecked(FetchEngine& engine, Request request, const BodyCheck& check, std::string* out,
                  int max_verdicts = kDefaultMaxVerdicts);

// The same for one URL (http, https, file or path) without an engine of the
// caller's: a --profile URL, an index by URL. A local file is read once and
// its verdict is final. `max_size` (0: none) and `what` as in Request.
Result<std::string> FetchUrlChecked(const std::string& url, const FetchOptions& options,
                                    const BodyCheck& check, uint64_t max_size = 0,
                                    const std::string& what = "a file");

}  // namespace hloop::fetch
