// The link to the image's best mirror in the unit read-ahead and clusters
// think in: chunk files of this image per round trip.
#pragma once

#include "fetch/source.h"
#include "format/index.h"

namespace hloop::disk {

// The average stored (compressed) chunk file of `index`, at least 4 KiB.
double AverageStoredChunk(const format::Index& index);

// How many average chunk files the best mirror's link moves in one round
// trip (smoothed rtt × per-transfer rate / chunk file), from
// Source::Estimate; negative while nothing is measured (and for local
// sources). Calls Estimate, which may take the source's lock.
double ChunksPerRoundTrip(fetch::Source& source, const format::Index& index);

}  // namespace hloop::disk
