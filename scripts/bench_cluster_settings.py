"""What our cluster settings (pipeline.cluster.CLUSTER_CONFIG) buy, side by side in one run.

    python scripts/bench_cluster_settings.py --workdir /tmp/bi [--rounds 2] [--repeats 3]

1. Idle CPU of a running 2-worker local cluster over 10 s, with Dask's defaults and with ours:
   the benchmark process (client and scheduler) and each worker, as a fraction of a core.
2. The 2-worker ingest of the 1M-atom snapshot (scripts/bench_ingest.py writes it to
   WORKDIR/snapshot.extxyz) with four settings: all of ours, only the workers' malloc
   settings, only the Dask ones (no profiler, slow ticks and monitors), and neither. Rounds
   interleave the four, each on a fresh cluster warmed by one untimed snapshot ingest.
"""

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

import pipeline.cluster as cluster
from pipeline.ingest import IngestRequest, ingest

sys.path.insert(0, str(Path(__file__).parent))
from bench_ingest import PARAMS, warm_worker  # noqa: E402

OURS, OUR_MALLOC = dict(cluster.CLUSTER_CONFIG), dict(cluster.WORKER_MALLOC)
MALLOC_KEYS = {key for key in OURS if key.startswith("distributed.nanny.pre-spawn-environ.")}
SETTINGS = {
    "all of ours": (OURS, OUR_MALLOC),
    "malloc only": ({key: OURS[key] for key in MALLOC_KEYS}, OUR_MALLOC),
    "dask settings only": ({key: value for key, value in OURS.items() if key not in MALLOC_KEYS}, {}),
    "neither (Dask's defaults)": ({}, {}),
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def use(settings: str) -> None:
    cluster.CLUSTER_CONFIG, cluster.WORKER_MALLOC = SETTINGS[settings]


def idle_cpu(seconds: float = 10.0) -> tuple[float, list[float]]:
    with cluster.local_client(2, cores=1) as client:
        time.sleep(2)
        own, workers = cpu_seconds(), client.run(cpu_seconds)
        time.sleep(seconds)
        after = client.run(cpu_seconds)
        return (cpu_seconds() - own) / seconds, [(after[key] - workers[key]) / seconds for key in workers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True, help="bench_ingest.py's workdir (its snapshot.extxyz)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed ingests per cluster")
    args = parser.parse_args()
    snapshot, trajectory = args.workdir / "snapshot.extxyz", args.workdir / "trajectory.extxyz"
    store = args.workdir / "settings.zarr"

    for settings in ("neither (Dask's defaults)", "all of ours"):
        use(settings)
        scheduler, workers = idle_cpu()
        print(f"idle 2-worker cluster, {settings}: client and scheduler {scheduler:.1%} of a core, workers "
              f"{', '.join(f'{share:.1%}' for share in workers)}; {scheduler + sum(workers):.1%} in all")

    times = {settings: [] for settings in SETTINGS}
    for done in range(args.rounds):
        for settings in SETTINGS:
            use(settings)
            with cluster.local_client(2, cores=1) as client:
                client.run(warm_worker, str(trajectory), str(args.workdir / "small.lammpstrj"))
                for timed in [False] + [True] * args.repeats:
                    shutil.rmtree(store, ignore_errors=True)
                    started = time.perf_counter()
                    ingest(IngestRequest(paths=(snapshot,), params=PARAMS), store, client)
                    if timed:
                        times[settings].append(time.perf_counter() - started)
            print(f"round {done + 1}, {settings}: " + ", ".join(f"{t:.2f}" for t in times[settings][-args.repeats:]) + " s",
                  flush=True)
    shutil.rmtree(store, ignore_errors=True)
    print("\n2-worker snapshot ingest, medians:")
    baseline = np.median(times["neither (Dask's defaults)"])
    for settings, values in times.items():
        print(f"  {settings:<27} {np.median(values):6.2f} s ({min(values):.2f}-{max(values):.2f}, {len(values)} ingests), "
              f"{baseline / np.median(values):.2f}x Dask's defaults")


if __name__ == "__main__":
    main()
