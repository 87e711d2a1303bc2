// What relayout, pack --layout-from and info share: profiles as image byte
// ranges, and what reading such ranges through an index would fetch.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fetch/source.h"
#include "format/index.h"
#include "format/layout.h"
#include "util/status.h"
#include "writer/layout_writer.h"

namespace hloop::cli {

// The image byte ranges a profile (file or URL) read through `index`, in
// order of first read, each byte once. `text`, if not null, receives the
// profile's text.
Result<std::vector<format::ByteRange>> LoadProfileRanges(const std::string& profile,
                                                         const format::Index& index,
                                                         const fetch::FetchOptions& fetch,
                                                         std::string* text = nullptr);

// What reading `ranges` through `index` costs a cold client.
struct FetchEstimate {
  uint64_t files = 0;         // chunk files touched
  uint64_t stored_bytes = 0;  // their size: bytes fetched
  uint64_t raw_bytes = 0;     // their content's length
  uint64_t read_bytes = 0;    // the bytes the ranges read (zeros included)
};
FetchEstimate EstimateFetch(const format::Index& index,
                            const std::vector<format::ByteRange>& ranges);
nlohmann::json EstimateJson(const FetchEstimate& e);

// An index by name in `store_dir` (NAME or NAME.idx, no '/'), else by URL
// or path.
Result<format::Index> LoadIndexArg(const std::string& arg, const std::string& store_dir,
                                   const fetch::FetchOptions& fetch);

// The plan that carries the layout of index `from` (see LoadIndexArg) to a
// new version; InvalidArgument when it has no layout.
Result<writer::LayoutPlan> LayoutFrom(const std::string& from, const std::string& store_dir,
                                      const fetch::FetchOptions& fetch);

// A writer's layout summary: one line for people (empty without hot
// chunks), or JSON.
std::string LayoutLine(const writer::LayoutSummary& l);
nlohmann::json LayoutJson(const writer::LayoutSummary& l);

}  // namespace hloop::cli
