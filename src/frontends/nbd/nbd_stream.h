// A byte stream to one NBD client: the server's socket, or memory in tests
// and the fuzzer, so the protocol code above it never touches a socket.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hloop::nbd {

class Stream {
 public:
  virtual ~Stream() = default;
  // Reads exactly `n` bytes into `buf`; false at the end of the stream or on
  // an error (the connection is then over).
  virtual bool ReadFull(void* buf, size_t n) = 0;
  // Writes the pieces in order, all of them; false on an error.
  virtual bool Write(const std::vector<std::string_view>& pieces) = 0;
  bool Write(std::string_view bytes) { return Write(std::vector<std::string_view>{bytes}); }
};

// Reads from a copy of fixed input and collects everything written. Not
// thread-safe.
class MemoryStream : public Stream {
 public:
  explicit MemoryStream(std::string input) : input_(std::move(input)) {}
  bool ReadFull(void* buf, size_t n) override {
    if (n > input_.size() - pos_) {
      pos_ = input_.size();
      return false;
    }
    input_.copy(static_cast<char*>(buf), n, pos_);
    pos_ += n;
    return true;
  }
  bool Write(const std::vector<std::string_view>& pieces) override {
    for (std::string_view p : pieces) {
      if (keep_output_) output_.append(p);
    }
    return true;
  }
  using Stream::Write;
  const std::string& output() const { return output_; }
  // The fuzzer only needs the writes to happen, not their bytes.
  void set_keep_output(bool keep) { keep_output_ = keep; }

 private:
  std::string input_;
  size_t pos_ = 0;
  std::string output_;
  bool keep_output_ = true;
};

}  // namespace hloop::nbd
