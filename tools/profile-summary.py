#!/usr/bin/env python3
"""Where the steps of a profiled run went, from its per-rank traces (dptrain train --profile K writes
RUN_DIR/profile/rank-R.json): each phase's p10, median and p90 over the steps, per rank, and the
reduction split into work and wait.

  tools/profile-summary.py RUN_DIR [--skip N] [--json]

--skip N leaves out the first N steps (the first epoch warms caches and touches pages for the first
time: with --profile 2S on an epoch of S steps, --skip S keeps the second epoch only).

Every rank leaves the reduction at the same moment (the sum is collective), so a rank's time in it is
its own share of the work plus its wait for the others. The rank that arrived last waited least: its
time in the reduction is the work alone (an upper bound on it), and each rank's wait is its time
there minus that.
"""
import argparse
import glob
import json
import os
import re
import sys

PHASES = ["data", "forward", "backward", "allreduce", "update"]
REDUCTION = ("allreduce", "update")  # with --reduce shm the update happens inside the reduction


def read_steps(path):
    """One {phase: microseconds} per step, in order."""
    with open(path) as f:
        events = json.load(f)["traceEvents"]
    steps = []
    for e in events:
        if e["name"] == PHASES[0] or not steps:
            steps.append({})
        steps[-1][e["name"]] = steps[-1].get(e["name"], 0.0) + e["dur"]
    return steps


def quantiles(values):
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return {"p10": at(0.1), "median": at(0.5), "p90": at(0.9)}


def summarize(run_dir, skip):
    files = sorted(glob.glob(os.path.join(run_dir, "profile", "rank-*.json")),
                   key=lambda p: int(re.search(r"rank-(\d+)\.json$", p).group(1)))
    if not files:
        raise SystemExit(f"profile-summary: no {os.path.join(run_dir, 'profile', 'rank-*.json')} "
                         "(train with --profile K)")
    ranks = [read_steps(path)[skip:] for path in files]
    steps = min(len(r) for r in ranks)
    if steps == 0:
        raise SystemExit(f"profile-summary: no steps left after --skip {skip}")
    in_reduction = [[sum(r[s].get(p, 0.0) for p in REDUCTION) for s in range(steps)] for r in ranks]
    work = [min(column) for column in zip(*in_reduction)]
    report = {"run_dir": run_dir, "ranks": len(ranks), "steps": steps, "skipped": skip, "per_rank": [],
              "reduction_work_us": quantiles(work)}
    for rank, r in enumerate(ranks):
        phases = {p: quantiles([r[s].get(p, 0.0) for s in range(steps)]) for p in PHASES}
        wait = [in_reduction[rank][s] - work[s] for s in range(steps)]
        report["per_rank"].append({"rank": rank, "phases_us": phases, "reduction_wait_us": quantiles(wait)})
    return report


def print_report(report):
    print(f"{report['run_dir']}: {report['ranks']} rank(s), {report['steps']} steps "
          f"(after the first {report['skipped']}); microseconds, p10 / median / p90")
    print("| rank | " + " | ".join(PHASES) + " | reduction: wait |")
    print("|---" * (len(PHASES) + 2) + "|")
    q = lambda v: f"{v['p10']:.0f} / {v['median']:.0f} / {v['p90']:.0f}"
    for r in report["per_rank"]:
        print(f"| {r['rank']} | " + " | ".join(q(r["phases_us"][p]) for p in PHASES) +
              f" | {q(r['reduction_wait_us'])} |")
    print(f"reduction work (the last rank to arrive): {q(report['reduction_work_us'])}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--skip", type=int, default=0, help="leave out the first N steps")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    if args.skip < 0:
        parser.error("--skip must be >= 0")
    report = summarize(args.run_dir, args.skip)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print_report(report)


if __name__ == "__main__":
    main()
