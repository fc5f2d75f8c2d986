#include "dptrain/train/step_timer.hpp"

#include <cstdio>
#include <utility>

namespace dptrain {

const char* phase_name(Phase p) {
  static const char* names[kPhases] = {"data", "forward", "backward", "allreduce", "update"};
  return names[static_cast<std::size_t>(p)];
}

StepTimer::StepTimer(std::int64_t profile_steps, std::function<Clock::time_point()> clock)
    : clock_(std::move(clock)),
      origin_(clock_()),
      last_(origin_),
      profile_limit_(static_cast<std::size_t>(profile_steps > 0 ? profile_steps : 0) * kPhases) {
  events_.reserve(profile_limit_);
}

void StepTimer::begin_step() { last_ = clock_(); }

void StepTimer::end_phase(Phase p) {
  const Clock::time_point now = clock_();
  const double seconds = std::chrono::duration<double>(now - last_).count();
  epoch_seconds_[static_cast<std::size_t>(p)] += seconds;
  if (events_.size() < profile_limit_) {
    events_.push_back({p, std::chrono::duration<double, std::micro>(last_ - origin_).count(), seconds * 1e6});
  }
  if (p == Phase::update) ++epoch_steps_;
  last_ = now;
}

void StepTimer::reset_epoch() {
  epoch_seconds_.fill(0.0);
  epoch_steps_ = 0;
}

std::string StepTimer::chrome_trace(int rank) const {
  std::string json = "{\"traceEvents\": [\n";
  char line[160];
  for (std::size_t i = 0; i < events_.size(); ++i) {
    const Event& e = events_[i];
    std::snprintf(line, sizeof line,
                  "%s{\"name\": \"%s\", \"ph\": \"X\", \"ts\": %.3f, \"dur\": %.3f, \"pid\": %d, \"tid\": 0}",
                  i ? ",\n" : "", phase_name(e.phase), e.start_us, e.duration_us, rank);
    json += line;
  }
  return json + "\n]}\n";
}

double flops_per_sample(const std::vector<int>& layers) {
  double flops = 0.0;
  for (std::size_t i = 0; i + 1 < layers.size(); ++i) {
    const double multiply_adds = static_cast<double>(layers[i]) * layers[i + 1];
    flops += 2.0 * multiply_adds * (i == 0 ? 2.0 : 3.0);  // forward, dW, and dX above the first layer
  }
  return flops;
}

}  // namespace dptrain
