"""Helpers for driving the dptrain binary the way a user does.

Run by Debian's /usr/bin/python3 (h5py and numpy come from python3-h5py and
python3-numpy). The environment names the binary (DPTRAIN) and the source tree.
"""
import gzip
import os
import shutil
import struct
import subprocess
import tempfile
import time
import unittest

import h5py
import numpy as np

DPTRAIN = os.environ["DPTRAIN"]
# How long any one command or wait may take before a test calls it a hang.
# Never a statement about speed: at a load average of 24 on 2 cores, starting
# mpirun for a run that only prints an error took over 60 s.
DEADLINE = 900
SOURCE_DIR = os.environ["DPTRAIN_SOURCE_DIR"]


def mnist_path():
    """The MNIST HDF5 file made by tools/fetch-mnist.sh, or None."""
    for candidate in (os.environ.get("DPTRAIN_MNIST"), os.path.join(SOURCE_DIR, "data", "mnist.h5")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


class Result:
    def __init__(self, completed):
        self.code = completed.returncode
        self.out = completed.stdout
        self.err = completed.stderr

    def error_lines(self):
        return [line for line in self.err.splitlines() if line.startswith("dptrain")]

    def __repr__(self):
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def command_line(args, ranks=None, mpi_args=()):
    command = [DPTRAIN] + list(args)
    if ranks is not None:
        command = ["mpirun", "-np", str(ranks), "--oversubscribe"] + list(mpi_args) + command
    return command


def run(args, ranks=None, timeout=DEADLINE, cwd=None, mpi_args=(), env=None):
    """Runs dptrain (under mpirun when ranks is given); never hangs past timeout.
    `env` adds variables (mpirun passes its environment on to every rank)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", **(env or {}))
    completed = subprocess.run(command_line(args, ranks, mpi_args), capture_output=True, text=True,
                               timeout=timeout, cwd=cwd, env=env)
    return Result(completed)


def start(args, ranks, env=None):
    """Starts dptrain under mpirun in the background; stdout and stderr are pipes.
    `env` adds variables (mpirun passes its environment on to every rank)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", **(env or {}))
    return subprocess.Popen(command_line(args, ranks), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def stop(job):
    """Ends a job that start() started, if it is still running (cleanup after a failed test:
    nothing stays behind, paused in a test hook or training forever)."""
    if job.poll() is None:
        job.terminate()  # mpirun passes it on and then ends the ranks
        try:
            job.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            job.kill()
            job.communicate()


def mpi_rank_of(pid):
    """The MPI rank of a running dptrain process, or None (not dptrain, not yet exec'd, or gone).

    Open MPI puts OMPI_COMM_WORLD_RANK in each rank's initial environment, which
    /proc/PID/environ shows; process ids say nothing about ranks (they are handed
    out in whatever order mpirun's forks happen to run)."""
    try:
        if os.path.realpath(f"/proc/{pid}/exe") != os.path.realpath(DPTRAIN):
            return None  # still mpirun's fork before exec, or another program
        with open(f"/proc/{pid}/environ", "rb") as f:
            variables = f.read().split(b"\0")
    except OSError:  # gone already, or not ours to read
        return None
    for variable in variables:
        if variable.startswith(b"OMPI_COMM_WORLD_RANK="):
            return int(variable.split(b"=", 1)[1])
    return None


def ranks_among(pids):
    """{rank: pid} for those of `pids` that are dptrain ranks."""
    ranks = {}
    for pid in pids:
        rank = mpi_rank_of(int(pid))
        if rank is not None:
            ranks[rank] = int(pid)
    return ranks


def rank_pids(mpirun):
    """{rank: pid} of the dptrain ranks that the mpirun process `mpirun` (a Popen) started."""
    out = subprocess.run(["pgrep", "-P", str(mpirun.pid)], capture_output=True, text=True).stdout
    return ranks_among(out.split())


def wait_for_ranks(mpirun, count, timeout=DEADLINE):
    """{rank: pid} once all `count` ranks of `mpirun` have started."""
    wait_for(lambda: sorted(rank_pids(mpirun)) == list(range(count)), timeout, f"{count} ranks to start")
    return rank_pids(mpirun)


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def same_params(a, b):
    return all(np.array_equal(x, y) for pair_a, pair_b in zip(read_params(a), read_params(b))
               for x, y in zip(pair_a, pair_b))


def max_param_difference(a, b):
    """The largest absolute difference between two checkpoints' parameters."""
    return max(float(np.max(np.abs(x - y))) for pair_a, pair_b in zip(read_params(a), read_params(b))
               for x, y in zip(pair_a, pair_b))


def idx_bytes(array):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.tobytes()


def write_file(path, data, compress=False):
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(data)
    return path


def synthetic_mnist(n_train=300, n_test=100, seed=0, classes=10):
    """Images whose bright column tells the label: learnable in a few epochs."""
    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(0, classes, size=n).astype(np.uint8)
        images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, :, 2 * label + 4] = 250
        return images, labels

    return split(n_train), split(n_test)


def write_data_h5(path, train, test, image_dtype=np.uint8, label_dtype=np.uint8):
    with h5py.File(path, "w") as f:
        for name, (images, labels) in (("train", train), ("test", test)):
            f.create_dataset(f"{name}/images", data=np.asarray(images).astype(image_dtype))
            f.create_dataset(f"{name}/labels", data=np.asarray(labels).astype(label_dtype))
    return path


def read_params(checkpoint):
    """The model's parameters from the documented layout, layer by layer."""
    with h5py.File(checkpoint, "r") as f:
        model = f["model"]
        count = len(model.attrs["layers"]) - 1
        return [(model[f"layer_{i}/weight"][()], model[f"layer_{i}/bias"][()]) for i in range(count)]


def activation(name, z):
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(name)


def independent_accuracy(checkpoint, data, split="test"):
    """Test accuracy computed from the README's checkpoint layout alone."""
    with h5py.File(checkpoint, "r") as f:
        attrs = f["model"].attrs
        hidden, output = attrs["activation"], attrs["output"]
        hidden = hidden.decode() if isinstance(hidden, bytes) else hidden
        output = output.decode() if isinstance(output, bytes) else output
    layers = read_params(checkpoint)
    with h5py.File(data, "r") as f:
        images = f[f"{split}/images"][()]
        labels = f[f"{split}/labels"][()]
    a = images.reshape(len(images), -1).astype(np.float64)
    if images.dtype == np.uint8:
        a /= 255.0
    for i, (w, b) in enumerate(layers):
        a = activation(output if i == len(layers) - 1 else hidden, a @ w.T.astype(np.float64) + b)
    correct = int((a.argmax(axis=1) == labels).sum())
    return correct, len(labels)


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="dptrain-cli-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def assertOneClearError(self, result, fragment):
        """Non-zero exit and exactly one 'dptrain: error' line, containing fragment."""
        self.assertNotEqual(result.code, 0, result)
        lines = result.error_lines()
        self.assertEqual(len(lines), 1, result)
        self.assertIn(fragment, lines[0], result)
