"""Peak memory of one ingest task of a split frame, against the frame's size.

    python scripts/bench_task_memory.py [--cells 40 50 63] [--workdir DIR]

For fcc Cu snapshots of growing size (cells per side; 63 gives 1,000,188 atoms), written as
LAMMPS dumps and ingested into a real store with the default split threshold, it runs, each
in a fresh process, one task of each kind a split frame has (pipeline.split_frames): the
read of piece 0 with its sorting into groups, the sort of the largest group of layers, and
the largest domain's descriptors and rows, written. It reports the memory each adds to that process (its peak
RSS during the call minus its RSS just before, every kernel already loaded as bench_ingest
warms a worker) per atom of its piece, group or domain. Each should follow its own size,
whatever the frame's; the inputs a task is handed (a group's share of every piece, a domain's
sorted groups) are made before the measurement, as a worker holds them before the task runs.
"""

import argparse
import ctypes
import multiprocessing
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_ingest import PARAMS, snapshot, warm_worker, write_lammps_dump  # noqa: E402

SPECIES = {1: "Cu"}


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak() -> int:
    """Reset this process's peak RSS to its current RSS (Linux: clear_refs 5) and return that:
    memory the imports and kernel loading took and freed must not hide the task's own peak.
    Freed heap is first handed back (malloc_trim), or a task reusing what building its inputs
    freed would show no growth at all (a sort task measured 0 MiB)."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def _added_peak(before: int) -> int:
    return _status_bytes("VmHWM") - before


def _split_frame(store_path: str):
    """The store, its split frame's task and groups, and the frame's layout (from every piece)."""
    from pipeline import split_frames
    from pipeline.ingest import FRAME_TABLES, _frame_tasks
    from pipeline.store import SPLIT_FRAME, DescriptorStore

    store = DescriptorStore.open(store_path, mode="r+")
    groups = [region for region in store.regions() if region.kind == SPLIT_FRAME]
    task, = _frame_tasks(store.sources, {name: store.array(name) for name in FRAME_TABLES}, groups[0])
    n_pieces = groups[0].group[1]
    layout = split_frames.lay_out(task, PARAMS.cutoff, *(
        split_frames.summary(split_frames.read_piece(task, p, n_pieces)) for p in range(n_pieces)))
    return store, task, groups, layout


def _piece_task(store_path: str, small_files: tuple[str, str], pipe) -> None:
    from pipeline import split_frames

    warm_worker(*small_files)
    store, task, groups, layout = _split_frame(store_path)
    before = _reset_peak()
    piece = split_frames.read_piece(task, 0, len(groups))
    split_frames.summary(piece)
    split_frames.bucket(task, piece, 0, layout, len(groups))
    pipe.send((_added_peak(before), len(piece[0]), store.n_environments, len(groups)))


def _layer_starts(task, layout, n_groups: int) -> np.ndarray:
    from pipeline import split_frames

    counts = [split_frames.bucket(task, split_frames.read_piece(task, p, n_groups), p, layout, n_groups).layer_counts
              for p in range(n_groups)]
    return split_frames.layer_starts(*counts)


def _group_inputs(task, layout, n_groups: int, groups: list[int]) -> tuple[dict[int, list[dict]], np.ndarray | None]:
    """Each given group's share of every piece, and the frame's id bitmap, as a worker holds them
    (each piece read once)."""
    from pipeline import split_frames

    parts, bitmaps = {group: [] for group in groups}, []
    for p in range(n_groups):
        buckets = split_frames.bucket(task, split_frames.read_piece(task, p, n_groups), p, layout, n_groups)
        for group in groups:
            parts[group].append(split_frames.group_of(buckets, group))
        bitmaps.append(buckets.id_bitmap)
        del buckets
    return parts, split_frames.merge_id_bitmaps(task, layout, *bitmaps)


def _group_task(store_path: str, small_files: tuple[str, str], pipe) -> None:
    from pipeline import split_frames

    warm_worker(*small_files)
    store, task, groups, layout = _split_frame(store_path)
    n_groups = len(groups)
    starts = _layer_starts(task, layout, n_groups)
    sizes = [starts[last] - starts[first] for first, last in
             (split_frames.group_layers(layout.slabs.n_layers, g, n_groups) for g in range(n_groups))]
    group = int(np.argmax(sizes))
    parts, bitmap = _group_inputs(task, layout, n_groups, [group])
    before = _reset_peak()
    split_frames.sort_group(layout, starts, bitmap, group, n_groups, *parts[group])
    pipe.send((_added_peak(before), int(sizes[group])))


def _domain_task(store_path: str, small_files: tuple[str, str], pipe) -> None:
    from pipeline import split_frames
    from pipeline.ingest import _domain_groups, _slab_fields, compute_domain
    from pipeline.store import DOMAIN
    from quests_core.domains import SlabLayers

    warm_worker(*small_files)
    store, task, groups, layout = _split_frame(store_path)
    n_groups = len(groups)
    domains = [region for region in store.regions() if region.kind == DOMAIN]
    region = max(domains, key=lambda region: region.n_rows)
    split = store.split_frames[region.frame_start]
    slabs = SlabLayers(**_slab_fields(split))
    starts = np.asarray(split["layer_start"])
    parts, bitmap = _group_inputs(task, layout, n_groups, _domain_groups(slabs, region, n_groups))
    sorted_groups = [split_frames.sort_group(layout, starts, bitmap, group, n_groups, *shares)
                     for group, shares in parts.items()]
    del parts
    before = _reset_peak()
    # rewrites the domain's rows with the same values
    compute_domain(str(store.path), store.token, region, task, PARAMS, slabs, split["layer_start"], layout.cell,
                   layout.pbc, *sorted_groups)
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

    print(f"{'frame atoms':>12}{'groups':>8}{'piece task':>12}{'per atom':>10}{'group task':>12}{'per atom':>10}"
          f"{'domain task':>13}{'per row':>9}{'largest piece / group / domain':>32}")
    with local_client(1, cores=1) as client:
        for cells in args.cells:
            dump = workdir / f"snapshot{cells}.lammpstrj"
            if not dump.exists():
                write_lammps_dump(dump, [snapshot(cells)])
            store_path = workdir / f"snapshot{cells}.zarr"
            if not store_path.exists():
                ingest(IngestRequest(paths=(dump,), params=PARAMS, species=SPECIES), store_path, client)
            piece, piece_atoms, n_atoms, n_groups = in_fresh_process(_piece_task, str(store_path), small_files)
            group, group_atoms = in_fresh_process(_group_task, str(store_path), small_files)
            domain, n_rows, n_domains = in_fresh_process(_domain_task, str(store_path), small_files)
            print(f"{n_atoms:>12,}{n_groups:>8}{piece / 2**20:>8.0f} MiB{piece / piece_atoms:>8.0f} B"
                  f"{group / 2**20:>8.0f} MiB{group / group_atoms:>8.0f} B{domain / 2**20:>9.0f} MiB"
                  f"{domain / n_rows:>7.0f} B{piece_atoms:>12,} / {group_atoms:,} / {n_rows:,}")


if __name__ == "__main__":
    main()
