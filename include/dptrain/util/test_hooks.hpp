#pragma once
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

}  // namespace dptrain::test_hooks
