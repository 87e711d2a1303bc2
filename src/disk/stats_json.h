// The statistics of an open image as one JSON object: what `hloop stats`
// prints and what the front ends publish. Field names are documented in
// docs/design.md ("Live statistics").
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "disk/image_device.h"

namespace hloop::disk {

nlohmann::json ImageStatsJson(ImageDevice& device, const std::string& url, double uptime_s);

}  // namespace hloop::disk
