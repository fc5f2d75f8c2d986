#pragma once
// The optimizer's settings, one struct: the SGD rule's and the learning-rate
// schedule's. The command line fills it, checkpoints store it, and Sgd and
// Schedule read it as it is.
#include <cstdint>
#include <string>

namespace dptrain {

enum class ScheduleKind { constant, step, cosine };

std::string to_string(ScheduleKind k);
ScheduleKind parse_schedule(const std::string& name);

struct SgdSettings {
  float momentum = 0.0f;
  float weight_decay = 0.0f;
  bool nesterov = false;
};

struct OptimizerSettings {
  double lr = 0.1;
  SgdSettings sgd;
  ScheduleKind schedule = ScheduleKind::constant;
  double warmup_epochs = 0.0;    // linear ramp from lr / warmup_steps
  double lr_step_epochs = 10.0;  // step schedule: multiply by lr_gamma every lr_step_epochs
  double lr_gamma = 0.1;
};

}  // namespace dptrain
