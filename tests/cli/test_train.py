"""dptrain train and eval from the command line, on several ranks: options,
config files, bad input on every rank, divergence, resume, a full disk."""
import contextlib
import glob
import json
import os
import shutil
import subprocess
import unittest

import h5py
import numpy as np

from common import (DEADLINE, Result, TempDirTest, command_line, independent_accuracy, read_params, run, start, stop,
                    synthetic_mnist, wait_for, write_data_h5)

SMALL = {"--layers": "784,32,10", "--activation": "relu", "--output": "softmax", "--loss": "cross-entropy",
         "--lr": "0.1", "--momentum": "0.9", "--batch-size": "20", "--epochs": "3"}


def small(*overrides):
    """The small network's options, with `overrides` (flag, value, ...) replacing or adding."""
    options = dict(SMALL)
    flags = list(overrides)
    extra = []
    while flags:
        flag = flags.pop(0)
        if flags and not flags[0].startswith("--"):
            options[flag] = flags.pop(0)
        else:
            extra.append(flag)
    return [item for pair in options.items() for item in pair] + extra + ["-q"]


def contents(path):
    with open(path, "rb") as f:
        return f.read()


class TrainTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.train, self.test = synthetic_mnist(400, 120)
        self.data = write_data_h5(self.path("data.h5"), self.train, self.test)

    def train_run(self, run_dir, *extra, ranks=2, data=None):
        return run(["train", "--data", data or self.data, "--run-dir", self.path(run_dir)] + small(*extra), ranks=ranks)

    def test_a_run_writes_metrics_config_and_checkpoints(self):
        result = self.train_run("r")
        self.assertEqual(result.code, 0, result)
        lines = open(self.path("r", "metrics.jsonl")).read().splitlines()
        import json
        metrics = [json.loads(line) for line in lines]
        self.assertEqual([m["epoch"] for m in metrics], [1, 2, 3])
        for key in ("step", "train_loss", "test_loss", "test_accuracy", "epoch_seconds", "samples_per_second"):
            self.assertIn(key, metrics[-1])
        self.assertEqual(metrics[-1]["step"], 3 * 20)
        # The bright column is easy to learn: measured 1.000 after each of the 3 epochs; floor 0.9, margin 0.10.
        self.assertGreater(metrics[-1]["test_accuracy"], 0.9)
        self.assertEqual(sorted(os.listdir(self.path("r", "checkpoints"))),
                         ["epoch-0001.h5", "epoch-0002.h5", "epoch-0003.h5", "latest.h5"])
        self.assertEqual(os.readlink(self.path("r", "checkpoints", "latest.h5")), "epoch-0003.h5")
        # The saved configuration reproduces the run through --config.
        again = run(["train", "--config", self.path("r", "config.ini"), "--run-dir", self.path("again"), "-q"], ranks=2)
        self.assertEqual(again.code, 0, again)
        for (w1, b1), (w2, b2) in zip(read_params(self.path("r/checkpoints/latest.h5")),
                                      read_params(self.path("again/checkpoints/latest.h5"))):
            np.testing.assert_array_equal(w1, w2)
            np.testing.assert_array_equal(b1, b2)

    def test_every_subcommand_has_help(self):
        for command, option in (("train", "--batch-size"), ("eval", "--noise"), ("convert", "--train-images"),
                                ("predict", "--invert"), ("inspect", "--no-metrics")):
            with self.subTest(command):
                result = run([command, "--help"], ranks=2)
                self.assertEqual(result.code, 0, result)
                self.assertIn(f"dptrain {command}", result.out)
                self.assertIn(option, result.out)
                self.assertEqual(result.out.count("Usage:"), 1)  # printed once, by rank 0
        self.assertIn("Commands:", run(["--help"]).out)
        self.assertEqual(run(["frobnicate"]).code, 2)

    def test_command_line_overrides_the_config_file(self):
        with open(self.path("c.ini"), "w") as f:
            f.write(f"data = {self.data}\nlayers = 784,8,10\nlr = 0.5\nepochs = 1\n")
        result = run(["train", "--config", self.path("c.ini"), "--lr", "0.25", "--run-dir", self.path("r"), "-q"], ranks=2)
        self.assertEqual(result.code, 0, result)
        saved = open(self.path("r", "config.ini")).read()
        self.assertIn("lr = 0.25\n", saved)
        self.assertIn("layers = 784,8,10\n", saved)
        with h5py.File(self.path("r/checkpoints/latest.h5"), "r") as f:
            self.assertEqual(f["optimizer"].attrs["lr"], 0.25)

    def test_eval_matches_an_independent_reader(self):
        self.assertEqual(self.train_run("r").code, 0)
        checkpoint = self.path("r/checkpoints/latest.h5")
        for ranks in (1, 3):
            result = run(["eval", "--checkpoint", checkpoint, "--json"], ranks=ranks)
            self.assertEqual(result.code, 0, result)
            import json
            report = json.loads(result.out)
            correct, total = independent_accuracy(checkpoint, self.data)
            self.assertEqual((report["correct"], report["total"]), (correct, total))
            self.assertAlmostEqual(report["accuracy"], correct / total)
            self.assertIn("loss", report)

    def test_bad_input_gives_one_clear_error_on_every_rank(self):
        truncated = self.path("truncated.h5")
        with open(self.data, "rb") as f:
            whole = f.read()
        with open(truncated, "wb") as f:
            f.write(whole[: len(whole) // 2])
        with open(self.path("text.h5"), "w") as f:
            f.write("not hdf5\n")
        bad_labels = dict(zip(("images", "labels"), self.train))
        bad_labels["labels"] = bad_labels["labels"].copy()
        bad_labels["labels"][-1] = 12
        write_data_h5(self.path("labels.h5"), (bad_labels["images"], bad_labels["labels"]), self.test)
        write_data_h5(self.path("float64.h5"), self.train, self.test, image_dtype=np.float64)
        write_data_h5(self.path("floatlabels.h5"), self.train, self.test, label_dtype=np.float32)
        with h5py.File(self.path("nosplit.h5"), "w") as f:
            f.create_dataset("train/images", data=self.train[0])
            f.create_dataset("train/labels", data=self.train[1])
        cases = [
            (["--data", self.path("missing.h5")], "missing.h5: cannot open: No such file or directory"),
            (["--data", self.path("text.h5")], "text.h5: cannot open as HDF5: file signature not found"),
            (["--data", truncated], "truncated.h5: cannot open as HDF5: truncated file"),
            (["--data", self.path("labels.h5")], "label 12 of sample 399 in /train/labels is outside [0, 10)"),
            (["--data", self.path("float64.h5")], "/train/images is float64, expected uint8 or float32"),
            (["--data", self.path("floatlabels.h5")], "/train/labels is float32, expected integers"),
            (["--data", self.path("nosplit.h5")], "dataset /test/images is missing"),
            (["--layers", "100,10"], "have 28x28 = 784 values, but the input layer has 100"),
            (["--layers", "784,16,5"], "is outside [0, 5)"),
            (["--layers", "784,abc,10"], "'abc' is not a layer size"),
            (["--lr", "-1"], "--lr -1 is invalid: expected a positive number"),
            (["--lr", "abc"], "the argument ('abc') for option '--lr' is invalid"),
            (["--momentum", "1.5"], "--momentum 1.5 is invalid"),
            (["--activation", "swish"], "unknown activation 'swish'"),
            (["--output", "relu"], "the output layer takes sigmoid or softmax"),
            (["--lr-schedule", "linear"], "--lr-schedule 'linear': expected constant, step or cosine"),
            (["--batch-size", "1"], "--batch-size 1 is smaller than the 2 ranks"),
            (["--batch-size", "0"], "--batch-size 0 is invalid"),
            (["--epochs", "1000000000000000000", "--lr-schedule", "cosine"],
             "--epochs 1000000000000000000 is invalid: expected a whole number from 1 to 1000000000"),
            (["--warmup-epochs", "1e300"], "--warmup-epochs 1e+300 is invalid: expected a number of epochs from 0 to "
                                          "1000000000"),
            (["--watchdog-seconds", "0.001"], "--watchdog-seconds 0.001 is invalid: expected 0 (never) or a number of "
                                              "seconds from 1"),
            (["--run-dir", ""], "--run-dir '' is invalid: expected a folder"),
            (["--frobnicate"], "unrecognised option '--frobnicate'"),
            (["--config", self.path("nope.ini")], "nope.ini"),
            (["--resume", self.path("nope.h5")], "--resume " + self.path("nope.h5") + ": no such checkpoint"),
        ]
        for extra, fragment in cases:
            with self.subTest(extra=extra):
                options = {"--data": self.data, "--run-dir": self.path("bad")}
                if extra[0] in options:
                    options[extra[0]] = extra[1]
                    extra = extra[2:]
                args = ["train"] + [item for pair in options.items() for item in pair] + small(*extra)
                result = run(args, ranks=2)
                self.assertOneClearError(result, fragment)
                # Refused in set-up: no run folder, not even the watchdog's host list in one.
                self.assertFalse(os.path.exists(self.path("bad")), os.listdir(self.path("bad"))
                                 if os.path.isdir(self.path("bad")) else "")
        result = run(["train", "--run-dir", self.path("x")], ranks=2)
        self.assertOneClearError(result, "--data is required")

    def test_a_data_file_open_for_writing_elsewhere_can_still_be_read(self):
        self.assertEqual(self.train_run("r", "--epochs", "1").code, 0)
        with h5py.File(self.data, "r+"):  # holds HDF5's exclusive lock
            result = run(["eval", "--checkpoint", self.path("r/checkpoints/latest.h5"), "--json"], ranks=2)
        self.assertEqual(result.code, 0, result)

    def test_a_checkpoint_edited_with_h5py_still_reads(self):
        self.assertEqual(self.train_run("r", "--epochs", "1").code, 0)
        checkpoint = self.path("r/checkpoints/latest.h5")
        with h5py.File(checkpoint, "r+") as f:  # h5py writes variable-length UTF-8 strings
            f["model"].attrs["activation"] = "relu"
            config = f.attrs["config"]
            f.attrs["config"] = (config.decode() if isinstance(config, bytes) else config) + "frobnicate = 1\n"
        inspected = run(["inspect", checkpoint])
        self.assertEqual(inspected.code, 0, inspected)
        self.assertIn("hidden relu", inspected.out)
        resumed = run(["train", "--run-dir", self.path("r"), "--resume", "auto"], ranks=2)
        self.assertOneClearError(resumed, "the configuration saved in the checkpoint: unrecognised option 'frobnicate'")

    def test_divergence_stops_all_ranks_and_keeps_the_last_checkpoint(self):
        self.assertEqual(self.train_run("r", "--epochs", "1").code, 0)
        result = run(["train", "--run-dir", self.path("r"), "--resume", "auto", "--epochs", "3", "--lr", "1e30"],
                     ranks=2)
        self.assertOneClearError(result, "training diverged: the loss became")
        self.assertIn("smaller --lr", result.error_lines()[0])
        with h5py.File(self.path("r/checkpoints/latest.h5"), "r") as f:
            self.assertEqual(f["progress"].attrs["epochs_done"], 1)

    def test_resume_on_the_same_ranks_is_bit_for_bit(self):
        self.assertEqual(self.train_run("straight", "--epochs", "4", "--lr-schedule", "cosine").code, 0)
        # A run stopped after epoch 2 of 4 had written exactly epoch-0002.h5.
        result = run(["train", "--run-dir", self.path("resumed"), "-q",
                      "--resume", self.path("straight/checkpoints/epoch-0002.h5")], ranks=2)
        self.assertEqual(result.code, 0, result)
        for (w1, b1), (w2, b2) in zip(read_params(self.path("straight/checkpoints/latest.h5")),
                                      read_params(self.path("resumed/checkpoints/latest.h5"))):
            self.assertTrue(np.array_equal(w1, w2) and np.array_equal(b1, b2))
        with h5py.File(self.path("resumed/checkpoints/latest.h5"), "r") as f:
            self.assertEqual(f["progress"].attrs["epochs_done"], 4)
            self.assertEqual(f["progress"].attrs["global_step"], 4 * 20)

    def test_resume_auto_on_another_number_of_ranks_continues(self):
        self.assertEqual(self.train_run("r", "--epochs", "2", ranks=4).code, 0)
        for ranks, epochs in ((2, 4), (4, 6), (3, 7)):
            result = run(["train", "--run-dir", self.path("r"), "--resume", "auto", "--epochs", str(epochs)],
                         ranks=ranks)
            self.assertEqual(result.code, 0, result)
            self.assertIn(f"resuming after epoch {epochs - 2 if epochs < 7 else 6}", result.out)
            with h5py.File(self.path("r/checkpoints/latest.h5"), "r") as f:
                self.assertEqual(f["progress"].attrs["epochs_done"], epochs)
                self.assertEqual(f["progress"].attrs["world_size"], ranks)
            correct, total = independent_accuracy(self.path("r/checkpoints/latest.h5"), self.data)
            self.assertGreater(correct / total, 0.9)  # measured 1.000 on 2, 4 and 3 ranks; margin 0.10
        # --resume auto in an empty run dir is a fresh start.
        fresh = run(["train", "--data", self.data, "--run-dir", self.path("new"), "--resume", "auto"] + small(), ranks=2)
        self.assertEqual(fresh.code, 0, fresh)

    def test_a_run_folder_holds_one_run(self):
        self.assertEqual(self.train_run("r", "--epochs", "2").code, 0)
        folder = self.path("r", "checkpoints")
        before = {name: contents(os.path.join(folder, name)) for name in ("epoch-0001.h5", "epoch-0002.h5")}
        metrics = contents(self.path("r", "metrics.jsonl"))
        # A second fresh run into the folder would overwrite epoch-0001.h5 and mix two runs in metrics.jsonl.
        for ranks in (1, 2):
            self.assertOneClearError(self.train_run("r", ranks=ranks), "--run-dir " + self.path("r") +
                                     ": holds the checkpoints of an earlier run; continue it with --resume auto")
        # A second job in the folder while the first one is running (paused in its checkpoint write).
        pause = self.path("paused")
        first = start(["train", "--run-dir", self.path("r"), "--resume", "auto", "--epochs", "3", "-q"], ranks=2,
                      env={"DPTRAIN_TEST_PAUSE_IN_CHECKPOINT_WRITE": pause})
        self.addCleanup(stop, first)
        wait_for(lambda: os.path.exists(pause), DEADLINE, "the first job to pause in its checkpoint write")
        second = run(["train", "--run-dir", self.path("r"), "--resume", "auto", "--epochs", "4", "-q"], ranks=2)
        self.assertOneClearError(second, "--run-dir " + self.path("r") + ": in use by another dptrain run (process ")
        os.remove(pause)
        out, err = first.communicate(timeout=DEADLINE)
        self.assertEqual(first.returncode, 0, err)
        self.assertEqual(os.readlink(os.path.join(folder, "latest.h5")), "epoch-0003.h5")
        self.assertEqual({name: contents(os.path.join(folder, name)) for name in before}, before)
        self.assertEqual(contents(self.path("r", "metrics.jsonl")).count(b"\n"), metrics.count(b"\n") + 1)

        # latest.h5 whose target is gone: a fresh start would write over the checkpoints that are left.
        os.remove(os.path.join(folder, "epoch-0003.h5"))
        resume = ["train", "--run-dir", self.path("r"), "--resume", "auto", "--epochs", "4", "-q"]
        self.assertOneClearError(run(resume, ranks=2), os.path.join(folder, "latest.h5") +
                                 " points to epoch-0003.h5, which is missing: resume from one of the checkpoints left")
        os.remove(os.path.join(folder, "latest.h5"))
        self.assertOneClearError(run(resume, ranks=2), folder + " holds 2 checkpoints (the last by name "
                                 "epoch-0002.h5) but no latest.h5")
        self.assertEqual(sorted(os.listdir(folder)), ["epoch-0001.h5", "epoch-0002.h5"])

    def test_keep_checkpoints_keeps_the_newest_through_a_resume(self):
        self.assertEqual(self.train_run("r", "--epochs", "3", "--keep-checkpoints", "2").code, 0)
        folder = self.path("r", "checkpoints")
        self.assertEqual(sorted(os.listdir(folder)), ["epoch-0002.h5", "epoch-0003.h5", "latest.h5"])
        # Resumed from epoch 2 (its own folder's file, whose time is now older), it rewrites epoch 3 and keeps it.
        epoch_2 = os.path.join(folder, "epoch-0002.h5")
        os.utime(epoch_2, (0, 2_000_000_000))  # a time in 2033: time order would call it the newest
        result = run(["train", "--run-dir", self.path("r"), "--resume", epoch_2, "--epochs", "4", "-q"], ranks=2)
        self.assertEqual(result.code, 0, result)
        self.assertEqual(sorted(os.listdir(folder)), ["epoch-0003.h5", "epoch-0004.h5", "latest.h5"])
        self.assertEqual(os.readlink(os.path.join(folder, "latest.h5")), "epoch-0004.h5")

    def test_resume_refuses_a_conflicting_architecture(self):
        self.assertEqual(self.train_run("r", "--epochs", "1").code, 0)
        result = run(["train", "--run-dir", self.path("r"), "--resume", "auto", "--layers", "784,64,10"], ranks=2)
        self.assertOneClearError(result, "--layers 784,64,10 conflicts with the checkpoint")
        same = run(["train", "--run-dir", self.path("r"), "--resume", "auto", "--layers", "784,32,10", "-q"], ranks=2)
        self.assertEqual(same.code, 0, same)

    def test_a_full_disk_stops_cleanly_and_keeps_the_last_checkpoint(self):
        disk = self.path("disk")
        os.makedirs(disk)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", disk], capture_output=True).returncode:
            self.skipTest("cannot mount a small tmpfs here (needs root)")
        try:
            # Each checkpoint of 784-64-10 with momentum is about 410 KB: the second one does not fit.
            result = run(["train", "--data", self.data, "--run-dir", disk] + small("--layers", "784,64,10"),
                         ranks=2)
            self.assertOneClearError(result, "epoch-0002.h5")
            self.assertEqual(sorted(os.listdir(os.path.join(disk, "checkpoints"))), ["epoch-0001.h5", "latest.h5"])
            with h5py.File(os.path.join(disk, "checkpoints", "latest.h5"), "r") as f:
                self.assertEqual(f["progress"].attrs["epochs_done"], 1)
            # Epoch 2's line was written before its checkpoint failed. Resumed
            # (on a disk with room) from epoch 1, the run writes epoch 2 again:
            # metrics.jsonl keeps one line per epoch.
            moved = self.path("moved")
            shutil.copytree(disk, moved, symlinks=True)
            with open(os.path.join(moved, "metrics.jsonl")) as f:
                self.assertEqual([json.loads(line)["epoch"] for line in f], [1, 2])
            resumed = run(["train", "--run-dir", moved, "--resume", "auto", "-q"], ranks=2)
            self.assertEqual(resumed.code, 0, resumed)
            with open(os.path.join(moved, "metrics.jsonl")) as f:
                self.assertEqual([json.loads(line)["epoch"] for line in f], [1, 2, 3])
            # A disk full from the start: the run's first files are written whole or not at all.
            with open(os.path.join(disk, "filler"), "wb") as f:
                with contextlib.suppress(OSError):
                    while True:
                        f.write(bytes(65536))
                        f.flush()
            full = os.path.join(disk, "full")
            result = run(["train", "--data", self.data, "--run-dir", full] + small(), ranks=2)
            self.assertOneClearError(result, full + "/config.ini: cannot write: No space left on device")
            self.assertEqual(sorted(os.listdir(full)), [".lock", "checkpoints"])  # the lock and an empty folder
        finally:
            subprocess.run(["umount", disk])

    def test_a_small_dev_shm_is_one_clear_error_with_the_way_out(self):
        # A container's /dev/shm (64 MiB in Docker) can be smaller than the node's
        # gradient segment: MPI_Win_allocate_shared used to end the job with pages of MPI output.
        # 784-1024-1024-10 with momentum needs about 36 MiB on 2 ranks; Open MPI's own segments fit in 16.
        wide = small("--layers", "784,1024,1024,10", "--epochs", "1")
        inner = " ".join(command_line(["train", "--data", self.data, "--run-dir", self.path("RUN")] + wide, ranks=2))
        script = "mount -t tmpfs -o size=16m tmpfs /dev/shm && exec " + inner
        probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs -o "
                                "size=16m tmpfs /dev/shm"], capture_output=True)
        if probe.returncode:
            self.skipTest("cannot mount a tmpfs over /dev/shm in a mount namespace here (needs root)")
        for method, run_dir in (("shm", "shm"), ("mpi", "mpi")):
            completed = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                        script.replace("RUN", run_dir) + " --reduce " + method],
                                       capture_output=True, text=True, timeout=DEADLINE,
                                       env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
            result = Result(completed)
            if method == "shm":
                self.assertOneClearError(result, "--reduce shm: the node's shared-memory segment needs 36 MiB in "
                                         "/dev/shm, which has ")
                self.assertIn("or use --reduce mpi", result.err)
                self.assertNotIn("MPI_Win_allocate_shared", result.err)
            else:
                self.assertEqual(result.code, 0, result)


if __name__ == "__main__":
    unittest.main()
