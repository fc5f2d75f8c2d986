#!/usr/bin/env python3
"""Trains the configurations in jobs/configs/ with several seeds and prints the
table README.md quotes: final test accuracy (min / median / max over seeds) and
the median training time (evaluation excluded), plus the same as JSON.

  tools/accuracy-table.py [--ranks 2] [--seeds 1 2 3] [--data data/mnist.h5] [config.ini ...]

Standard library only; needs build/dptrain and mpirun.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIGS = ["reference.ini", "tweaked.ini", "tutorial96.ini", "wide.ini"]


def train(config, seed, ranks, data, dptrain, run_dir):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    command = ["mpirun", "-np", str(ranks), dptrain, "train", "--config", config, "--data", data,
               "--seed", str(seed), "--run-dir", run_dir, "-q"]
    subprocess.run(command, check=True, env=env)
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        metrics = [json.loads(line) for line in f]
    return metrics[-1]["test_accuracy"], sum(m["epoch_seconds"] for m in metrics), metrics[-1]["epoch"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", default=DEFAULT_CONFIGS)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--data", default=os.path.join(ROOT, "data", "mnist.h5"))
    parser.add_argument("--dptrain", default=os.path.join(ROOT, "build", "dptrain"))
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="dptrain-table-") as scratch:
        for config in args.configs:
            path = config if os.path.exists(config) else os.path.join(ROOT, "jobs", "configs", config)
            runs = [train(path, seed, args.ranks, args.data, args.dptrain,
                          os.path.join(scratch, f"{os.path.basename(path)}-{seed}")) for seed in args.seeds]
            accuracies = [a for a, _, _ in runs]
            rows.append({"config": os.path.basename(path), "epochs": runs[0][2], "ranks": args.ranks,
                         "seeds": args.seeds, "accuracies": accuracies,
                         "min": min(accuracies), "median": statistics.median(accuracies), "max": max(accuracies),
                         "median_train_seconds": statistics.median(s for _, s, _ in runs)})
            print(f"done: {rows[-1]['config']}", file=sys.stderr)

    print(f"| configuration | epochs | test accuracy, min / median / max over seeds {args.seeds} "
          f"| training time (median), {args.ranks} ranks |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| `jobs/configs/{r['config']}` | {r['epochs']} | {100 * r['min']:.2f}% / "
              f"**{100 * r['median']:.2f}%** / {100 * r['max']:.2f}% | {r['median_train_seconds']:.1f} s |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
