#pragma once
// Counter-based randomness: every random choice is a pure function of
// (seed, purpose, index...), so ranks agree without communicating and a
// resumed run needs no generator state, only counters.
#include <cstdint>
#include <span>

namespace dptrain {

std::uint64_t mix64(std::uint64_t x);

// A small generator (SplitMix64) whose start is derived from a key.
class Rng {
 public:
  Rng(std::uint64_t seed, std::uint64_t purpose, std::uint64_t a = 0, std::uint64_t b = 0);
  std::uint64_t next();
  double uniform();                          // [0, 1)
  double normal();                           // N(0, 1)
  std::uint64_t below(std::uint64_t bound);  // [0, bound)

 private:
  std::uint64_t state_;
};

// Fisher-Yates shuffle of `values` driven by `rng`.
void shuffle(std::span<std::uint32_t> values, Rng& rng);

namespace purpose {
inline constexpr std::uint64_t init = 1;
inline constexpr std::uint64_t epoch_order = 2;
inline constexpr std::uint64_t noise = 3;
}  // namespace purpose

}  // namespace dptrain
