#include "dptrain/nn/loss.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

#include "dptrain/error.hpp"

namespace dptrain {
namespace {

// log(1 + e^x) without overflow for large x or loss of precision for very negative x.
double softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))); }

// -log softmax(z)_label = logsumexp(z) - z_label, shifted by max(z) so exp never overflows.
double softmax_cross_entropy(const float* z, int classes, int label) {
  double top = -std::numeric_limits<double>::infinity();
  for (int c = 0; c < classes; ++c) top = std::max(top, double{z[c]});
  double total = 0.0;
  for (int c = 0; c < classes; ++c) total += std::exp(double{z[c]} - top);
  return top + std::log(total) - double{z[label]};
}

double row_loss(Loss loss, Activation output, const float* a, const float* z, int classes, int label) {
  double total = 0.0;
  if (loss == Loss::mse) {
    for (int c = 0; c < classes; ++c) {
      const double diff = a[c] - (c == label ? 1.0 : 0.0);
      total += 0.5 * diff * diff;
    }
  } else if (output == Activation::softmax) {
    total = z != nullptr ? softmax_cross_entropy(z, classes, label) : -std::log(double{a[label]});
  } else {
    for (int c = 0; c < classes; ++c) {
      // -log sigmoid(z) = softplus(-z) for the true class, -log(1 - sigmoid(z)) = softplus(z) otherwise.
      if (z != nullptr) {
        total += softplus(c == label ? -double{z[c]} : double{z[c]});
      } else {
        total -= std::log(c == label ? double{a[c]} : 1.0 - double{a[c]});
      }
    }
  }
  return total;
}

const float* logits_row(ConstMatrix logits, int r) { return logits.data != nullptr ? logits.row(r) : nullptr; }

}  // namespace

std::string to_string(Loss l) { return l == Loss::mse ? "mse" : "cross-entropy"; }

Loss parse_loss(const std::string& name) {
  if (name == "mse") return Loss::mse;
  if (name == "cross-entropy") return Loss::cross_entropy;
  throw Error("unknown loss '" + name + "' (expected mse or cross-entropy)");
}

double loss_sum(Loss loss, Activation output, ConstMatrix a, std::span<const std::int32_t> labels, ConstMatrix logits) {
  assert(static_cast<int>(labels.size()) >= a.rows);
  assert(logits.data == nullptr || (logits.rows == a.rows && logits.cols == a.cols));
  double total = 0.0;
  for (int r = 0; r < a.rows; ++r) total += row_loss(loss, output, a.row(r), logits_row(logits, r), a.cols, labels[r]);
  return total;
}

double loss_and_output_delta(Loss loss, Activation output, ConstMatrix a, std::span<const std::int32_t> labels,
                             float scale, Matrix delta, ConstMatrix logits) {
  assert(a.rows == delta.rows && a.cols == delta.cols);
  assert(logits.data == nullptr || (logits.rows == a.rows && logits.cols == a.cols));
  const int classes = a.cols;
  double total = 0.0;
  for (int r = 0; r < a.rows; ++r) {
    const float* ar = a.row(r);
    float* dr = delta.row(r);
    const int label = labels[r];
    total += row_loss(loss, output, ar, logits_row(logits, r), classes, label);
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
