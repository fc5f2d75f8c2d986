// Cross-entropy computed exactly from the logits: against a direct long-double
// computation, against finite differences of the loss (the gradient stays
// softmax - onehot), and unclamped where the network has blown up.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "dptrain/nn/mlp.hpp"

namespace dptrain {
namespace {

std::vector<float> softmax_of(const std::vector<float>& z) {
  long double top = -INFINITY, total = 0;
  for (float v : z) top = std::max<long double>(top, v);
  for (float v : z) total += std::exp(static_cast<long double>(v) - top);
  std::vector<float> a;
  for (float v : z) a.push_back(static_cast<float>(std::exp(static_cast<long double>(v) - top) / total));
  return a;
}

std::vector<float> sigmoid_of(const std::vector<float>& z) {
  std::vector<float> a;
  for (float v : z) a.push_back(static_cast<float>(1.0L / (1.0L + std::exp(-static_cast<long double>(v)))));
  return a;
}

double cross_entropy(Activation output, const std::vector<float>& z, std::int32_t label) {
  const std::vector<float> a = output == Activation::softmax ? softmax_of(z) : sigmoid_of(z);
  const int n = static_cast<int>(z.size());
  return loss_sum(Loss::cross_entropy, output, ConstMatrix{a.data(), 1, n}, std::span(&label, 1),
                  ConstMatrix{z.data(), 1, n});
}

TEST(ExactCrossEntropy, SoftmaxMatchesADirectComputation) {
  const std::vector<float> z = {1.5f, -2.0f, 0.25f, 3.0f};
  long double total = 0;
  for (float v : z) total += std::exp(static_cast<long double>(v));
  for (std::int32_t label = 0; label < 4; ++label) {
    const long double expected = std::log(total) - z[static_cast<std::size_t>(label)];
    EXPECT_NEAR(cross_entropy(Activation::softmax, z, label), static_cast<double>(expected), 1e-12) << label;
  }
}

TEST(ExactCrossEntropy, SigmoidMatchesADirectComputation) {
  const std::vector<float> z = {1.5f, -2.0f, 0.25f};
  const std::int32_t label = 1;
  long double expected = 0;
  for (int c = 0; c < 3; ++c) {
    const long double p = 1.0L / (1.0L + std::exp(-static_cast<long double>(z[static_cast<std::size_t>(c)])));
    expected -= c == label ? std::log(p) : std::log(1.0L - p);
  }
  EXPECT_NEAR(cross_entropy(Activation::sigmoid, z, label), static_cast<double>(expected), 1e-12);
}

// The gradient written by loss_and_output_delta is dC/dz: compare it with
// central differences of the exact loss in z.
TEST(ExactCrossEntropy, DeltaIsTheDerivativeOfTheLossInTheLogits) {
  for (Activation output : {Activation::softmax, Activation::sigmoid}) {
    const std::vector<float> z = {0.8f, -1.3f, 2.1f, 0.05f, -0.6f};
    const std::int32_t label = 2;
    const int n = static_cast<int>(z.size());
    const std::vector<float> a = output == Activation::softmax ? softmax_of(z) : sigmoid_of(z);
    std::vector<float> delta(z.size());
    const double loss =
        loss_and_output_delta(Loss::cross_entropy, output, ConstMatrix{a.data(), 1, n}, std::span(&label, 1), 1.0f,
                              Matrix{delta.data(), 1, n}, ConstMatrix{z.data(), 1, n});
    EXPECT_NEAR(loss, cross_entropy(output, z, label), 1e-12);
    for (std::size_t j = 0; j < z.size(); ++j) {
      std::vector<float> up = z, down = z;
      up[j] += 1e-2f;
      down[j] -= 1e-2f;
      const double numeric =
          (cross_entropy(output, up, label) - cross_entropy(output, down, label)) / (double{up[j]} - double{down[j]});
      EXPECT_NEAR(delta[j], numeric, 2e-4) << to_string(output) << " logit " << j;
      // And it is still a - onehot.
      EXPECT_FLOAT_EQ(delta[j], a[j] - (static_cast<std::int32_t>(j) == label ? 1.0f : 0.0f));
    }
  }
}

// A blown-up network: softmax's probabilities round to exactly 1 and 0. The
// old clamp reported -log(FLT_MIN) = 87.3 here, whatever the logits.
TEST(ExactCrossEntropy, AHugeLogitGivesAHugeLoss) {
  const std::vector<float> z = {1e6f, 0.0f, -3e5f};
  EXPECT_NEAR(cross_entropy(Activation::softmax, z, 1), 1e6, 1e-3);
  EXPECT_NEAR(cross_entropy(Activation::softmax, z, 2), 1.3e6, 1e-3);
  EXPECT_NEAR(cross_entropy(Activation::softmax, z, 0), 0.0, 1e-12);
  EXPECT_NEAR(cross_entropy(Activation::sigmoid, {-5e5f, 0.0f}, 0), 5e5 + std::log(2.0), 1e-3);
  // Without logits nothing is clamped either: a probability of 0 is an infinite loss.
  const float a[] = {1.0f, 0.0f, 0.0f};
  const std::int32_t label = 1;
  EXPECT_EQ(loss_sum(Loss::cross_entropy, Activation::softmax, ConstMatrix{a, 1, 3}, std::span(&label, 1)),
            std::numeric_limits<double>::infinity());
}

// Through the network: forward() keeps the logits, and output_delta() reports
// the exact loss of a model whose output layer has exploded.
TEST(ExactCrossEntropy, TheNetworkReportsTheLossOfItsLogits) {
  Mlp model(Architecture{{2, 3}, Activation::relu, Activation::softmax, Loss::cross_entropy});
  // z = W x + b with x = (1, 1): z = (2e4, 0, -1e4).
  const float w[3][2] = {{1e4f, 1e4f}, {0.0f, 0.0f}, {-5e3f, -5e3f}};
  std::fill(model.params().begin(), model.params().end(), 0.0f);
  for (int o = 0; o < 3; ++o)
    for (int i = 0; i < 2; ++i) model.params()[model.layers()[0].weight_index(o, i)] = w[o][i];
  Workspace ws(model.arch(), 1);
  Matrix in = ws.input(1);
  in(0, 0) = in(0, 1) = 1.0f;
  model.forward(ws, 1);
  const ConstMatrix z = model.logits(ws, 1);
  EXPECT_FLOAT_EQ(z(0, 0), 2e4f);
  EXPECT_FLOAT_EQ(z(0, 2), -1e4f);
  const std::int32_t label = 2;
  EXPECT_NEAR(model.output_delta(ws, 1, std::span(&label, 1), 1.0f), 3e4, 1e-6);
}

}  // namespace
}  // namespace dptrain
