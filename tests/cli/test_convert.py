"""dptrain convert: IDX (raw or gzipped) to HDF5, read back independently."""
import glob
import hashlib
import os
import unittest

import h5py
import numpy as np

from common import TempDirTest, idx_bytes, run, synthetic_mnist, write_file


class ConvertTest(TempDirTest):
    def write_idx_set(self, compress):
        (train_x, train_y), (test_x, test_y) = synthetic_mnist(50, 20)
        suffix = ".gz" if compress else ""
        paths = {}
        for name, array in (("train-images", train_x), ("train-labels", train_y),
                            ("test-images", test_x), ("test-labels", test_y)):
            paths[name] = write_file(self.path(name + suffix), idx_bytes(array), compress)
        return paths, (train_x, train_y, test_x, test_y)

    def convert(self, paths, out):
        args = ["convert", "--out", out]
        for name, path in paths.items():
            args += ["--" + name, path]
        return run(args)

    def test_raw_and_gzipped_files_round_trip(self):
        for compress in (False, True):
            paths, (train_x, train_y, test_x, test_y) = self.write_idx_set(compress)
            out = self.path(f"out-{compress}.h5")
            result = self.convert(paths, out)
            self.assertEqual(result.code, 0, result)
            with h5py.File(out, "r") as f:
                np.testing.assert_array_equal(f["train/images"][()], train_x)
                np.testing.assert_array_equal(f["train/labels"][()], train_y)
                np.testing.assert_array_equal(f["test/images"][()], test_x)
                np.testing.assert_array_equal(f["test/labels"][()], test_y)
                self.assertEqual(f["train/images"].dtype, np.uint8)
                self.assertEqual(f["train/images"].shape, (50, 28, 28))
                # Contiguous, so that any shard is one byte range of the file.
                for name in ("train/images", "train/labels", "test/images", "test/labels"):
                    self.assertIsNone(f[name].chunks, name)
                    self.assertIsNone(f[name].compression, name)
                raw = idx_bytes(train_x)
                self.assertEqual(f["train/images"].attrs["source_sha256"].decode(), hashlib.sha256(raw).hexdigest())
                self.assertEqual(f["train/images"].attrs["source"].decode(), os.path.basename(paths["train-images"]))

    def test_bad_files_give_one_clear_error_and_no_output(self):
        paths, (train_x, train_y, _, _) = self.write_idx_set(False)
        cases = {
            "bad magic": (b"\x02\x03" + idx_bytes(train_x)[2:], "bad magic number"),
            "truncated": (idx_bytes(train_x)[:-100], "truncated: header says 50x28x28 = 39200 bytes of data, file has 39100"),
            "counts": (idx_bytes(train_x[:40]), "holds 40 images but"),
        }
        for case, (data, fragment) in cases.items():
            with self.subTest(case):
                bad = dict(paths, **{"train-images": write_file(self.path("bad-" + case.replace(" ", "-")), data)})
                out = self.path("never.h5")
                result = self.convert(bad, out)
                self.assertOneClearError(result, fragment)
                self.assertIn(bad["train-images"], result.error_lines()[0])
                self.assertFalse(os.path.exists(out))
                self.assertEqual(glob.glob(self.path("never.h5*")), [])

    def test_missing_file_and_missing_option(self):
        paths, _ = self.write_idx_set(False)
        result = self.convert(dict(paths, **{"test-labels": self.path("nope")}), self.path("o.h5"))
        self.assertOneClearError(result, self.path("nope") + ": cannot open")
        result = run(["convert", "--out", self.path("o.h5")])
        self.assertOneClearError(result, "--train-images is required")


if __name__ == "__main__":
    unittest.main()
