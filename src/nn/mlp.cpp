#include "dptrain/nn/mlp.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "dptrain/blas.hpp"
#include "dptrain/error.hpp"
#include "dptrain/util/random.hpp"
#include "dptrain/util/text.hpp"

namespace dptrain {

std::vector<int> parse_layers(const std::string& text) {
  std::vector<int> sizes;
  // Digits only: stol alone would take " 16" and "+10", and getline drops the
  // empty item after a trailing comma.
  std::stringstream in(text + ",");
  std::string item;
  while (std::getline(in, item, ',')) {
    const bool digits = !item.empty() && item.size() <= 7 &&
                        std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; });
    const long value = digits ? std::stol(item) : 0;
    if (value < 1 || value > 1'000'000) {
      throw Error("--layers '" + text + "': '" + item +
                  "' is not a layer size (expected integers 1..1000000 separated by commas, "
                  "e.g. 784,16,16,10)");
    }
    sizes.push_back(static_cast<int>(value));
  }
  return sizes;
}

std::string Architecture::layers_string() const { return join(layers, ","); }

std::size_t Architecture::parameter_count() const {
  // Sizes are ints, so one layer's count fits a size_t; stopping just past
  // the limit keeps the sum of thousands of them from wrapping.
  std::size_t total = 0;
  for (std::size_t i = 0; i + 1 < layers.size() && total <= kMaxParameters; ++i) {
    total += static_cast<std::size_t>(layers[i]) * static_cast<std::size_t>(layers[i + 1]) +
             static_cast<std::size_t>(layers[i + 1]);
  }
  return std::min(total, kMaxParameters + 1);
}

void Architecture::validate() const {
  if (layers.size() < 2) {
    throw Error("--layers '" + layers_string() + "': needs at least an input and an output size, e.g. 784,16,16,10");
  }
  for (int n : layers) {
    if (n < 1) throw Error("--layers '" + layers_string() + "': sizes must be positive");
  }
  if (parameter_count() > kMaxParameters) {
    throw Error("--layers '" + layers_string() + "': more than " + std::to_string(kMaxParameters) +
                " parameters, the most dptrain trains (4 GiB of float32 for each of parameters, gradients and "
                "velocities)");
  }
  if (hidden == Activation::softmax) {
    throw Error("--activation softmax: hidden layers take sigmoid, tanh or relu");
  }
  if (output != Activation::sigmoid && output != Activation::softmax) {
    throw Error("--output " + to_string(output) + ": the output layer takes sigmoid or softmax");
  }
  if (outputs() < 2) {
    throw Error("--layers '" + layers_string() + "': the output layer needs at least 2 classes");
  }
}

Workspace::Workspace(const Architecture& arch, int max_rows)
    : max_rows_(max_rows),
      sparse_input_(max_rows, arch.inputs(), arch.layers.size() > 1 && arch.layers[1] >= kSparseInputMinOutputs) {
  for (int n : arch.layers) activations_.emplace_back(static_cast<std::size_t>(max_rows) * n);
  for (std::size_t i = 1; i < arch.layers.size(); ++i) {
    deltas_.emplace_back(static_cast<std::size_t>(max_rows) * arch.layers[i]);
  }
  ones_.assign(max_rows, 1.0f);
  logits_.assign(static_cast<std::size_t>(max_rows) * arch.outputs(), 0.0f);
}

Matrix Workspace::input(int rows) {
  return {activations_.front().data(), rows, static_cast<int>(activations_.front().size() / max_rows_)};
}

std::vector<LayerSlice> layer_slices(const Architecture& arch) {
  std::vector<LayerSlice> slices;
  std::size_t offset = 0;
  for (std::size_t i = 0; i + 1 < arch.layers.size(); ++i) {
    LayerSlice layer;
    layer.in = arch.layers[i];
    layer.out = arch.layers[i + 1];
    layer.weight_offset = offset;
    layer.input_major = i == 0;
    offset += static_cast<std::size_t>(layer.in) * layer.out;
    layer.bias_offset = offset;
    offset += layer.out;
    slices.push_back(layer);
  }
  return slices;
}

Mlp::Mlp(Architecture arch) : arch_(std::move(arch)) {
  arch_.validate();
  layers_ = layer_slices(arch_);
  params_ = RelocatableBuffer<float>(arch_.parameter_count());  // validated: at most kMaxParameters
}

void Mlp::use_shared_params(std::span<float> storage) { params_.relocate(storage, "shared parameters"); }

void Mlp::initialize(std::uint64_t seed) {
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const LayerSlice& layer = layers_[i];
    const double bound = 1.0 / std::sqrt(static_cast<double>(layer.in));
    Rng rng(seed, purpose::init, i);
    // Drawn in W's [out x in] order, then b, whatever the layout: a seed
    // gives the same network in every layout.
    const auto draw = [&] { return static_cast<float>(bound * (2.0 * rng.uniform() - 1.0)); };
    for (int o = 0; o < layer.out; ++o)
      for (int k = 0; k < layer.in; ++k) params()[layer.weight_index(o, k)] = draw();
    for (int o = 0; o < layer.out; ++o) params()[layer.bias_offset + static_cast<std::size_t>(o)] = draw();
  }
}

ConstMatrix Mlp::weight(std::span<const float> buffer, std::size_t layer) const {
  const LayerSlice& l = layers_[layer];
  return l.input_major ? ConstMatrix{buffer.data() + l.weight_offset, l.in, l.out}
                       : ConstMatrix{buffer.data() + l.weight_offset, l.out, l.in};
}

std::span<const float> Mlp::bias(std::span<const float> buffer, std::size_t layer) const {
  const LayerSlice& l = layers_[layer];
  return buffer.subspan(l.bias_offset, l.out);
}

ConstMatrix Mlp::forward(Workspace& ws, int rows, int first_row) const {
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const LayerSlice& l = layers_[i];
    ConstMatrix x{ws.activations_[i].data() + static_cast<std::size_t>(first_row) * l.in, rows, l.in};
    Matrix z{ws.activations_[i + 1].data() + static_cast<std::size_t>(first_row) * l.out, rows, l.out};
    if (!l.input_major) {
      // Z[rows x out] = X[rows x in] * W^T[in x out]   (W stored [out x in])
      blas::gemm_a_bt(x, weight(params(), i), z, 1.0f, 0.0f);
    } else {
      ws.input_is_sparse_ = sparse_input_allowed_ && l.out >= kSparseInputMinOutputs && blas::threads() == 1 &&
                            ws.sparse_input_.list_rows(x);
      if (ws.input_is_sparse_)
        ws.sparse_input_.forward(weight(params(), i), z);  // the same product over X's nonzeros
      else
        // Z[rows x out] = X[rows x in] * W^T[in x out]   (stored so)
        blas::gemm_a_b(x, weight(params(), i), z, 1.0f, 0.0f);
    }
    const bool last = i + 1 == layers_.size();
    if (last) {
      // Keep Z_L = X W^T + b before the output activation overwrites it (same float sums as below).
      const std::span<const float> b = bias(params(), i);
      for (int r = 0; r < rows; ++r) {
        float* logits = ws.logits_.data() + static_cast<std::size_t>(first_row + r) * l.out;
        for (int c = 0; c < l.out; ++c) logits[c] = z(r, c) + b[static_cast<std::size_t>(c)];
      }
    }
    add_bias_and_activate(z, bias(params(), i), last ? arch_.output : arch_.hidden);
  }
  return {ws.activations_.back().data() + static_cast<std::size_t>(first_row) * arch_.outputs(), rows, arch_.outputs()};
}

ConstMatrix Mlp::logits(const Workspace& ws, int rows, int first_row) const {
  return {ws.logits_.data() + static_cast<std::size_t>(first_row) * arch_.outputs(), rows, arch_.outputs()};
}

double Mlp::backward(Workspace& ws, int rows, std::span<const std::int32_t> labels, float scale,
                     std::span<float> grads) const {
  const double loss = output_delta(ws, rows, labels, scale);
  backpropagate(ws, rows, grads);
  return loss;
}

double Mlp::output_delta(Workspace& ws, int rows, std::span<const std::int32_t> labels, float scale,
                         int first_row) const {
  const std::size_t offset = static_cast<std::size_t>(first_row) * arch_.outputs();
  ConstMatrix output{ws.activations_.back().data() + offset, rows, arch_.outputs()};
  Matrix top_delta{ws.deltas_.back().data() + offset, rows, arch_.outputs()};
  return loss_and_output_delta(arch_.loss, arch_.output, output, labels, scale, top_delta, logits(ws, rows, first_row));
}

void Mlp::backpropagate(Workspace& ws, int rows, std::span<float> grads, GradientSink* sink, int first_row) const {
  const auto first = static_cast<std::size_t>(first_row);
  for (std::size_t i = layers_.size(); i-- > 0;) {
    const LayerSlice& l = layers_[i];
    ConstMatrix delta{ws.deltas_[i].data() + first * l.out, rows, l.out};
    ConstMatrix x{ws.activations_[i].data() + first * l.in, rows, l.in};
    if (!l.input_major) {
      // dW[out x in] = delta^T[out x rows] * X[rows x in]
      blas::gemm_at_b(delta, x, Matrix{grads.data() + l.weight_offset, l.out, l.in}, 1.0f, 0.0f);
    } else {
      const Matrix grad_w_t{grads.data() + l.weight_offset, l.in, l.out};
      if (ws.input_is_sparse_) {
        ws.sparse_input_.list_columns();
        ws.sparse_input_.weight_gradient(delta, grad_w_t);  // the same product over X's nonzeros
      } else {
        // dW^T[in x out] = X^T[in x rows] * delta[rows x out]
        blas::gemm_at_b(x, delta, grad_w_t, 1.0f, 0.0f);
      }
    }
    // db[out] = delta^T[out x rows] * 1[rows]
    blas::gemv_at_x(delta, ws.ones_, grads.subspan(l.bias_offset, l.out));
    if (sink) sink->ready_from(l.weight_offset);
    if (i == 0) break;  // the inputs need no gradient (and only the first layer is input-major)
    Matrix below{ws.deltas_[i - 1].data() + first * l.in, rows, l.in};
    // dX[rows x in] = delta[rows x out] * W[out x in]
    blas::gemm_a_b(delta, weight(params(), i), below, 1.0f, 0.0f);
    multiply_by_derivative(x, below, arch_.hidden);
    if (sink) sink->ready_from(l.weight_offset);
  }
}

std::vector<std::size_t> Mlp::bucket_cuts(std::size_t total, std::size_t bucket_floats) const {
  std::vector<std::size_t> cuts{total};
  std::size_t filled = total - num_params();  // the extra values ride in the top bucket
  for (std::size_t i = layers_.size(); i-- > 1;) {
    const LayerSlice& l = layers_[i];
    filled += static_cast<std::size_t>(l.in) * l.out + l.out;
    if (bucket_floats > 0 && filled >= bucket_floats) {
      cuts.push_back(l.weight_offset);
      filled = 0;
    }
  }
  cuts.push_back(0);
  return cuts;
}

}  // namespace dptrain
