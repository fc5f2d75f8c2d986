"""Stops and failures of a running job: a stop signal, a rank killed with
SIGKILL, kill -9 while a checkpoint is being written, and the TCP transport.
Ranks are found by their MPI rank (common.rank_pids), never by process id
order, and the mid-write kill is made certain by a test hook."""
import os
import signal
import unittest

import h5py

from common import (DEADLINE, TempDirTest, run, same_params, start, stop, synthetic_mnist, wait_for, wait_for_ranks,
                    write_data_h5)

# How long a job may take to end after one of its ranks was killed, or to reach
# a checkpoint, before the test calls it a hang. Far above the few seconds it
# takes (the behaviour under test is "ends by itself", not "ends within N
# seconds"), so load cannot fail it.
HANG = DEADLINE

# 40 steps an epoch on the 400 samples of setUp.
NETWORK = ["--layers", "784,256,256,10", "--activation", "relu", "--output", "softmax", "--loss", "cross-entropy",
           "--lr", "0.05", "--momentum", "0.9", "--lr-schedule", "cosine", "--batch-size", "10", "-q"]


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

    def release_pauses_until_the_job_ends(self, job, pause):
        """Lets every later checkpoint write through until `job` exits; returns (out, err)."""
        def ended():
            if os.path.exists(pause):
                os.remove(pause)
            return job.poll() is not None
        wait_for(ended, HANG, "the job to end")
        return job.communicate(timeout=HANG)

    def test_a_stop_signal_checkpoints_and_the_resumed_run_is_bit_for_bit(self):
        straight = run(self.train_args("straight", "--epochs", "6"), ranks=2)
        self.assertEqual(straight.code, 0, straight)
        pause = self.path("paused")
        job = start(self.train_args("stopped", "--epochs", "6"), ranks=2,
                    env={"DPTRAIN_TEST_PAUSE_IN_CHECKPOINT_WRITE": pause})
        self.addCleanup(stop, job)
        ranks = wait_for_ranks(job, 2)
        wait_for(lambda: os.path.exists(pause), HANG, "the writer to pause in epoch 1's checkpoint")
        os.remove(pause)
        wait_for(lambda: os.path.exists(pause), HANG, "the writer to pause in epoch 2's checkpoint")
        # What a user does: signal mpirun, which forwards it to every rank. The
        # forwarding is asynchronous, so rank 0 is also signalled directly while
        # it is held in the pause: the stop is then certain to be seen at the
        # first step after epoch 2, not at some step that depends on the load.
        job.send_signal(signal.SIGUSR1)
        os.kill(ranks[0], signal.SIGUSR1)
        out, err = self.release_pauses_until_the_job_ends(job, pause)
        self.assertEqual(job.returncode, 75, out + err)
        self.assertIn("stopped by a signal after step 81 (epoch 3)", out)  # 40 steps an epoch
        latest = os.readlink(self.path("stopped/checkpoints/latest.h5"))
        self.assertRegex(latest, r"^step-0*81\.h5$")  # the mid-epoch checkpoint of the stop
        resumed = run(["train", "--run-dir", self.path("stopped"), "--resume", "auto", "-q"], ranks=2)
        self.assertEqual(resumed.code, 0, resumed)
        self.assertTrue(same_params(self.path("straight/checkpoints/latest.h5"),
                                    self.path("stopped/checkpoints/latest.h5")))

    def test_a_killed_rank_ends_the_job_and_the_run_resumes(self):
        job = start(self.train_args("r", "--epochs", "100000"), ranks=2)
        self.addCleanup(stop, job)
        ranks = wait_for_ranks(job, 2)
        wait_for(lambda: os.path.exists(self.path("r/checkpoints/epoch-0002.h5")), HANG, "epoch 2")
        os.kill(ranks[1], signal.SIGKILL)  # not the writer: rank 1 is blocked in or near an allreduce
        out, err = job.communicate(timeout=HANG)  # the surviving rank must not wait for it forever
        self.assertNotEqual(job.returncode, 0)
        self.assertIn("signal 9", err)  # mpirun names the rank and the signal
        done = checkpoint_is_complete(self.path("r/checkpoints/latest.h5"))
        resumed = run(["train", "--run-dir", self.path("r"), "--resume", "auto", "--epochs", str(done + 2), "-q"],
                      ranks=2)
        self.assertEqual(resumed.code, 0, resumed)
        self.assertEqual(checkpoint_is_complete(self.path("r/checkpoints/latest.h5")), done + 2)

    def test_kill_9_while_a_checkpoint_is_written_keeps_the_previous_one_and_resumes_exactly(self):
        # The writer (rank 0) pauses in a test hook after each checkpoint's
        # temporary file is complete and before its rename, until the test
        # removes the pause file: the kill lands mid-write every time, not by
        # luck of timing.
        straight = run(self.train_args("straight", "--epochs", "4"), ranks=2)
        self.assertEqual(straight.code, 0, straight)
        folder = self.path("r/checkpoints")
        pause = self.path("paused")
        job = start(self.train_args("r", "--epochs", "4"), ranks=2,
                    env={"DPTRAIN_TEST_PAUSE_IN_CHECKPOINT_WRITE": pause})
        self.addCleanup(stop, job)
        ranks = wait_for_ranks(job, 2)
        wait_for(lambda: os.path.exists(pause), HANG, "the writer to pause in epoch 1's checkpoint")
        os.remove(pause)  # epoch 1's checkpoint goes through
        wait_for(lambda: os.path.exists(pause), HANG, "the writer to pause in epoch 2's checkpoint")
        with open(pause) as f:
            self.assertEqual(int(f.read()), ranks[0], "rank 0 writes the checkpoints")
        temporary = os.path.join(folder, f".epoch-0002.h5.tmp-{ranks[0]}")
        self.assertGreater(os.path.getsize(temporary), 0, "the new checkpoint is on disk, not yet renamed")
        self.assertFalse(os.path.exists(os.path.join(folder, "epoch-0002.h5")))
        os.kill(ranks[0], signal.SIGKILL)
        out, err = job.communicate(timeout=HANG)
        self.assertNotEqual(job.returncode, 0, out + err)
        self.assertIn("signal 9", err)

        # The previous checkpoint is untouched: still latest, complete, and the
        # same parameters as epoch 1 of the uninterrupted run.
        self.assertEqual(os.readlink(os.path.join(folder, "latest.h5")), "epoch-0001.h5")
        self.assertEqual(checkpoint_is_complete(os.path.join(folder, "latest.h5")), 1)
        self.assertTrue(same_params(self.path("straight/checkpoints/epoch-0001.h5"),
                                    os.path.join(folder, "latest.h5")))
        self.assertTrue(os.path.exists(temporary), "the killed writer's temporary file is left behind")

        # Resuming removes the temporary and ends exactly where the straight run did.
        resumed = run(["train", "--run-dir", self.path("r"), "--resume", "auto"], ranks=2)
        self.assertEqual(resumed.code, 0, resumed)
        self.assertIn("resuming after epoch 1", resumed.out)
        self.assertEqual([n for n in os.listdir(folder) if ".tmp-" in n], [])
        self.assertEqual(checkpoint_is_complete(os.path.join(folder, "latest.h5")), 4)
        self.assertTrue(same_params(self.path("straight/checkpoints/latest.h5"), os.path.join(folder, "latest.h5")))

    def test_the_tcp_transport_trains_the_same_model(self):
        args = self.train_args("shm", "--epochs", "2", "--no-shuffle")
        self.assertEqual(run(args, ranks=2).code, 0)
        tcp = run(self.train_args("tcp", "--epochs", "2", "--no-shuffle"), ranks=2, mpi_args=["--mca", "btl", "tcp,self"])
        self.assertEqual(tcp.code, 0, tcp)
        self.assertTrue(same_params(self.path("shm/checkpoints/latest.h5"), self.path("tcp/checkpoints/latest.h5")))


if __name__ == "__main__":
    unittest.main()
