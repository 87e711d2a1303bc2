// Test-only: a fresh directory that is removed, with everything in it, when
// the object goes out of scope. Created under $TMPDIR (or /tmp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hloop::testing {

class ScopedTempDir {
 public:
  // Creates "<tmp>/hloop-test-XXXXXX". Aborts the test binary if it cannot:
  // no test can run without it.
  ScopedTempDir();
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + rel.
  std::string Join(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// Writes `data` to `path` (replacing it); false on failure.
bool WriteTestFile(const std::string& path, const std::string& data);
// Reads `path` whole; empty string if it cannot.
std::string ReadTestFile(const std::string& path);
// Deterministic pseudo-random bytes (incompressible).
std::string RandomBytes(size_t n, uint64_t seed);
// "" when a == b, else a short description of the first difference (for
// EXPECT_EQ(FirstDifference(got, want), "") without dumping megabytes).
std::string FirstDifference(const std::string& got, const std::string& want);

}  // namespace hloop::testing
