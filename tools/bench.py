#!/usr/bin/env python3
"""Measures dptrain against the hardware floor and against PyTorch, side by side in one run.

For each configuration: the floor (build/dptrain_floor: sgemm on the step's
GEMM shapes, the gradient allreduce, the data pass) and dptrain at every
split of the cores into ranks x threads (1 x 2 and 2 x 1 on 2 cores, plus
1 x 1 as the serial baseline), with both gradient reductions on more than one
rank (--reduce shm: shared memory inside the node; --reduce mpi:
MPI_Allreduce), naming the fastest; and PyTorch (tools/torch_baseline.py) in one process (all cores; all cores
with OMP_WAIT_POLICY=passive; one thread) and with DistributedDataParallel
(gloo) on 2 processes, same global batch, same threads per process. Times are
medians over the epochs after the first. Then the time to a test accuracy
(default 98%) at dptrain's fastest split against PyTorch's fastest
configuration (round i trains both from seed i, so that the epoch that
reaches the target is a median of draws), and the issue's targets met or missed. Prints the tables and
writes JSON. With --rounds N, all of it runs N times in turn (dptrain's splits,
then PyTorch's setups, then the time to accuracy) and each figure is the median
over the rounds; a ratio of dptrain to PyTorch is the median of the rounds'
ratios, each of two runs made minutes apart (a shared machine's slow spells
last minutes, and would otherwise move a ratio of medians by more than its
margins).

  tools/bench.py [--ranks 1 2] [--epochs 4] [--rounds 1] [--data data/mnist.h5] [--json bench.json]
                 [--only SEED WIDE ...] [--coretype SkylakeX] [--no-torch] [--no-exact]
  tools/bench.py --tiny          # a short run on synthetic data (the harness's own test)

Configurations: SEED (784-16-16-10, sigmoid, mse, batch 10, lr 3.0: the
tutorial's), WIDE (784-1024-1024-10, relu, softmax, cross-entropy, momentum
0.9, batch 256; on 2 ranks also with the allreduce overlapped with backprop,
--bucket-kib 1024), MID (784-256-256-10, as jobs/configs/wide.ini: batch 128).
On 2 ranks each also runs with --sparse-input false ("sgemm"), the first
layer on sgemm where the default skips MNIST's zero pixels.
--coretype sets OPENBLAS_CORETYPE for every process, dptrain's and PyTorch's
alike (both use OpenBLAS); the tables say which kernels ran.
PyTorch runs under /usr/bin/python3 (Debian's python3-torch).
"""
import argparse
import configparser
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
# dptrain's reductions on more than one rank, and its own variants beside them.
REDUCTIONS = [("shm", ["--reduce", "shm"]), ("mpi", ["--reduce", "mpi"])]
# "exact": --exact, bit-identical on any rank count (README: Shards, batch order and exact sums); its cost is
# printed as the ratio of its epoch to the default (shm) one's, side by side.
EXACT = ("exact", ["--exact"])
# "sgemm": the first layer on sgemm even where MNIST's zeros let it skip them (--sparse-input false; the
# default takes the sparse first layer on one BLAS thread: 1 x 1 and 2 x 1 here), beside the shm row.
SGEMM = ("sgemm", ["--sparse-input", "false"])
VARIANTS = {"SEED": [SGEMM, EXACT], "MID": [SGEMM, EXACT],
            "WIDE": [SGEMM, ("overlapped", ["--bucket-kib", "1024"]), EXACT],
            "TINY": [("overlapped", ["--bucket-kib", "1"]), EXACT]}
# Time to accuracy: jobs/configs/wide.ini's network and schedule over 10 epochs
# (both programs end near 97.9% with 6, so the target would be luck).
TO_ACCURACY = ("MID", 10)
TORCH_PYTHON = "/usr/bin/python3"
CORES = os.cpu_count() or 1


def splits(cores=CORES):
    """(ranks, threads per rank): 1 x 1, the serial baseline, then every split that uses all the cores."""
    every = [(ranks, cores // ranks) for ranks in range(1, cores + 1) if cores % ranks == 0]
    return [(1, 1)] + [s for s in every if s != (1, 1)]


def option(args, name):
    return args[args.index(name) + 1]


def mpirun(ranks, threads=1):
    # mpirun binds each rank to one core by default: a rank with more threads needs them all.
    return ["mpirun", "-np", str(ranks), "--oversubscribe"] + (["--bind-to", "none"] if threads > 1 else [])


def environment(extra=None):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    env.pop("OPENBLAS_NUM_THREADS", None)  # each tool sets its own from the cores and ranks
    env.update(extra or {})
    return env


def after_first(values):
    return values[1:] or values  # the first epoch warms caches up


def binaries(args):
    """(dptrain, dptrain_floor): --dptrain and --floor, else both from the --build folder."""
    return (args.dptrain or os.path.join(args.build, "dptrain"),
            args.floor or os.path.join(args.build, "dptrain_floor"))


def add_binary_options(parser):
    """--build, --dptrain, --floor: tests pass the binaries of the build folder they run in."""
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), help="where dptrain and dptrain_floor are")
    parser.add_argument("--dptrain", help="the dptrain binary (default: BUILD/dptrain)")
    parser.add_argument("--floor", help="the dptrain_floor binary (default: BUILD/dptrain_floor)")


def floor_of(args, ranks, samples, floor, threads=None):
    extra = {"OPENBLAS_NUM_THREADS": str(threads)} if threads else {}
    return json.loads(subprocess.run(
        mpirun(ranks, threads or 1) + [floor, "--layers", option(args, "--layers"),
                                       "--batch-size", option(args, "--batch-size"), "--samples", str(samples),
                                       "--json"],
        check=True, capture_output=True, text=True, env=environment(extra)).stdout)


def run_dptrain(args, ranks, epochs, data, run_dir, dptrain, threads=None):
    thread_args = ["--threads", str(threads)] if threads else []
    subprocess.run(mpirun(ranks, threads or 1) + [dptrain, "train", "--data", data,
                                                  "--run-dir", run_dir, "--epochs", str(epochs), "-q"]
                   + thread_args + args,
                   check=True, capture_output=True, text=True, env=environment())
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def measure_once(name, variant, args, ranks, threads, epochs, data, samples, run_dir, programs):
    """(the floor's report, dptrain's epochs after the first) of one run of each."""
    dptrain, floor_binary = programs
    floor = floor_of(args, ranks, samples, floor_binary, threads)
    return floor, after_first(run_dptrain(args, ranks, epochs, data, run_dir, dptrain, threads))


def own_reduction_floor(floor, variant):
    """The floor's epoch with the reduction the variant runs: its reduction term is MPI_Allreduce's, which
    --reduce shm replaces by the shared-memory sum (the floor's shm_reduce_us; nothing on one rank)."""
    if variant != "shm":
        return floor["floor_epoch_seconds"]
    saved_us = floor["allreduce_us"] - floor["shm_reduce_us"]
    return floor["floor_epoch_seconds"] - floor["steps_per_epoch"] * saved_us / 1e6


def summarize(name, variant, args, ranks, threads, runs):
    """One row from the rounds' runs: medians over every counted epoch of every round, and over the floors."""
    metrics = [m for _, epochs in runs for m in epochs]
    floor = {k: statistics.median(f[k] for f, _ in runs) if isinstance(runs[0][0][k], (int, float)) else runs[0][0][k]
             for k in runs[0][0]}
    median = lambda key: statistics.median(m[key] for m in metrics)
    # The floor's GEMMs of each pass (rank 0's, each timed alone on warm caches), against the trainer's phases.
    floor_pass_ms = lambda keys: statistics.median(
        sum(layer[k] for layer in f["gemms"].values() for k in keys) / 1e3 for f, _ in runs)
    epoch = median("epoch_seconds")
    own_floor_by_round = [own_reduction_floor(f, variant) for f, _ in runs]
    return {"config": name, "variant": variant, "ranks": ranks, "threads_per_rank": threads, "args": args,
            "rounds": len(runs), "epochs_counted": [m["epoch_seconds"] for m in metrics],
            "openblas_core": floor["openblas_core"], "steps_per_epoch": floor["steps_per_epoch"],
            "epoch_seconds": epoch, "samples_per_second": median("samples_per_second"), "gflops": median("gflops"),
            "allreduce_ms_per_step": statistics.median(m["phase_ms"]["allreduce"] for m in metrics),
            "step_ms": median("step_ms"), "peak_rss_mb": max(m["peak_rss_mb"] for m in metrics),
            "phase_ms": {k: statistics.median(m["phase_ms"][k] for m in metrics) for k in metrics[0]["phase_ms"]},
            "floor_epoch_seconds": floor["floor_epoch_seconds"], "floor_gemm_epoch_seconds":
            floor["floor_gemm_epoch_seconds"], "floor_gemm_gflops_per_rank": floor["gemm_gflops_per_rank"],
            "floor_allreduce_ms": floor["allreduce_us"] / 1e3, "floor_shm_reduce_ms": floor["shm_reduce_us"] / 1e3,
            "floor_forward_gemm_ms": floor_pass_ms(["forward_us"]),
            "floor_backward_gemm_ms": floor_pass_ms(["weight_grad_us", "input_grad_us"]),
            "epoch_seconds_by_round": [statistics.median(m["epoch_seconds"] for m in epochs) for _, epochs in runs],
            "floor_epoch_seconds_by_round": [f["floor_epoch_seconds"] for f, _ in runs],
            "floor_own_reduction_epoch_seconds": statistics.median(own_floor_by_round),
            "floor_own_reduction_epoch_seconds_by_round": own_floor_by_round,
            "dptrain_over_floor": epoch / floor["floor_epoch_seconds"],
            "dptrain_over_gemm_floor": epoch / floor["floor_gemm_epoch_seconds"]}


def torch_setups(ranks_measured):
    """(label, processes, threads per process, extra environment)."""
    setups = [(f"1 proc x {CORES} threads", 1, CORES, {}),
              (f"1 proc x {CORES} threads, OMP_WAIT_POLICY=passive", 1, CORES, {"OMP_WAIT_POLICY": "passive"})]
    if CORES > 1:
        setups.append(("1 proc x 1 thread", 1, 1, {}))
    for ranks in ranks_measured:
        if ranks > 1:
            threads = max(1, CORES // ranks)
            setups.append((f"DDP {ranks} procs x {threads} thread{'s' if threads > 1 else ''}", ranks, threads, {}))
    return setups


def run_torch(args, procs, threads, extra_env, epochs, data):
    keep = ["--layers", "--activation", "--output", "--loss", "--lr", "--momentum", "--lr-schedule", "--batch-size",
            "--seed"]
    passed = [x for name in keep if name in args for x in (name, option(args, name))]
    result = subprocess.run([TORCH_PYTHON, os.path.join(ROOT, "tools", "torch_baseline.py"), "--data", data,
                             "--epochs", str(epochs), "--threads", str(threads), "--procs", str(procs)] + passed,
                            check=True, capture_output=True, text=True, env=environment(extra_env))
    return json.loads(result.stdout)


def summarize_torch(name, label, procs, threads, extra_env, reports, samples):
    """One row from the rounds' runs of a PyTorch setup: the median over every counted epoch."""
    seconds = statistics.median(e["seconds"] for report in reports for e in after_first(report["epochs"]))
    by_round = [statistics.median(e["seconds"] for e in after_first(report["epochs"])) for report in reports]
    return {"config": name, "setup": label, "procs": procs, "threads_per_proc": threads, "environment": extra_env,
            "rounds": len(reports), "epoch_seconds": seconds, "epoch_seconds_by_round": by_round,
            "samples_per_second": samples / seconds, "peak_rss_mb": max(r["peak_rss_mb"] for r in reports),
            "torch": reports[0]["torch"]}


def paired_ratio(ours, theirs):
    """The median over rounds of ours[i] / theirs[i] (None where a run has no figure counts as never: inf)."""
    ratios = [o / t if o is not None and t else float("inf") for o, t in zip(ours, theirs)]
    median = statistics.median(ratios)
    return None if median == float("inf") else median


def time_to(target, epochs):
    """Training seconds (evaluation excluded) until the first epoch at or above target, or None."""
    elapsed = 0.0
    for seconds, accuracy in epochs:
        elapsed += seconds
        if accuracy >= target:
            return elapsed
    return None


def torch_available():
    probe = subprocess.run([TORCH_PYTHON, "-c", "import torch, h5py"], capture_output=True, text=True)
    return probe.returncode == 0


def tiny_data(folder):
    sys.path.insert(0, os.path.join(ROOT, "tests", "cli"))
    os.environ.setdefault("DPTRAIN", ""), os.environ.setdefault("DPTRAIN_SOURCE_DIR", ROOT)
    from common import synthetic_mnist, write_data_h5  # noqa: E402 (needs h5py and numpy)
    return write_data_h5(os.path.join(folder, "tiny.h5"), *synthetic_mnist(400, 100))


def fmt(value, spec):
    return "n/a" if value is None else format(value, spec)


def print_tables(report):
    rows, torch_rows = report["dptrain"], report["pytorch"]
    print(f"OpenBLAS kernels: {rows[0]['openblas_core']}; {CORES} cores")
    print("| config | dptrain | ranks x threads | epoch (s) | samples/s | GFLOP/s | allreduce ms/step | peak MB/rank "
          "| floor epoch (s) | dptrain/floor | dptrain/GEMM floor | PyTorch same shape (s) | dptrain/same, by round "
          "| PyTorch best (s) | dptrain/best, by round |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        best = " (fastest)" if r.get("best_split") else ""
        print(f"| {r['config']} | {r['variant']}{best} | {r['ranks']} x {r['threads_per_rank']} | {r['epoch_seconds']:.3f} | "
              f"{r['samples_per_second']:.0f} | {r['gflops']:.1f} | {r['allreduce_ms_per_step']:.3f} | "
              f"{r['peak_rss_mb']:.0f} | {r['floor_epoch_seconds']:.3f} | {r['dptrain_over_floor']:.2f} | "
              f"{r['dptrain_over_gemm_floor']:.2f} | {fmt(r.get('torch_same_seconds'), '.3f')} | "
              f"{fmt(r.get('dptrain_over_torch_same'), '.3f')} | {fmt(r.get('torch_best_seconds'), '.3f')} | "
              f"{fmt(r.get('dptrain_over_torch_best'), '.3f')} |")
    print()
    print("Where a step goes (ms/step, medians), the floor's GEMMs of each pass in brackets (each GEMM timed alone, "
          "repeated on warm caches):")
    print("| config | dptrain | ranks x threads | data | forward [floor GEMMs] | backward [floor GEMMs] | allreduce "
          "| update | step |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        p = r["phase_ms"]
        print(f"| {r['config']} | {r['variant']} | {r['ranks']} x {r['threads_per_rank']} | {p['data']:.3f} | "
              f"{p['forward']:.3f} [{r['floor_forward_gemm_ms']:.3f}] | {p['backward']:.3f} "
              f"[{r['floor_backward_gemm_ms']:.3f}] | {p['allreduce']:.3f} | {p['update']:.3f} | {r['step_ms']:.3f} |")
    if torch_rows:
        print()
        print("| config | PyTorch setup | epoch (s) | samples/s | peak MB/proc |")
        print("|---|---|---|---|---|")
        for t in torch_rows:
            best = " (best)" if t.get("best") else ""
            print(f"| {t['config']} | {t['setup']}{best} | {t['epoch_seconds']:.3f} | {t['samples_per_second']:.0f} | "
                  f"{t['peak_rss_mb']:.0f} |")
    exact_costs = [(r, d) for r in rows if r["variant"] == "exact" for d in rows
                   if d["variant"] == "shm" and (d["config"], d["ranks"]) == (r["config"], r["ranks"])]
    if exact_costs:
        print()
        print("Cost of --exact (epoch time against the default reduction, same run):")
        for r, d in exact_costs:
            print(f"  {r['config']} on {r['ranks']} ranks: {r['epoch_seconds']:.3f} s vs {d['epoch_seconds']:.3f} s, "
                  f"x{r['epoch_seconds'] / d['epoch_seconds']:.2f}")
    acc = report.get("time_to_accuracy")
    if acc:
        print()
        print(f"Time to {acc['target']:.1%} test accuracy ({acc['recipe']}), training time without evaluation:")
        print(f"  dptrain, {acc['dptrain_split']}: {fmt(acc['dptrain_seconds'], '.2f')} s "
              f"(epoch {acc['dptrain_epoch']}); PyTorch, {acc['torch_setup']}: {fmt(acc['torch_seconds'], '.2f')} s "
              f"(epoch {acc['torch_epoch']}); ratio {fmt(acc['ratio'], '.2f')}")
        if acc["rounds"] > 1:
            by_round = lambda times: ", ".join(fmt(t, ".2f") for t in times)
            epochs = lambda reached: ", ".join(fmt(e, "d") for e in reached)
            print(f"  (the median of {acc['rounds']} rounds, seeds 1-{acc['rounds']}; dptrain "
                  f"{by_round(acc['dptrain_seconds_by_round'])} s at epochs "
                  f"{epochs(acc['dptrain_epoch_by_round'])}, PyTorch {by_round(acc['torch_seconds_by_round'])} s "
                  f"at epochs {epochs(acc['torch_epoch_by_round'])}; the ratio is the median of the rounds' "
                  "ratios)")
    if report.get("targets"):
        print()
        print("| target | measured | | at the floor | |")
        print("|---|---|---|---|---|")
        for t in report["targets"]:
            print(f"| {t['target']} | {t['measured']} | {'met' if t['met'] else 'missed'} | {t['at_floor_text']} | "
                  f"{'within reach' if t['at_floor_met'] else 'beyond the floor'} |")
        print("At the floor: what dptrain would measure if each epoch took build/dptrain_floor's time (its GEMMs, "
              "the split's own reduction (the shared-memory sum on --reduce shm, else MPI_Allreduce) and the data "
              "pass, without the update), at the split where that floor is fastest.")


def floor_best_split(rows, config):
    """The row of the config's split with the fastest floor, each with its own reduction (--exact is another
    mode, not a split), or None."""
    splits = [r for r in rows if r["config"] == config and r["variant"] != "exact"]
    return min(splits, key=lambda r: r["floor_own_reduction_epoch_seconds"]) if splits else None


def first_epoch_at(target, accuracies):
    return next((i + 1 for i, a in enumerate(accuracies) if a >= target), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, nargs="+", help="only the splits with these rank counts")
    parser.add_argument("--epochs", type=int, default=4, help="per run; the first is not counted")
    parser.add_argument("--data", default=os.path.join(ROOT, "data", "mnist.h5"))
    add_binary_options(parser)
    parser.add_argument("--only", nargs="+", choices=sorted(CONFIGS))
    parser.add_argument("--json", help="write the report to this file")
    parser.add_argument("--tiny", action="store_true", help="a short run on synthetic data")
    parser.add_argument("--coretype", help="OPENBLAS_CORETYPE for every process (e.g. SkylakeX)")
    parser.add_argument("--no-torch", action="store_true", help="dptrain and the floor only")
    parser.add_argument("--no-exact", action="store_true", help="without the --exact rows (11 of WIDE's minutes)")
    parser.add_argument("--target", type=float, default=0.98, help="test accuracy for the time-to-accuracy run")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every split of a configuration, and every PyTorch setup, this many times in "
                             "turn (a shared machine's slow spells then fall on all of them), and take the medians "
                             "over the rounds")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.coretype:
        os.environ["OPENBLAS_CORETYPE"] = args.coretype
    with_torch = not args.no_torch
    if with_torch and not torch_available():
        sys.exit(f"bench.py: {TORCH_PYTHON} cannot import torch and h5py: apt-get install python3-torch "
                 "python3-h5py, or run with --no-torch")
    report = {"dptrain": [], "pytorch": []}
    with tempfile.TemporaryDirectory(prefix="dptrain-bench-") as scratch:
        configs = TINY if args.tiny else {k: v for k, v in CONFIGS.items() if not args.only or k in args.only}
        data = tiny_data(scratch) if args.tiny else args.data
        samples = 400 if args.tiny else 60000
        epochs = max(2, args.epochs)
        chosen = [s for s in splits() if not args.ranks or s[0] in args.ranks]
        for name, config in configs.items():
            runs = {}  # (ranks, threads, variant, args) -> [(floor, epochs)], one per round
            torch_runs = {}  # PyTorch setup's label -> (setup, [its report, one per round])
            for round_index in range(args.rounds):
                for ranks, threads in chosen:
                    variants = REDUCTIONS + VARIANTS.get(name, []) if ranks > 1 else [("default", [])]
                    if args.no_exact:
                        variants = [v for v in variants if v != EXACT]
                    for variant, extra in variants:
                        run_dir = os.path.join(scratch, f"{name}-{variant}-{ranks}x{threads}-{round_index}")
                        runs.setdefault((ranks, threads, variant, tuple(config + extra)), []).append(measure_once(
                            name, variant, config + extra, ranks, threads, epochs, data, samples, run_dir,
                            binaries(args)))
                        print(f"done: dptrain {name} {variant} on {ranks} x {threads}, round {round_index + 1}",
                              file=sys.stderr)
                # PyTorch in the same rounds, so that the two are compared side by side.
                for setup in torch_setups(sorted({r for r, _ in chosen})) if with_torch else []:
                    label, procs, threads, extra_env = setup
                    torch_runs.setdefault(label, (setup, []))[1].append(
                        run_torch(config, procs, threads, extra_env, epochs, data))
                    print(f"done: PyTorch {name} {label}, round {round_index + 1}", file=sys.stderr)
            for (ranks, threads, variant, used), results in runs.items():
                report["dptrain"].append(summarize(name, variant, list(used), ranks, threads, results))
            # The fastest way to train as usual: --exact is another mode, not a split.
            fastest = min((r for r in report["dptrain"] if r["config"] == name and r["variant"] != "exact"),
                          key=lambda r: r["epoch_seconds"])
            fastest["best_split"] = True
            if not with_torch:
                continue
            setups = [summarize_torch(name, *setup, reports, samples) for setup, reports in torch_runs.values()]
            best = min(setups, key=lambda t: t["epoch_seconds"])
            best["best"] = True
            report["pytorch"] += setups
            for r in report["dptrain"]:
                if r["config"] != name:
                    continue
                same = next((t for t in setups if t["procs"] == r["ranks"]
                             and t["threads_per_proc"] == r["threads_per_rank"] and not t["environment"]), None)
                if same:
                    r["torch_same_setup"], r["torch_same_seconds"] = same["setup"], same["epoch_seconds"]
                    r["dptrain_over_torch_same"] = paired_ratio(r["epoch_seconds_by_round"],
                                                                same["epoch_seconds_by_round"])
                r["torch_best_setup"], r["torch_best_seconds"] = best["setup"], best["epoch_seconds"]
                r["dptrain_over_torch_best"] = paired_ratio(r["epoch_seconds_by_round"], best["epoch_seconds_by_round"])
                # What dptrain would score if its epochs took the floor's time, measured in the same rounds.
                r["floor_over_torch_best"] = paired_ratio(r["floor_own_reduction_epoch_seconds_by_round"],
                                                          best["epoch_seconds_by_round"])
        if with_torch:
            report["time_to_accuracy"] = time_to_accuracy(args, data, scratch, report["pytorch"], report["dptrain"])
        report["targets"] = targets(report)
    print_tables(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


def time_to_accuracy(args, data, scratch, torch_rows, dptrain_rows):
    """dptrain at its fastest split measured for the network (else 2 ranks x 1 thread) against PyTorch in its
    fastest setup measured for the same network."""
    network, epochs = ("TINY", 3) if args.tiny else TO_ACCURACY
    recipe = {**CONFIGS, **TINY}[network]
    candidates = [t for t in torch_rows if t["config"] == network] or torch_rows
    fastest = min(candidates, key=lambda t: t["epoch_seconds"])
    ours_best = next((r for r in dptrain_rows if r["config"] == network and r.get("best_split")), None)
    ranks, threads, args_used = ((ours_best["ranks"], ours_best["threads_per_rank"], ours_best["args"]) if ours_best
                                 else (2, 1, recipe))
    # Each round trains both programs from seed round + 1 (initial weights and batch order): the epoch that
    # first reaches the target is a draw (MID's fifth epoch lands within a few test samples of 98% in both
    # programs), and the median over rounds is then over that many draws, not over one draw timed again.
    mine, theirs_all, seeds = [], [], []  # one run each per round, in turn
    for round_index in range(args.rounds):
        seed = ["--seed", str(round_index + 1)]
        run_dir = os.path.join(scratch, f"to-accuracy-{round_index}")
        metrics = run_dptrain(args_used + seed, ranks, epochs, data, run_dir, binaries(args)[0], threads)
        mine.append([(m["epoch_seconds"], m["test_accuracy"]) for m in metrics])
        theirs_report = run_torch(recipe + seed, fastest["procs"], fastest["threads_per_proc"],
                                  fastest["environment"], epochs, data)
        theirs_all.append([(e["seconds"], e["test_accuracy"]) for e in theirs_report["epochs"]])
        seeds.append({"dptrain": seed_in_run_config(run_dir), "torch": theirs_report["seed"]})
        print(f"done: time to accuracy, round {round_index + 1}", file=sys.stderr)
    # The round with the median time, the lower one of an even count (a run that never gets there counts as
    # the slowest).
    median_run = lambda runs: sorted(runs, key=lambda r: time_to(args.target, r) or float("inf"))[(len(runs) - 1) // 2]
    ours, theirs = median_run(mine), median_run(theirs_all)
    mine_s, their_s = time_to(args.target, ours), time_to(args.target, theirs)
    mine_by_round = [time_to(args.target, r) for r in mine]
    theirs_by_round = [time_to(args.target, r) for r in theirs_all]
    mine_epochs = [first_epoch_at(args.target, [a for _, a in r]) for r in mine]
    # At the floor: each round's epochs to the target, each taking the floor's time at its fastest split (the
    # median of its rounds above; none when no split of the network was measured).
    floor_split = floor_best_split(dptrain_rows, network)
    floor_epoch = floor_split["floor_own_reduction_epoch_seconds"] if floor_split else None
    at_floor_by_round = [floor_epoch * e if floor_epoch and e else None for e in mine_epochs]
    return {"target": args.target, "recipe": "784-256-256-10 relu, cross-entropy, momentum 0.9, lr 0.05 cosine, "
            f"batch 128, {epochs} epochs" if not args.tiny else "TINY", "dptrain_ranks": ranks,
            "dptrain_threads_per_rank": threads, "dptrain_split": f"{ranks} x {threads}" + (
                f" {ours_best['variant']}" if ours_best else ""),
            "dptrain_seconds": mine_s, "dptrain_epoch": first_epoch_at(args.target, [a for _, a in ours]),
            "dptrain_epochs": ours, "torch_setup": fastest["setup"], "torch_seconds": their_s,
            "torch_epoch": first_epoch_at(args.target, [a for _, a in theirs]), "torch_epochs": theirs,
            "rounds": args.rounds, "seeds_by_round": seeds, "dptrain_epochs_by_round": mine,
            "torch_epochs_by_round": theirs_all,
            "dptrain_epoch_by_round": mine_epochs, "floor_own_reduction_epoch_seconds": floor_epoch,
            "floor_ratio": paired_ratio(at_floor_by_round, theirs_by_round) if floor_epoch else None,
            "torch_epoch_by_round": [first_epoch_at(args.target, [a for _, a in r]) for r in theirs_all],
            "dptrain_seconds_by_round": mine_by_round, "torch_seconds_by_round": theirs_by_round,
            "ratio": paired_ratio(mine_by_round, theirs_by_round)}


def seed_in_run_config(run_dir):
    """The seed dptrain recorded in its run folder's config.ini (what it trained with, not what was asked)."""
    config = configparser.ConfigParser()  # as tools/gather-runs.py reads it: keys without a section
    with open(os.path.join(run_dir, "config.ini")) as f:
        config.read_string("[run]\n" + f.read())
    return config.getint("run", "seed")


def targets(report):
    """Issue 12's targets, from this run's figures (those it measured)."""
    rows = report["dptrain"]
    find = lambda config, ranks, threads, variant: next(
        (r for r in rows if (r["config"], r["ranks"], r["threads_per_rank"], r["variant"]) == (config, ranks, threads,
                                                                                              variant)), None)
    best = lambda config: next((r for r in rows if r["config"] == config and r.get("best_split")), None)
    # Each target also says what dptrain would measure at its floor (every epoch taking build/dptrain_floor's time:
    # the GEMMs, the split's own reduction and the data pass; not the update), at the split where that floor is
    # fastest: a target that the floor misses is out of reach on this machine without fewer or faster GEMMs.
    out = []

    def add(target, meets, value, measured, at_floor, at_floor_text):
        met = lambda x: x is not None and meets(x)
        out.append({"target": target, "met": met(value), "measured": measured, "at_floor": at_floor,
                    "at_floor_met": met(at_floor), "at_floor_text": at_floor_text})

    at_most = lambda bound: lambda x: x <= bound
    mid2, mid1 = find("MID", 2, 1, "shm"), find("MID", 1, 1, "default")
    if mid2:
        add("MID, 2 ranks (shm): <= 1.15x its floor", at_most(1.15), mid2["dptrain_over_floor"],
            f"{mid2['dptrain_over_floor']:.2f}x ({mid2['epoch_seconds']:.3f} s against "
            f"{mid2['floor_epoch_seconds']:.3f} s)", 1.0, "1.00x")
    if mid2 and mid1:
        own = mid2["floor_own_reduction_epoch_seconds"]
        speedup, at_floor = mid1["epoch_seconds"] / mid2["epoch_seconds"], mid1["epoch_seconds"] / own
        add("MID, 2 ranks (shm): >= 1.6x faster than 1 rank x 1 thread", lambda x: x >= 1.6, speedup,
            f"{speedup:.2f}x ({mid2['epoch_seconds']:.3f} s against {mid1['epoch_seconds']:.3f} s)", at_floor,
            f"{at_floor:.2f}x ({own:.3f} s)")
    for name in ("SEED", "MID"):
        b = best(name)
        if b and b.get("dptrain_over_torch_best") is not None:
            f = floor_best_split(rows, name)
            add(f"{name} at the best split: <= 0.5x PyTorch's best", at_most(0.5), b["dptrain_over_torch_best"],
                f"{b['dptrain_over_torch_best']:.2f}x ({b['ranks']} x {b['threads_per_rank']} {b['variant']}: "
                f"medians {b['epoch_seconds']:.3f} s against {b['torch_best_seconds']:.3f} s, {b['torch_best_setup']})",
                f["floor_over_torch_best"], f"{f['floor_over_torch_best']:.2f}x ({f['ranks']} x "
                f"{f['threads_per_rank']} {f['variant']}: {f['floor_own_reduction_epoch_seconds']:.3f} s)")
    b = best("WIDE")
    if b:
        over_gemms = lambda r: r["floor_own_reduction_epoch_seconds"] / r["floor_gemm_epoch_seconds"]
        f = floor_best_split(rows, "WIDE")
        add("WIDE at the best split: <= 1.05x its GEMM floor", at_most(1.05), b["dptrain_over_gemm_floor"],
            f"{b['dptrain_over_gemm_floor']:.2f}x ({b['ranks']} x {b['threads_per_rank']} {b['variant']}: "
            f"{b['epoch_seconds']:.3f} s against {b['floor_gemm_epoch_seconds']:.3f} s)", over_gemms(f),
            f"{over_gemms(f):.2f}x ({f['ranks']} x {f['threads_per_rank']} {f['variant']}: "
            f"{f['floor_own_reduction_epoch_seconds']:.3f} s against {f['floor_gemm_epoch_seconds']:.3f} s)")
    acc = report.get("time_to_accuracy")
    if acc and acc.get("ratio") is not None:
        add(f"time to {acc['target']:.0%}: <= 0.5x PyTorch's fastest", at_most(0.5), acc["ratio"],
            f"{acc['ratio']:.2f}x ({acc['dptrain_split']}: medians {fmt(acc['dptrain_seconds'], '.2f')} s "
            f"against {fmt(acc['torch_seconds'], '.2f')} s, {acc['torch_setup']})", acc.get("floor_ratio"),
            f"{fmt(acc.get('floor_ratio'), '.2f')}x "
            f"(epochs of {fmt(acc.get('floor_own_reduction_epoch_seconds'), '.3f')} s)")
    return out


if __name__ == "__main__":
    main()
