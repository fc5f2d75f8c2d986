#!/usr/bin/env python3
"""A scaling model of dptrain, fitted to measurements on this machine.

Allreduce: the latency-bandwidth (Hockney) costs of the two algorithms Open MPI
chooses between, for p ranks and n bytes, with alpha the latency of one
message and beta the seconds per byte (copying and summing included):
  ring                2(p-1) alpha + 2 (p-1)/p n beta
  recursive doubling  r (alpha + n beta),  r = log2 p, or floor(log2 p) + 2
                      when p is not a power of two (the extra ranks fold in
                      before and out after)
alpha and beta are fitted for each algorithm over shared memory (Open MPI's
vader BTL) and over TCP (loopback here: a stand-in for a network; run this on
a cluster's nodes to fit its own) from MPI_Allreduce of 4 B to 16 MiB on 2
ranks (build/dptrain_floor --allreduce-sweep, the algorithm forced with
coll_tuned_allreduce_algorithm).

Compute: the step's GEMMs at each per-rank batch, measured with every core of
this node running one (dptrain_floor, a rank per core, as on a full cluster
node), times the ratio of dptrain's measured step (without allreduce and
update) to its GEMMs, taken from the run with a rank per core, plus the
update (measured, the same on any number of ranks). Ranks beyond the cores of
a node share them.

Step time = compute(rows per rank) + update + allreduce(p, gradient bytes);
epoch = steps x step. The model is checked against dptrain runs on 1, 2 and
4 ranks here (4 share the 2 cores), then predicts 1 to 1,024 ranks on nodes of
--cores-per-node cores, one rank per core: shared memory within a node, the
network (the TCP fit) between nodes, the cheaper algorithm at each size.
Strong scaling keeps the global batch (--strong-batch); weak scaling keeps the
batch per rank (--weak-batch).

  tools/scaling.py [--layers 784,256,256,10] [--data data/mnist.h5] [--json scaling.json] [--coretype SkylakeX]
                   [--build build | --dptrain PATH --floor PATH]
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile

import bench  # tools/bench.py: mpirun, the floor and dptrain runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALGORITHMS = {"ring": 4, "recursive_doubling": 3}  # Open MPI coll_tuned_allreduce_algorithm numbers
TRANSPORTS = {"shm": "self,vader", "tcp": "self,tcp"}
TRAIN_SAMPLES = 60000


# --- the allreduce cost model ------------------------------------------------

def doubling_rounds(p):
    if p <= 1:
        return 0
    rounds = int(math.log2(p))
    return rounds if 1 << rounds == p else rounds + 2


def allreduce_seconds(algorithm, p, n_bytes, alpha, beta):
    """Hockney cost of one allreduce of n_bytes on p ranks."""
    if p <= 1:
        return 0.0
    if algorithm == "ring":
        return 2 * (p - 1) * alpha + 2 * (p - 1) / p * n_bytes * beta
    if algorithm == "recursive_doubling":
        return doubling_rounds(p) * (alpha + n_bytes * beta)
    raise ValueError(algorithm)


def fit(algorithm, p, sizes, seconds):
    """alpha, beta minimising the relative error of allreduce_seconds over the measured sizes.

    The cost is linear in alpha and beta: t = a * alpha + b(n) * beta. Weighted
    least squares with weights 1/t^2, so that microsecond latencies count as
    much as millisecond transfers."""
    sa = sb = sab = sat = sbt = 0.0
    for n, t in zip(sizes, seconds):
        a = allreduce_seconds(algorithm, p, n, 1.0, 0.0)
        b = allreduce_seconds(algorithm, p, n, 0.0, 1.0)
        w = 1.0 / (t * t)
        sa, sb, sab = sa + w * a * a, sb + w * b * b, sab + w * a * b
        sat, sbt = sat + w * a * t, sbt + w * b * t
    det = sa * sb - sab * sab
    alpha = (sat * sb - sbt * sab) / det
    beta = (sa * sbt - sab * sat) / det
    return max(alpha, 0.0), max(beta, 0.0)


def best_allreduce(fits, transport, p, n_bytes):
    """(seconds, algorithm) of the cheaper algorithm."""
    options = [(allreduce_seconds(a, p, n_bytes, *fits[transport][a]), a) for a in ALGORITHMS]
    return min(options)


# --- the step model ------------------------------------------------------------

def step_seconds(p, rows_per_rank, gradient_bytes, compute, update, fits, cores_per_node, ranks_per_node, transport):
    """One step on p ranks: compute at rows_per_rank and the update (slowed
    when a node has more ranks than cores), then the allreduce."""
    share = max(1.0, ranks_per_node / cores_per_node)
    reduce_s, algorithm = best_allreduce(fits, transport, p, gradient_bytes)
    return (compute(rows_per_rank) + update) * share + reduce_s, reduce_s, algorithm


# --- measurements ---------------------------------------------------------------

def sweep(floor, transport, algorithm):
    mca = ["--mca", "btl", TRANSPORTS[transport], "--mca", "coll_tuned_use_dynamic_rules", "1",
           "--mca", "coll_tuned_allreduce_algorithm", str(ALGORITHMS[algorithm])]
    out = subprocess.run(bench.mpirun(2) + mca + [floor, "--allreduce-sweep"],
                         check=True, capture_output=True, text=True, env=bench.environment()).stdout
    return json.loads(out)


def floor_at(floor, layers, rows, ranks):
    """The floor report at `rows` rows per rank, with `ranks` ranks busy at
    once (a full node: they share caches and memory)."""
    return bench.floor_of(["--layers", layers, "--batch-size", str(rows * ranks)], ranks, rows * ranks, floor)


def train(dptrain, data, layers, extra, ranks, batch, epochs, run_dir):
    args = ["--layers", layers, "--batch-size", str(batch), "--threads", "1"] + extra
    metrics = bench.after_first(bench.run_dptrain(args, ranks, epochs, data, run_dir, dptrain))
    median = lambda f: statistics.median(f(m) for m in metrics)
    return {"epoch_seconds": median(lambda m: m["epoch_seconds"]),
            "step_ms": median(lambda m: m["step_ms"]),
            "phase_ms": {k: median(lambda m: m["phase_ms"][k]) for k in metrics[0]["phase_ms"]}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", default="784,256,256,10")
    parser.add_argument("--train-options", default="--activation relu --output softmax --loss cross-entropy "
                        "--lr 0.05 --momentum 0.9", help="the rest of the network and optimiser")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch of the 1/2/4-rank check runs")
    parser.add_argument("--strong-batch", type=int, default=8192, help="global batch kept in strong scaling")
    parser.add_argument("--weak-batch", type=int, default=128, help="batch per rank kept in weak scaling")
    parser.add_argument("--cores-per-node", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--max-ranks", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=3, help="per check run; the first is not counted")
    parser.add_argument("--data", default=os.path.join(ROOT, "data", "mnist.h5"))
    bench.add_binary_options(parser)
    parser.add_argument("--coretype", help="OPENBLAS_CORETYPE for every process (e.g. SkylakeX)")
    parser.add_argument("--json", help="write the fit, the check and the prediction here")
    args = parser.parse_args()
    dptrain, floor_binary = bench.binaries(args)
    if args.coretype:
        os.environ["OPENBLAS_CORETYPE"] = args.coretype
    extra = args.train_options.split()
    cores = args.cores_per_node

    # 1. allreduce: fit alpha, beta per transport and algorithm
    fits, sweeps = {}, {}
    for transport in TRANSPORTS:
        fits[transport] = {}
        for algorithm in ALGORITHMS:
            s = sweep(floor_binary, transport, algorithm)
            sweeps[f"{transport}/{algorithm}"] = s
            fits[transport][algorithm] = fit(algorithm, s["ranks"], s["bytes"], s["seconds"])
            print(f"done: allreduce sweep {transport} {algorithm}", file=sys.stderr)

    # 2. compute: GEMMs measured at every per-rank batch the tables need
    rows_needed = {args.batch_size // p for p in (1, 2, 4)} | {args.weak_batch}
    p = 1
    while p <= args.max_ranks:
        if args.strong_batch // p >= 1:
            rows_needed.add(args.strong_batch // p)
        p *= 2
    floors = {rows: floor_at(floor_binary, args.layers, rows, cores) for rows in sorted(rows_needed)}
    gemm = {rows: (f["gemm_us_per_step"] + f["data_us_per_step"]) / 1e6 for rows, f in floors.items()}
    n_bytes = floors[args.weak_batch]["allreduce_bytes"]  # the gradients and the two values riding with them
    print("done: GEMM times", file=sys.stderr)

    # 3. dptrain on a full node (a rank per core) calibrates the overhead
    # over the GEMMs (activations, loss, bias gradients) and the update
    with tempfile.TemporaryDirectory(prefix="dptrain-scaling-") as scratch:
        runs = {p: train(dptrain, args.data, args.layers, extra, p, args.batch_size, args.epochs,
                         os.path.join(scratch, f"run-{p}")) for p in (1, 2, 4)}
    print("done: dptrain on 1, 2 and 4 ranks", file=sys.stderr)
    full = runs[min(cores, 4)]["phase_ms"]
    update = full["update"] / 1e3
    overhead = (full["data"] + full["forward"] + full["backward"]) / 1e3 / gemm[args.batch_size // min(cores, 4)]
    compute = lambda rows: overhead * gemm[rows]

    def model_step(p, rows):
        """On a cluster: one rank per core, nodes joined by the network."""
        transport = "shm" if p <= cores else "tcp"
        step, reduce_s, algorithm = step_seconds(p, rows, n_bytes, compute, update, fits, cores, min(p, cores),
                                                 transport)
        return step, reduce_s, algorithm, transport

    check = []
    for p in (1, 2, 4):
        steps = math.ceil(TRAIN_SAMPLES / args.batch_size)
        # here: every rank on this one node
        predicted = step_seconds(p, args.batch_size // p, n_bytes, compute, update, fits, cores, p, "shm")[0] * steps
        measured = runs[p]["epoch_seconds"]
        check.append({"ranks": p, "predicted_epoch_seconds": predicted, "measured_epoch_seconds": measured,
                      "error": predicted / measured - 1})

    prediction = []
    strong_1 = model_step(1, args.strong_batch)[0] * math.ceil(TRAIN_SAMPLES / args.strong_batch)
    weak_1 = model_step(1, args.weak_batch)[0]
    p = 1
    while p <= args.max_ranks:
        row = {"ranks": p, "nodes": math.ceil(p / cores)}
        if args.strong_batch // p >= 1:
            step = model_step(p, args.strong_batch // p)[0]
            epoch = step * math.ceil(TRAIN_SAMPLES / args.strong_batch)
            row.update(strong_step_ms=step * 1e3, strong_epoch_seconds=epoch, strong_efficiency=strong_1 / (p * epoch))
        step, reduce_s, algorithm, transport = model_step(p, args.weak_batch)
        row.update(weak_step_ms=step * 1e3, weak_efficiency=weak_1 / step, allreduce_ms=reduce_s * 1e3,
                   algorithm=algorithm, transport=transport,
                   weak_epoch_seconds=step * math.ceil(TRAIN_SAMPLES / (args.weak_batch * p)))
        prediction.append(row)
        p *= 2

    print("Allreduce fits (2 ranks, 4 B - 16 MiB): alpha = latency per message, beta = per byte")
    print("| transport | algorithm | alpha (us) | beta (ns/byte) | GB/s |")
    print("|---|---|---|---|---|")
    for transport, by_algorithm in fits.items():
        for algorithm, (alpha, beta) in by_algorithm.items():
            print(f"| {transport} | {algorithm} | {alpha * 1e6:.2f} | {beta * 1e9:.3f} | "
                  f"{(1 / beta / 1e9) if beta else float('inf'):.2f} |")
    print()
    print(f"Model against dptrain here ({args.layers}, global batch {args.batch_size}, 1 thread per rank, "
          f"{cores} cores; 4 ranks share them):")
    print("| ranks | predicted epoch (s) | measured epoch (s) | error |")
    print("|---|---|---|---|")
    for c in check:
        print(f"| {c['ranks']} | {c['predicted_epoch_seconds']:.3f} | {c['measured_epoch_seconds']:.3f} | "
              f"{c['error']:+.0%} |")
    print()
    print(f"Prediction for {args.layers} ({n_bytes / 2**20:.2f} MiB of gradients), {cores} ranks per node, "
          f"shared memory within a node and the TCP fit between nodes; strong scaling at global batch "
          f"{args.strong_batch}, weak scaling at {args.weak_batch} per rank:")
    print("| ranks | nodes | allreduce (ms) | algorithm | strong: step (ms) | epoch (s) | efficiency "
          "| weak: step (ms) | epoch (s) | efficiency |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in prediction:
        strong = (f"{r['strong_step_ms']:.2f} | {r['strong_epoch_seconds']:.3f} | {r['strong_efficiency']:.0%}"
                  if "strong_step_ms" in r else "- | - | -")
        print(f"| {r['ranks']} | {r['nodes']} | {r['allreduce_ms']:.3f} | {r['algorithm']} ({r['transport']}) | "
              f"{strong} | {r['weak_step_ms']:.2f} | {r['weak_epoch_seconds']:.3f} | {r['weak_efficiency']:.0%} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"fits": fits, "sweeps": sweeps, "gemm_seconds": gemm, "overhead": overhead, "runs": runs,
                       "update_seconds": update, "check": check, "prediction": prediction,
                       "gradient_bytes": n_bytes}, f, indent=2)


if __name__ == "__main__":
    main()
