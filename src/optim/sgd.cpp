#include "dptrain/optim/sgd.hpp"

#include <cassert>

namespace dptrain {

Sgd::Sgd(std::size_t num_params, SgdSettings settings)
    : settings_(settings), velocity_(settings.momentum != 0.0f ? num_params : 0, 0.0f) {}

void Sgd::step(std::span<float> params, std::span<const float> grads, float lr) {
  assert(params.size() == grads.size());
  const float mu = settings_.momentum;
  const float wd = settings_.weight_decay;
  const std::size_t n = params.size();
  if (mu == 0.0f) {
    for (std::size_t i = 0; i < n; ++i) params[i] -= lr * (grads[i] + wd * params[i]);
    return;
  }
  float* v = velocity_.data();
  if (settings_.nesterov) {
    for (std::size_t i = 0; i < n; ++i) {
      const float g = grads[i] + wd * params[i];
      v[i] = mu * v[i] + g;
      params[i] -= lr * (g + mu * v[i]);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = mu * v[i] + grads[i] + wd * params[i];
      params[i] -= lr * v[i];
    }
  }
}

}  // namespace dptrain
