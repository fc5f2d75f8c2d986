// Step timing: the phases add up to the step, traces hold the first K steps,
// and the FLOP count is the textbook one. The timer reads a fake clock that
// the test advances by known amounts, so every duration is exact: no sleeps,
// nothing that a busy machine can stretch.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "dptrain/train/step_timer.hpp"

namespace dptrain {
namespace {

using std::chrono::microseconds;

// A clock that stands still until the test moves it.
struct FakeClock {
  StepTimer::Clock::time_point now{};
  void advance(microseconds by) { now += by; }
};

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(StepTimer, PhasesAddUpToTheStepAndTheProfileKeepsTheFirstSteps) {
  FakeClock clock;
  StepTimer timer(2, [&clock] { return clock.now; });
  // Phase p of step s takes (p + 1) * 100 us + s us; 50 us pass between steps
  // (evaluation, checkpoints), which belong to no phase.
  for (int step = 0; step < 3; ++step) {
    clock.advance(microseconds(50));
    timer.begin_step();
    int p = 0;
    for (Phase phase : {Phase::data, Phase::forward, Phase::backward, Phase::allreduce, Phase::update}) {
      clock.advance(microseconds((p + 1) * 100 + step));
      timer.end_phase(phase);
      ++p;
    }
  }
  EXPECT_EQ(timer.epoch_steps(), 3);
  for (std::size_t p = 0; p < kPhases; ++p) {
    // Three steps: 3 * (p + 1) * 100 us plus 0 + 1 + 2 us.
    EXPECT_NEAR(timer.epoch_seconds()[p], (3.0 * (p + 1) * 100 + 3) * 1e-6, 1e-12) << phase_name(Phase(p));
  }

  const std::string trace = timer.chrome_trace(5);
  EXPECT_EQ(count(trace, "\"ph\": \"X\""), 2 * kPhases);  // only the first 2 steps
  EXPECT_EQ(count(trace, "\"pid\": 5"), 2 * kPhases);
  // Times are from the timer's construction: step 0 starts at 50 us, its data
  // phase lasts 100 us; step 1's allreduce starts after 50 + 1500 + 50 us of the
  // first step and the gap, then 101 + 201 + 301 us of step 1.
  EXPECT_NE(trace.find("{\"name\": \"data\", \"ph\": \"X\", \"ts\": 50.000, \"dur\": 100.000"), std::string::npos)
      << trace;
  EXPECT_NE(trace.find("{\"name\": \"allreduce\", \"ph\": \"X\", \"ts\": 2203.000, \"dur\": 401.000"),
            std::string::npos)
      << trace;

  timer.reset_epoch();
  EXPECT_EQ(timer.epoch_steps(), 0);
  for (double s : timer.epoch_seconds()) EXPECT_EQ(s, 0.0);
}

TEST(StepTimer, TheRealClockGivesNonNegativePhasesThatAddUp) {
  // With the steady clock no phase can be negative and each step's phases
  // are consecutive; how long they take is not asserted.
  StepTimer timer(1);
  timer.begin_step();
  for (Phase phase : {Phase::data, Phase::forward, Phase::backward, Phase::allreduce, Phase::update}) {
    timer.end_phase(phase);
  }
  EXPECT_EQ(timer.epoch_steps(), 1);
  for (double s : timer.epoch_seconds()) EXPECT_GE(s, 0.0);
  EXPECT_EQ(count(timer.chrome_trace(0), "\"ph\": \"X\""), kPhases);
}

TEST(StepTimer, FlopsPerSampleCountForwardAndBothBackwardProducts) {
  // 784-16-16-10: forward 2*in*out per layer, dW the same, dX for layers above the first.
  EXPECT_DOUBLE_EQ(flops_per_sample({784, 16, 16, 10}), 2.0 * 784 * 16 * 2 + 2.0 * 16 * 16 * 3 + 2.0 * 16 * 10 * 3);
}

}  // namespace
}  // namespace dptrain
