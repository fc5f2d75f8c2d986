#pragma once
// Learning rate as a pure function of the global step, so a resumed run needs
// only the step counter.
#include <cstdint>
#include <string>

namespace dptrain {

enum class ScheduleKind { constant, step, cosine };

std::string to_string(ScheduleKind k);
ScheduleKind parse_schedule(const std::string& name);

struct Schedule {
  ScheduleKind kind = ScheduleKind::constant;
  double base_lr = 0.1;
  std::int64_t steps_per_epoch = 1;
  std::int64_t total_steps = 1;  // cosine reaches 0 here
  double warmup_epochs = 0.0;    // linear ramp from base_lr / warmup_steps
  double step_epochs = 10.0;     // step schedule: multiply by gamma every step_epochs
  double gamma = 0.1;

  double lr_at(std::int64_t step) const;  // step counts from 0
};

}  // namespace dptrain
