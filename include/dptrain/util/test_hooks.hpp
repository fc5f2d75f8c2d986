#pragma once
#include <cstdint>

// Hooks that let a test make a rare moment certain instead of hoping to hit
// it (issue 11: "tests that cannot flake"). Each is a no-op unless its
// environment variable is set, which only the tests do.
namespace dptrain::test_hooks {

// If the environment variable `variable` names a file: writes this process's
// id into it (atomically, so a test never reads it half-written), then waits
// until a test removes the file or kills the process. The wait gives up after
// 10 minutes so that a test that died cannot leave a process paused for good.
// Used as DPTRAIN_TEST_PAUSE_IN_CHECKPOINT_WRITE inside write_checkpoint,
// between the complete temporary file and its rename.
void pause_if_requested(const char* variable);

// DPTRAIN_TEST_SLOW_RANK="RANK:MS:COUNT" makes rank RANK sleep MS
// milliseconds at the start of global steps 1 to COUNT, so that the other
// ranks wait that long in the reduction: a slow rank whose pauses are
// counted, not timed from outside. Step 0 is left out because the ranks do
// not start it together (setup takes each its own time); every later step
// starts when the previous reduction ends. Parsed once, when the trainer is
// built (a malformed value is an error there, on every rank), so that the
// step pays one inline comparison when the hook is off.
class SlowRank {
 public:
  static SlowRank from_environment(int rank);
  void delay_step(std::int64_t global_step) const {
    if (global_step >= 1 && global_step <= steps_) sleep();
  }

 private:
  void sleep() const;
  long milliseconds_ = 0;
  std::int64_t steps_ = 0;  // 0: not this rank, or the hook is off
};

}  // namespace dptrain::test_hooks
