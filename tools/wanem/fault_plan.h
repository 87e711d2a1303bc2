// Per-connection fault decisions for hloop-wanem, drawn from a seeded RNG.
//
// The generator is SplitMix64 with hand-written conversions (not <random>'s
// distributions, whose output differs between standard libraries), so a seed
// gives the same faults on every build.
#pragma once

#include <cstdint>
#include <limits>

namespace hloop::wanem {

// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, good enough for tests.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1), 53 bits.
  double NextDouble() { return double(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n) (n > 0); the modulo bias is irrelevant here.
  uint64_t Below(uint64_t n) { return Next() % n; }

 private:
  uint64_t state_;
};

// What goes wrong on one connection. Offsets count bytes of the
// server->client stream; kNever means the fault is not planned.
struct FaultPlan {
  static constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
  uint64_t reset_at = kNever;
  uint64_t stall_at = kNever;
  uint64_t flip_at = kNever;
  uint8_t flip_xor = 0;  // nonzero when flip_at is planned

  // Connection number `conn_id` (0, 1, ... in accept order) under `seed`.
  // Each connection draws the same number of values whatever the
  // probabilities, so changing one probability does not move the others.
  // REQUIRES: window > 0.
  static FaultPlan Draw(uint64_t seed, uint64_t conn_id, double reset_prob, double stall_prob,
                        double flip_prob, uint64_t window) {
    SplitMix64 rng(seed ^ (conn_id * 0xd1b54a32d192ed03ULL));
    FaultPlan p;
    double u_reset = rng.NextDouble(), u_stall = rng.NextDouble(), u_flip = rng.NextDouble();
    uint64_t at_reset = rng.Below(window), at_stall = rng.Below(window),
             at_flip = rng.Below(window);
    uint8_t x = uint8_t(1 + rng.Below(255));
    if (u_reset < reset_prob) p.reset_at = at_reset;
    if (u_stall < stall_prob) p.stall_at = at_stall;
    if (u_flip < flip_prob) {
      p.flip_at = at_flip;
      p.flip_xor = x;
    }
    return p;
  }
};

}  // namespace hloop::wanem
