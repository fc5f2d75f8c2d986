#include "dptrain/comm/exact_sum.hpp"

#include <cassert>
#include <cmath>
#include <cstring>

namespace dptrain::exact {
namespace {

// Adding 1.5 * 2^52 to a double of magnitude below 2^51 leaves its integer
// part, rounded to nearest even, in the low mantissa bits: a rounding that is
// the same on every machine with IEEE doubles, and that the compiler can
// vectorise (std::llrint cannot be, without AVX-512).
constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52

inline std::int64_t round_to_int(double scaled) {
  const double shifted = scaled + kMagic;
  std::int64_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  std::int64_t magic_bits;
  std::memcpy(&magic_bits, &kMagic, sizeof magic_bits);
  return bits - magic_bits;
}

inline std::int64_t wrap_add(std::int64_t a, std::int64_t b) {
  // Unsigned arithmetic: defined on overflow (which the limits prevent anyway).
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}

}  // namespace

double limit(int bits) { return std::ldexp(1.0, 51 - bits); }

std::int64_t accumulate(std::span<const float> values, std::span<std::int64_t> sums, int bits) {
  assert(values.size() == sums.size());
  const double scale = std::ldexp(1.0, bits);
  const double bound = std::ldexp(1.0, 51);
  std::int64_t refused = 0;
  const std::size_t n = values.size();
  for (std::size_t i = 0; i < n; ++i) {
    const double scaled = static_cast<double>(values[i]) * scale;  // exact: a float has 24 bits
    // `!(x < bound)` also catches NaN.
    const bool ok = std::fabs(scaled) < bound;
    refused += ok ? 0 : 1;
    sums[i] = wrap_add(sums[i], ok ? round_to_int(scaled) : 0);
  }
  return refused;
}

std::int64_t accumulate(double value, std::int64_t& sum, int bits) {
  const double scaled = value * std::ldexp(1.0, bits);
  if (!(std::fabs(scaled) < std::ldexp(1.0, 51))) return 1;
  sum = wrap_add(sum, round_to_int(scaled));
  return 0;
}

void to_floats(std::span<const std::int64_t> sums, std::span<float> out, int bits) {
  assert(sums.size() == out.size());
  const double scale = std::ldexp(1.0, -bits);
  for (std::size_t i = 0; i < sums.size(); ++i) out[i] = static_cast<float>(static_cast<double>(sums[i]) * scale);
}

double to_double(std::int64_t sum, int bits) { return static_cast<double>(sum) * std::ldexp(1.0, -bits); }

}  // namespace dptrain::exact
