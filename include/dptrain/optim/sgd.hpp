#pragma once
// Mini-batch SGD with optional (Nesterov) momentum and L2 weight decay, over
// the flat parameter buffer. Same rule as PyTorch's SGD:
//   g = grad + weight_decay * w;  v = momentum * v + g;
//   w -= lr * (nesterov ? g + momentum * v : v)
#include <span>
#include <vector>

#include "dptrain/optim/settings.hpp"

namespace dptrain {

// The rule above over params, grads and velocity (unused without momentum) in
// one fused pass; any slice of the buffers may be updated on its own.
void sgd_update(std::span<float> params, std::span<const float> grads, std::span<float> velocity, float lr,
                const SgdSettings& settings);

class Sgd {
 public:
  Sgd(std::size_t num_params, SgdSettings settings);
  void step(std::span<float> params, std::span<const float> grads, float lr);

  const SgdSettings& settings() const { return settings_; }
  std::span<float> velocity() { return velocity_; }  // momentum buffer, the params' layout
  std::span<const float> velocity() const { return velocity_; }

 private:
  SgdSettings settings_;
  std::vector<float> velocity_;
};

}  // namespace dptrain
