#!/usr/bin/env python3
"""Measures dptrain against the hardware floor, side by side in one run.

For each configuration and rank count: the floor (build/dptrain_floor: sgemm
on the step's GEMM shapes, the gradient allreduce, the data pass) and dptrain
itself (epochs after the first; medians). Prints one table and writes JSON.

  tools/bench.py [--ranks 1 2] [--epochs 4] [--data data/mnist.h5] [--json bench.json] [--only SEED WIDE ...]
  tools/bench.py --tiny          # a seconds-long run on synthetic data (the harness's own test)

Configurations: SEED (784-16-16-10, sigmoid, mse, batch 10, lr 3.0: the
tutorial's), WIDE (784-1024-1024-10, relu, softmax, cross-entropy, momentum
0.9, batch 256), MID (784-256-256-10, as jobs/configs/wide.ini: batch 128).
Standard library only. Not yet here: PyTorch's figures for the same runs.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {
    "SEED": ["--layers", "784,16,16,10", "--activation", "sigmoid", "--output", "sigmoid", "--loss", "mse",
             "--lr", "3.0", "--batch-size", "10"],
    "WIDE": ["--layers", "784,1024,1024,10", "--activation", "relu", "--output", "softmax", "--loss",
             "cross-entropy", "--lr", "0.05", "--momentum", "0.9", "--batch-size", "256"],
    "MID": ["--layers", "784,256,256,10", "--activation", "relu", "--output", "softmax", "--loss", "cross-entropy",
            "--lr", "0.05", "--momentum", "0.9", "--lr-schedule", "cosine", "--batch-size", "128"],
}
TINY = {"TINY": ["--layers", "784,32,10", "--activation", "relu", "--output", "softmax", "--loss", "cross-entropy",
                 "--lr", "0.1", "--batch-size", "20"]}


def option(args, name):
    return args[args.index(name) + 1]


def mpirun(ranks):
    return ["mpirun", "-np", str(ranks), "--oversubscribe"]


def measure(name, args, ranks, epochs, data, samples, scratch, build):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    floor = json.loads(subprocess.run(
        mpirun(ranks) + [os.path.join(build, "dptrain_floor"), "--layers", option(args, "--layers"),
                         "--batch-size", option(args, "--batch-size"), "--samples", str(samples), "--json"],
        check=True, capture_output=True, text=True, env=env).stdout)
    run_dir = os.path.join(scratch, f"{name}-{ranks}")
    subprocess.run(mpirun(ranks) + [os.path.join(build, "dptrain"), "train", "--data", data, "--run-dir", run_dir,
                                    "--epochs", str(epochs), "-q"] + args,
                   check=True, capture_output=True, text=True, env=env)
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        metrics = [json.loads(line) for line in f][1:] or None  # the first epoch warms caches up
    median = lambda key: statistics.median(m[key] for m in metrics)
    epoch = median("epoch_seconds")
    return {"config": name, "ranks": ranks, "threads_per_rank": floor["threads_per_rank"],
            "epoch_seconds": epoch, "samples_per_second": median("samples_per_second"), "gflops": median("gflops"),
            "allreduce_ms_per_step": statistics.median(m["phase_ms"]["allreduce"] for m in metrics),
            "step_ms": median("step_ms"), "peak_rss_mb": max(m["peak_rss_mb"] for m in metrics),
            "floor_epoch_seconds": floor["floor_epoch_seconds"], "floor_gemm_epoch_seconds":
            floor["floor_gemm_epoch_seconds"], "floor_gemm_gflops_per_rank": floor["gemm_gflops_per_rank"],
            "floor_allreduce_ms": floor["allreduce_us"] / 1e3,
            "dptrain_over_floor": epoch / floor["floor_epoch_seconds"],
            "dptrain_over_gemm_floor": epoch / floor["floor_gemm_epoch_seconds"]}


def tiny_data(folder):
    sys.path.insert(0, os.path.join(ROOT, "tests", "cli"))
    os.environ.setdefault("DPTRAIN", ""), os.environ.setdefault("DPTRAIN_SOURCE_DIR", ROOT)
    from common import synthetic_mnist, write_data_h5  # noqa: E402 (needs h5py and numpy)
    return write_data_h5(os.path.join(folder, "tiny.h5"), *synthetic_mnist(400, 100))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=4, help="per run; the first is not counted")
    parser.add_argument("--data", default=os.path.join(ROOT, "data", "mnist.h5"))
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--only", nargs="+", choices=sorted(CONFIGS))
    parser.add_argument("--json", help="write the rows to this file")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long run on synthetic data")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="dptrain-bench-") as scratch:
        configs = TINY if args.tiny else {k: v for k, v in CONFIGS.items() if not args.only or k in args.only}
        data = tiny_data(scratch) if args.tiny else args.data
        samples = 400 if args.tiny else 60000
        for name, config in configs.items():
            for ranks in args.ranks:
                rows.append(measure(name, config, ranks, max(2, args.epochs), data, samples, scratch, args.build))
                print(f"done: {name} on {ranks} rank(s)", file=sys.stderr)
    print("| config | ranks x threads | epoch (s) | samples/s | GFLOP/s | allreduce ms/step | peak MB/rank "
          "| floor epoch (s) | dptrain/floor | dptrain/GEMM floor |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['ranks']} x {r['threads_per_rank']} | {r['epoch_seconds']:.3f} | "
              f"{r['samples_per_second']:.0f} | {r['gflops']:.1f} | {r['allreduce_ms_per_step']:.3f} | "
              f"{r['peak_rss_mb']:.0f} | {r['floor_epoch_seconds']:.3f} | {r['dptrain_over_floor']:.2f} | "
              f"{r['dptrain_over_gemm_floor']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
