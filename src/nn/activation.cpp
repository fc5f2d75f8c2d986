#include "dptrain/nn/activation.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "dptrain/error.hpp"

namespace dptrain {

std::string to_string(Activation a) {
  switch (a) {
    case Activation::sigmoid:
      return "sigmoid";
    case Activation::tanh:
      return "tanh";
    case Activation::relu:
      return "relu";
    case Activation::softmax:
      return "softmax";
  }
  return "?";
}

Activation parse_activation(const std::string& name) {
  for (Activation a : {Activation::sigmoid, Activation::tanh, Activation::relu, Activation::softmax}) {
    if (name == to_string(a)) return a;
  }
  throw Error("unknown activation '" + name + "' (expected sigmoid, tanh, relu or softmax)");
}

void add_bias_and_activate(Matrix z, std::span<const float> bias, Activation f) {
  assert(static_cast<int>(bias.size()) == z.cols);
  const int n = z.cols;
  for (int r = 0; r < z.rows; ++r) {
    float* row = z.row(r);
    switch (f) {
      case Activation::sigmoid:
        for (int c = 0; c < n; ++c) row[c] = 1.0f / (1.0f + std::exp(-(row[c] + bias[c])));
        break;
      case Activation::tanh:
        for (int c = 0; c < n; ++c) row[c] = std::tanh(row[c] + bias[c]);
        break;
      case Activation::relu:
        for (int c = 0; c < n; ++c) row[c] = std::max(0.0f, row[c] + bias[c]);
        break;
      case Activation::softmax: {
        float top = -INFINITY;
        for (int c = 0; c < n; ++c) top = std::max(top, row[c] += bias[c]);
        float total = 0.0f;
        for (int c = 0; c < n; ++c) total += row[c] = std::exp(row[c] - top);
        const float inv = 1.0f / total;
        for (int c = 0; c < n; ++c) row[c] *= inv;
        break;
      }
    }
  }
}

void multiply_by_derivative(ConstMatrix a, Matrix delta, Activation f) {
  assert(a.rows == delta.rows && a.cols == delta.cols && f != Activation::softmax);
  const std::size_t count = a.size();
  const float* av = a.data;
  float* d = delta.data;
  switch (f) {
    case Activation::sigmoid:
      for (std::size_t i = 0; i < count; ++i) d[i] *= av[i] * (1.0f - av[i]);
      break;
    case Activation::tanh:
      for (std::size_t i = 0; i < count; ++i) d[i] *= 1.0f - av[i] * av[i];
      break;
    case Activation::relu:
      for (std::size_t i = 0; i < count; ++i) d[i] = av[i] > 0.0f ? d[i] : 0.0f;
      break;
    case Activation::softmax:
      break;
  }
}

}  // namespace dptrain
