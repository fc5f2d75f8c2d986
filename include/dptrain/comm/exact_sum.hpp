#pragma once
// Sums whose result does not depend on how the addends are grouped.
//
// Float addition is not associative: summing the same shard contributions as
// one rank, or as P ranks whose totals MPI then adds in its own order, rounds
// differently. Here every addend is first rounded to a multiple of 2^-bits
// and held as a 64-bit integer; integer addition is associative and
// commutative, so any grouping (per rank, then MPI_SUM over ranks in any
// tree) gives the same bits. The price: addends below 2^-(bits+1) vanish, and
// an addend beyond `limit` is refused (counted), which the trainer treats as
// divergence.
#include <cstdint>
#include <span>

namespace dptrain::exact {

// Gradients: 2^-32 resolution (2.3e-10), addends up to 2^19 in magnitude.
inline constexpr int kGradientBits = 32;
// Loss sums and other per-pass statistics: 2^-16 resolution, up to 2^35.
inline constexpr int kStatisticBits = 16;

// The largest magnitude accepted at `bits`: the rounding below is exact for
// |x * 2^bits| < 2^51, and 2^12 such addends still fit in an int64.
double limit(int bits);

// sums[i] += round(values[i] * 2^bits). Returns how many values were refused
// (not finite, or beyond limit(bits)); those add nothing. Allocates nothing.
std::int64_t accumulate(std::span<const float> values, std::span<std::int64_t> sums, int bits);
std::int64_t accumulate(double value, std::int64_t& sum, int bits);

// out[i] = sums[i] * 2^-bits
void to_floats(std::span<const std::int64_t> sums, std::span<float> out, int bits);
double to_double(std::int64_t sum, int bits);

}  // namespace dptrain::exact
