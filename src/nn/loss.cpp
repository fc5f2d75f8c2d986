#include "dptrain/nn/loss.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

#include "dptrain/error.hpp"

namespace dptrain {
namespace {

// Keeps log() finite when a probability rounds to exactly 0 or 1 in float.
constexpr float kTiny = std::numeric_limits<float>::min();

double row_loss(Loss loss, Activation output, const float* a, int classes, int label) {
  double total = 0.0;
  if (loss == Loss::mse) {
    for (int c = 0; c < classes; ++c) {
      const double diff = a[c] - (c == label ? 1.0 : 0.0);
      total += 0.5 * diff * diff;
    }
  } else if (output == Activation::softmax) {
    total = -std::log(std::max(a[label], kTiny));
  } else {
    for (int c = 0; c < classes; ++c) {
      const float p = c == label ? a[c] : 1.0f - a[c];
      total -= std::log(std::max(p, kTiny));
    }
  }
  return total;
}

}  // namespace

std::string to_string(Loss l) { return l == Loss::mse ? "mse" : "cross-entropy"; }

Loss parse_loss(const std::string& name) {
  if (name == "mse") return Loss::mse;
  if (name == "cross-entropy") return Loss::cross_entropy;
  throw Error("unknown loss '" + name + "' (expected mse or cross-entropy)");
}

double loss_sum(Loss loss, Activation output, ConstMatrix a, std::span<const std::int32_t> labels) {
  assert(static_cast<int>(labels.size()) >= a.rows);
  double total = 0.0;
  for (int r = 0; r < a.rows; ++r) total += row_loss(loss, output, a.row(r), a.cols, labels[r]);
  return total;
}

double loss_and_output_delta(Loss loss, Activation output, ConstMatrix a, std::span<const std::int32_t> labels,
                             float scale, Matrix delta) {
  assert(a.rows == delta.rows && a.cols == delta.cols);
  const int classes = a.cols;
  double total = 0.0;
  for (int r = 0; r < a.rows; ++r) {
    const float* ar = a.row(r);
    float* dr = delta.row(r);
    const int label = labels[r];
    total += row_loss(loss, output, ar, classes, label);
    // dC/da for mse and dC/dz for cross-entropy (with its matching output) are both a - y.
    for (int c = 0; c < classes; ++c) dr[c] = scale * (ar[c] - (c == label ? 1.0f : 0.0f));
    if (loss == Loss::cross_entropy) continue;
    if (output == Activation::softmax) {
      // Softmax Jacobian: dz_j = a_j (g_j - sum_k a_k g_k).
      float weighted = 0.0f;
      for (int c = 0; c < classes; ++c) weighted += ar[c] * dr[c];
      for (int c = 0; c < classes; ++c) dr[c] = ar[c] * (dr[c] - weighted);
    } else {
      multiply_by_derivative(ConstMatrix{ar, 1, classes}, Matrix{dr, 1, classes}, output);
    }
  }
  return total;
}

}  // namespace dptrain
