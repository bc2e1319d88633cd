#!/usr/bin/env python
"""Benchmark of the core numerics: quests_core against the reference package quests.

One run measures, side by side and with the same thread count for both (NUMBA_NUM_THREADS,
OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS):

- descriptor throughput (environments/s) on many 256-atom frames and on one large snapshot,
  with the JIT cost reported separately (cold compile into an empty numba cache, and the
  first call of a fresh process with the cache as found);
- exact entropy H(X) (time and peak RSS) at several dataset sizes, and whether the two agree;
- approximate dH queries/s at equal n_neighbors (index build and query timed apart for
  quests_core; quests builds its index inside the call, so whole calls are compared too);
- the machine's float64 GEMM and exp rates, and quests_core's exact kernel-sum pair rate as
  a fraction of the roofline they define.

Measurements run in subprocesses of this script (``--one MODE``), one at a time. Each exact
entropy runs in a process of its own, so its peak RSS (VmHWM) belongs to that measurement
alone and quests' multi-GB peaks never count against quests_core or the other way round.
Descriptors and approximate dH, where memory is not a target, run both libraries in one
process with calls alternating, so both see the same background load (and pynndescent
compiles once). Wall times are the best of several calls; CPU times (user + sys of the
process) are printed next to them because on a shared machine they move far less.

Structures: FCC Cu (a = 3.615 Å) cubic supercells with seeded Gaussian displacements, built
with ASE. Descriptors k = 32, cutoff = 5 Å (63 features). Bandwidth h = 0.015.

    python scripts/bench_core.py                       # default run, under 10 min on 2 busy cores
    python scripts/bench_core.py --json bench.json     # also save every number
    python scripts/bench_core.py --parts desc --snapshot-atoms 1000000   # 1M-atom snapshot
    python scripts/bench_core.py --quick               # smoke test of the script itself
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

K = 32
CUTOFF = 5.0
BANDWIDTH = 0.015
LATTICE = 3.615  # Å, FCC Cu
FRAME_REPEAT = 4  # 4 x 4 x 4 conventional cells = 256 atoms
SNAPSHOT_SIGMA = 0.10  # Å, Gaussian displacement per Cartesian component
FRAME_SIGMA_RANGE = (0.03, 0.15)  # Å, one sigma per frame, evenly spread
TINY_REPEAT = 3  # tiny JIT warm-up frame: 3 x 3 x 3 cells = 108 atoms
ENTROPY_AGREEMENT = 1e-9  # relative, ours vs quests exact H
LIBS = ("ours", "quests")


# ----------------------------------------------------------------------------- structures

def fcc_cu(repeat: int, sigma: float, seed: int):
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=LATTICE, cubic=True).repeat((repeat, repeat, repeat))
    rng = np.random.default_rng(seed)
    atoms.positions = atoms.positions + rng.normal(0.0, sigma, size=atoms.positions.shape)
    atoms.wrap()
    return atoms


def make_frames(n_frames: int, seed: int):
    sigmas = np.linspace(*FRAME_SIGMA_RANGE, n_frames) if n_frames > 1 else [FRAME_SIGMA_RANGE[0]]
    return [fcc_cu(FRAME_REPEAT, float(s), seed + 1 + i) for i, s in enumerate(sigmas)]


def snapshot_repeat(n_atoms: int) -> int:
    return max(int(round((n_atoms / 4) ** (1 / 3))), 3)


def make_snapshot(n_atoms: int, seed: int):
    return fcc_cu(snapshot_repeat(n_atoms), SNAPSHOT_SIGMA, seed)


def tiny_frame(seed: int):
    return fcc_cu(TINY_REPEAT, 0.05, seed + 10_000_000)


# ----------------------------------------------------------------------------- child helpers

def proc_status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def memory_mb() -> dict:
    return {"rss_now_mb": proc_status_kb("VmRSS") / 1024, "peak_rss_mb": proc_status_kb("VmHWM") / 1024}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def get_descriptors_fn(lib: str):
    if lib == "ours":
        from quests_core import get_descriptors
    else:
        from quests.descriptor import get_descriptors
    return get_descriptors


def entropy_fn(lib: str):
    if lib == "ours":
        from quests_core import entropy
    else:
        from quests.entropy import entropy
    return entropy


# ----------------------------------------------------------------------------- child modes

def child_prep(args) -> dict:
    """Descriptor pool (frames, shuffled) for the entropy tests and snapshot descriptors as
    approximate-dH queries, computed once with quests_core and saved for the other children."""
    from quests_core import get_descriptors

    frames = make_frames(args.frames, args.seed)
    pool = get_descriptors(frames, k=K, cutoff=CUTOFF)
    pool = pool[np.random.default_rng(args.seed).permutation(len(pool))]
    np.save(os.path.join(args.workdir, "pool.npy"), pool)
    n_queries = min(args.approx_queries, args.snapshot_atoms_actual)
    snapshot = make_snapshot(args.snapshot_atoms, args.seed)
    queries = get_descriptors([snapshot], k=K, cutoff=CUTOFF)
    queries = queries[np.random.default_rng(args.seed + 1).permutation(len(queries))[:n_queries]]
    np.save(os.path.join(args.workdir, "queries.npy"), queries)
    return {"pool": len(pool), "queries": len(queries)}


def child_jit(args) -> dict:
    """First calls on tiny inputs; the parent points NUMBA_CACHE_DIR at an empty folder for
    the cold-compile run. jit = first call - second call of the same tiny input."""
    out = {}
    t_import, get_descriptors = timed(get_descriptors_fn, args.lib)
    t_import_e, entropy = timed(entropy_fn, args.lib)
    out["import_s"] = t_import + t_import_e
    frame = tiny_frame(args.seed)
    first, x = timed(get_descriptors, [frame], k=K, cutoff=CUTOFF)
    second, _ = timed(get_descriptors, [frame], k=K, cutoff=CUTOFF)
    out["descriptors_first_s"], out["descriptors_second_s"] = first, second
    first, _ = timed(entropy, x, BANDWIDTH)
    second, _ = timed(entropy, x, BANDWIDTH)
    out["entropy_first_s"], out["entropy_second_s"] = first, second
    out.update(memory_mb())
    return out


def child_desc(args) -> dict:
    """Both libraries in one process, calls alternating (ours, quests, ours, ...), best of
    desc_repeat each: on a shared machine both then see the same background load."""
    libs = {lib: get_descriptors_fn(lib) for lib in LIBS}
    frame = tiny_frame(args.seed)
    frames = make_frames(args.frames, args.seed)
    snapshot = make_snapshot(args.snapshot_atoms, args.seed)
    out = {lib: {"frames": {"n_frames": len(frames), "atoms_per_frame": len(frames[0]),
                            "n_env": sum(len(f) for f in frames), "times_s": []},
                 "snapshot": {"n_env": len(snapshot), "times_s": []}} for lib in LIBS}
    for lib, get_descriptors in libs.items():
        out[lib]["first_call_s"], _ = timed(get_descriptors, [frame], k=K, cutoff=CUTOFF)
    for _ in range(max(args.desc_repeat, 1)):
        for lib, get_descriptors in libs.items():
            cpu = cpu_seconds()
            t, x = timed(get_descriptors, frames, k=K, cutoff=CUTOFF)
            out[lib]["frames"]["times_s"].append(t)
            out[lib]["frames"].setdefault("cpu_s", []).append(cpu_seconds() - cpu)
            np.save(os.path.join(args.workdir, f"desc_frames_{lib}.npy"), x)
            del x
            cpu = cpu_seconds()
            t, x = timed(get_descriptors, [snapshot], k=K, cutoff=CUTOFF)
            out[lib]["snapshot"]["times_s"].append(t)
            out[lib]["snapshot"].setdefault("cpu_s", []).append(cpu_seconds() - cpu)
            np.save(os.path.join(args.workdir, f"desc_snapshot_{lib}.npy"), x[:20000])
            del x
    for lib in LIBS:
        for part in ("frames", "snapshot"):
            entry = out[lib][part]
            entry["time_s"] = min(entry["times_s"])
            entry["env_per_s"] = entry["n_env"] / entry["time_s"]
            entry["env_per_cpu_s"] = entry["n_env"] / min(entry["cpu_s"])
    # the same on one thread, timed in CPU time: each library's work per core, free of
    # thread start/stop costs and of other processes taking the cores away
    import numba

    numba.set_num_threads(1)
    for _ in range(min(max(args.desc_repeat, 1), 2)):
        for lib, get_descriptors in libs.items():
            for part, data in (("frames", frames), ("snapshot", [snapshot])):
                cpu = cpu_seconds()
                get_descriptors(data, k=K, cutoff=CUTOFF)
                out[lib][part].setdefault("cpu_s_1thread", []).append(cpu_seconds() - cpu)
    for lib in LIBS:
        for part in ("frames", "snapshot"):
            entry = out[lib][part]
            entry["env_per_cpu_s_1thread"] = entry["n_env"] / min(entry["cpu_s_1thread"])
    out.update(memory_mb())
    return out


def child_entropy(args) -> dict:
    entropy = entropy_fn(args.lib)
    x = np.ascontiguousarray(np.load(os.path.join(args.workdir, "pool.npy"))[: args.n])
    if len(x) < args.n:
        raise SystemExit(f"pool has {len(x)} environments, fewer than {args.n}: raise --frames")
    out = {"n": len(x)}
    out["first_call_s"], _ = timed(entropy, x[:256], BANDWIDTH)
    out["baseline_rss_mb"] = memory_mb()["rss_now_mb"]
    cpu_start = cpu_seconds()
    t, value = timed(entropy, x, BANDWIDTH)
    out["cpu_s"] = cpu_seconds() - cpu_start
    out.update(time_s=t, H=float(value), pairs_per_s=len(x) ** 2 / t)
    out.update(memory_mb())
    return out


def child_approx(args) -> dict:
    """Both libraries in one process (pynndescent compiles once, ~40-90 s), calls alternating,
    best of approx_repeat each."""
    import quests_core as qc
    from quests.entropy import approx_delta_entropy

    x = np.ascontiguousarray(np.load(os.path.join(args.workdir, "pool.npy"))[: args.approx_ref])
    y = np.ascontiguousarray(np.load(os.path.join(args.workdir, "queries.npy")))
    n, g = args.n, args.graph_neighbors
    out = {"n_ref": len(x), "n_query": len(y), "n_neighbors": n, "graph_neighbors": g}

    def ours_whole():
        return qc.delta_entropy_bracket(y, x, BANDWIDTH, n, g)

    def quests_whole():
        return approx_delta_entropy(y, x, BANDWIDTH, n=n, graph_neighbors=g)

    # warm-up: the first tiny call compiles pynndescent (shared by both), then each
    # library's own code; larger inputs reach code paths a tiny one does not, so one
    # untimed full-size call each follows
    x_small, y_small = x[:3000], y[:500]
    out["first_call_ours_s"], _ = timed(qc.delta_entropy_bracket, y_small, x_small, BANDWIDTH, n, g)
    out["first_call_quests_s"], _ = timed(approx_delta_entropy, y_small, x_small, BANDWIDTH, n=n, graph_neighbors=g)
    out["warmup_full_ours_s"], _ = timed(ours_whole)
    out["warmup_full_quests_s"], _ = timed(quests_whole)
    times = {"build_s": [], "query_s": [], "whole_ours_s": [], "whole_quests_s": []}
    for _ in range(max(args.approx_repeat, 1)):
        t, index = timed(qc.build_index, x, g)
        times["build_s"].append(t)
        t, sums = timed(qc.approx_log_kernel_sum, y, index, BANDWIDTH, n)
        times["query_s"].append(t)
        del index
        t, bracket = timed(ours_whole)
        times["whole_ours_s"].append(t)
        t, dh_quests = timed(quests_whole)
        times["whole_quests_s"].append(t)
    out["times"] = times
    for key, values in times.items():
        out[key] = min(values)
    np.save(os.path.join(args.workdir, f"approx_ours_n{n}.npy"), np.asarray(bracket.dh, dtype=np.float64))
    np.save(os.path.join(args.workdir, f"approx_quests_n{n}.npy"), np.asarray(dh_quests, dtype=np.float64))
    np.save(os.path.join(args.workdir, f"approx_ours_bracket_n{n}.npy"), np.stack([-sums.lower, -sums.upper]))
    # exact dH of a subsample of queries, to say how far each approximation is from it
    sample = np.random.default_rng(args.seed).choice(len(y), min(2000, len(y)), replace=False)
    exact = qc.delta_entropy(y[sample], x, BANDWIDTH)
    np.save(os.path.join(args.workdir, f"approx_exact_n{n}.npy"), np.stack([sample.astype(float), exact]))
    out["queries_per_s_query"] = len(y) / out["query_s"]
    out["queries_per_s_whole_ours"] = len(y) / out["whole_ours_s"]
    out["queries_per_s_whole_quests"] = len(y) / out["whole_quests_s"]
    out.update(memory_mb())
    return out


def _run_threads(n_threads: int, fn) -> float:
    """Run fn(thread_index) in n_threads Python threads at once; wall time."""
    barrier = threading.Barrier(n_threads + 1)

    def body(t):
        barrier.wait()
        fn(t)

    workers = [threading.Thread(target=body, args=(t,)) for t in range(n_threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    return time.perf_counter() - start


def child_roofline(args) -> dict:
    """Machine rates (GEMM, exp) and our exact kernel-sum rate, measured in rounds that
    interleave all of them; each rate is the best over the rounds, so a burst of background
    load hits one round of one measurement, not a whole measurement."""
    import numba as nb
    from threadpoolctl import threadpool_limits

    import quests_core as qc
    from quests_core.fastexp import _exp_sum
    from quests_core.kernels import COLUMN_CHUNK
    from quests_core.params import KernelParams

    threads = args.threads
    nb.set_num_threads(threads)
    d = 2 * K - 1
    rng = np.random.default_rng(args.seed)
    out = {"threads": threads, "d": d, "rounds": args.roofline_rounds}
    benches = {}  # key -> (description, unit, work per call, function returning wall seconds)

    # GEMM peak: a large square product, BLAS threads = threads (float32 for reference)
    size = args.gemm_size
    for dtype, key in ((np.float64, "gemm_square_f64"), (np.float32, "gemm_square_f32")):
        a = rng.random((size, size)).astype(dtype)
        b = rng.random((size, size)).astype(dtype)
        c = np.empty((size, size), dtype=dtype)

        def square(a=a, b=b, c=c):
            with threadpool_limits(limits=threads, user_api="blas"):
                return timed(np.dot, a, b, out=c)[0]

        benches[key] = (f"{size}x{size} @ {size}x{size}, {threads}-thread BLAS", "FLOP/s", 2.0 * size**3, square)

    # GEMM of the shape log_kernel_sum issues: (block/4 x d) @ (d x block) tiles, one
    # single-threaded BLAS call per Python thread, `threads` threads at once
    block = KernelParams.block_size
    m, n_cols, calls = block // 4, block, args.tile_calls
    ys = [rng.random((m, d)) - 0.5 for _ in range(threads)]
    xs = [rng.random((n_cols, d)) - 0.5 for _ in range(threads)]
    cs = [np.empty((m, n_cols)) for _ in range(threads)]

    def tile_loop(t):
        for _ in range(calls):
            np.dot(ys[t], xs[t].T, out=cs[t])

    def tile():
        with threadpool_limits(limits=1, user_api="blas"):
            return _run_threads(threads, tile_loop)

    benches["gemm_tile_f64"] = (f"{m}x{d} @ {d}x{n_cols}, {threads} threads x 1-thread BLAS", "FLOP/s",
                                2.0 * m * d * n_cols * calls * threads, tile)

    # GEMM 1024 x d @ d x 8192 into a preallocated output, BLAS threads = threads
    wa, wb, wc = rng.random((1024, d)) - 0.5, rng.random((8192, d)) - 0.5, np.empty((1024, 8192))
    wide_reps = max(calls // 8, 4)

    def wide():
        with threadpool_limits(limits=threads, user_api="blas"):
            start = time.perf_counter()
            for _ in range(wide_reps):
                np.dot(wa, wb.T, out=wc)
            return time.perf_counter() - start

    benches["gemm_wide_f64"] = (f"1024x{d} @ {d}x8192, {threads}-thread BLAS", "FLOP/s",
                                2.0 * 1024 * d * 8192 * wide_reps, wide)

    # exp over `threads` cores, arguments in [-30, 0] like the shifted kernel exponents
    n_exp = args.exp_size
    arrays = [-30.0 * rng.random(n_exp) for _ in range(threads)]
    results = [np.empty(n_exp) for _ in range(threads)]
    big = np.concatenate(arrays)

    def np_exp_one(t):
        np.exp(arrays[t], out=results[t])

    benches["exp_numpy"] = (f"np.exp, {n_exp:,} float64 per thread, {threads} Python threads", "exp/s",
                            n_exp * threads, lambda: _run_threads(threads, np_exp_one))

    @nb.njit(parallel=True)
    def numba_exp_sum(values):
        total = 0.0
        for i in nb.prange(values.shape[0]):
            total += np.exp(values[i])
        return total

    @nb.njit(parallel=True)
    def fastexp_sum(values, chunk, n_parts):
        # one part per thread, scratch allocated once per part; each chunk is copied into
        # the argument buffer first (_exp_sum overwrites it), as log_kernel_sum fills it
        n_chunks = values.shape[0] // chunk
        partial = np.zeros(n_parts)
        for part in nb.prange(n_parts):
            arguments = np.empty(chunk)
            scratch = np.empty(chunk)
            bits = np.empty(chunk, dtype=np.int64)
            total = 0.0
            for c in range(part, n_chunks, n_parts):
                arguments[:] = values[c * chunk: (c + 1) * chunk]
                total += _exp_sum(arguments, chunk, scratch, bits)
            partial[part] = total
        return partial.sum()

    numba_exp_sum(big[:1000])
    fastexp_sum(big[: 4 * COLUMN_CHUNK], COLUMN_CHUNK, threads)
    benches["exp_numba_libm"] = (f"numba prange loop of scalar np.exp (libm), {threads} threads", "exp/s",
                                 len(big), lambda: timed(numba_exp_sum, big)[0])
    benches["exp_quests_core_fastexp"] = (
        f"quests_core.fastexp._exp_sum, {COLUMN_CHUNK}-value chunks, {threads} threads", "exp/s",
        len(big) // COLUMN_CHUNK * COLUMN_CHUNK, lambda: timed(fastexp_sum, big, COLUMN_CHUNK, threads)[0])

    # the same rates on one core, timed by that thread's CPU time (time.thread_time), so
    # time spent descheduled by other processes on a shared machine does not count
    @nb.njit
    def numba_exp_sum_serial(values):
        total = 0.0
        for i in range(values.shape[0]):
            total += np.exp(values[i])
        return total

    @nb.njit
    def fastexp_sum_serial(values, chunk):
        n_chunks = values.shape[0] // chunk
        arguments = np.empty(chunk)
        scratch = np.empty(chunk)
        bits = np.empty(chunk, dtype=np.int64)
        total = 0.0
        for c in range(n_chunks):
            arguments[:] = values[c * chunk: (c + 1) * chunk]
            total += _exp_sum(arguments, chunk, scratch, bits)
        return total

    def cpu_timed(fn, *fn_args, **fn_kwargs):
        start = time.thread_time()
        fn(*fn_args, **fn_kwargs)
        return time.thread_time() - start

    sq_a = rng.random((size, size))
    sq_b, sq_c = rng.random((size, size)), np.empty((size, size))
    one = arrays[0]

    def single_blas(fn):
        def run():
            with threadpool_limits(limits=1, user_api="blas"):
                return fn()
        return run

    numba_exp_sum_serial(one[:10])
    fastexp_sum_serial(one[: 4 * COLUMN_CHUNK], COLUMN_CHUNK)
    core_benches = {
        "gemm_square_f64": (f"{size}x{size} @ {size}x{size}, 1-thread BLAS", "FLOP/s", 2.0 * size**3,
                            single_blas(lambda: cpu_timed(np.dot, sq_a, sq_b, out=sq_c))),
        "gemm_tile_f64": (f"{m}x{d} @ {d}x{n_cols}, 1-thread BLAS", "FLOP/s", 2.0 * m * d * n_cols * calls,
                          single_blas(lambda: cpu_timed(tile_loop, 0))),
        "exp_numpy": (f"np.exp, {n_exp:,} float64", "exp/s", n_exp, lambda: cpu_timed(np_exp_one, 0)),
        "exp_numba_libm": ("numba loop of scalar np.exp (libm)", "exp/s", n_exp,
                           lambda: cpu_timed(numba_exp_sum_serial, one)),
        "exp_quests_core_fastexp": (f"quests_core.fastexp._exp_sum, {COLUMN_CHUNK}-value chunks", "exp/s",
                                    n_exp // COLUMN_CHUNK * COLUMN_CHUNK,
                                    lambda: cpu_timed(fastexp_sum_serial, one, COLUMN_CHUNK)),
    }

    # our exact kernel sum on real descriptors: wall time, and CPU time of the whole process
    # (its threads run plain Python and non-parallel numba code, so nothing spins)
    x = np.ascontiguousarray(np.load(os.path.join(args.workdir, "pool.npy"))[: args.roofline_n])
    qc.log_kernel_sum(x[:512], x[:2048], BANDWIDTH)
    kernel_cpu = []

    def kernel_sum():
        cpu = cpu_seconds()
        wall = timed(qc.log_kernel_sum, x, x, BANDWIDTH)[0]
        kernel_cpu.append(cpu_seconds() - cpu)
        return wall

    benches["ours_kernel_sum"] = (f"quests_core.log_kernel_sum(x, x), n={len(x):,}", "pairs/s", float(len(x)) ** 2,
                                  kernel_sum)

    for key, (_, _, _, fn) in benches.items():  # warm-up
        if key != "ours_kernel_sum":
            fn()
    walls = {key: [] for key in benches}
    core_times = {key: [] for key in core_benches}
    for _ in range(max(args.roofline_rounds, 1)):
        for key, (_, _, _, fn) in benches.items():
            walls[key].append(fn())
        for key, (_, _, _, fn) in core_benches.items():
            core_times[key].append(fn())
    for key, (what, unit, work, _) in benches.items():
        out[key] = {"what": what, "unit": unit, "rate": work / min(walls[key]), "walls_s": walls[key]}
    out["ours_kernel_sum"]["n"] = len(x)
    out["ours_kernel_sum"]["cpu_s"] = kernel_cpu
    out["ours_kernel_sum"]["rate_per_cpu_s"] = len(x) ** 2 / min(kernel_cpu)
    out["per_core"] = {key: {"what": what, "unit": unit, "rate": work / min(core_times[key]), "cpu_s": core_times[key]}
                       for key, (what, unit, work, _) in core_benches.items()}

    # roofline time per pair = 2 d / GEMM rate + 1 / exp rate, for two GEMM rates (peak square,
    # same-shape tiles) and two exp rates (the fastest exp measured here, whichever it is, and
    # the fastest library exp: np.exp or numba's scalar libm exp)
    exp_keys = ("exp_numpy", "exp_numba_libm", "exp_quests_core_fastexp")
    fastest = max(exp_keys, key=lambda key: out[key]["rate"])
    library = max(exp_keys[:2], key=lambda key: out[key]["rate"])
    out["roofline_exp"] = {"fastest": fastest, "library": library}
    for gemm_key, gemm_name in (("gemm_square_f64", "peak"), ("gemm_tile_f64", "tile")):
        for exp_name, exp_key in (("fastest", fastest), ("library", library)):
            per_pair = 2.0 * d / out[gemm_key]["rate"] + 1.0 / out[exp_key]["rate"]
            out[f"roofline_{gemm_name}_{exp_name}"] = {
                "pairs_per_s": 1.0 / per_pair, "fraction": out["ours_kernel_sum"]["rate"] * per_pair}
    # per core, from CPU times: ours in pairs per CPU-second against one core's roofline
    core = out["per_core"]
    core_fastest = max(exp_keys, key=lambda key: core[key]["rate"])
    core_library = max(exp_keys[:2], key=lambda key: core[key]["rate"])
    out["roofline_core_exp"] = {"fastest": core_fastest, "library": core_library}
    for gemm_key, gemm_name in (("gemm_square_f64", "peak"), ("gemm_tile_f64", "tile")):
        for exp_name, exp_key in (("fastest", core_fastest), ("library", core_library)):
            per_pair = 2.0 * d / core[gemm_key]["rate"] + 1.0 / core[exp_key]["rate"]
            out[f"roofline_core_{gemm_name}_{exp_name}"] = {
                "pairs_per_cpu_s": 1.0 / per_pair,
                "fraction": out["ours_kernel_sum"]["rate_per_cpu_s"] * per_pair}
    out.update(memory_mb())
    return out


CHILDREN = {"prep": child_prep, "jit": child_jit, "desc": child_desc, "entropy": child_entropy,
            "approx": child_approx, "roofline": child_roofline}


# ----------------------------------------------------------------------------- parent

def thread_env(threads: int, extra=None) -> dict:
    env = dict(os.environ)
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env.update(extra or {})
    return env


def run_child(args, mode: str, lib: str = "ours", extra_args=(), extra_env=None, label=None) -> dict:
    out_path = os.path.join(args.workdir, f"result_{mode}_{lib}_{'_'.join(map(str, extra_args))}.json")
    command = [sys.executable, os.path.abspath(__file__), "--one", mode, "--lib", lib, "--workdir", args.workdir,
               "--out", out_path, *forwarded(args), *map(str, extra_args)]
    label = label or f"{mode} {lib} {' '.join(map(str, extra_args))}".strip()
    print(f"[bench_core] {label} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=thread_env(args.threads, extra_env))
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"[bench_core] child '{label}' failed with exit code {proc.returncode}")
    with open(out_path) as f:
        result = json.load(f)
    result["child_wall_s"] = wall
    result["ru_maxrss_mb"] = usage.ru_maxrss / 1024  # Linux: kB
    print(f"[bench_core] {label}: done in {wall:.1f} s, peak RSS {result['ru_maxrss_mb']:.0f} MB",
          file=sys.stderr, flush=True)
    return result


def forwarded(args) -> list:
    return ["--seed", str(args.seed), "--frames", str(args.frames), "--snapshot-atoms", str(args.snapshot_atoms),
            "--threads", str(args.threads), "--repeat", str(args.repeat), "--desc-repeat", str(args.desc_repeat),
            "--approx-repeat", str(args.approx_repeat),
            "--approx-ref", str(args.approx_ref), "--approx-queries", str(args.approx_queries),
            "--graph-neighbors", str(args.graph_neighbors), "--roofline-n", str(args.roofline_n),
            "--gemm-size", str(args.gemm_size), "--roofline-rounds", str(args.roofline_rounds), "--tile-calls", str(args.tile_calls),
            "--exp-size", str(args.exp_size)]


def load_average() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def machine_info() -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    info = {"cpu": model, "nproc": os.cpu_count(), "memory_gb": round(mem_gb, 1), "python": platform.python_version()}
    for name in ("numpy", "numba", "pynndescent", "ase", "quests"):
        try:
            from importlib.metadata import version
            info[name] = version(name)
        except Exception:  # noqa: BLE001
            info[name] = "?"
    return info


def fmt_rate(v: float, unit: str = "") -> str:
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {prefix}{unit}".strip()
    return f"{v:.3g} {unit}".strip()


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if b else "-"


def compare_approx(args, n: int) -> dict:
    ours = np.load(os.path.join(args.workdir, f"approx_ours_n{n}.npy"))
    theirs = np.load(os.path.join(args.workdir, f"approx_quests_n{n}.npy"))
    bracket = np.load(os.path.join(args.workdir, f"approx_ours_bracket_n{n}.npy"))
    sample_exact = np.load(os.path.join(args.workdir, f"approx_exact_n{n}.npy"))
    sample, exact = sample_exact[0].astype(int), sample_exact[1]
    diff = np.abs(ours - theirs)
    dh_max, dh_min = bracket[0][sample], bracket[1][sample]
    tol = 1e-9 * np.maximum(1.0, np.abs(exact))
    return {
        "median_abs_diff_ours_vs_quests": float(np.median(diff)),
        "fraction_within_1e-4": float(np.mean(diff < 1e-4)),
        "ours_minus_exact_median": float(np.median(ours[sample] - exact)),
        "quests_minus_exact_median": float(np.median(theirs[sample] - exact)),
        "exact_inside_ours_bracket": float(np.mean((exact >= dh_min - tol) & (exact <= dh_max + tol))),
        "bracket_width_median": float(np.median(bracket[0] - bracket[1])),
        "n_exact_sample": len(sample),
    }


PARTS = ("roofline", "jit", "desc", "entropy", "approx")


def main_parent(args) -> None:
    results = {"machine": machine_info(), "args": {k: v for k, v in vars(args).items() if k not in ("one", "out")}}
    results["command"] = " ".join(["python", "scripts/bench_core.py", *sys.argv[1:]])
    t_start = time.perf_counter()
    results["loadavg_start"] = load_average()
    if {"roofline", "entropy", "approx"} & set(args.parts):
        results["prep"] = run_child(args, "prep")
    if "roofline" in args.parts:
        results["roofline"] = run_child(args, "roofline")
    if "jit" in args.parts:
        if args.cold_jit:
            for lib in LIBS:
                with tempfile.TemporaryDirectory(prefix="numba_cold_", dir=args.workdir) as cache:
                    results[f"jit_cold_{lib}"] = run_child(args, "jit", lib, extra_env={"NUMBA_CACHE_DIR": cache},
                                                           label=f"jit {lib} (empty numba cache)")
        for lib in LIBS:
            results[f"jit_warm_{lib}"] = run_child(args, "jit", lib, label=f"jit {lib} (numba cache as found)")
    if "desc" in args.parts:
        desc = run_child(args, "desc", label="descriptors, both libraries alternating")
        results["desc_ours"], results["desc_quests"] = desc["ours"], desc["quests"]
        diffs = []
        for part in ("frames", "snapshot"):
            ours = np.load(os.path.join(args.workdir, f"desc_{part}_ours.npy"))
            theirs = np.load(os.path.join(args.workdir, f"desc_{part}_quests.npy"))
            diffs.append(float(np.abs(ours - theirs).max()))
        results["desc_agreement_max_abs"] = max(diffs)
    if "entropy" in args.parts:
        runs = {}
        for round_ in range(max(args.repeat, 1)):
            for size in args.sizes:
                for lib in LIBS:
                    runs.setdefault((lib, size), []).append(run_child(
                        args, "entropy", lib, ["--n", size], label=f"entropy {lib} n={size} round {round_ + 1}"))
        for (lib, size), items in runs.items():
            best = min(items, key=lambda item: item["time_s"])
            results[f"entropy_{lib}_{size}"] = dict(
                best, times_s=[item["time_s"] for item in items], cpu_s=[item["cpu_s"] for item in items],
                cpu_s_min=min(item["cpu_s"] for item in items),
                peak_rss_mb=max(item["peak_rss_mb"] for item in items),
                baseline_rss_mb=min(item["baseline_rss_mb"] for item in items),
                H_values=[item["H"] for item in items])
    if "approx" in args.parts:
        for n in args.approx_n:
            results[f"approx_n{n}"] = run_child(args, "approx", extra_args=["--n", n],
                                                label=f"approximate dH n={n}, both libraries alternating")
            results[f"approx_compare_n{n}"] = compare_approx(args, n)
    results["total_wall_s"] = time.perf_counter() - t_start
    results["loadavg_end"] = load_average()
    print_report(results, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"\nresults saved to {args.json}")


EXP_NAMES = {"exp_numpy": "np.exp", "exp_numba_libm": "numba libm exp", "exp_quests_core_fastexp": "quests_core fastexp"}
GEMM_VARIANTS = (("peak", "peak square GEMM"), ("tile", "same-shape GEMM"))


def print_report(r: dict, args) -> None:
    m = r["machine"]
    rows, checks = [], []

    def row(what, ours, quests, ratio_text="", note=""):
        rows.append((what, ours, quests, ratio_text, note))

    def section(title):
        rows.append((title, None, None, None, None))

    if "desc_ours" in r:
        do, dq = r["desc_ours"], r["desc_quests"]
        section("Descriptors (k=32, cutoff=5 Å, 63 features), environments/s")
        speedups = []
        for part, label in (("frames", f"{do['frames']['n_frames']} frames x {do['frames'].get('atoms_per_frame')} atoms"),
                            ("snapshot", "one snapshot")):
            o, q = do[part], dq[part]
            row(f"{label} ({o['n_env']:,} env)", fmt_rate(o["env_per_s"], "/s"), fmt_rate(q["env_per_s"], "/s"),
                ratio(o["env_per_s"], q["env_per_s"]), "speed-up")
            row("  same, per CPU-second (user+sys)", fmt_rate(o["env_per_cpu_s"], "/s"),
                fmt_rate(q["env_per_cpu_s"], "/s"), ratio(o["env_per_cpu_s"], q["env_per_cpu_s"]))
            row("  1 thread, per CPU-second", fmt_rate(o["env_per_cpu_s_1thread"], "/s"),
                fmt_rate(q["env_per_cpu_s_1thread"], "/s"), ratio(o["env_per_cpu_s_1thread"], q["env_per_cpu_s_1thread"]))
            speedups.append(o["env_per_s"] / q["env_per_s"])
        row("max |x_ours - x_quests|", f"{r['desc_agreement_max_abs']:.1e}", "", "", "agreement")
        checks.append((f"descriptors >= 5x quests (min over frames/snapshot: {min(speedups):.2f}x)", min(speedups) >= 5))
    if "jit_warm_ours" in r:
        section("JIT (tiny input: one 108-atom frame; entropy of its 108 environments)")
        for kind, label in (("cold", "empty numba cache"), ("warm", "cache as found")):
            jo, jq = r.get(f"jit_{kind}_ours"), r.get(f"jit_{kind}_quests")
            if not jo:
                continue
            row(f"descriptors first call, {label}", f"{jo['descriptors_first_s']:.2f} s",
                f"{jq['descriptors_first_s']:.2f} s")
            row(f"entropy first call, {label}", f"{jo['entropy_first_s']:.2f} s", f"{jq['entropy_first_s']:.2f} s")
        jo, jq = r["jit_warm_ours"], r["jit_warm_quests"]
        row("import time (cache as found)", f"{jo['import_s']:.2f} s", f"{jq['import_s']:.2f} s")
    if any(f"entropy_ours_{size}" in r for size in args.sizes):
        section(f"Exact entropy H(X), h={BANDWIDTH}, float64 (best of {max(args.repeat, 1)} rounds)")
        for size in args.sizes:
            eo, eq = r[f"entropy_ours_{size}"], r[f"entropy_quests_{size}"]
            speedup = eq["time_s"] / eo["time_s"]
            rss_ratio = eo["peak_rss_mb"] / eq["peak_rss_mb"]
            row(f"{size:,} env: time", f"{eo['time_s']:.2f} s", f"{eq['time_s']:.2f} s", f"{speedup:.2f}x", "speed-up")
            row(f"{size:,} env: pairs/s", fmt_rate(eo["pairs_per_s"], "/s"), fmt_rate(eq["pairs_per_s"], "/s"))
            row(f"{size:,} env: CPU time (user+sys)", f"{eo['cpu_s_min']:.2f} s", f"{eq['cpu_s_min']:.2f} s",
                ratio(eq["cpu_s_min"], eo["cpu_s_min"]), "quests/ours")
            row(f"{size:,} env: peak RSS (whole process)", f"{eo['peak_rss_mb']:.0f} MB", f"{eq['peak_rss_mb']:.0f} MB",
                f"{rss_ratio:.3f}", "ours/quests")
            grow_o = eo["peak_rss_mb"] - eo["baseline_rss_mb"]
            grow_q = eq["peak_rss_mb"] - eq["baseline_rss_mb"]
            row(f"{size:,} env: peak RSS - RSS before call", f"{grow_o:.0f} MB", f"{grow_q:.0f} MB",
                f"{grow_o / grow_q:.4f}", "ours/quests")
            rel = abs(eo["H"] - eq["H"]) / abs(eq["H"])
            row(f"{size:,} env: H (nats)", f"{eo['H']:.12f}", f"{eq['H']:.12f}", f"{rel:.1e}",
                "rel. diff " + ("ok" if rel <= ENTROPY_AGREEMENT else f"> {ENTROPY_AGREEMENT:g}!"))
            checks.append((f"exact entropy {size:,}: >= 3x quests ({speedup:.2f}x)", speedup >= 3))
            checks.append((f"exact entropy {size:,}: peak RSS <= 1/10 quests' ({rss_ratio:.3f})", rss_ratio <= 0.1))
            checks.append((f"exact entropy {size:,}: agrees with quests to {ENTROPY_AGREEMENT:g} ({rel:.1e})",
                           rel <= ENTROPY_AGREEMENT))
    for n in args.approx_n:
        if f"approx_n{n}" not in r:
            continue
        ap, cmp_ = r[f"approx_n{n}"], r[f"approx_compare_n{n}"]
        section(f"Approximate dH, n_neighbors={n}, graph_neighbors={args.graph_neighbors}: "
                f"{ap['n_query']:,} queries vs {ap['n_ref']:,} references (best of {max(args.approx_repeat, 1)})")
        row("index build (build_index)", f"{ap['build_s']:.2f} s", "(in call)")
        row("query only (approx_log_kernel_sum)", fmt_rate(ap["queries_per_s_query"], "q/s"), "(in call)")
        row("whole call (build + query)", fmt_rate(ap["queries_per_s_whole_ours"], "q/s"),
            fmt_rate(ap["queries_per_s_whole_quests"], "q/s"),
            ratio(ap["queries_per_s_whole_ours"], ap["queries_per_s_whole_quests"]), "speed-up")
        row("first call, tiny input", f"{ap['first_call_ours_s']:.1f} s", f"{ap['first_call_quests_s']:.1f} s", "",
            "ours ran first: incl. pynndescent compile")
        row(f"median dH - exact dH ({cmp_['n_exact_sample']} queries)", f"{cmp_['ours_minus_exact_median']:.3g}",
            f"{cmp_['quests_minus_exact_median']:.3g}", "", "nats")
        row("median |dH_ours - dH_quests|", f"{cmp_['median_abs_diff_ours_vs_quests']:.2g}", "",
            f"{100 * cmp_['fraction_within_1e-4']:.1f}%", "within 1e-4")
        row("exact dH inside ours' bracket", f"{100 * cmp_['exact_inside_ours_bracket']:.1f}%", "",
            f"{cmp_['bracket_width_median']:.3g}", "median width, nats")
    ro = r.get("roofline")
    if ro:
        section(f"Roofline ({ro['threads']} threads, float64, d={ro['d']}; best of {ro['rounds']} interleaved rounds)")
        for key in ("gemm_square_f64", "gemm_tile_f64", "gemm_wide_f64", "gemm_square_f32",
                    "exp_numpy", "exp_numba_libm", "exp_quests_core_fastexp", "ours_kernel_sum"):
            item = ro[key]
            row(item["what"] + (" [float32]" if key.endswith("f32") else ""), fmt_rate(item["rate"], item["unit"]), "")
        exp_variants = ("fastest", "library") if ro["roofline_exp"]["fastest"] != ro["roofline_exp"]["library"] \
            else ("fastest",)
        for gemm_name, gemm_text in GEMM_VARIANTS:
            for exp_name in exp_variants:
                item = ro[f"roofline_{gemm_name}_{exp_name}"]
                row(f"roofline: {gemm_text} + {EXP_NAMES[ro['roofline_exp'][exp_name]]}",
                    fmt_rate(item["pairs_per_s"], "pairs/s"), "", f"{100 * item['fraction']:.0f}%", "ours / roofline")
            fraction = ro[f"roofline_{gemm_name}_fastest"]["fraction"]
            checks.append((f"kernel sum >= 60% of roofline, {gemm_text} + fastest exp ({100 * fraction:.0f}%)",
                           fraction >= 0.6))
        core = ro["per_core"]
        section("Roofline per core, from CPU time (robust to other processes on the machine)")
        for key in ("gemm_square_f64", "gemm_tile_f64", "exp_numpy", "exp_numba_libm", "exp_quests_core_fastexp"):
            row(core[key]["what"], fmt_rate(core[key]["rate"], core[key]["unit"]), "")
        row("quests_core.log_kernel_sum, per CPU-second", fmt_rate(ro["ours_kernel_sum"]["rate_per_cpu_s"], "pairs/s"),
            "", f"{min(ro['ours_kernel_sum']['cpu_s']):.2f} s", "CPU")
        exp_variants = ("fastest", "library") \
            if ro["roofline_core_exp"]["fastest"] != ro["roofline_core_exp"]["library"] else ("fastest",)
        for gemm_name, gemm_text in GEMM_VARIANTS:
            for exp_name in exp_variants:
                item = ro[f"roofline_core_{gemm_name}_{exp_name}"]
                row(f"roofline/core: {gemm_text} + {EXP_NAMES[ro['roofline_core_exp'][exp_name]]}",
                    fmt_rate(item["pairs_per_cpu_s"], "pairs/s"), "", f"{100 * item['fraction']:.0f}%",
                    "ours / roofline")
            fraction = ro[f"roofline_core_{gemm_name}_fastest"]["fraction"]
            checks.append((f"kernel sum >= 60% of roofline per core (CPU time), {gemm_text} + fastest exp "
                           f"({100 * fraction:.0f}%)", fraction >= 0.6))

    print()
    print(f"bench_core: quests_core vs quests {m['quests']}, {args.threads} threads each "
          f"(NUMBA/OMP/OPENBLAS/MKL_NUM_THREADS={args.threads})")
    print(f"machine: {m['cpu']}, nproc={m['nproc']}, {m['memory_gb']} GB RAM; python {m['python']}, "
          f"numpy {m['numpy']}, numba {m['numba']}, pynndescent {m['pynndescent']}, ase {m['ase']}")
    print(f"command: {r['command']}")
    print(f"load average (1/5/15 min) at start: {r['loadavg_start']}, at end: {r['loadavg_end']}")
    widths = [46, 16, 16, 10]
    for what, ours, quests, ratio_text, note in rows:
        if ours is None:
            print(f"\n## {what}")
            print(f"{'':<{widths[0]}} {'quests_core':>{widths[1]}} {'quests':>{widths[2]}} {'ratio':>{widths[3]}}")
            continue
        print(f"{what:<{widths[0]}} {ours:>{widths[1]}} {quests:>{widths[2]}} {ratio_text:>{widths[3]}}  {note}")
    if checks:
        print("\n## Targets")
        for text, ok in checks:
            print(f"  [{'PASS' if ok else 'FAIL'}] {text}")
    if ro:
        print(f"\nroofline time per pair = 2*d / GEMM_rate + 1 / exp_rate, d={ro['d']}, with the GEMM rate of the peak "
              f"square product or of the tile shape log_kernel_sum issues, and the exp rate of the fastest of the three "
              f"exps measured ('fastest') or of the faster library exp, np.exp or numba's libm exp ('library'). "
              f"Per core: the same from single-thread rates timed in CPU time, against our pairs per CPU-second.")
    print(f"total wall time {r['total_wall_s']:.0f} s")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="threads for both libraries (default 2)")
    p.add_argument("--sizes", type=lambda s: [int(v) for v in s.split(",")], default=[10000, 20000, 40000],
                   help="exact entropy sizes, comma separated (default 10000,20000,40000)")
    p.add_argument("--frames", type=int, default=200, help="number of 256-atom frames (default 200 = 51,200 env)")
    p.add_argument("--snapshot-atoms", type=int, default=108000,
                   help="atoms in the large snapshot, rounded to a cubic FCC supercell (default 108000; 1000000 for 1M)")
    p.add_argument("--repeat", type=int, default=2,
                   help="rounds of the exact-entropy children (ours, quests alternating), best time taken (default 2)")
    p.add_argument("--desc-repeat", type=int, default=3, help="timed calls per descriptor measurement (default 3)")
    p.add_argument("--approx-n", type=lambda s: [int(v) for v in s.split(",")], default=[3],
                   help="n_neighbors for approximate dH, comma separated (default 3)")
    p.add_argument("--approx-repeat", type=int, default=2, help="timed rounds for approximate dH (default 2)")
    p.add_argument("--graph-neighbors", type=int, default=10, help="pynndescent graph neighbours (default 10)")
    p.add_argument("--approx-ref", type=int, default=40000, help="reference environments for approximate dH")
    p.add_argument("--approx-queries", type=int, default=100000, help="query environments (from the snapshot)")
    p.add_argument("--roofline-n", type=int, default=20000, help="n for ours log_kernel_sum(x, x) in the roofline")
    p.add_argument("--roofline-rounds", type=int, default=3, help="interleaved rounds of the roofline rates")
    p.add_argument("--gemm-size", type=int, default=3072, help="square GEMM size for the peak rate")
    p.add_argument("--tile-calls", type=int, default=100, help="GEMM calls per thread for the tile-shape rate")
    p.add_argument("--exp-size", type=int, default=1 << 23, help="exp arguments per thread")
    p.add_argument("--no-cold-jit", dest="cold_jit", action="store_false",
                   help="skip the compile into an empty numba cache")
    p.add_argument("--parts", type=lambda s: s.split(","), default=list(PARTS),
                   help=f"comma-separated subset of {','.join(PARTS)} (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also save every result to this JSON file")
    p.add_argument("--workdir", help="folder for intermediate arrays (default: a temporary folder)")
    p.add_argument("--quick", action="store_true", help="small sizes: checks the script, not the code")
    # child-process arguments
    p.add_argument("--one", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    p.add_argument("--lib", choices=["ours", "quests"], default="ours", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick and not args.one:
        args.sizes, args.frames, args.snapshot_atoms = [2000, 4000], 20, 4000
        args.approx_ref, args.approx_queries, args.roofline_n = 4000, 4000, 4000
        args.gemm_size, args.tile_calls, args.exp_size, args.desc_repeat = 1024, 20, 1 << 20, 1
    args.snapshot_atoms_actual = 4 * snapshot_repeat(args.snapshot_atoms) ** 3
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        p.error(f"--parts: unknown {sorted(unknown)}; choose from {','.join(PARTS)}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.one:
        result = CHILDREN[args.one](args)
        with open(args.out, "w") as f:
            json.dump(result, f)
        return
    if max(args.sizes) > args.frames * 4 * FRAME_REPEAT**3 or args.approx_ref > args.frames * 4 * FRAME_REPEAT**3:
        raise SystemExit(f"--frames {args.frames} gives {args.frames * 256} environments: too few for "
                         f"--sizes {max(args.sizes)} / --approx-ref {args.approx_ref}")
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        main_parent(args)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_core_") as workdir:
            args.workdir = workdir
            main_parent(args)


if __name__ == "__main__":
    main()
