// Test-only helpers over a LocalStore, for the tests of what writes into one
// (pack, commit, the image writer).
#pragma once

#include <set>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "format/index.h"
#include "store/local_store.h"

namespace hloop::testing {

// Index NAME of `s`, parsed. REQUIRES: it is there and parses (a test
// failure is recorded first if not).
inline format::Index LoadStoreIndex(const store::LocalStore& s, const std::string& name) {
  auto bytes = s.ReadIndex(name);
  EXPECT_TRUE(bytes.ok()) << name << ": " << bytes.status().ToString();
  auto ix = format::Index::Parse(std::move(bytes.value()), name);
  EXPECT_TRUE(ix.ok()) << ix.status().ToString();
  return std::move(ix.value());
}

// The hex names of every chunk file in `s`.
inline std::set<std::string> ChunkNames(const store::LocalStore& s) {
  std::set<std::string> out;
  auto list = s.ListChunks();
  EXPECT_TRUE(list.ok()) << list.status().ToString();
  if (list.ok())
    for (const auto& h : *list) out.insert(format::ToHex(h));
  return out;
}

}  // namespace hloop::testing
