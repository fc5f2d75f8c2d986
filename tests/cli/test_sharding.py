"""Shards and the exact mode end to end: what each rank reads (checked against
the file with h5py), and bit-identical runs on 1, 2, 3, 4 and 8 ranks over
shared memory and over TCP."""
import hashlib
import json
import os
import unittest

import h5py
import numpy as np

from common import TempDirTest, mnist_path, run, synthetic_mnist, write_data_h5


def checkpoint_arrays(path):
    with h5py.File(path, "r") as f:
        arrays = {}
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        return arrays


def metrics_without_times(run_dir):
    timed = {"epoch_seconds", "samples_per_second", "gflops", "step_ms", "phase_ms", "peak_rss_mb", "world_size"}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [{k: v for k, v in json.loads(line).items() if k not in timed} for line in f]


NETWORKS = {
    "tutorial": ["--layers", "784,16,16,10", "--lr", "3.0"],
    "relu-256": ["--layers", "784,256,256,10", "--activation", "relu", "--output", "softmax",
                 "--loss", "cross-entropy", "--lr", "0.05"],
}


class ExactModeTest(TempDirTest):
    def test_bit_identical_on_any_number_of_ranks(self):
        data = write_data_h5(self.path("data.h5"), *synthetic_mnist(n_train=480, n_test=120, seed=4))
        common = ["--data", data, "--epochs", "2", "--batch-size", "16", "--shards", "24", "--exact",
                  "--momentum", "0.9", "--weight-decay", "1e-4", "--lr-schedule", "cosine", "--seed", "7",
                  "--threads", "1", "--quiet"]
        launches = [(1, ()), (2, ()), (3, ()), (4, ()), (8, ()), (3, ("--mca", "btl", "tcp,self"))]
        for network, layers in NETWORKS.items():
            reference = None
            for ranks, mpi_args in launches:
                with self.subTest(network=network, ranks=ranks, transport=" ".join(mpi_args) or "default"):
                    run_dir = self.path(f"{network}-{ranks}-{len(mpi_args)}")
                    result = run(["train", *common, *layers, "--run-dir", run_dir], ranks=ranks,
                                 mpi_args=mpi_args, timeout=600)
                    self.assertEqual(result.code, 0, result)
                    state = (checkpoint_arrays(os.path.join(run_dir, "checkpoints", "epoch-0002.h5")),
                             metrics_without_times(run_dir))
                    self.assertIn("optimizer/layer_0/weight", state[0], "velocities are compared too")
                    if reference is None:
                        reference = state
                        continue
                    for name, array in reference[0].items():
                        self.assertTrue(np.array_equal(array, state[0][name]), f"{name} differs")
                    self.assertEqual(state[1], reference[1])


@unittest.skipUnless(mnist_path(), "needs data/mnist.h5 (tools/fetch-mnist.sh)")
class ShardReadsTest(TempDirTest):
    def test_each_of_4_ranks_reads_its_quarter_and_nothing_else(self):
        data = mnist_path()
        run_dir = self.path("run")
        result = run(["train", "--data", data, "--layers", "784,16,10", "--epochs", "1", "--run-dir", run_dir,
                      "--quiet"], ranks=4, timeout=600)
        self.assertEqual(result.code, 0, result)
        with open(os.path.join(run_dir, "data.json")) as f:
            report = json.load(f)
        self.assertEqual(len(report["ranks"]), 4)
        with h5py.File(data, "r") as f:
            for split in ("train", "test"):
                images, labels = f[f"{split}/images"], f[f"{split}/labels"]
                # Contiguous storage: every shard is one byte range of the file.
                self.assertIsNone(images.chunks, "convert writes contiguous datasets")
                row_bytes = int(np.prod(images.shape[1:])) * images.dtype.itemsize + labels.dtype.itemsize
                all_labels = labels[()].astype("<i4")
                covered = np.zeros(len(all_labels), dtype=int)
                for rank in report["ranks"]:
                    part = rank[split]
                    rows = np.concatenate([np.arange(first, first + count) for first, count in part["rows"]])
                    covered[rows] += 1
                    # The labels the rank holds are the file's labels of exactly those rows.
                    self.assertEqual(hashlib.sha256(all_labels[rows].tobytes()).hexdigest(), part["labels_sha256"])
                    quarter = len(all_labels) * row_bytes / 4
                    self.assertEqual(part["bytes_selected"], len(rows) * row_bytes)
                    self.assertLess(abs(len(rows) * row_bytes - quarter), row_bytes * len(all_labels) / 240 + 1,
                                    "balanced to within one shard")
                    # What the process really read (Linux rchar): its rows, plus HDF5's metadata,
                    # which is less than one old-style 1024-row chunk of images.
                    self.assertGreaterEqual(part["bytes_read"], part["bytes_selected"], split)
                    self.assertLess(part["bytes_read"], part["bytes_selected"] + 1024 * 784, split)
                self.assertTrue((covered == 1).all(), f"every {split} row read by exactly one rank")


if __name__ == "__main__":
    unittest.main()
