#include "dptrain/util/random.hpp"

#include <cmath>
#include <numbers>
#include <utility>

namespace dptrain {

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

Rng::Rng(std::uint64_t seed, std::uint64_t purpose, std::uint64_t a, std::uint64_t b)
    : state_(mix64(mix64(mix64(mix64(seed) ^ purpose) ^ a) ^ b)) {}

std::uint64_t Rng::next() { return mix64(state_ += 0x9e3779b97f4a7c15ULL); }

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double Rng::normal() {
  // Box-Muller; 1 - u keeps the logarithm finite.
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::uint64_t Rng::below(std::uint64_t bound) {
  // Multiply-high maps 64 random bits onto [0, bound); the bias is < bound / 2^64.
  __extension__ using u128 = unsigned __int128;
  return static_cast<std::uint64_t>((static_cast<u128>(next()) * bound) >> 64);
}

void shuffle(std::span<std::uint32_t> values, Rng& rng) {
  for (std::size_t i = values.size(); i > 1; --i) {
    std::swap(values[i - 1], values[rng.below(i)]);
  }
}

}  // namespace dptrain
