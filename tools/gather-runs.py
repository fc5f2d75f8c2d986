#!/usr/bin/env python3
"""Gathers the final metrics of training runs into one table.

  tools/gather-runs.py RUNS_FOLDER_OR_RUN_DIR... [--csv FILE] [--sort test_accuracy]

A run dir is any folder holding metrics.jsonl (and config.ini); folders are
searched below the arguments. Prints an aligned text table; --csv also writes
it as CSV. Standard library only.
"""
import argparse
import configparser
import csv
import json
import os
import sys

COLUMNS = ["run", "layers", "activation", "lr", "momentum", "batch_size", "epochs", "test_accuracy",
           "best_accuracy", "test_loss", "train_loss", "train_seconds"]


def read_run(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        metrics = [json.loads(line) for line in f if line.strip()]
    if not metrics:
        return None
    config = configparser.ConfigParser()
    config_path = os.path.join(run_dir, "config.ini")
    if os.path.exists(config_path):
        with open(config_path) as f:
            config.read_string("[run]\n" + f.read())
    option = lambda key: config.get("run", key, fallback="")
    last = metrics[-1]
    return {"run": run_dir, "layers": option("layers"), "activation": option("activation"), "lr": option("lr"),
            "momentum": option("momentum"), "batch_size": option("batch-size"), "epochs": last["epoch"],
            "test_accuracy": last["test_accuracy"], "best_accuracy": max(m["test_accuracy"] for m in metrics),
            "test_loss": last["test_loss"], "train_loss": last["train_loss"],
            "train_seconds": round(sum(m["epoch_seconds"] for m in metrics), 2)}


def find_runs(paths):
    for path in paths:
        for folder, _, files in sorted(os.walk(path)):
            if "metrics.jsonl" in files:
                yield folder


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--csv", help="also write the table to this CSV file")
    parser.add_argument("--sort", default="test_accuracy", choices=COLUMNS)
    args = parser.parse_args()
    rows = [r for r in (read_run(d) for d in find_runs(args.paths)) if r]
    if not rows:
        print(f"gather-runs: no metrics.jsonl below {' '.join(args.paths)}", file=sys.stderr)
        return 1
    rows.sort(key=lambda r: r[args.sort], reverse=args.sort in ("test_accuracy", "best_accuracy"))
    text = [[str(r[c]) if not isinstance(r[c], float) else f"{r[c]:.4f}" for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in text)) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)))
    for t in text:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths)))
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
