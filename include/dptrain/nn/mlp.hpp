#pragma once
// A multilayer perceptron a_{i+1} = f(W_i a_i + b_i) whose parameters live in
// one flat buffer. A layer is a pair of offsets into that buffer, so the same
// offsets address its gradient, its momentum and its checkpoint datasets.
//
// Buffer layout, layer by layer: W_i [out x in] row-major (the first layer's
// input-major, W_0^T [in x out]: LayerSlice::input_major), then b_i [out].
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dptrain/nn/activation.hpp"
#include "dptrain/nn/loss.hpp"
#include "dptrain/nn/sparse_input.hpp"
#include "dptrain/tensor.hpp"
#include "dptrain/util/relocatable_buffer.hpp"

namespace dptrain {

// The most parameters a network may have: 4 GiB of float32 per buffer
// (parameters, gradients, velocities). Past it the sizes are a typo or a
// crafted checkpoint, and the first allocation would fail with a bare bad_alloc.
inline constexpr std::size_t kMaxParameters = std::size_t{1} << 30;

struct Architecture {
  std::vector<int> layers;  // sizes, input first: {784, 16, 16, 10}
  Activation hidden = Activation::sigmoid;
  Activation output = Activation::sigmoid;
  Loss loss = Loss::mse;

  void validate() const;                // throws Error naming the bad value (kMaxParameters included)
  std::size_t parameter_count() const;  // weights and biases; kMaxParameters + 1 when above it
  int inputs() const { return layers.front(); }
  int outputs() const { return layers.back(); }
  std::string layers_string() const;  // "784,16,16,10"
  bool operator==(const Architecture&) const = default;
};

std::vector<int> parse_layers(const std::string& text);  // "784,16,16,10"

struct LayerSlice {
  int in = 0;
  int out = 0;
  std::size_t weight_offset = 0;  // W [out x in], or W^T [in x out] if input_major
  std::size_t bias_offset = 0;    // b [out]
  // The first layer's W is stored input-major, W^T [in x out], in the
  // parameter, gradient and velocity buffers alike, so that one input's
  // weights are one row: the sparse first layer (sparse_input.hpp) reads
  // them by input. Checkpoints store every W as [out x in] (io/checkpoint.cpp
  // converts), so the layout is this process's business only.
  bool input_major = false;
  // Where W[o][i] is in a buffer of this layout.
  std::size_t weight_index(int o, int i) const {
    return weight_offset + (input_major ? static_cast<std::size_t>(i) * out + o : static_cast<std::size_t>(o) * in + i);
  }
};

// Where each layer's W and b sit in the one parameter buffer (and in the
// gradient and velocity buffers, which share its layout): layer by layer, W
// then b, ending at arch.parameter_count(). No buffer is allocated, so a
// checkpoint's layout can be checked before anything sized by it exists.
std::vector<LayerSlice> layer_slices(const Architecture& arch);

// Told by Mlp::backpropagate as parts of the gradient buffer become final.
// Backprop finishes gradients from the top of the buffer (the last layer)
// down, so what is final is always a suffix: grads[offset, end).
class GradientSink {
 public:
  virtual ~GradientSink() = default;
  // grads[offset, end) is final: called after each layer's gradients, and
  // again with the same offset after its input gradient, for a sink that
  // has to poll to make progress.
  virtual void ready_from(std::size_t offset) = 0;
};

// Activations and deltas for up to max_rows samples, allocated once so that
// a training step allocates nothing.
class Workspace {
 public:
  Workspace(const Architecture& arch, int max_rows);
  int max_rows() const { return max_rows_; }
  Matrix input(int rows);                                     // A_0, to be filled by the data pipeline
  bool input_was_sparse() const { return input_is_sparse_; }  // the last forward() took the sparse first layer

 private:
  friend class Mlp;
  int max_rows_;
  std::vector<std::vector<float>> activations_;  // A_0 .. A_L, each [max_rows x n_i]
  std::vector<std::vector<float>> deltas_;       // dC/dZ_1 .. dC/dZ_L
  std::vector<float> ones_;                      // [max_rows] of 1, for bias gradients
  // Z_L [max_rows x n_L], the output layer's pre-activations: the exact
  // cross-entropy needs them, A_L = softmax(Z_L) has lost them where it underflows.
  std::vector<float> logits_;
  SparseInput sparse_input_;      // the nonzero inputs of the rows of the last forward()
  bool input_is_sparse_ = false;  // whether that forward() took the sparse first layer
};

class Mlp {
 public:
  explicit Mlp(Architecture arch);

  const Architecture& arch() const { return arch_; }
  const std::vector<LayerSlice>& layers() const { return layers_; }
  std::size_t num_params() const { return params_.size(); }
  std::span<float> params() { return params_.values(); }
  std::span<const float> params() const { return params_.values(); }
  // From now on the parameters are `storage` (num_params() floats, which the
  // caller has filled with params()), e.g. a node's shared-memory copy that
  // its ranks update slice by slice; this model's own buffer is released.
  void use_shared_params(std::span<float> storage);

  // W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's nn.Linear default
  // (its published accuracies for these networks are what we compare with);
  // a pure function of the seed, so every rank builds the same model.
  void initialize(std::uint64_t seed);

  // Forward pass over rows [first_row, first_row + rows) of ws.input(), in
  // calls of exactly those rows; returns their A_L. (OpenBLAS's result for a
  // row depends on the rows it is computed with: the exact mode relies on a
  // micro-batch always being computed alone, as first_row lets it be.)
  ConstMatrix forward(Workspace& ws, int rows, int first_row = 0) const;
  // After forward(): Z_L, the output layer's pre-activations (loss_sum's logits), of the same rows.
  ConstMatrix logits(const Workspace& ws, int rows, int first_row = 0) const;

  // After forward(): writes the gradient of scale * (sum of the rows' losses)
  // into grads (same layout as params) and returns that sum of losses.
  double backward(Workspace& ws, int rows, std::span<const std::int32_t> labels, float scale,
                  std::span<float> grads) const;
  // backward() in its two halves. output_delta: the loss sum, and the
  // output layer's delta for it. backpropagate: the gradients from that
  // delta, reported to `sink` (if any) as they become final.
  // Both take the same rows as forward(); labels are those rows' labels.
  double output_delta(Workspace& ws, int rows, std::span<const std::int32_t> labels, float scale,
                      int first_row = 0) const;
  void backpropagate(Workspace& ws, int rows, std::span<float> grads, GradientSink* sink = nullptr,
                     int first_row = 0) const;

  // Cuts a buffer of `total` floats (the gradients, then total - num_params()
  // extra values) into buckets of whole layers, each of at least
  // bucket_floats but the bottom one, from the top down: descending offsets
  // from total to 0. Whole layers, because a weight-gradient GEMM cut into
  // blocks of rows may round differently from the whole one.
  std::vector<std::size_t> bucket_cuts(std::size_t total, std::size_t bucket_floats) const;

  // Whether the first layer skips zero inputs when a call's rows are sparse
  // enough (kSparseInputMaxDensity), the layer wide enough
  // (kSparseInputMinOutputs) and OpenBLAS has one thread (the sparse kernels
  // run on the calling thread; sgemm on two beats them). On by default.
  void set_sparse_input(bool allowed) { sparse_input_allowed_ = allowed; }

  // The layer's W as stored: [out x in], or W^T [in x out] if input_major.
  ConstMatrix weight(std::span<const float> buffer, std::size_t layer) const;
  std::span<const float> bias(std::span<const float> buffer, std::size_t layer) const;

 private:
  Architecture arch_;
  std::vector<LayerSlice> layers_;
  RelocatableBuffer<float> params_;
  bool sparse_input_allowed_ = true;
};

}  // namespace dptrain
