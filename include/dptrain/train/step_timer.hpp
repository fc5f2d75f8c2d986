#pragma once
// Where a training step's time goes: data (gather + uint8 -> float), forward,
// backward, allreduce (waiting included) and update. Each phase ends where the
// next begins, so the phases add up to the step. With --profile K, the first
// K steps are also kept as events for a Chrome trace (chrome://tracing,
// Perfetto), in a buffer sized up front: timing allocates nothing per step.
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dptrain {

enum class Phase { data, forward, backward, allreduce, update };
inline constexpr std::size_t kPhases = 5;
const char* phase_name(Phase p);

class StepTimer {
 public:
  using Clock = std::chrono::steady_clock;
  // `clock` is read once at construction and once per begin_step/end_phase;
  // tests pass a fake one so that durations are exact rather than slept.
  explicit StepTimer(
      std::int64_t profile_steps = 0, std::function<Clock::time_point()> clock = [] { return Clock::now(); });

  void begin_step();
  void end_phase(Phase p);  // phases in order; the last one ends the step
  void reset_epoch();

  const std::array<double, kPhases>& epoch_seconds() const { return epoch_seconds_; }  // per phase, this epoch
  std::int64_t epoch_steps() const { return epoch_steps_; }

  // {"traceEvents": [...]} for the profiled steps of one rank.
  std::string chrome_trace(int rank) const;
  bool profiling() const { return profile_limit_ > 0; }

 private:
  struct Event {
    Phase phase;
    double start_us;
    double duration_us;
  };
  std::function<Clock::time_point()> clock_;
  Clock::time_point origin_;
  Clock::time_point last_;
  std::array<double, kPhases> epoch_seconds_{};
  std::int64_t epoch_steps_ = 0;
  std::size_t profile_limit_;
  std::vector<Event> events_;
};

// Floating-point operations of one sample's forward and backward pass through
// `layers` (2 per multiply-add): forward and weight gradients for every layer,
// input gradients for all but the first.
double flops_per_sample(const std::vector<int>& layers);

}  // namespace dptrain
