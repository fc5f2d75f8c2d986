"""Stops and failures of a running job: a stop signal, a rank killed with
SIGKILL, kill -9 while a checkpoint is being written, and the TCP transport."""
import os
import random
import signal
import subprocess
import time
import unittest

import h5py

from common import TempDirTest, run, same_params, start, synthetic_mnist, wait_for, write_data_h5

# Slow enough per epoch (about 0.1 s) for a signal to land mid-run.
NETWORK = ["--layers", "784,256,256,10", "--activation", "relu", "--output", "softmax", "--loss", "cross-entropy",
           "--lr", "0.05", "--momentum", "0.9", "--lr-schedule", "cosine", "--batch-size", "10", "-q"]


def rank_pids(mpirun):
    """The dptrain processes that mpirun started."""
    out = subprocess.run(["pgrep", "-P", str(mpirun.pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def checkpoint_is_complete(path):
    with h5py.File(path, "r") as f:
        layers = len(f["model"].attrs["layers"]) - 1
        for i in range(layers):
            f[f"model/layer_{i}/weight"][()]
            f[f"model/layer_{i}/bias"][()]
        return int(f["progress"].attrs["epochs_done"])


class ResilienceTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.data = write_data_h5(self.path("data.h5"), *synthetic_mnist(400, 50))

    def train_args(self, run_dir, *extra):
        return ["train", "--data", self.data, "--run-dir", self.path(run_dir)] + NETWORK + list(extra)

    def test_a_stop_signal_checkpoints_and_the_resumed_run_is_bit_for_bit(self):
        straight = run(self.train_args("straight", "--epochs", "40"), ranks=2)
        self.assertEqual(straight.code, 0, straight)
        job = start(self.train_args("stopped", "--epochs", "40"), ranks=2)
        wait_for(lambda: os.path.exists(self.path("stopped/checkpoints/epoch-0002.h5")), 60, "epoch 2")
        job.send_signal(signal.SIGUSR1)  # mpirun forwards it to every rank
        out, err = job.communicate(timeout=60)
        self.assertEqual(job.returncode, 75, out + err)
        self.assertIn("stopped by a signal after step", out)
        resumed = run(["train", "--run-dir", self.path("stopped"), "--resume", "auto", "-q"], ranks=2)
        self.assertEqual(resumed.code, 0, resumed)
        self.assertTrue(same_params(self.path("straight/checkpoints/latest.h5"),
                                    self.path("stopped/checkpoints/latest.h5")))

    def test_a_killed_rank_ends_the_job_quickly_and_the_run_resumes(self):
        job = start(self.train_args("r", "--epochs", "100000"), ranks=2)
        wait_for(lambda: os.path.exists(self.path("r/checkpoints/epoch-0002.h5")), 60, "epoch 2")
        killed_at = time.monotonic()
        os.kill(rank_pids(job)[-1], signal.SIGKILL)
        out, err = job.communicate(timeout=60)
        self.assertLess(time.monotonic() - killed_at, 60)
        self.assertNotEqual(job.returncode, 0)
        self.assertIn("signal 9", err)  # mpirun names the rank and the signal
        done = checkpoint_is_complete(self.path("r/checkpoints/latest.h5"))
        resumed = run(["train", "--run-dir", self.path("r"), "--resume", "auto", "--epochs", str(done + 2), "-q"],
                      ranks=2)
        self.assertEqual(resumed.code, 0, resumed)
        self.assertEqual(checkpoint_is_complete(self.path("r/checkpoints/latest.h5")), done + 2)

    def test_kill_9_while_checkpointing_never_breaks_latest(self):
        # Epochs of 2 steps and 15 MB checkpoints: the writer is killed mid-write most of the time.
        big = ["--layers", "784,1024,1024,10", "--batch-size", "50", "--keep-checkpoints", "2"]
        small_data = write_data_h5(self.path("small.h5"), *synthetic_mnist(100, 20))
        args = ["train", "--data", small_data, "--run-dir", self.path("r"), "--resume", "auto", "--epochs", "100000",
                "--momentum", "0.9", "--lr", "0.01", "-q"] + big
        rng = random.Random(7)
        folder = self.path("r/checkpoints")
        temporaries = lambda: {n for n in os.listdir(folder) if ".tmp-" in n} if os.path.isdir(folder) else set()
        completed_before = -1
        killed_mid_write = 0
        for attempt in range(8):
            stale = temporaries()  # left by the previous kill; the next run removes them
            job = start(args, ranks=2)
            wait_for(lambda: len(rank_pids(job)) == 2, 60, "the ranks")
            writer = rank_pids(job)[0]  # rank 0 writes the checkpoints
            if attempt % 2 == 0:
                wait_for(lambda: temporaries() - stale, 60, "a checkpoint being written")  # kill while it is written
            else:
                wait_for(lambda: os.path.exists(os.path.join(folder, "latest.h5")), 60, "a checkpoint")
                time.sleep(rng.uniform(0.0, 0.5))  # and at any moment
            os.kill(writer, signal.SIGKILL)
            job.communicate(timeout=60)
            killed_mid_write += bool(temporaries() - stale)
            latest = os.path.join(folder, "latest.h5")
            if os.path.lexists(latest):
                completed = checkpoint_is_complete(latest)  # opens, complete, never going backwards
                self.assertGreaterEqual(completed, completed_before)
            else:
                self.assertEqual(completed_before, -1, "latest.h5 disappeared")  # none finished yet
                completed = -1
            completed_before = completed
        print(f"{killed_mid_write} of 8 kills landed while a checkpoint was being written")
        self.assertGreater(killed_mid_write, 0)
        self.assertGreater(completed_before, 0)
        self.assertLessEqual(len(os.listdir(self.path("r/checkpoints"))), 2 + 1 + 2)  # kept, latest, temporaries

    def test_the_tcp_transport_trains_the_same_model(self):
        args = self.train_args("shm", "--epochs", "2", "--no-shuffle")
        self.assertEqual(run(args, ranks=2).code, 0)
        tcp = run(self.train_args("tcp", "--epochs", "2", "--no-shuffle"), ranks=2, mpi_args=["--mca", "btl", "tcp,self"])
        self.assertEqual(tcp.code, 0, tcp)
        self.assertTrue(same_params(self.path("shm/checkpoints/latest.h5"), self.path("tcp/checkpoints/latest.h5")))


if __name__ == "__main__":
    unittest.main()
