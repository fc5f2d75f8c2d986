#include "dptrain/optim/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "dptrain/error.hpp"

namespace dptrain {

std::string to_string(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::constant:
      return "constant";
    case ScheduleKind::step:
      return "step";
    case ScheduleKind::cosine:
      return "cosine";
  }
  return "?";
}

ScheduleKind parse_schedule(const std::string& name) {
  for (ScheduleKind k : {ScheduleKind::constant, ScheduleKind::step, ScheduleKind::cosine}) {
    if (name == to_string(k)) return k;
  }
  throw Error("--lr-schedule '" + name + "': expected constant, step or cosine");
}

double Schedule::lr_at(std::int64_t step) const {
  const OptimizerSettings& s = settings_;
  const double base_lr = s.lr;
  const auto warmup_steps =
      static_cast<std::int64_t>(std::llround(s.warmup_epochs * static_cast<double>(steps_per_epoch_)));
  if (step < warmup_steps) return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  switch (s.schedule) {
    case ScheduleKind::constant:
      return base_lr;
    case ScheduleKind::step: {
      const double epoch = static_cast<double>(step) / static_cast<double>(steps_per_epoch_);
      return base_lr * std::pow(s.lr_gamma, std::floor(epoch / s.lr_step_epochs));
    }
    case ScheduleKind::cosine: {
      const double span = static_cast<double>(std::max<std::int64_t>(1, total_steps_ - warmup_steps));
      const double progress = std::clamp(static_cast<double>(step - warmup_steps) / span, 0.0, 1.0);
      return base_lr * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    }
  }
  return base_lr;
}

}  // namespace dptrain
