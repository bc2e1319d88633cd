"""Ingest benchmark: structure file -> zarr descriptor store on a running LocalCluster.

    python scripts/bench_ingest.py [--cells 63] [--frames 200] [--workdir DIR]

Measures, in one run: environments/s of file -> store for a ~1M-atom periodic snapshot
(extxyz and LAMMPS dump) and a 200-frame trajectory of 256-atom frames, with 1 and 2
worker processes of one core each; the peak RSS of client + workers together; our readers
against ASE's on the same files; and, as the yardstick, quests_core.compute_descriptors in
this process with 2 numba threads. Workers are started and warmed (numba compiled) before
timing, so times are of the ingest itself, not of starting a cluster.
"""

import argparse
import logging
import shutil
import tempfile
import threading
import time
import timeit
from pathlib import Path

import numba
import numpy as np
import psutil
from ase.build import bulk
from ase.io import read, write
from distributed import Client, LocalCluster

from pipeline import extxyz, lammps
from pipeline.cluster import NumbaThreads, worker_environment
from pipeline.ingest import IngestRequest, ingest
from pipeline.store import StoreParams
from quests_core import compute_descriptors

PARAMS = StoreParams(k=32, cutoff=5.0, dtype="float64")
TRAJECTORY_REPEATS = 5


def snapshot(cells: int, seed: int = 0):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (cells, cells, cells)
    atoms.positions += np.random.default_rng(seed).normal(0, 0.08, atoms.positions.shape)
    return atoms


def write_lammps_dump(path: Path, frames) -> None:
    with open(path, "w") as handle:
        for step, atoms in enumerate(frames):
            lengths = np.diag(atoms.cell.array)
            handle.write(f"ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n{len(atoms)}\nITEM: BOX BOUNDS pp pp pp\n")
            handle.write("".join(f"0.0 {float(length)!r}\n" for length in lengths))
            handle.write("ITEM: ATOMS id type x y z\n")
            table = np.column_stack([np.arange(1, len(atoms) + 1), np.ones(len(atoms), dtype=int), atoms.positions])
            np.savetxt(handle, table, fmt=["%d", "%d", "%.8f", "%.8f", "%.8f"])


class PeakRSS:
    """Peak of the summed RSS of this process and all its children, sampled every 50 ms."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def warm_worker(extxyz_path: str, dump_path: str) -> None:
    """Load, in this worker, every numba kernel an ingest task runs (both readers, the
    descriptors and the domain split), as a long-running cluster has done after its first
    tasks: about 0.4 s per worker process, paid once."""
    from pipeline import readers
    from pipeline.cluster import use_worker_cores
    from quests_core.domains import domain_descriptors, slab_layers

    use_worker_cores()
    for path, fmt, species in ((extxyz_path, "extxyz", None), (dump_path, readers.LAMMPS_DUMP, {1: "Cu"})):
        refs = readers.scan(Path(path), fmt, readers.FrameSelection(0, 1, 1))
        for _, frame in readers.read(Path(path), fmt, refs, species):
            compute_descriptors(frame.positions, frame.cell, frame.pbc)
    atoms = snapshot(6)
    slabs = slab_layers(atoms.positions, atoms.cell.array, atoms.pbc)
    layer = slabs.layer_of(atoms.positions, atoms.cell.array, atoms.pbc)
    domain_descriptors(atoms.positions, layer, atoms.cell.array, atoms.pbc, slabs, 0, 1)


def best_of(fn) -> float:
    return min(timeit.repeat(fn, number=1, repeat=3))


def time_ingest(client, path: Path, workdir: Path, **request) -> tuple[float, int, float]:
    store_path = workdir / "bench.zarr"
    shutil.rmtree(store_path, ignore_errors=True)
    with PeakRSS() as rss:
        started = time.perf_counter()
        store = ingest(IngestRequest(paths=(path,), params=PARAMS, **request), store_path, client)
        seconds = time.perf_counter() - started
    return seconds, store.n_environments, rss.peak / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=63, help="cubic fcc cells per side of the snapshot (63: 1,000,188 atoms)")
    parser.add_argument("--frames", type=int, default=200, help="frames of 256 atoms in the trajectory")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    workdir.mkdir(parents=True, exist_ok=True)

    big = snapshot(args.cells)
    trajectory = [snapshot(4, seed) for seed in range(args.frames)]
    files = {"snapshot.extxyz": workdir / "snapshot.extxyz", "snapshot.lammpstrj": workdir / "snapshot.lammpstrj",
             "trajectory.extxyz": workdir / "trajectory.extxyz"}
    if not files["snapshot.extxyz"].exists():
        write(files["snapshot.extxyz"], big)
        write_lammps_dump(files["snapshot.lammpstrj"], [big])
        write(files["trajectory.extxyz"], trajectory)
    write_lammps_dump(workdir / "small.lammpstrj", trajectory[:1])
    print(f"snapshot: {len(big)} atoms; trajectory: {args.frames} x 256 atoms; files in {workdir}")

    # yardstick: the core kernel in this process, 2 numba threads, JIT excluded, best of 3
    compute_descriptors(big.positions[:500], big.cell.array / args.cells * 2, True)
    numba.set_num_threads(2)
    core_snapshot = len(big) / best_of(lambda: compute_descriptors(big.positions, big.cell.array, big.pbc))
    core_trajectory = 256 * args.frames / best_of(
        lambda: [compute_descriptors(atoms.positions, atoms.cell.array, atoms.pbc) for atoms in trajectory])
    print(f"core compute_descriptors (2 threads, best of 3): snapshot {core_snapshot:,.0f} env/s, trajectory {core_trajectory:,.0f} env/s")

    # readers: ours vs ASE on the same files (scan + read of the one frame), best of 3 each,
    # ours after loading its numba kernels on a small file
    (location,) = lammps.scan_frames(workdir / "small.lammpstrj")
    lammps.read_frame(workdir / "small.lammpstrj", location, {1: "Cu"})
    extxyz.read_frame(files["trajectory.extxyz"], extxyz.scan_frames(files["trajectory.extxyz"])[0])
    ours_lammps = best_of(lambda: lammps.read_frame(files["snapshot.lammpstrj"],
                                                        lammps.scan_frames(files["snapshot.lammpstrj"])[0], {1: "Cu"}))
    ase_lammps = best_of(lambda: read(files["snapshot.lammpstrj"], format="lammps-dump-text"))
    ours_extxyz = best_of(lambda: extxyz.read_frame(files["snapshot.extxyz"], extxyz.scan_frames(files["snapshot.extxyz"])[0]))
    ase_extxyz = best_of(lambda: read(files["snapshot.extxyz"]))
    print(f"LAMMPS dump reader: ours {ours_lammps:.2f} s, ASE {ase_lammps:.2f} s, speed-up {ase_lammps / ours_lammps:.1f}x")
    print(f"extxyz reader:      ours {ours_extxyz:.2f} s, ASE {ase_extxyz:.2f} s, speed-up {ase_extxyz / ours_extxyz:.1f}x")

    rows = []
    for n_workers in (1, 2):
        with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          env=worker_environment(1)) as cluster, Client(cluster) as client:
            client.register_plugin(NumbaThreads(1))
            client.run(warm_worker, str(files["trajectory.extxyz"]), str(workdir / "small.lammpstrj"))
            time_ingest(client, files["trajectory.extxyz"], workdir, frames=_first_frames(4))  # warm-up of the client side
            for name in ("snapshot.extxyz", "snapshot.lammpstrj", "trajectory.extxyz"):
                species = {1: "Cu"} if name.endswith("lammpstrj") else None
                # a trajectory ingest takes about a second: the median of TRAJECTORY_REPEATS runs
                runs = [time_ingest(client, files[name], workdir, species=species)
                        for _ in range(TRAJECTORY_REPEATS if name.startswith("trajectory") else 1)]
                seconds, n_env, peak = sorted(runs)[len(runs) // 2]
                core = core_trajectory if name.startswith("trajectory") else core_snapshot
                rows.append((name, n_workers, seconds, n_env / seconds, n_env / seconds / core, peak))
    print()
    print(f"{'input':<22}{'workers':>8}{'seconds':>9}{'env/s':>11}{'of core':>9}{'peak RSS GiB':>14}")
    for name, n_workers, seconds, rate, fraction, peak in rows:
        print(f"{name:<22}{n_workers:>8}{seconds:>9.2f}{rate:>11,.0f}{fraction:>9.0%}{peak:>14.2f}")
    print()
    for name in ("snapshot.extxyz", "snapshot.lammpstrj", "trajectory.extxyz"):
        one, two = (row[2] for row in rows if row[0] == name)
        print(f"2-worker speed-up, {name}: {one / two:.2f}x")


def _first_frames(n: int):
    from pipeline.readers import FrameSelection

    return FrameSelection(0, n, 1)


if __name__ == "__main__":
    main()
