"""End to end on real MNIST: the fetch step, the data's known facts, training
on 2 ranks to the accuracies the README quotes, and an independent reader."""
import json
import os
import shutil
import subprocess
import unittest

import h5py
import numpy as np

from common import DEADLINE, SOURCE_DIR, TempDirTest, independent_accuracy, mnist_path, run

MNIST = mnist_path()
SHARED = os.path.join(SOURCE_DIR, "..", "shared", "data", "mnist")
CONFIGS = os.path.join(SOURCE_DIR, "jobs", "configs")


@unittest.skipIf(MNIST is None, "no MNIST HDF5 file: run tools/fetch-mnist.sh first")
class MnistTest(TempDirTest):
    def train(self, run_dir, *args, ranks=2):
        # A deadline against a hang only: 30 epochs of reference.ini took 156 s here, and 768 s at a load of 24.
        result = run(["train", "--data", MNIST, "--run-dir", self.path(run_dir), "-q"] + list(args), ranks=ranks,
                     timeout=3000)
        self.assertEqual(result.code, 0, result)
        with open(self.path(run_dir, "metrics.jsonl")) as f:
            return [json.loads(line) for line in f]

    def test_known_facts_of_the_converted_file(self):
        with h5py.File(MNIST, "r") as f:
            train, test = f["train/labels"][()], f["test/labels"][()]
            self.assertEqual(f["train/images"].shape, (60000, 28, 28))
            self.assertEqual(f["test/images"].shape, (10000, 28, 28))
        self.assertEqual(list(train[:10]), [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
        self.assertEqual(list(test[:10]), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
        self.assertEqual((int((train == 0).sum()), int((train == 1).sum())), (5923, 6742))
        self.assertEqual((int((test == 0).sum()), int((test == 1).sum())), (980, 1135))

    def test_relu_softmax_network_passes_96_5_percent_within_3_epochs(self):
        metrics = self.train("r", "--layers", "784,128,10", "--activation", "relu", "--output", "softmax",
                             "--loss", "cross-entropy", "--lr", "0.1", "--momentum", "0.9", "--batch-size", "64",
                             "--epochs", "3")
        # Measured 0.9556, 0.9653, 0.9692 after epochs 1-3 (2 ranks, default seed, the sharded batch
        # order). The floor was 0.97 (0.9729 with the earlier order: a new order of the same samples
        # moved it by 0.37 points); 0.965 leaves a margin of 0.42 points.
        self.assertGreaterEqual(max(m["test_accuracy"] for m in metrics), 0.965, metrics)
        checkpoint = self.path("r/checkpoints/latest.h5")
        report = json.loads(run(["eval", "--checkpoint", checkpoint, "--json"], ranks=2).out)
        self.assertEqual(report["total"], 10000)
        self.assertEqual(report["correct"], independent_accuracy(checkpoint, MNIST)[0])
        self.assertEqual(report["correct"], round(metrics[-1]["test_accuracy"] * 10000))

    def test_the_readme_accuracies(self):
        """The figures README.md quotes, with the configurations it names."""
        # (configuration, floor): the floors issue 9 asks to keep, measured here with the default
        # seed on 2 ranks (tools/accuracy-table.py --seeds 1, the sharded batch order). Margin =
        # measured - floor; another CPU's OpenBLAS kernels round differently and move a run by
        # about what another seed does.
        for config, floor in (("reference.ini", 0.935),  # measured 0.9418, margin 0.68 points
                              ("tweaked.ini", 0.953),  # measured 0.9581, margin 0.51 points
                              ("wide.ini", 0.98),  # measured 0.9828, margin 0.28 points
                              ("tutorial96.ini", 0.96)):  # measured 0.9647, margin 0.47 points
            with self.subTest(config=config):
                metrics = self.train(config, "--config", os.path.join(CONFIGS, config))
                print(f"{config}: {metrics[-1]['test_accuracy']:.4f} after {metrics[-1]['epoch']} epochs, "
                      f"{sum(m['epoch_seconds'] for m in metrics):.1f} s of training")
                self.assertGreaterEqual(metrics[-1]["test_accuracy"], floor)


class FetchTest(TempDirTest):
    def fetch(self, *args):
        return subprocess.run(["bash", os.path.join(SOURCE_DIR, "tools", "fetch-mnist.sh"),
                               "--dptrain", os.environ["DPTRAIN"]] + list(args),
                              capture_output=True, text=True, timeout=2 * DEADLINE)

    def test_npm_route_gives_the_same_data(self):
        if shutil.which("npm") is None:
            self.skipTest("npm is not installed")
        out = self.path("npm.h5")
        result = self.fetch("--out", out)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("SHA-256 verified", result.stdout)
        if MNIST:
            with h5py.File(out, "r") as a, h5py.File(MNIST, "r") as b:
                for name in ("train/images", "train/labels", "test/images", "test/labels"):
                    self.assertTrue(np.array_equal(a[name][()], b[name][()]), name)

    @unittest.skipUnless(os.path.isdir(SHARED), "../shared/data/mnist is not here")
    def test_a_corrupted_file_is_refused(self):
        folder = self.path("idx")
        shutil.copytree(SHARED, folder)
        subprocess.run(["gunzip", os.path.join(folder, "t10k-labels-idx1-ubyte.gz")], check=True)
        with open(os.path.join(folder, "t10k-labels-idx1-ubyte"), "r+b") as f:
            f.seek(100)
            label = f.read(1)[0]
            f.seek(100)
            f.write(bytes([(label + 1) % 10]))  # a flipped label, still a valid IDX file
        result = self.fetch("--from", folder, "--out", self.path("x.h5"))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("t10k-labels-idx1-ubyte: SHA-256", result.stderr)
        self.assertFalse(os.path.exists(self.path("x.h5")))


if __name__ == "__main__":
    unittest.main()
