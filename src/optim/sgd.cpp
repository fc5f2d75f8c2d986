#include "dptrain/optim/sgd.hpp"

#include <algorithm>
#include <cassert>

#include "dptrain/util/cpu.hpp"

namespace dptrain {

Sgd::Sgd(std::size_t num_params, SgdSettings settings)
    : settings_(settings), velocity_(settings.momentum != 0.0f ? num_params : 0) {}

// An AVX2 copy beside the x86-64 baseline's, chosen at load time: the memory
// pass moves 32 bytes a load instead of 16 (2 ranks x 1 thread, shm,
// tools/compare-builds.py: WIDE's update 1.171 -> 1.040 ms a step). Not FMA
// (a separate target): a fused multiply-add rounds once where the order
// below rounds twice, and results would then depend on the CPU.
#if DPTRAIN_X86
#define DPTRAIN_UPDATE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DPTRAIN_UPDATE_CLONES
#endif
DPTRAIN_UPDATE_CLONES void sgd_update(std::span<float> params, std::span<const float> grads, std::span<float> velocity,
                                      float lr, const SgdSettings& settings) {
  assert(params.size() == grads.size());
  assert(settings.momentum == 0.0f || velocity.size() == params.size());
  // One pass: each element's parameter, gradient and velocity are read once
  // and written once, and the pointers are declared not to alias, so the
  // compiler vectorises each loop without run-time overlap checks.
  // Rounding: every operation is a separate float operation in PyTorch's
  // order (g = grad + wd * w; v = mu * v + g; w = w - lr * d), bit for bit.
  float* __restrict w = params.data();
  const float* __restrict grad = grads.data();
  float* __restrict v = velocity.data();
  const float mu = settings.momentum;
  const float wd = settings.weight_decay;
  const std::size_t n = params.size();
  if (mu == 0.0f) {
    for (std::size_t i = 0; i < n; ++i) w[i] -= lr * (grad[i] + wd * w[i]);
  } else if (settings.nesterov) {
    for (std::size_t i = 0; i < n; ++i) {
      const float g = grad[i] + wd * w[i];
      const float velocity_i = mu * v[i] + g;
      v[i] = velocity_i;
      w[i] -= lr * (g + mu * velocity_i);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      const float velocity_i = mu * v[i] + (grad[i] + wd * w[i]);
      v[i] = velocity_i;
      w[i] -= lr * velocity_i;
    }
  }
}

void Sgd::step(std::span<float> params, std::span<const float> grads, float lr) {
  sgd_update(params, grads, velocity(), lr, settings_);
}

void Sgd::step_slice(std::span<float> params, std::span<const float> slice_grads, float lr, std::size_t begin) {
  assert(begin <= params.size() && slice_grads.size() <= params.size() - begin);
  const std::size_t n = slice_grads.size();
  const std::span<float> velocity = this->velocity();
  sgd_update(params.subspan(begin, n), slice_grads, velocity.empty() ? velocity : velocity.subspan(begin, n), lr,
             settings_);
}

void Sgd::step_slice(std::span<float> params, std::span<const float> slice_grads, float lr, std::size_t begin,
                     WorkerPool& workers) {
  const std::size_t n = slice_grads.size();
  const int parts = static_cast<int>(std::clamp<std::size_t>(n / kMinUpdatePart, 1, workers.size()));
  auto update_part = [&](int part, int count) {
    // Parts of whole multiples of 16 floats (a cache line): in a line-aligned
    // slice, as NodeReducer's are, no two threads write the same line.
    const auto bound = [&](int p) { return p == count ? n : n * static_cast<std::size_t>(p) / count / 16 * 16; };
    const std::size_t from = bound(part), to = bound(part + 1);
    step_slice(params, slice_grads.subspan(from, to - from), lr, begin + from);
  };
  workers.run(parts, update_part);
}

void Sgd::use_shared_velocity(std::span<float> storage) { velocity_.relocate(storage, "shared velocities"); }

}  // namespace dptrain
