// The one Status -> errno table (util/status_errno.h) and CallNoThrow
// (util/no_throw.h), which every front end's C callbacks run under.
#include "util/status_errno.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "util/no_throw.h"

namespace hloop {
namespace {

TEST(StatusErrnoTest, EveryCodeHasItsErrno) {
  EXPECT_EQ(ErrnoFromStatus(Status::Ok()), 0);
  // A chunk missing on the server: the data cannot be had, the file is there.
  EXPECT_EQ(ErrnoFromStatus(Status::NotFound("chunk 3: 404")), EIO);
  EXPECT_EQ(ErrnoFromStatus(Status::Corruption("hash mismatch")), EIO);
  EXPECT_EQ(ErrnoFromStatus(Status::IOError("pread")), EIO);
  EXPECT_EQ(ErrnoFromStatus(Status::Unavailable("server away")), EIO);
  EXPECT_EQ(ErrnoFromStatus(Status::InvalidArgument("past the end")), EINVAL);
  EXPECT_EQ(ErrnoFromStatus(Status::Unsupported("read-only device")), EROFS);
  EXPECT_EQ(ErrnoFromStatus(Status::NoSpace("overlay")), ENOSPC);
  EXPECT_EQ(ErrnoFromStatus(Status::FromErrno(EDQUOT, "overlay")), ENOSPC);
}

TEST(StatusErrnoTest, NoStatusBecomesEnoent) {
  // ENOENT is what a view says of a missing name, never what a failed read
  // of the image says.
  for (Status st : {Status::NotFound("x"), Status::FromErrno(ENOENT, "chunk file"),
                    Status::IOError("x"), Status::Corruption("x"), Status::Unavailable("x"),
                    Status::InvalidArgument("x"), Status::Unsupported("x"), Status::NoSpace("x")})
    EXPECT_NE(ErrnoFromStatus(st), ENOENT) << st.ToString();
}

TEST(CallNoThrowTest, PassesTheResultThrough) {
  EXPECT_EQ(CallNoThrow("test", -EIO, [] { return 7; }), 7);
}

TEST(CallNoThrowTest, TurnsAnyExceptionIntoTheGivenValue) {
  EXPECT_EQ(CallNoThrow("test", -EIO, []() -> int { throw std::runtime_error("boom"); }), -EIO);
  EXPECT_EQ(CallNoThrow("test", -EIO, []() -> int { throw 42; }), -EIO);
}

TEST(CallNoThrowTest, StopsTheStatsJsonOfANonUtf8Path) {
  // What the FUSE stats xattr did: dump() of a path that is not UTF-8 throws.
  nlohmann::json j = {{"overlay", {{"path", std::string("/tmp/ov\xff\xfe.img")}}}};
  EXPECT_EQ(CallNoThrow("test", std::string("caught"), [&] { return j.dump(); }), "caught");
  // The dump the stats producer uses instead (cmd_mount.cc) does not throw.
  std::string text = CallNoThrow("test", std::string("caught"), [&] {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  });
  EXPECT_NE(text, "caught");
  EXPECT_NE(text.find("/tmp/ov"), std::string::npos) << text;
  EXPECT_TRUE(nlohmann::json::accept(text)) << text;
}

}  // namespace
}  // namespace hloop
