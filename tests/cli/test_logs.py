"""Clean logs: a live progress line (carriage returns, ESC[K) only when a
person watches, plain lines in files, also under mpirun, which gives every
rank a pseudo-terminal even when its own output goes to a file. A real
terminal is emulated with script(1). (Slurm logs: tests/slurm.)"""
import os
import shlex
import subprocess
import unittest

from common import DPTRAIN, TempDirTest, command_line, run, synthetic_mnist, write_data_h5

LIVE = "\x1b[K"
# Epochs of about a second on 2 ranks: the live line redraws every 0.25 s.
NETWORK = ["--layers", "784,256,256,10", "--batch-size", "10", "--epochs", "2"]


class LogsTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.data = write_data_h5(self.path("data.h5"), *synthetic_mnist(3000, 50))

    def args(self, run_dir, *extra):
        return ["train", "--data", self.data, "--run-dir", self.path(run_dir)] + NETWORK + list(extra)

    def to_file(self, args):
        """mpirun -np 2 ... > file, as in a batch job or `> log`."""
        log = self.path("log.txt")
        with open(log, "w") as out:
            code = subprocess.run(command_line(args, 2), stdout=out, stderr=subprocess.STDOUT, timeout=300,
                                  env=dict(os.environ, OPENBLAS_NUM_THREADS="1")).returncode
        with open(log, newline="") as f:
            return code, f.read()

    def on_terminal(self, args):
        """mpirun -np 2 ... on a pseudo-terminal of its own, as a person at a shell runs it."""
        command = " ".join(shlex.quote(a) for a in command_line(args, 2))
        done = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, timeout=300,
                              stdin=subprocess.DEVNULL, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        return done.returncode, done.stdout.decode(errors="replace")

    def test_mpirun_into_a_file_writes_plain_lines(self):
        code, text = self.to_file(self.args("r"))
        self.assertEqual(code, 0, text)
        self.assertNotIn("\r", text)
        self.assertNotIn("\x1b", text)
        self.assertGreaterEqual(sum(line.startswith("  epoch   1/2") for line in text.splitlines()), 5, text)

    def test_mpirun_on_a_terminal_draws_a_live_line(self):
        code, text = self.on_terminal(self.args("r"))
        self.assertEqual(code, 0, text)
        self.assertIn(LIVE, text)
        self.assertIn("epoch   2/2  step", text)

    def test_progress_plain_on_a_terminal_and_live_into_a_file(self):
        code, text = self.on_terminal(self.args("plain", "--progress", "plain"))
        self.assertEqual(code, 0, text)
        self.assertNotIn("\x1b", text)
        self.assertIn("  epoch   1/2", text)
        code, text = self.to_file(self.args("live", "--progress", "live"))
        self.assertEqual(code, 0, text)
        self.assertIn(LIVE, text)

    def test_a_bad_progress_mode_is_one_clear_error(self):
        self.assertOneClearError(run(self.args("r", "--progress", "fancy"), ranks=2),
                                 "--progress fancy is invalid: expected auto, live or plain")


if __name__ == "__main__":
    unittest.main()
