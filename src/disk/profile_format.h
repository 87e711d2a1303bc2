// The boot profile format (NAME.profile), byte by byte in docs/format.md,
// "Boot profile". Text, one record per line ('\n', a '\r' before it is
// accepted):
//
//   hloop-profile VERSION                    the first line: magic, one space, version
//   # ...                                    comments (and blank lines) anywhere after it
//   MS OFFSET LENGTH                         version 2: three decimal integers, one space apart
//   MS CHUNK                                 version 1: two decimal integers, one space apart
//
// Version 2 lists image bytes in kProfileBlockSize blocks; version 1 lists
// chunk numbers. A reader reads both and refuses any other version, naming
// it and the ones it reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hloop::disk {

// The first line is kProfileMagic, one space, then the version in decimal.
inline constexpr std::string_view kProfileMagic = "hloop-profile";
// What a writer writes: byte ranges in blocks.
inline constexpr uint32_t kProfileVersion = 2;
// The oldest version a reader reads: chunk numbers.
inline constexpr uint32_t kProfileVersionChunks = 1;
// Version 2's unit: every OFFSET is a multiple of it, and every LENGTH but
// that of a range ending at the image's end (its last partial block).
inline constexpr uint64_t kProfileBlockSize = 4096;
// Lines starting with this are comments.
inline constexpr char kProfileComment = '#';
// A line (without its '\n') may hold at most this many bytes.
inline constexpr size_t kProfileMaxLine = 4096;

}  // namespace hloop::disk
