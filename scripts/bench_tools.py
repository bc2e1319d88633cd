#!/usr/bin/env python
"""Benchmark of the dataset tools against the reference package quests, in one run.

1. Compression: msc (and fps) selection of half of a 2,000-structure dataset, quests_core
   (quests_core.msc / fps: per-structure entropies + greedy selection) against quests
   (quests.entropy.entropy per structure + quests.compression.fps.msc / fps), both on 2
   threads; whether the selections agree, pick by pick; the compressed-set summary (H, D,
   overlap) of both.
2. Learning curve on the same dataset's ~50,000 environments: quests_core.learning_curve
   against quests' procedure (quests.cli.learning_curve's sampler + quests.entropy.perfect_entropy),
   with the same fractions and runs; means compared within sampling error (both drawing
   with replacement); and the pipeline's learning_curve_summary on a LocalCluster.

The dataset is generated here, never stored: short EMT molecular dynamics (ASE, velocity
Verlet) of FCC Cu, Ni, Al and a random CuNi alloy in cells of 8, 16 and 32 atoms at
300-1500 K, one frame every few steps.

    python scripts/bench_tools.py                  # the run in docs/benchmarks.md
    python scripts/bench_tools.py --quick          # smoke test of the script (small sizes)
    python scripts/bench_tools.py --json out.json  # also save every number
"""

import os

for _variable in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "2")  # both libraries on the same 2 threads, set before numpy loads

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

BANDWIDTH = 0.015
SYSTEMS = (("Cu", 3.61), ("Ni", 3.52), ("Al", 4.05), ("CuNi", 3.56))
REPEATS = ((1, 1, 2), (1, 2, 2), (2, 2, 2))  # 8, 16 and 32 atoms
REPEAT_WEIGHTS = (0.1, 0.3, 0.6)  # about 25 atoms a structure: 2,000 structures hold ~50,000 environments
STEPS_PER_FRAME = 5
TIMESTEP_FS = 2.0


def md_dataset(n_structures: int, frames_per_run: int, seed: int):
    """EMT velocity-Verlet runs, each a random system, cell, strain and temperature; every
    STEPS_PER_FRAME-th step kept, until n_structures frames."""
    from ase import units
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.md.verlet import VelocityVerlet

    rng = np.random.default_rng(seed)
    frames = []
    while len(frames) < n_structures:
        system, lattice = SYSTEMS[rng.integers(len(SYSTEMS))]
        atoms = bulk("Cu" if system == "CuNi" else system, "fcc", a=lattice * (1 + rng.uniform(-0.03, 0.03)),
                     cubic=True).repeat(REPEATS[rng.choice(len(REPEATS), p=REPEAT_WEIGHTS)])
        if system == "CuNi":
            atoms.symbols[rng.random(len(atoms)) < 0.5] = "Ni"
        atoms.rattle(0.02, seed=int(rng.integers(1 << 31)))
        atoms.calc = EMT()
        temperature = rng.uniform(300, 1500)  # K; Maxwell-Boltzmann momenta
        atoms.set_momenta(rng.normal(size=(len(atoms), 3)) * np.sqrt(atoms.get_masses()[:, None] * units.kB * temperature))
        dynamics = VelocityVerlet(atoms, timestep=TIMESTEP_FS * units.fs)
        for _ in range(min(frames_per_run, n_structures - len(frames))):
            dynamics.run(STEPS_PER_FRAME)
            frame = atoms.copy()
            frame.calc = None
            frames.append(frame)
    return frames


def timed(function, *args, **kwargs):
    cpu, wall = time.process_time(), time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def load_average() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


def first_difference(a, b):
    return next((i for i, (p, q) in enumerate(zip(a, b)) if p != q), None if len(a) == len(b) else min(len(a), len(b)))


def bench_compression(x, n_atoms, per_structure, size: int, methods: list[str]) -> dict:
    import quests.compression.fps
    import quests.entropy

    import quests_core

    figures = {}
    for method in methods:
        ours, ours_wall, ours_cpu = timed(getattr(quests_core, method), x, n_atoms, size, BANDWIDTH)

        def reference():
            entropies = np.array([quests.entropy.entropy(xs, BANDWIDTH) for xs in per_structure])
            if method == "msc":
                return quests.compression.fps.msc(per_structure, entropies, size, h=BANDWIDTH)
            return quests.compression.fps.fps(per_structure, entropies, size)

        theirs, theirs_wall, theirs_cpu = timed(reference)
        theirs = [int(i) for i in theirs]
        mismatch = first_difference(ours.tolist(), theirs)
        figures[method] = {
            "ours_s": ours_wall, "quests_s": theirs_wall, "speedup": theirs_wall / ours_wall,
            "ours_cpu_s": ours_cpu, "quests_cpu_s": theirs_cpu, "cpu_ratio": theirs_cpu / ours_cpu,
            "same_selection": mismatch is None, "first_difference": mismatch,
            "same_set": sorted(ours.tolist()) == sorted(theirs),
        }
        print(f"  {method}: ours {ours_wall:.2f} s (cpu {ours_cpu:.2f}), quests {theirs_wall:.2f} s (cpu {theirs_cpu:.2f}),"
              f" speed-up {theirs_wall / ours_wall:.2f}x; same picks in the same order: {mismatch is None}"
              + ("" if mismatch is None else f" (first difference at pick {mismatch})"), flush=True)
        if method == "msc":
            summary, wall, _ = timed(quests_core.compression_summary, x, n_atoms, ours, BANDWIDTH)
            selected = np.concatenate([per_structure[i] for i in theirs])
            everything = np.concatenate(per_structure)
            _, quests_wall, _ = timed(lambda: (quests.entropy.entropy(selected, BANDWIDTH),
                                               quests.entropy.diversity(selected, BANDWIDTH),
                                               (quests.entropy.delta_entropy(everything, selected, BANDWIDTH) < 1e-5).mean()))
            figures["summary"] = {"ours_s": wall, "quests_s": quests_wall, "entropy": summary.entropy,
                                  "diversity": summary.diversity, "overlap": summary.overlap}
            print(f"  summary of the msc set (H {summary.entropy:.4f}, D {summary.diversity:.4f}, overlap "
                  f"{summary.overlap:.4f}): ours {wall:.2f} s, quests {quests_wall:.2f} s", flush=True)
    return figures


def bench_learning_curve(x, fractions, runs: int, seed: int) -> dict:
    import quests.cli.learning_curve
    import quests.entropy

    import quests_core

    curve, ours_wall, ours_cpu = timed(quests_core.learning_curve, x, fractions, runs, BANDWIDTH, seed=seed, replace=True)

    def reference():
        np.random.seed(seed)
        return [[float(quests.entropy.perfect_entropy(quests.cli.learning_curve.get_sampling_fn(x, f)(), h=BANDWIDTH))
                 for _ in range(runs)] for f in fractions]

    theirs, theirs_wall, theirs_cpu = timed(reference)
    points = []
    for fraction, point, entropies in zip(fractions, curve, theirs):
        error = float(np.sqrt((point.std**2 + np.std(entropies) ** 2) / runs))
        points.append({"fraction": fraction, "sample_size": point.sample_size, "ours_mean": point.mean,
                       "ours_std": point.std, "quests_mean": float(np.mean(entropies)),
                       "quests_std": float(np.std(entropies)), "difference_in_standard_errors":
                       abs(point.mean - np.mean(entropies)) / error if error > 0 else 0.0})
    print(f"  ours {ours_wall:.1f} s (cpu {ours_cpu:.1f}), quests {theirs_wall:.1f} s (cpu {theirs_cpu:.1f}), "
          f"speed-up {theirs_wall / ours_wall:.2f}x", flush=True)
    for point in points:
        print(f"    f = {point['fraction']:.1f} (n = {point['sample_size']}): H ours {point['ours_mean']:.4f} ± "
              f"{point['ours_std']:.4f}, quests {point['quests_mean']:.4f} ± {point['quests_std']:.4f} "
              f"({point['difference_in_standard_errors']:.1f} standard errors apart)", flush=True)
    return {"ours_s": ours_wall, "quests_s": theirs_wall, "speedup": theirs_wall / ours_wall, "ours_cpu_s": ours_cpu,
            "quests_cpu_s": theirs_cpu, "points": points}


def bench_pipeline_learning_curve(frames, fractions, runs: int, seed: int, workers: int) -> dict:
    from ase.io import write
    from distributed import Client, LocalCluster

    from pipeline.cluster import NumbaThreads, worker_environment
    from pipeline.ingest import IngestRequest, ingest
    from pipeline.store import StoreParams
    from pipeline.tools import learning_curve_summary

    cores = max(1, 2 // workers)
    with tempfile.TemporaryDirectory() as folder, \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                         env=worker_environment(cores)) as cluster, Client(cluster) as client:
        client.register_plugin(NumbaThreads(cores))
        path = Path(folder) / "data.extxyz"
        write(path, frames)
        store = ingest(IngestRequest(paths=(path,), params=StoreParams(k=32, cutoff=5.0, dtype="float64")),
                       Path(folder) / "data.zarr", client)
        learning_curve_summary(client, store, fractions=[0.01], runs=workers, seed=seed)  # workers compile
        summary, wall, _ = timed(learning_curve_summary, client, store, fractions=fractions, runs=runs, seed=seed,
                                 replace=True)
    print(f"  pipeline (LocalCluster, {workers} workers x {cores} core): {wall:.1f} s", flush=True)
    return {"seconds": wall, "workers": workers, "means": [point["entropy_mean"] for point in summary["points"]]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--structures", type=int, default=2000, help="structures in the dataset (default %(default)s)")
    parser.add_argument("--frames-per-run", type=int, default=50, help="frames of each MD run (default %(default)s)")
    parser.add_argument("--fraction", type=float, default=0.5, help="fraction kept by compression (default %(default)s)")
    parser.add_argument("--methods", default="msc,fps", help="compression methods compared (default %(default)s)")
    parser.add_argument("--fractions", default="0.1,0.3,0.5,0.7,0.9", help="learning curve fractions (default %(default)s)")
    parser.add_argument("--runs", type=int, default=2, help="learning curve runs per fraction (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="pipeline LocalCluster workers (default %(default)s)")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the pipeline learning curve")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of this script")
    parser.add_argument("--json", type=Path, default=None, help="save every number here")
    args = parser.parse_args()
    if args.quick:
        args.structures, args.frames_per_run, args.fractions, args.runs = 60, 10, "0.2,0.6", 2

    import quests
    import quests.descriptor

    import quests_core

    report = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "numpy": np.__version__,
                          "quests": getattr(quests, "__version__", "2026.2.22"),
                          "threads": os.environ["NUMBA_NUM_THREADS"], "load_at_start": load_average()}}
    print(f"load average at start: {report['machine']['load_at_start']}", flush=True)
    frames, wall, _ = timed(md_dataset, args.structures, args.frames_per_run, args.seed)
    n_atoms = np.array([len(atoms) for atoms in frames])
    x = quests_core.get_descriptors(frames)
    per_structure = [quests.descriptor.get_descriptors([atoms]) for atoms in frames]
    report["dataset"] = {"structures": len(frames), "environments": int(n_atoms.sum()), "md_seconds": wall}
    print(f"dataset: {len(frames)} structures, {n_atoms.sum()} environments (EMT MD, {wall:.1f} s)", flush=True)

    warm = slice(0, 20)  # JIT of both libraries, outside the timings
    bench_compression(x[: n_atoms[warm].sum()], n_atoms[warm], per_structure[warm], 5, ["msc", "fps"])
    size = max(1, int(round(args.fraction * len(frames))))
    print(f"compression to {size} of {len(frames)} structures, h = {BANDWIDTH}:", flush=True)
    report["compression"] = {"size": size, **bench_compression(x, n_atoms, per_structure, size, args.methods.split(","))}

    fractions = [float(f) for f in args.fractions.split(",")]
    print(f"learning curve on {len(x)} environments, fractions {fractions}, {args.runs} runs each (with replacement, "
          "as quests):", flush=True)
    report["learning_curve"] = bench_learning_curve(x, fractions, args.runs, args.seed)
    if not args.no_pipeline:
        report["learning_curve"]["pipeline"] = bench_pipeline_learning_curve(frames, fractions, args.runs, args.seed,
                                                                             args.workers)
    report["machine"]["load_at_end"] = load_average()
    report["machine"]["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"load average at end: {report['machine']['load_at_end']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
