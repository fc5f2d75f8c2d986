"""The watchdog: a stalled rank (SIGSTOP) ends the whole job with exit code
76 within the timeout plus a grace, naming who reported and who went silent;
a rank merely paused for less than the timeout, again and again (a test hook
makes rank 1 sleep at a given number of steps), does not trigger it and the
run ends with the parameters of a run never paused."""
import json
import os
import signal
import subprocess
import time
import unittest

from common import TempDirTest, run, same_params, start, synthetic_mnist, wait_for, write_data_h5

EXIT_WATCHDOG = 76
# About 0.1 s an epoch on 2 ranks: steps keep every rank in the allreduce often.
NETWORK = ["--layers", "784,256,256,10", "--activation", "relu", "--output", "softmax", "--loss", "cross-entropy",
           "--lr", "0.05", "--momentum", "0.9", "--batch-size", "10", "-q"]


def rank_pids(mpirun):
    out = subprocess.run(["pgrep", "-P", str(mpirun.pid)], capture_output=True, text=True).stdout
    return sorted(int(p) for p in out.split())


class WatchdogTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.data = write_data_h5(self.path("data.h5"), *synthetic_mnist(400, 50))

    def train_args(self, run_dir, *extra):
        return ["train", "--data", self.data, "--run-dir", self.path(run_dir)] + NETWORK + list(extra)

    def test_a_stopped_rank_ends_every_rank_with_the_watchdog_code(self):
        timeout = 4
        job = start(self.train_args("r", "--epochs", "100000", "--watchdog-seconds", str(timeout)), ranks=2)
        try:
            wait_for(lambda: os.path.exists(self.path("r/checkpoints/epoch-0002.h5")), 60, "epoch 2")
            stalled = rank_pids(job)[-1]
            os.kill(stalled, signal.SIGSTOP)
            stopped_at = time.monotonic()
            out, err = job.communicate(timeout=120)
            ended_after = time.monotonic() - stopped_at
        finally:
            if job.poll() is None:
                job.kill()
        self.assertEqual(job.returncode, EXIT_WATCHDOG, out + err)
        # Generous: the timeout, the grace, and mpirun ending the ranks on a busy machine.
        self.assertLess(ended_after, timeout + 60)
        lines = [line for line in err.splitlines() if line.startswith("dptrain")]
        self.assertEqual(len(lines), 1, err)
        self.assertRegex(lines[0], r"^dptrain: error: watchdog: rank 0 on \S+ waited [0-9.]+ s "
                                   r"\(--watchdog-seconds 4\) in \w+ of step \d+; silent ranks: 1 on \S+; "
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
        # Rank 1 sleeps 1.5 s at each of steps 1-8 (a test hook: the pauses
        # are counted, so the run cannot end before them). Each is far under
        # the timeout; together they are 12 s, over it.
        paused = run(self.train_args("paused", *epochs, "--watchdog-seconds", "8"), ranks=2,
                     env={"DPTRAIN_TEST_SLOW_RANK": "1:1500:8"})
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


if __name__ == "__main__":
    unittest.main()
