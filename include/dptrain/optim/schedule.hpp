#pragma once
// Learning rate as a pure function of the global step, so a resumed run needs
// only the step counter.
#include <cstdint>

#include "dptrain/optim/settings.hpp"

namespace dptrain {

class Schedule {
 public:
  Schedule() = default;
  // total_steps: where cosine reaches 0.
  Schedule(const OptimizerSettings& settings, std::int64_t steps_per_epoch, std::int64_t total_steps)
      : settings_(settings), steps_per_epoch_(steps_per_epoch), total_steps_(total_steps) {}

  double lr_at(std::int64_t step) const;  // step counts from 0

 private:
  OptimizerSettings settings_;
  std::int64_t steps_per_epoch_ = 1;
  std::int64_t total_steps_ = 1;
};

}  // namespace dptrain
