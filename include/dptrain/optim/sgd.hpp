#pragma once
// Mini-batch SGD with optional (Nesterov) momentum and L2 weight decay, over
// the flat parameter buffer. Same rule as PyTorch's SGD:
//   g = grad + weight_decay * w;  v = momentum * v + g;
//   w -= lr * (nesterov ? g + momentum * v : v)
#include <span>

#include "dptrain/optim/settings.hpp"
#include "dptrain/util/relocatable_buffer.hpp"

namespace dptrain {

// The rule above over params, grads and velocity (unused without momentum) in
// one fused pass; any slice of the buffers may be updated on its own.
void sgd_update(std::span<float> params, std::span<const float> grads, std::span<float> velocity, float lr,
                const SgdSettings& settings);

class Sgd {
 public:
  Sgd(std::size_t num_params, SgdSettings settings);
  void step(std::span<float> params, std::span<const float> grads, float lr);
  // The same rule on elements [begin, begin + slice_grads.size()) of params
  // and velocity() only, slice_grads being their gradients: ranks that share
  // one copy of the parameters each update a slice.
  void step_slice(std::span<float> params, std::span<const float> slice_grads, float lr, std::size_t begin);

  const SgdSettings& settings() const { return settings_; }
  // The momentum buffer, in the params' layout (empty without momentum).
  std::span<float> velocity() { return velocity_.values(); }
  std::span<const float> velocity() const { return velocity_.values(); }
  // As Mlp::use_shared_params, for the momentum buffer (a no-op without momentum).
  void use_shared_velocity(std::span<float> storage);

 private:
  SgdSettings settings_;
  RelocatableBuffer<float> velocity_;
};

}  // namespace dptrain
