"""Hostile files through the dptrain binary: checkpoints edited with h5py,
image headers that lie, option values that broke Boost's error messages.
Each must end in exactly one 'dptrain: error' line naming the file and the
field, a non-zero exit, and nothing changed on disk."""
import hashlib
import math
import re
import shlex
import shutil
import os
import subprocess

import h5py
import numpy as np

from common import DEADLINE, Result, TempDirTest, command_line, run, synthetic_mnist, write_data_h5

NETWORK = ["--layers", "784,64,10", "--activation", "relu", "--output", "softmax", "--loss", "cross-entropy",
           "--lr", "0.1", "--batch-size", "50", "--epochs", "1", "-q"]


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class HostileFilesTest(TempDirTest):
    def trained_run(self):
        data = write_data_h5(self.path("data.h5"), *synthetic_mnist(200, 50))
        run_dir = self.path("run")
        result = run(["train", "--data", data, "--run-dir", run_dir] + NETWORK)
        self.assertEqual(result.code, 0, result)
        return data, run_dir, os.path.join(run_dir, "checkpoints", "latest.h5")

    def test_an_edited_ini_in_a_checkpoint_is_refused_on_resume(self):
        # The reported case: 784-64-10 whose saved INI says 784,8,10 aborted in munmap_chunk().
        _, run_dir, checkpoint = self.trained_run()
        with h5py.File(checkpoint, "r+") as f:
            config = f.attrs["config"]
            config = config.decode() if isinstance(config, bytes) else config
            f.attrs["config"] = config.replace("layers = 784,64,10", "layers = 784,8,10")
        before = digest(checkpoint)
        for ranks in (1, 2):
            with self.subTest(ranks=ranks):
                result = run(["train", "--run-dir", run_dir, "--resume", "auto", "--epochs", "2", "-q"], ranks=ranks)
                self.assertOneClearError(result, checkpoint + ": attribute config (the saved configuration) says "
                                         "layers = 784,8,10, but /model attribute layers is 784,64,10")
        for command in (["eval", "--checkpoint", checkpoint], ["inspect", checkpoint]):
            self.assertOneClearError(run(command), "says layers = 784,8,10")
        self.assertEqual(digest(checkpoint), before)

    def test_progress_past_its_epoch_and_weights_that_are_not_finite_are_refused(self):
        data, run_dir, checkpoint = self.trained_run()
        with h5py.File(checkpoint, "r+") as f:
            f["progress"].attrs["step_in_epoch"] = np.int64(10**12)
        for ranks in (1, 2):
            with self.subTest(ranks=ranks):
                result = run(["train", "--run-dir", run_dir, "--resume", "auto", "--epochs", "2", "-q"], ranks=ranks)
                self.assertOneClearError(result, ": /progress attribute step_in_epoch 1000000000000 is past the 4 "
                                         "steps of an epoch")
        # All 4 steps done: what a stop seen at an epoch's last step saves. It resumes.
        at_end = self.path("at-end")
        shutil.copytree(run_dir, at_end, symlinks=True)
        with h5py.File(os.path.join(at_end, "checkpoints", "latest.h5"), "r+") as f:
            f["progress"].attrs["step_in_epoch"] = np.int64(4)
        resumed = run(["train", "--run-dir", at_end, "--resume", "auto", "--epochs", "2", "-q"], ranks=2)
        self.assertEqual(resumed.code, 0, resumed)
        with h5py.File(checkpoint, "r+") as f:
            f["progress"].attrs["step_in_epoch"] = np.int64(0)
            f["model/layer_0/bias"][5] = np.nan
        for command in (["train", "--run-dir", run_dir, "--resume", "auto", "--epochs", "2", "-q"],
                        ["eval", "--checkpoint", checkpoint]):
            self.assertOneClearError(run(command, ranks=2), checkpoint + ": /model/layer_0/bias holds nan at index 5, "
                                     "expected finite values")
        # Nothing was written: the refused runs left the run folder's checkpoints as they were.
        self.assertEqual(sorted(os.listdir(os.path.join(run_dir, "checkpoints"))), ["epoch-0001.h5", "latest.h5"])

    def test_a_weight_of_the_wrong_shape_is_refused_before_copying(self):
        _, run_dir, checkpoint = self.trained_run()
        with h5py.File(checkpoint, "r+") as f:
            del f["model/layer_1/weight"]
            f["model/layer_1/weight"] = np.zeros((10, 8), dtype=np.float32)
        result = run(["train", "--run-dir", run_dir, "--resume", "auto", "--epochs", "2", "-q"])
        self.assertOneClearError(result, checkpoint + ": dataset /model/layer_1/weight is float32 [10,8], "
                                 "expected float32 [10,64]")

    def test_a_pgm_header_of_a_terabyte_is_refused_without_allocating(self):
        _, _, checkpoint = self.trained_run()
        with open(self.path("huge.pgm"), "wb") as f:
            f.write(b"P5\n999999 999999\n255\n" + bytes(784))
        with open(self.path("bright.pgm"), "wb") as f:
            f.write(b"P5\n28 28\n100\n" + bytes([200]) * 784)
        self.assertOneClearError(run(["predict", "--checkpoint", checkpoint, self.path("huge.pgm")]),
                                 "huge.pgm: P5 PGM header: a 999999x999999 image, but the network takes 784 pixels")
        self.assertOneClearError(run(["predict", "--checkpoint", checkpoint, self.path("bright.pgm")]),
                                 "bright.pgm: PGM pixel 0 is 200, above the header's maximum value 100")

    def test_a_value_holding_a_boost_placeholder_is_an_error_not_a_hang(self):
        # Boost 1.74 substitutes %value% into its message in a loop that never ends on such values.
        with open(self.path("c.ini"), "w") as f:
            f.write("lr-gamma = argument ('%value%')x\n")
        result = run(["train", "--data", "d.h5", "--config", self.path("c.ini")])
        self.assertOneClearError(result, "c.ini: option 'lr-gamma': unknown, or its value is invalid")
        result = run(["train", "--data", "d.h5", "--lr", "%value%x"])
        self.assertOneClearError(result, "option '--lr': unknown, or its value is invalid")

    def test_a_network_that_cannot_fit_in_the_nodes_memory_is_one_clear_error(self):
        # Under the 2^30-parameter cap, but with momentum each rank's gradients
        # plus the parameters and velocities need more than the node has: it
        # died by bad_alloc or the OOM killer on every rank, amid MPI's output.
        layers = [784, 31600, 31600, 10]
        parameters = sum(a * b + b for a, b in zip(layers, layers[1:]))
        with open("/proc/meminfo") as f:
            available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
        ranks = max(1, math.ceil(1.5 * available / (4 * parameters)) - 2)  # half again as much as there is
        if ranks > 12:
            self.skipTest(f"{available >> 30} GiB available: the test would need {ranks} ranks")
        data = write_data_h5(self.path("data.h5"), *synthetic_mnist(200, 50))
        result = run(["train", "--data", data, "--run-dir", self.path("r"), "--layers", ",".join(map(str, layers)),
                      "--momentum", "0.9", "--batch-size", "64", "-q"], ranks=ranks)
        self.assertOneClearError(result, f"{parameters} parameters need at least ")
        self.assertIn(f"of each of its {ranks} ranks, the parameters and the velocities), which has ", result.err)
        self.assertFalse(os.path.exists(self.path("r")))

    def test_a_resume_that_cannot_fit_beside_its_checkpoint_is_refused_before_reading_it(self):
        # Every rank holds the checkpoint's parameters while the trainer
        # allocates its own, so a resume needs more than a fresh run; and the
        # check comes before the parameters are read: the NaN planted here is
        # never reached. MemAvailable is set by a /proc/meminfo bound over
        # the real one in a mount namespace.
        data, run_dir, checkpoint = self.trained_run()
        with h5py.File(checkpoint, "r+") as f:
            f["model/layer_0/bias"][5] = np.nan
        parameters = 784 * 64 + 64 + 64 * 10 + 10
        # 2 ranks, no momentum: a fresh run needs 3 copies of the parameters
        # (2 ranks' gradients, the parameters), a resume 5 (and 2 ranks'
        # copies of the checkpoint's); 4 fit between.
        available_kib = 4 * 4 * parameters // 1024
        with open("/proc/meminfo") as f:
            meminfo = re.sub(r"^MemAvailable:.*$", f"MemAvailable:   {available_kib} kB", f.read(), flags=re.M)
        fake = self.path("meminfo")
        with open(fake, "w") as f:
            f.write(meminfo)

        def under_fake_meminfo(args):
            inner = " ".join(shlex.quote(a) for a in command_line(args, ranks=2))
            script = f"mount --bind {shlex.quote(fake)} /proc/meminfo && exec {inner}"
            return Result(subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                         capture_output=True, text=True, timeout=DEADLINE,
                                         env=dict(os.environ, OPENBLAS_NUM_THREADS="1")))

        probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                f"mount --bind {shlex.quote(fake)} /proc/meminfo"], capture_output=True)
        if probe.returncode:
            self.skipTest("cannot bind a file over /proc/meminfo in a mount namespace here (needs root)")
        resumed = under_fake_meminfo(["train", "--run-dir", run_dir, "--resume", "auto", "--epochs", "2", "-q"])
        self.assertOneClearError(resumed, f"(layers 784,64,10): {parameters} parameters need at least ")
        self.assertIn("--resume " + run_dir, resumed.err)
        self.assertIn("and each rank's copy of the checkpoint's parameters), which has ", resumed.err)
        fresh = under_fake_meminfo(["train", "--data", data, "--run-dir", self.path("fresh")] + NETWORK)
        self.assertEqual(fresh.code, 0, fresh)
        # With room for the resume's 5 copies it resumes: nothing counts more.
        with open(fake, "w") as f:
            f.write(re.sub(r"^MemAvailable:.*$", f"MemAvailable:   {6 * 4 * parameters // 1024} kB", meminfo,
                           flags=re.M))
        resumed = under_fake_meminfo(["train", "--run-dir", self.path("fresh"), "--resume", "auto", "--epochs", "2",
                                      "-q"])
        self.assertEqual(resumed.code, 0, resumed)

    def test_control_bytes_and_huge_values_never_reach_the_terminal_raw(self):
        # A NUL cut the error line short; an escape sequence reached the
        # terminal; a 2 MB value made a 4 MB error line.
        for name, content, fragment in (("nul.ini", b"lr = 3\x00x\n", "line 1 holds the byte 0x00, expected text"),
                                        ("esc.ini", b"epochs = 1\nlr = 3\x1b[31m\n", "line 2 holds the byte 0x1b"),
                                        ("big.ini", b"layers = " + b"7" * 2_000_000 + b"\n", "bytes in all)")):
            with self.subTest(name=name):
                with open(self.path(name), "wb") as f:
                    f.write(content)
                result = run(["train", "--data", "d.h5", "--config", self.path(name)])
                self.assertOneClearError(result, fragment)
                self.assertLess(len(result.err), 2000, "the error line is cut")
        result = run(["train", "--data", "a\x1b[31mb.h5", "--run-dir", self.path("r"), "-q"], ranks=2)
        self.assertOneClearError(result, "a\\x1b[31mb.h5: cannot open: No such file or directory")
        self.assertNotIn("\x1b", result.err)

    def test_data_headers_that_lie_about_their_size_are_refused_without_allocating(self):
        # A header alone sized each rank's shard: 10^10 samples whose chunks were
        # never written (HDF5 would hand out fill values), and compressed ones
        # claiming 10^12 (784 TB, past any address space). 10 KB files, both.
        unwritten, compressed = self.path("unwritten.h5"), self.path("compressed.h5")
        for path, samples, options in ((unwritten, 10**10, {}), (compressed, 10**12, {"compression": "gzip"})):
            with h5py.File(path, "w") as f:
                for split in ("train", "test"):
                    f.create_dataset(split + "/images", shape=(samples, 784), dtype="u1", chunks=(64, 784), **options)
                    f.create_dataset(split + "/labels", shape=(samples,), dtype="u1", chunks=(64,), **options)
        for ranks in (1, 2):
            with self.subTest(ranks=ranks):
                result = run(["train", "--data", unwritten, "--run-dir", self.path("u%d" % ranks)] + NETWORK,
                             ranks=ranks)
                self.assertOneClearError(result, unwritten + ": dataset /train/images [10000000000,784] stores 0 "
                                         "bytes, expected at least 7840000000000 (its values were never written")
                result = run(["train", "--data", compressed, "--run-dir", self.path("c%d" % ranks)] + NETWORK,
                             ranks=ranks)
                self.assertOneClearError(result, compressed + ": this rank's shard of /train (%d of 1000000000000 "
                                         "samples of 784 uint8 values) does not fit in memory" % (10**12 // ranks))

    def test_pipes_and_folders_given_as_files_are_refused_without_blocking(self):
        # open() on a FIFO waits for a writer: every rank hung, forever.
        data, run_dir, checkpoint = self.trained_run()
        fifo, folder = self.path("pipe"), self.path("folder")
        os.mkfifo(fifo)
        os.mkdir(folder)
        for path, kind in ((fifo, "is a FIFO (named pipe), expected a file"), (folder, "is a directory, expected a file")):
            with self.subTest(kind=kind):
                for ranks in (1, 2):
                    self.assertOneClearError(run(["train", "--data", path, "--run-dir", self.path("unused"), "-q"],
                                                 ranks=ranks),
                                             path + ": " + kind)
                    self.assertOneClearError(run(["train", "--data", data, "--config", path, "--run-dir",
                                                  self.path("unused"), "-q"], ranks=ranks), "--config " + path + ": " + kind)
                    self.assertOneClearError(run(["train", "--run-dir", self.path("other"), "--resume", path, "-q"],
                                                 ranks=ranks), path + ": " + kind)
                self.assertOneClearError(run(["eval", "--checkpoint", path]), path + ": " + kind)
                self.assertOneClearError(run(["predict", "--checkpoint", checkpoint, path]),
                                         path + ": " + kind)
                idx = ["--" + split for split in ("train-images", "train-labels", "test-images", "test-labels")]
                convert = [word for option in idx for word in (option, path)] + ["--out", self.path("x.h5")]
                self.assertOneClearError(run(["convert"] + convert), path + ": " + kind)
