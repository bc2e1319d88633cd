"""CPU and wall time of writing one domain's descriptors into a store, the way the store does
it (one chunk at a time, arrays opened with write_empty_chunks, chunk files written with
O_DIRECT), against the same with buffered chunk files, one zarr selection over the same rows
(buffered), and writing the same bytes to plain files (buffered).

    python scripts/bench_store_write.py [--rows 180224] [--chunk-rows 16384] [--repeat 12] [--idle 4] [--workdir DIR]

The defaults are the largest domain of the 1M-atom snapshot of bench_ingest (90 MB of float64
descriptors in 11 chunks). The ways alternate, each writing fresh rows of its own store (or
files) after --idle seconds of sleep, and the medians are reported with their ratios. CPU is
the process's user + system time: zarr writes from its own threads. Buffered figures depend on
the page cache: on a virtual machine that hands free memory back to its host, files written
after a few idle seconds cost several times more than files written right after others were
deleted (--idle 0; docs/benchmarks.md).
"""

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from zarr.core.sync import sync

from pipeline.store import DescriptorStore, StoreParams

PARAMS = StoreParams(k=32, cutoff=5.0, dtype="float64")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=180224)
    parser.add_argument("--chunk-rows", type=int, default=16384)
    parser.add_argument("--repeat", type=int, default=12)
    parser.add_argument("--idle", type=float, default=4.0, help="seconds of sleep before each write")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_store_write_"))
    workdir.mkdir(parents=True, exist_ok=True)
    values = np.random.default_rng(0).random((args.rows, PARAMS.width))
    stores = {}
    for name in ("store", "store, buffered", "one selection"):
        path = workdir / f"{name.replace(' ', '_')}.zarr"
        shutil.rmtree(path, ignore_errors=True)
        stores[name] = DescriptorStore.create(path, PARAMS, args.chunk_rows,
                                              reserve={"n_environments": args.rows * (args.repeat + 1), "n_frames": 1,
                                                       "n_regions": 1})
    for name in ("store, buffered", "one selection"):
        stores[name].group.store.direct_writes = False
    files = workdir / "files"
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir()
    plain_array = stores["one selection"].group["descriptors"].async_array  # zarr's defaults

    def write_store(i, name="store"):
        stores[name].write_rows(i * args.rows, {"descriptors": values})

    def write_one_selection(i):
        sync(plain_array.setitem(slice(i * args.rows, (i + 1) * args.rows), values))

    def write_files(i):  # each chunk's bytes to a new file, renamed into place, as zarr's LocalStore does
        for first in range(0, args.rows, args.chunk_rows):
            target = files / f"{i}.{first}"
            with open(target.with_suffix(".partial"), "wb") as f:
                f.write(values[first:first + args.chunk_rows].tobytes())
            os.replace(target.with_suffix(".partial"), target)

    ways = {"store": write_store, "store, buffered": lambda i: write_store(i, "store, buffered"),
            "one selection": write_one_selection, "plain files": write_files}
    seconds = {name: [] for name in ways}
    for i in range(args.repeat + 1):
        for name, write in ways.items():
            time.sleep(args.idle)
            wall, cpu = time.perf_counter(), _cpu()
            write(i)
            if i:  # the first round creates directories and warms the page cache
                seconds[name].append((time.perf_counter() - wall, _cpu() - cpu))
    size = values.nbytes / 2**20
    print(f"{args.rows:,} rows x {PARAMS.width} float64 ({size:.0f} MiB) in chunks of {args.chunk_rows:,} rows; "
          f"medians of {args.repeat}, each after {args.idle:g} s idle")
    medians = {name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
               for name, runs in seconds.items()}
    for name, (wall, cpu) in medians.items():
        print(f"  {name:<16} wall {wall:.3f} s   CPU {cpu:.3f} s   ({size / cpu:,.0f} MiB per CPU second)")
    buffered_wall, buffered_cpu = medians["store, buffered"]
    print(f"store, buffered / store: wall {buffered_wall / medians['store'][0]:.2f}x, "
          f"CPU {buffered_cpu / medians['store'][1]:.2f}x; CPU of one selection / store, buffered "
          f"{medians['one selection'][1] / buffered_cpu:.2f}x; store, buffered / plain files "
          f"{buffered_cpu / medians['plain files'][1]:.2f}x")


if __name__ == "__main__":
    main()
