"""The watchdog: a stalled rank (SIGSTOP) ends the whole job with exit code
76, naming who reported and who went silent;
a rank merely paused for less than the timeout, again and again (a test hook
makes rank 1 sleep at a given number of steps), does not trigger it and the
run ends with the parameters of a run never paused."""
import json
import os
import signal
import subprocess
import unittest

from common import (DEADLINE, TempDirTest, run, same_params, start, stop, synthetic_mnist, wait_for, wait_for_ranks,
                    write_data_h5)

EXIT_WATCHDOG = 76
# Small steps keep every rank in the allreduce often.
NETWORK = ["--layers", "784,256,256,10", "--activation", "relu", "--output", "softmax", "--loss", "cross-entropy",
           "--lr", "0.05", "--momentum", "0.9", "--batch-size", "10", "-q"]


class WatchdogTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.data = write_data_h5(self.path("data.h5"), *synthetic_mnist(400, 50))

    def train_args(self, run_dir, *extra):
        return ["train", "--data", self.data, "--run-dir", self.path(run_dir)] + NETWORK + list(extra)

    def test_a_stopped_rank_ends_every_rank_with_the_watchdog_code(self):
        # Long enough that set-up, evaluation and a checkpoint's fsyncs on a
        # loaded machine never look like a stall; the test waits for the
        # watchdog, not for a bound on how fast it acts.
        timeout = 20
        job = start(self.train_args("r", "--epochs", "100000", "--watchdog-seconds", str(timeout)), ranks=2)
        self.addCleanup(stop, job)
        stalled = wait_for_ranks(job, 2)[1]  # by MPI rank: process ids say nothing about it
        wait_for(lambda: os.path.exists(self.path("r/checkpoints/epoch-0002.h5")), DEADLINE, "epoch 2")
        os.kill(stalled, signal.SIGSTOP)
        self.addCleanup(lambda: subprocess.run(["kill", "-CONT", str(stalled)], capture_output=True))
        out, err = job.communicate(timeout=DEADLINE)
        self.assertEqual(job.returncode, EXIT_WATCHDOG, out + err)
        lines = [line for line in err.splitlines() if line.startswith("dptrain")]
        self.assertEqual(len(lines), 1, err)
        self.assertRegex(lines[0], r"^dptrain: error: watchdog: rank 0 on \S+ waited [0-9.]+ s "
                                   r"\(--watchdog-seconds 20\) in \w+ of step \d+; silent ranks: 1 on \S+; "
                                   r"ending the job with exit code 76$")
        folder = self.path("r/watchdog")
        with open(os.path.join(folder, "rank-0.json")) as f:
            marker = json.load(f)
        self.assertEqual(marker["rank"], 0)
        self.assertIn(marker["phase"], ("allreduce", "evaluate", "checkpoint"))
        self.assertGreaterEqual(marker["waited_seconds"], timeout)
        self.assertEqual(len(marker["rank_hosts"]), 2)
        with open(os.path.join(folder, "silent-hosts")) as f:
            self.assertEqual(f.read().split(), [marker["rank_hosts"][1]])
        # The last complete checkpoint is intact and the run resumes from it.
        resumed = run(["train", "--run-dir", self.path("r"), "--resume", "auto", "--epochs", "3", "-q",
                       "--watchdog-seconds", str(timeout)], ranks=2)
        self.assertEqual(resumed.code, 0, resumed)
        self.assertFalse(os.path.exists(folder), "markers of the earlier attempt are cleared")

    def test_a_rank_paused_repeatedly_for_less_than_the_timeout_does_not_trigger_it(self):
        epochs = ["--epochs", "3"]
        straight = run(self.train_args("straight", *epochs), ranks=2)
        self.assertEqual(straight.code, 0, straight)
        # Rank 1 sleeps 3 s at each of steps 1-8 (a test hook: the pauses are
        # counted, so the run cannot end before them). Each is far under the
        # timeout; together they are 24 s, over it.
        paused = run(self.train_args("paused", *epochs, "--watchdog-seconds", "20"), ranks=2,
                     env={"DPTRAIN_TEST_SLOW_RANK": "1:3000:8"})
        self.assertEqual(paused.code, 0, paused)
        self.assertFalse(os.path.exists(self.path("paused/watchdog")))
        # The same hook with one pause over the timeout ends the job: the
        # pauses above did happen, and were too short each to count.
        stalled = run(self.train_args("stalled", *epochs, "--watchdog-seconds", "2"), ranks=2,
                      env={"DPTRAIN_TEST_SLOW_RANK": "1:8000:1"})
        self.assertEqual(stalled.code, EXIT_WATCHDOG, stalled)
        self.assertIn("--watchdog-seconds 2", stalled.err)
        self.assertTrue(same_params(self.path("straight/checkpoints/latest.h5"),
                                    self.path("paused/checkpoints/latest.h5")))

    def test_a_bad_timeout_is_one_clear_error(self):
        result = run(self.train_args("r", "--epochs", "1", "--watchdog-seconds", "-1"), ranks=2)
        self.assertOneClearError(result, "--watchdog-seconds -1 is invalid")

    def test_a_malformed_slow_rank_hook_is_refused_before_the_first_step(self):
        result = run(self.train_args("r", "--epochs", "1"), ranks=2, env={"DPTRAIN_TEST_SLOW_RANK": "1:3000"})
        self.assertOneClearError(result, "DPTRAIN_TEST_SLOW_RANK=1:3000 is invalid: expected RANK:MS:COUNT")
        self.assertFalse(os.path.exists(self.path("r/checkpoints")), "refused before any training")


if __name__ == "__main__":
    unittest.main()
