#!/usr/bin/env python
"""Benchmark of the distributed kernel sums (issue 4), measured side by side in one run.

1. Distributed overhead: exact H of one store through the pipeline (LocalCluster, workers of
   one core each, tiles read from zarr, tree merge) against quests_core.log_kernel_sum on the
   same descriptors in this process with as many threads as the pipeline has cores. Pairs/s
   for each, and the 1- vs 2-worker speed-up.
2. Approximate dH at scale: Q queries against an R-environment reference (thermally perturbed
   FCC Cu; queries hotter than the reference). Ours (adaptive: clusters + stratified sample,
   default settings) and quests' approx_delta_entropy (n = 3, what quests ships) in one
   process, index build and queries timed apart; accuracy of both on an exact subsample; peak
   RSS per worker of the pipeline's approximate dh on the same data.
3. Accuracy on MD (optional, --md DIR from scripts/make_md.py): reference cu_300K, tests
   cu_1300K and cu_liquid: sign agreement, median |error|, bracket coverage, and H of the
   reference, ours against quests against exact.
4. quests' n against accuracy (--parts sweep with --md DIR): the accuracy and query rate of
   quests' approx_delta_entropy at n = 3 ... 3000 on the 1300 K test, next to ours.

    python scripts/bench_kernels.py --md /tmp/md                  # default sizes (R 100k, Q 1M)
    python scripts/bench_kernels.py --reference 20000 --queries 100000 --size 10000   # quick
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

BANDWIDTH = 0.015
REFERENCE_SIGMA = 0.07  # Å, thermal displacement of the reference crystal
QUERY_SIGMA = 0.12  # Å, the hotter queries
FRAME_REPEAT = 8  # 8 x 8 x 8 cubic cells = 2048 atoms per frame
QUESTS_N = 3  # quests' default neighbours for its approximate dH
EXACT_SUBSAMPLE = 2000


def frames(n_env: int, sigma: float, seed: int) -> list:
    """Thermally perturbed FCC Cu supercells holding at least n_env atoms."""
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    built = []
    for _ in range(-(-n_env // (4 * FRAME_REPEAT**3))):
        atoms = bulk("Cu", "fcc", a=3.615, cubic=True).repeat(FRAME_REPEAT)
        atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
        built.append(atoms)
    return built


def descriptors(n_env: int, sigma: float, seed: int) -> np.ndarray:
    import quests_core

    return quests_core.get_descriptors(frames(n_env, sigma, seed))[:n_env]


def frames_file(path: Path, n_env: int, sigma: float, seed: int) -> Path:
    from ase.io import write

    write(path, frames(n_env, sigma, seed))
    return path


def cluster(workers: int, cores_per_worker: int):
    """A LocalCluster of `workers` processes of `cores_per_worker` cores each, set up as the
    pipeline sets up its workers (BLAS and numba threads = the worker's cores)."""
    from distributed import Client, LocalCluster

    from pipeline.cluster import NumbaThreads, worker_environment

    local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                         env=worker_environment(cores_per_worker))
    client = Client(local)
    client.register_plugin(NumbaThreads(cores_per_worker))
    return local, client


def ingest_file(path: Path, store: Path, client):
    from pipeline.ingest import IngestRequest, ingest
    from pipeline.store import StoreParams

    return ingest(IngestRequest(paths=(path,), params=StoreParams(k=32, cutoff=5.0, dtype="float64")), store, client)


def best_of(repeats: int, fn):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def distributed_overhead(args, work: Path) -> dict:
    import numba

    import quests_core
    from pipeline.analysis import entropy_summary

    path = frames_file(work / "exact.extxyz", args.size, REFERENCE_SIGMA, 1)
    out = {}
    for workers in (1, 2):
        local, client = cluster(workers, 1)
        with local, client:
            store = ingest_file(path, work / f"exact-{workers}.zarr", client)
            entropy_summary(client, store, BANDWIDTH)  # warm-up: JIT in every worker
            seconds = best_of(args.repeat, lambda: entropy_summary(client, store, BANDWIDTH))
        out[f"pipeline_{workers}_workers_s"] = seconds
    x = store.read_descriptors()
    n = len(x)
    numba.set_num_threads(2)
    quests_core.log_kernel_sum(x[:100], x[:100], BANDWIDTH)
    out["core_2_threads_s"] = best_of(args.repeat, lambda: quests_core.log_kernel_sum(x, x, BANDWIDTH))
    out["n_environments"] = n
    for key in ("pipeline_1_workers_s", "pipeline_2_workers_s", "core_2_threads_s"):
        out[key.replace("_s", "_pairs_per_s")] = n * n / out[key]
    out["distributed_overhead"] = out["pipeline_2_workers_s"] / out["core_2_threads_s"] - 1
    out["speedup_2_workers"] = out["pipeline_1_workers_s"] / out["pipeline_2_workers_s"]
    return out


def accuracy(dh, exact) -> dict:
    return {"sign_agreement": float(np.mean(np.sign(dh) == np.sign(exact))),
            "median_abs_error": float(np.median(np.abs(dh - exact))),
            "mean_error": float(np.mean(dh - exact))}


def approximate_at_scale(args, work: Path) -> dict:
    import numba
    from quests.entropy import approx_delta_entropy

    import quests_core

    numba.set_num_threads(2)
    x = descriptors(args.reference, REFERENCE_SIGMA, 2)
    y = descriptors(args.queries, QUERY_SIGMA, 3)
    # pynndescent and both libraries' kernels compile on a small call first
    small = quests_core.build_index(x[:2000], random_state=0)
    quests_core.adaptive_delta_entropy(y[:500], small)
    approx_delta_entropy(y[:500], x[:2000], BANDWIDTH, n=QUESTS_N)
    out = {"n_reference": len(x), "n_queries": len(y)}
    started = time.perf_counter()
    index = quests_core.build_index(x, random_state=0)
    out["ours_build_s"] = time.perf_counter() - started
    started = time.perf_counter()
    ours = quests_core.adaptive_delta_entropy(y, index)
    out["ours_query_s"] = time.perf_counter() - started
    started = time.perf_counter()
    theirs = approx_delta_entropy(y, x, BANDWIDTH, n=QUESTS_N)
    out["quests_whole_s"] = time.perf_counter() - started  # quests builds its index inside
    # quests' query step is a pynndescent query for n = 3 on a graph built as it builds it
    # (and a sum of 3 exponentials): timed on our index's graph, the same pynndescent build
    started = time.perf_counter()
    index.graph.query(y, k=QUESTS_N)
    out["quests_query_s"] = time.perf_counter() - started
    out["ours_queries_per_s"] = len(y) / out["ours_query_s"]
    out["quests_queries_per_s"] = len(y) / out["quests_query_s"]
    out["ours_evaluated_mean"] = float(ours.n_evaluated.mean())
    sample = np.random.default_rng(4).choice(len(y), min(EXACT_SUBSAMPLE, len(y)), replace=False)
    exact = quests_core.delta_entropy(y[sample], x, BANDWIDTH)
    out["ours"] = accuracy(ours.dh[sample], exact)
    out["ours"]["bracket_contains_exact"] = float(np.mean((ours.dh_min[sample] <= exact + 1e-9)
                                                          & (exact <= ours.dh_max[sample] + 1e-9)))
    out["quests"] = accuracy(theirs[sample], exact)
    out["peak_rss_this_process_mb"] = peak_rss_mb()
    return out


def peak_rss_mb() -> float:
    """VmHWM of the calling process (in a worker: that worker's peak)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def worker_rss(args, work: Path) -> dict:
    """Peak RSS of each worker while the pipeline runs the approximate dh of Q queries against
    the R-environment reference (2 workers of one core)."""
    from pipeline.analysis import dh_summary

    reference = frames_file(work / "reference.extxyz", args.reference, REFERENCE_SIGMA, 5)
    queries = frames_file(work / "queries.extxyz", args.queries, QUERY_SIGMA, 6)
    local, client = cluster(2, 1)
    with local, client:
        stores = [ingest_file(path, work / f"{path.stem}.zarr", client) for path in (reference, queries)]
        started = time.perf_counter()
        summary = dh_summary(client, stores[1], [stores[0]], BANDWIDTH, method="approx")
        seconds = time.perf_counter() - started
        peaks = client.run(peak_rss_mb)
    return {"pipeline_approx_s": seconds, "pipeline_queries_per_s": stores[1].n_environments / seconds,
            "worker_peak_rss_mb": sorted(peaks.values()), "n_uncertain": summary["n_uncertain"]}


def md_accuracy(args) -> dict:
    from ase.io import read
    from quests.entropy import approx_delta_entropy

    import quests_core

    def load(name):
        return quests_core.get_descriptors(read(Path(args.md) / f"{name}.extxyz", index=":"))

    x = load("cu_300K")
    index = quests_core.build_index(x, random_state=0)
    out = {"n_reference": len(x)}
    for name in ("cu_1300K", "cu_liquid"):
        y = load(name)
        exact = quests_core.delta_entropy(y, x, BANDWIDTH)
        ours = quests_core.adaptive_delta_entropy(y, index)
        out[name] = {"n_queries": len(y),
                     "ours": {**accuracy(ours.dh, exact),
                              "bracket_contains_exact": float(np.mean((ours.dh_min <= exact + 1e-9)
                                                                      & (exact <= ours.dh_max + 1e-9))),
                              "n_uncertain": int((4 * ours.dh_error > quests_core.ApproxParams.tolerance).sum())},
                     "quests": accuracy(approx_delta_entropy(y, x, BANDWIDTH, n=QUESTS_N), exact)}
    exact_h = quests_core.entropy(x, BANDWIDTH)
    ours_self = quests_core.adaptive_delta_entropy(x, index)
    log_n = np.log(len(x))
    out["entropy"] = {"exact": exact_h, "ours": float(log_n + ours_self.dh.mean()),
                      "quests": float(log_n + approx_delta_entropy(x, x, BANDWIDTH, n=QUESTS_N).mean())}
    return out


SWEEP_N = (3, 10, 30, 100, 300, 1000, 3000)


def quests_sweep(args) -> dict:
    """quests' approx_delta_entropy at growing n on the MD data (reference cu_300K, queries
    cu_1300K): the accuracy each n reaches and its queries/s without its index build (the call
    on all queries minus the same call on 10), next to ours at default settings (index built
    once, apart)."""
    from ase.io import read
    from quests.entropy import approx_delta_entropy

    import quests_core

    def load(name):
        return quests_core.get_descriptors(read(Path(args.md) / f"{name}.extxyz", index=":"))

    x, y = load("cu_300K"), load("cu_1300K")
    exact = quests_core.delta_entropy(y, x, BANDWIDTH)
    rows = []
    for n in SWEEP_N:
        approx_delta_entropy(y[:10], x, BANDWIDTH, n=n)
        build_s = best_of(args.repeat, lambda: approx_delta_entropy(y[:10], x, BANDWIDTH, n=n))
        started = time.perf_counter()
        dh = approx_delta_entropy(y, x, BANDWIDTH, n=n)
        query_s = max(time.perf_counter() - started - build_s, 1e-9)
        rows.append({"n": n, **accuracy(dh, exact), "queries_per_s": len(y) / query_s})
        print(json.dumps(rows[-1]), flush=True)
    index = quests_core.build_index(x, random_state=0)
    quests_core.adaptive_delta_entropy(y[:10], index)
    started = time.perf_counter()
    ours = quests_core.adaptive_delta_entropy(y, index)
    seconds = time.perf_counter() - started
    return {"n_reference": len(x), "n_queries": len(y), "quests": rows,
            "ours": {**accuracy(ours.dh, exact), "queries_per_s": len(y) / seconds,
                     "exact_terms_per_query": float(ours.n_evaluated.mean())}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=40960, help="environments for the exact H (default %(default)s)")
    parser.add_argument("--reference", type=int, default=100_000, help="reference environments (default %(default)s)")
    parser.add_argument("--queries", type=int, default=1_000_000, help="query environments (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many timed calls (default %(default)s)")
    parser.add_argument("--md", default=None, help="folder of scripts/make_md.py output, for the accuracy on MD")
    parser.add_argument("--parts", default="exact,approx,rss,md", help="comma-separated parts to run")
    parser.add_argument("--json", default=None, help="also write every number here")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    results = {"load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-kernels-") as tmp:
        work = Path(tmp)
        if "exact" in parts:
            results["exact"] = distributed_overhead(args, work)
            print(json.dumps({"exact": results["exact"]}, indent=1), flush=True)
        if "approx" in parts:
            results["approx"] = approximate_at_scale(args, work)
            print(json.dumps({"approx": results["approx"]}, indent=1), flush=True)
        if "rss" in parts:
            results["rss"] = worker_rss(args, work)
            print(json.dumps({"rss": results["rss"]}, indent=1), flush=True)
    if "md" in parts and args.md:
        results["md"] = md_accuracy(args)
        print(json.dumps({"md": results["md"]}, indent=1), flush=True)
    if "sweep" in parts and args.md:
        results["sweep"] = quests_sweep(args)
        print(json.dumps({"sweep": results["sweep"]}, indent=1), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
