// Step timing: the phases add up to the step, traces hold the first K steps,
// and the FLOP count is the textbook one.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "dptrain/train/step_timer.hpp"

namespace dptrain {
namespace {

TEST(StepTimer, PhasesAddUpToTheStepAndTheProfileKeepsTheFirstSteps) {
  StepTimer timer(2);
  const auto start = std::chrono::steady_clock::now();
  for (int step = 0; step < 3; ++step) {
    timer.begin_step();
    for (Phase p : {Phase::data, Phase::forward, Phase::backward, Phase::allreduce, Phase::update}) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      timer.end_phase(p);
    }
  }
  const double outside = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double inside = 0.0;
  for (double s : timer.epoch_seconds()) {
    EXPECT_GE(s, 3 * 200e-6);
    inside += s;
  }
  EXPECT_LE(inside, outside);
  EXPECT_GT(inside, 0.9 * outside);
  EXPECT_EQ(timer.epoch_steps(), 3);
  const std::string trace = timer.chrome_trace(5);
  std::size_t events = 0;
  for (std::size_t at = trace.find("\"ph\": \"X\""); at != std::string::npos;
       at = trace.find("\"ph\": \"X\"", at + 1)) {
    ++events;
  }
  EXPECT_EQ(events, 2 * kPhases);  // only the first 2 steps
  EXPECT_NE(trace.find("\"name\": \"allreduce\""), std::string::npos);
  EXPECT_NE(trace.find("\"pid\": 5"), std::string::npos);
  timer.reset_epoch();
  EXPECT_EQ(timer.epoch_steps(), 0);
  EXPECT_EQ(timer.epoch_seconds()[0], 0.0);
}

TEST(StepTimer, FlopsPerSampleCountForwardAndBothBackwardProducts) {
  // 784-16-16-10: forward 2*in*out per layer, dW the same, dX for layers above the first.
  EXPECT_DOUBLE_EQ(flops_per_sample({784, 16, 16, 10}), 2.0 * 784 * 16 * 2 + 2.0 * 16 * 16 * 3 + 2.0 * 16 * 10 * 3);
}

}  // namespace
}  // namespace dptrain
