#pragma once
// Mini-batch SGD with optional (Nesterov) momentum and L2 weight decay, over
// the flat parameter buffer. Same rule as PyTorch's SGD:
//   g = grad + weight_decay * w;  v = momentum * v + g;
//   w -= lr * (nesterov ? g + momentum * v : v)
#include <span>

#include "dptrain/optim/settings.hpp"
#include "dptrain/util/relocatable_buffer.hpp"
#include "dptrain/util/worker_pool.hpp"

namespace dptrain {

// The rule above over params, grads and velocity (unused without momentum) in
// one fused pass; any slice of the buffers may be updated on its own.
void sgd_update(std::span<float> params, std::span<const float> grads, std::span<float> velocity, float lr,
                const SgdSettings& settings);

// A part of a split update smaller than this is not worth a helper's wake-up
// (tens of microseconds on a busy machine; 64 Ki floats take about that).
inline constexpr std::size_t kMinUpdatePart = std::size_t{1} << 16;

class Sgd {
 public:
  Sgd(std::size_t num_params, SgdSettings settings);
  void step(std::span<float> params, std::span<const float> grads, float lr);
  // The same rule on elements [begin, begin + slice_grads.size()) of params
  // and velocity() only, slice_grads being their gradients: ranks that share
  // one copy of the parameters each update a slice.
  void step_slice(std::span<float> params, std::span<const float> slice_grads, float lr, std::size_t begin);
  // The same, split among the workers' threads when the slice is large enough
  // to pay for their wake-up (an elementwise rule: the same bits as one pass).
  void step_slice(std::span<float> params, std::span<const float> slice_grads, float lr, std::size_t begin,
                  WorkerPool& workers);

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
