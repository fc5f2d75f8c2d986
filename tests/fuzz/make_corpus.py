#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/): small
valid inputs of every format a reader accepts, so that the fuzzer starts from
deep inside each parser. Run with Debian's python3 (h5py, numpy) and
DPTRAIN=path/to/dptrain (for an authentic checkpoint):
    DPTRAIN=build/dptrain /usr/bin/python3 tests/fuzz/make_corpus.py
"""
import gzip
import os
import shutil
import struct
import subprocess
import tempfile
import zlib

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write_png(path, pixels):
    """An 8-bit grayscale PNG with the standard library."""
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def put(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def idx(array):
    array = np.asarray(array, dtype=np.uint8)
    return bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()


def main():
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(3, 4, 4), dtype=np.uint8)
    labels = np.array([0, 2, 1], dtype=np.uint8)
    put("idx", "images.idx", idx(images))
    put("idx", "labels.idx", idx(labels))
    put("idx", "images.idx.gz", gzip.compress(idx(images), mtime=0))

    digit = rng.integers(0, 256, size=(28, 28), dtype=np.uint8)
    put("image", "digit.pgm", b"P5\n# a digit\n28 28\n255\n" + digit.tobytes())
    small = digit[:5, :6] // 16
    put("image", "small-p2.pgm", b"P2\n6 5\n15\n" + "\n".join(" ".join(str(v) for v in row) for row in small).encode())
    with tempfile.TemporaryDirectory() as tmp:
        write_png(os.path.join(tmp, "d.png"), digit)
        with open(os.path.join(tmp, "d.png"), "rb") as f:
            put("image", "digit.png", f.read())

        # Data files: uint8 and float32 images of 4 values, labels in [0, 3).
        for name, dtype in (("uint8.h5", np.uint8), ("float32.h5", np.float32)):
            path = os.path.join(tmp, name)
            with h5py.File(path, "w", libver="latest") as f:
                for split, n in (("train", 5), ("test", 2)):
                    f.create_dataset(f"{split}/images", data=rng.integers(0, 256, size=(n, 2, 2)).astype(dtype))
                    f.create_dataset(f"{split}/labels", data=rng.integers(0, 3, size=n).astype(np.uint8))
            with open(path, "rb") as f:
                put("dataset", name, f.read())

        # A checkpoint of a 4-3-3 network (momentum, so /optimizer has its buffers), made by dptrain itself.
        data = os.path.join(tmp, "data.h5")
        with h5py.File(data, "w") as f:
            for split, n in (("train", 12), ("test", 4)):
                f.create_dataset(f"{split}/images", data=rng.integers(0, 256, size=(n, 4)).astype(np.uint8))
                f.create_dataset(f"{split}/labels", data=rng.integers(0, 3, size=n).astype(np.uint8))
        run_dir = os.path.join(tmp, "run")
        subprocess.run([os.environ["DPTRAIN"], "train", "--data", data, "--layers", "4,3,3", "--activation", "relu",
                        "--output", "softmax", "--loss", "cross-entropy", "--momentum", "0.9", "--lr", "0.1",
                        "--batch-size", "4", "--epochs", "1", "--run-dir", run_dir, "--quiet"], check=True,
                       env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        for target in ("checkpoint", "config"):
            os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
        shutil.copy(os.path.join(run_dir, "checkpoints", "epoch-0001.h5"), os.path.join(CORPUS, "checkpoint"))
        shutil.copy(os.path.join(run_dir, "config.ini"), os.path.join(CORPUS, "config", "run-config.ini"))
    put("config", "minimal.ini", b"data = d.h5\nlayers = 784,16,10\n# a comment\n[section]\nkey = value\n")
    # Words split at 0x1f: an empty argument, and a path with a space.
    put("config", "command-line-separated.ini",
        b"#!--layers\x1f\x1f--data\x1fdir with space/d.h5\ndata = d.h5\nlayers = 784,16,10\n")


if __name__ == "__main__":
    main()
