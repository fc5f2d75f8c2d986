// Exact sums and the per-row GEMM behaviour the exact mode relies on.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "dptrain/blas.hpp"
#include "dptrain/comm/exact_sum.hpp"
#include "dptrain/nn/mlp.hpp"
#include "dptrain/util/random.hpp"

namespace dptrain {
namespace {

std::vector<float> random_values(std::size_t n, std::uint64_t seed, double scale) {
  Rng rng(seed, 99);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(scale * (2.0 * rng.uniform() - 1.0));
  return v;
}

TEST(ExactSum, AnyGroupingGivesTheSameBits) {
  // 12 addends of mixed magnitudes, summed as 1, 2, 3, 4 or 12 groups whose
  // totals are then added in reverse: the float results are identical.
  const std::size_t n = 1000;
  std::vector<std::vector<float>> addends;
  for (std::uint64_t k = 0; k < 12; ++k) addends.push_back(random_values(n, k, k % 3 == 0 ? 1e3 : 1e-4));
  std::vector<float> reference;
  for (int groups : {1, 2, 3, 4, 12}) {
    std::vector<std::vector<std::int64_t>> partial(static_cast<std::size_t>(groups), std::vector<std::int64_t>(n, 0));
    for (std::size_t k = 0; k < addends.size(); ++k) {
      EXPECT_EQ(exact::accumulate(addends[k], partial[k % static_cast<std::size_t>(groups)], exact::kGradientBits), 0);
    }
    std::vector<std::int64_t> total(n, 0);
    for (std::size_t g = partial.size(); g-- > 0;)
      for (std::size_t i = 0; i < n; ++i) total[i] += partial[g][i];
    std::vector<float> result(n);
    exact::to_floats(total, result, exact::kGradientBits);
    if (reference.empty()) reference = result;
    EXPECT_EQ(std::memcmp(result.data(), reference.data(), n * sizeof(float)), 0) << groups << " groups";
  }
  // And the exact sum is within the rounding of 12 addends of the true sum.
  for (std::size_t i = 0; i < n; ++i) {
    double truth = 0;
    for (const auto& a : addends) truth += a[i];
    EXPECT_NEAR(reference[i], truth, 12 * std::ldexp(1.0, -exact::kGradientBits) + 1e-7 * std::abs(truth));
  }
}

TEST(ExactSum, NonFiniteAndOutOfRangeValuesAreRefusedNotAdded) {
  std::vector<std::int64_t> sums(4, 0);
  const float big = static_cast<float>(2 * exact::limit(exact::kGradientBits));
  const std::vector<float> values = {1.5f, std::numeric_limits<float>::quiet_NaN(),
                                     std::numeric_limits<float>::infinity(), big};
  EXPECT_EQ(exact::accumulate(values, sums, exact::kGradientBits), 3);
  EXPECT_EQ(sums[0], static_cast<std::int64_t>(1.5 * std::ldexp(1.0, exact::kGradientBits)));
  EXPECT_EQ(sums[1] | sums[2] | sums[3], 0);
  std::int64_t loss = 0;
  EXPECT_EQ(exact::accumulate(1e300, loss, exact::kStatisticBits), 1);
  EXPECT_EQ(exact::accumulate(-2.25, loss, exact::kStatisticBits), 0);
  EXPECT_EQ(exact::to_double(loss, exact::kStatisticBits), -2.25);
}

TEST(ExactSum, RoundsToNearestEven) {
  std::vector<std::int64_t> sums(3, 0);
  const float unit = std::ldexp(1.0f, -exact::kGradientBits);
  exact::accumulate(std::vector<float>{0.5f * unit, 1.5f * unit, -2.5f * unit}, sums, exact::kGradientBits);
  EXPECT_EQ(sums, (std::vector<std::int64_t>{0, 2, -2}));
}

// The exact mode computes each micro-batch alone, at some row offset of the
// rank's workspace. Its rows must come out the same whatever the offset and
// whatever rows sit around it: the GEMMs see a pointer and a row count, and
// OpenBLAS packs its operands, so the address must not matter.
// With MNIST-like inputs (about 15% nonzero) the first layer takes the sparse
// kernels instead (asserted below), whose sums must be as independent of the
// workspace; the rows around it are dense, so a choice made for the whole
// workspace would show.
class MicroBatch : public ::testing::TestWithParam<bool> {};

TEST_P(MicroBatch, ResultsDoNotDependOnWhereInTheWorkspaceItSits) {
  const bool sparse = GetParam();
  const Architecture arch{{784, 64, 32, 10}, Activation::relu, Activation::softmax, Loss::cross_entropy};
  Mlp model(arch);
  model.initialize(5);
  const int rows = 7;
  std::vector<float> pixels = random_values(static_cast<std::size_t>(rows) * 784, 1, 1.0);
  if (sparse) {
    Rng keep(3, 95);
    for (float& p : pixels) p = keep.uniform() < 0.15 ? std::abs(p) : 0.0f;
  }
  const std::vector<std::int32_t> labels = {0, 3, 9, 1, 1, 4, 7};
  auto gradients_at = [&](int first_row, int workspace_rows) {
    Workspace ws(arch, workspace_rows);
    Matrix input = ws.input(workspace_rows);
    const std::vector<float> noise = random_values(input.size(), 7 + static_cast<std::uint64_t>(first_row), 1.0);
    std::copy(noise.begin(), noise.end(), input.data);  // other micro-batches' rows
    std::copy(pixels.begin(), pixels.end(), input.row(first_row));
    model.forward(ws, rows, first_row);
    EXPECT_EQ(ws.input_was_sparse(), sparse && blas::threads() == 1);
    std::vector<float> grads(model.num_params());
    const double loss = model.output_delta(ws, rows, labels, 0.1f, first_row);
    model.backpropagate(ws, rows, grads, nullptr, first_row);
    grads.push_back(static_cast<float>(loss));
    return grads;
  };
  const std::vector<float> alone = gradients_at(0, rows);
  for (const auto& [first, total] : {std::pair{0, 64}, {5, 12}, {13, 20}, {57, 64}}) {
    const std::vector<float> placed = gradients_at(first, total);
    EXPECT_EQ(std::memcmp(placed.data(), alone.data(), alone.size() * sizeof(float)), 0)
        << "rows " << first << ".." << first + rows << " of " << total;
  }
}
INSTANTIATE_TEST_SUITE_P(DenseAndSparseInputs, MicroBatch, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Sparse" : "Dense"; });

}  // namespace
}  // namespace dptrain
