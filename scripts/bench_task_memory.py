"""Peak memory of one ingest task of a split frame, against the frame's size.

    python scripts/bench_task_memory.py [--cells 40 50 63] [--workdir DIR]

For fcc Cu snapshots of growing size (cells per side; 63 gives 1,000,188 atoms), written as
LAMMPS dumps and ingested into a real store with the default split threshold, it runs one
layering task (piece 0 of 2: it reads the whole frame) and the largest domain task, each in a
fresh process, and reports the memory each adds to that process (its peak RSS during the
call minus its RSS just before, every kernel already loaded as bench_ingest warms a worker) per atom of the frame and per
row of the domain. A domain task's memory should follow the domain's rows, whatever the
frame; a layering task's follows the frame.
"""

import argparse
import multiprocessing
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_ingest import PARAMS, snapshot, warm_worker, write_lammps_dump  # noqa: E402

SPECIES = {1: "Cu"}
LAYERING_PIECES = 2


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak() -> int:
    """Reset this process's peak RSS to its current RSS (Linux: clear_refs 5) and return that:
    memory the imports and kernel loading took and freed must not hide the task's own peak."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def _added_peak(before: int) -> int:
    return _status_bytes("VmHWM") - before


def _layering_task(store_path: str, small_files: tuple[str, str], pipe) -> None:
    from pipeline.ingest import FRAME_TABLES, _frame_tasks, compute_split_frame
    from pipeline.store import SPLIT_FRAME, DescriptorStore, Region

    warm_worker(*small_files)
    store = DescriptorStore.open(store_path)
    piece = Region(0, SPLIT_FRAME, 0, store.n_environments, 0, 1, 0, LAYERING_PIECES)
    task, = _frame_tasks(store.sources, {name: store.array(name) for name in FRAME_TABLES}, piece)
    before = _reset_peak()
    compute_split_frame(piece, [task], PARAMS)
    pipe.send((_added_peak(before), store.n_environments))


def _domain_task(store_path: str, small_files: tuple[str, str], pipe) -> None:
    from pipeline.ingest import FRAME_TABLES, _frame_tasks, _slab_fields, compute_domain
    from pipeline.store import DOMAIN, DescriptorStore
    from quests_core.domains import SlabLayers

    warm_worker(*small_files)
    store = DescriptorStore.open(store_path, mode="r+")
    domains = [region for region in store.regions() if region.kind == DOMAIN]
    region = max(domains, key=lambda region: region.n_rows)
    task, = _frame_tasks(store.sources, {name: store.array(name) for name in FRAME_TABLES}, region)
    split = store.split_frames[region.frame_start]
    before = _reset_peak()
    # rewrites the domain's rows with the same values
    compute_domain(str(store.path), store.token, region, task, PARAMS, SlabLayers(**_slab_fields(split)),
                   split["layer_start"])
    pipe.send((_added_peak(before), region.n_rows, len(domains)))


def in_fresh_process(target, *args) -> tuple:
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(*args, sending))
    process.start()
    result = receiving.recv()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, nargs="+", default=[40, 50, 63], help="fcc cells per side of each snapshot")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_task_memory_"))
    workdir.mkdir(parents=True, exist_ok=True)

    from ase.io import write

    from pipeline.cluster import local_client
    from pipeline.ingest import IngestRequest, ingest

    # small files on which each measuring process loads every kernel a task runs
    small_files = (str(workdir / "small.extxyz"), str(workdir / "small.lammpstrj"))
    write(small_files[0], snapshot(4))
    write_lammps_dump(Path(small_files[1]), [snapshot(4)])

    print(f"{'frame atoms':>12}{'domains':>9}{'layering task':>15}{'per frame atom':>16}"
          f"{'domain task':>13}{'domain rows':>13}{'per row':>9}")
    with local_client(1, cores=1) as client:
        for cells in args.cells:
            dump = workdir / f"snapshot{cells}.lammpstrj"
            if not dump.exists():
                write_lammps_dump(dump, [snapshot(cells)])
            store_path = workdir / f"snapshot{cells}.zarr"
            if not store_path.exists():
                ingest(IngestRequest(paths=(dump,), params=PARAMS, species=SPECIES), store_path, client)
            layering, n_atoms = in_fresh_process(_layering_task, str(store_path), small_files)
            domain, n_rows, n_domains = in_fresh_process(_domain_task, str(store_path), small_files)
            print(f"{n_atoms:>12,}{n_domains:>9}{layering / 2**20:>11.0f} MiB{layering / n_atoms:>14.0f} B"
                  f"{domain / 2**20:>9.0f} MiB{n_rows:>13,}{domain / n_rows:>7.0f} B")


if __name__ == "__main__":
    main()
