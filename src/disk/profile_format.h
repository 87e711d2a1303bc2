// The boot profile format (NAME.profile), byte by byte in docs/format.md,
// "Boot profile". Text, one record per line ('\n', a '\r' before it is
// accepted):
//
//   hloop-profile VERSION                    the first line: magic, one space, version
//   # ...                                    comments (and blank lines) anywhere after it
//   MS CHUNK                                 two decimal integers, one space apart
//
// A reader refuses a version it does not know, naming both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hloop::disk {

// The first line is kProfileMagic, one space, then the version in decimal.
inline constexpr std::string_view kProfileMagic = "hloop-profile";
inline constexpr uint32_t kProfileVersion = 1;
// Lines starting with this are comments.
inline constexpr char kProfileComment = '#';
// A line (without its '\n') may hold at most this many bytes.
inline constexpr size_t kProfileMaxLine = 4096;

}  // namespace hloop::disk
