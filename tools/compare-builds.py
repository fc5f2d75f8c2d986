#!/usr/bin/env python3
"""Two builds of dptrain side by side in one run: the same training with each, alternating, so that
both see the same machine. For each configuration of tools/bench.py (SEED, WIDE, MID) on R ranks x T
threads: the median epoch time over the epochs after the first, and over the rounds, with the phases.

  tools/compare-builds.py --before /tmp/old/build --after build [--only MID] [--ranks 2] [--threads 1] [--rounds 2]
                          [--epochs 4] [--data data/mnist.h5] [--reduce shm]

Typical use: build the commit before a change in a worktree (git worktree add /tmp/old HEAD~1;
cmake -S /tmp/old -B /tmp/old/build -DDPTRAIN_BUILD_TESTS=OFF; cmake --build /tmp/old/build --target dptrain).
"""
import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import CONFIGS, ROOT, after_first, run_dptrain  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="build folder holding the first dptrain")
    parser.add_argument("--after", required=True, help="build folder holding the second dptrain")
    parser.add_argument("--only", nargs="+", choices=sorted(CONFIGS), default=sorted(CONFIGS))
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads per rank")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--data", default=os.path.join(ROOT, "data", "mnist.h5"))
    parser.add_argument("--reduce", default="shm")
    args = parser.parse_args()
    builds = {"before": args.before, "after": args.after}
    print(f"| config | build | ranks x threads | epoch (s) | " + " | ".join(
        f"{p} ms/step" for p in ("data", "forward", "backward", "allreduce", "update")) + " | after/before |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="dptrain-compare-") as scratch:
        for name in args.only:
            config = CONFIGS[name] + ["--reduce", args.reduce]
            epochs = {label: [] for label in builds}
            phases = {label: [] for label in builds}
            for round_ in range(args.rounds):
                for label, build in builds.items():
                    metrics = after_first(run_dptrain(config, args.ranks, args.epochs, args.data,
                                                      os.path.join(scratch, f"{name}-{label}-{round_}"),
                                                      os.path.join(build, "dptrain"), args.threads))
                    epochs[label] += [m["epoch_seconds"] for m in metrics]
                    phases[label] += [m["phase_ms"] for m in metrics]
            medians = {label: statistics.median(values) for label, values in epochs.items()}
            for label in builds:
                phase = {k: statistics.median(p[k] for p in phases[label]) for k in phases[label][0]}
                ratio = f"{medians['after'] / medians['before']:.3f}" if label == "after" else ""
                print(f"| {name} | {label} | {args.ranks} x {args.threads} | {medians[label]:.3f} | " +
                      " | ".join(f"{phase[k]:.3f}" for k in ("data", "forward", "backward", "allreduce", "update")) +
                      f" | {ratio} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
