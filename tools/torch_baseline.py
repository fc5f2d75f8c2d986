#!/usr/bin/python3
"""The same training in PyTorch, for tools/bench.py to compare against.

Trains the MLP dptrain trains, on the same HDF5 file, with the same global
batch and settings: in one process, or with DistributedDataParallel (gloo) on
--procs processes of --threads threads each, each taking its slice of every
global batch as a dptrain rank does. Prints one JSON object: the time of each
epoch's training loop (evaluation not counted, as in dptrain's epoch_seconds),
the test accuracy after it, and the peak memory of the largest process.

  /usr/bin/python3 tools/torch_baseline.py --data data/mnist.h5 --layers 784,1024,1024,10 \\
      --activation relu --output softmax --loss cross-entropy --lr 0.05 --momentum 0.9 \\
      --batch-size 256 --epochs 4 --threads 2 [--procs 2]

Needs Debian's python3-torch, python3-h5py and python3-numpy (hence /usr/bin/python3).
OMP_WAIT_POLICY must be set in the environment before this starts, if at all.
"""
import argparse
import json
import math
import os
import resource
import shutil
import sys
import tempfile
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--layers", default="784,16,16,10")
    p.add_argument("--activation", default="sigmoid", choices=["sigmoid", "tanh", "relu"])
    p.add_argument("--output", default="sigmoid", choices=["sigmoid", "softmax"])
    p.add_argument("--loss", default="mse", choices=["mse", "cross-entropy"])
    p.add_argument("--lr", type=float, default=3.0)
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"])
    p.add_argument("--batch-size", type=int, default=10, help="global batch, split across processes")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--threads", type=int, default=1, help="threads per process, torch's and OpenBLAS's")
    p.add_argument("--procs", type=int, default=1, help="1: one process; more: DDP with gloo")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(argv)


# PyTorch's CPU matmuls run in OpenBLAS, whose pthreads pool ignores
# torch.set_num_threads: without this, "1 thread" would be OpenBLAS on every
# core. It must be set before torch loads; spawned DDP workers inherit it.
ARGS = parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
import torch.nn.functional as F  # noqa: E402



def load(path, split):
    with h5py.File(path, "r") as f:
        images = f[f"{split}/images"][...]
        labels = f[f"{split}/labels"][...]
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


def build_model(args):
    sizes = [int(s) for s in args.layers.split(",")]
    act = {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[args.activation]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(act())
    return torch.nn.Sequential(*layers)


def loss_of(args, logits, labels):
    """The mean over the batch of dptrain's per-sample loss."""
    if args.output == "softmax":
        if args.loss != "cross-entropy":
            return 0.5 * ((F.softmax(logits, 1) - F.one_hot(labels, logits.shape[1])) ** 2).sum(1).mean()
        return F.cross_entropy(logits, labels)
    target = F.one_hot(labels, logits.shape[1]).float()
    if args.loss == "mse":
        return 0.5 * ((torch.sigmoid(logits) - target) ** 2).sum(1).mean()
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1).mean()


def train(rank, args, rendezvous, results):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.procs > 1:
        dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=args.procs)
    x_train, y_train = load(args.data, "train")
    x_test, y_test = load(args.data, "test")
    model = build_model(args)
    net = torch.nn.parallel.DistributedDataParallel(model) if args.procs > 1 else model
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum)
    batch, n = args.batch_size, len(x_train)
    steps = math.ceil(n / batch)
    total_steps = steps * args.epochs
    generator = torch.Generator().manual_seed(args.seed)
    epochs = []
    step_count = 0
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(n, generator=generator)  # the same on every process
        if args.procs > 1:
            dist.barrier()
        start = time.perf_counter()
        for step in range(steps):
            if args.lr_schedule == "cosine":
                for group in optimizer.param_groups:
                    group["lr"] = 0.5 * args.lr * (1 + math.cos(math.pi * step_count / total_steps))
            first = step * batch
            size = min(batch, n - first)
            # each process takes its own contiguous part of the global batch, as a dptrain rank does
            idx = order[first + rank * size // args.procs:first + (rank + 1) * size // args.procs]
            optimizer.zero_grad(set_to_none=True)
            loss_of(args, net(x_train[idx]), y_train[idx]).backward()
            optimizer.step()
            step_count += 1
        seconds = time.perf_counter() - start
        if args.procs > 1:
            # The slowest process sets the epoch's time, as in dptrain.
            t = torch.tensor([seconds], dtype=torch.float64)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            seconds = float(t[0])
        with torch.no_grad():
            accuracy = float((model(x_test).argmax(1) == y_test).float().mean())
        epochs.append({"epoch": epoch, "seconds": seconds, "test_accuracy": accuracy})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if args.procs > 1:
        t = torch.tensor([peak_mb], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        peak_mb = float(t[0])
        dist.destroy_process_group()
    if rank == 0:
        results.put({"procs": args.procs, "threads": args.threads, "seed": args.seed, "torch": torch.__version__,
                     "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""), "epochs": epochs,
                     "peak_rss_mb": peak_mb})


def main():
    args = ARGS
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    if args.procs == 1:
        train(0, args, None, results)
    else:
        # The processes meet through a file of their own, not a TCP port: a port
        # found free and then bound later can be taken in between by anything
        # else on the machine (another test, another user's job).
        folder = tempfile.mkdtemp(prefix="dptrain-torch-")
        try:
            mp.spawn(train, args=(args, os.path.join(folder, "rendezvous"), results), nprocs=args.procs, join=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    json.dump(results.get(), sys.stdout)
    print()


if __name__ == "__main__":
    main()
