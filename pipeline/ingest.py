"""Ingest: structure files -> zarr descriptor store, descriptors computed on Dask workers.

The client plans (scans files, appends frames and regions to the store), submits one task
per region, and records each finished region; tasks read their frames, compute descriptors
with quests_core and write their own rows. A region is marked done only after its rows are
written, so a run killed at any point resumes by computing the regions not marked done.
"""

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from distributed import Client, Lock, as_completed

from quests_core import compute_descriptors

from . import readers
from .errors import InputError
from .progress import Progress
from .store import DescriptorStore, Region, StoreParams, source_record

log = logging.getLogger("quests_pipeline")

DEFAULT_CHUNK_ROWS = 16384
DEFAULT_REGION_ROWS = 65536  # environments per task for frames of ordinary size


@dataclass(frozen=True)
class IngestRequest:
    paths: tuple[Path, ...]
    params: StoreParams
    fmt: str | None = None
    frames: readers.FrameSelection = field(default_factory=readers.FrameSelection)
    species: dict[int, str] | None = None  # LAMMPS type -> chemical symbol
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    region_rows: int = DEFAULT_REGION_ROWS


@dataclass(frozen=True)
class FrameTask:
    frame: int  # frame id in the store
    path: str
    fmt: str
    species: dict | None
    ref: readers.FrameRef
    start: int  # first environment row


def ingest(request: IngestRequest, store_path: Path, client: Client) -> DescriptorStore:
    store = _open_or_create(store_path, request)
    _plan(store, request)
    pending = store.pending_regions()
    if not pending:
        log.info("%s: every region is already written; nothing to compute", store.path)
    else:
        _run(store, pending, client)
    store.mark_complete()
    log.info("%s: complete, %d environments in %d frames", store.path, store.n_environments, store.n_frames)
    return store


def _open_or_create(path: Path, request: IngestRequest) -> DescriptorStore:
    if not path.exists():
        return DescriptorStore.create(path, request.params, request.chunk_rows)
    store = DescriptorStore.open(path, mode="r+", allow_incomplete=True)
    if store.params != request.params:
        raise InputError(f"store was made with {store.params.to_attrs()}, this run asks for "
                         f"{request.params.to_attrs()}; use another store path", path=path)
    return store


def _plan(store: DescriptorStore, request: IngestRequest) -> None:
    known = {(s["sha256"], s["frames"], s["format"], tuple(sorted(s["species"].items()))) for s in store.sources}
    for path in request.paths:
        path = Path(path)
        fmt = readers.resolve_format(path, request.fmt)
        record = source_record(path, fmt, str(request.frames), request.species)
        key = (record["sha256"], record["frames"], record["format"], tuple(sorted(record["species"].items())))
        if key in known:
            log.info("%s: already in %s with the same frames; not added again", path, store.path)
            continue
        refs = readers.scan(path, fmt, request.frames)
        for ref in refs:
            if ref.n_atoms == 0:
                raise InputError("frame has no atoms", path=path, frame=ref.index)
        source = store.add_source(record)
        first_frame, _ = store.add_frames(source, [r.index for r in refs], [r.n_atoms for r in refs],
                                          [r.offset for r in refs])
        starts = store.array("frame_start")[first_frame:]
        store.add_regions(_batch_regions(first_frame, starts, [r.n_atoms for r in refs], request.region_rows))
        known.add(key)
        log.info("%s: %d frames, %d environments planned", path, len(refs), sum(r.n_atoms for r in refs))


def _batch_regions(first_frame: int, starts, n_atoms, region_rows: int) -> list[tuple[int, int, int, int]]:
    """Consecutive frames grouped into regions of about region_rows environments."""
    regions = []
    batch_first = 0
    rows = 0
    for i, count in enumerate(n_atoms):
        rows += count
        if rows >= region_rows or i == len(n_atoms) - 1:
            regions.append((int(starts[batch_first]), int(starts[i] + count), first_frame + batch_first, first_frame + i + 1))
            batch_first, rows = i + 1, 0
    return regions


def _frame_tasks(store: DescriptorStore, region: Region) -> list[FrameTask]:
    sources = store.sources
    frames = range(region.frame_start, region.frame_stop)
    tables = {name: store.group[name][region.frame_start:region.frame_stop]
              for name in ("frame_source", "frame_index", "frame_n_atoms", "frame_offset", "frame_start")}
    tasks = []
    for i, frame in enumerate(frames):
        source = sources[int(tables["frame_source"][i])]
        species = {int(key): value for key, value in source["species"].items()} or None
        ref = readers.FrameRef(int(tables["frame_index"][i]), int(tables["frame_n_atoms"][i]), int(tables["frame_offset"][i]))
        tasks.append(FrameTask(frame, source["path"], source["format"], species, ref, int(tables["frame_start"][i])))
    return tasks


def _run(store: DescriptorStore, regions: list[Region], client: Client) -> None:
    params = store.params
    lock = functools.partial(_chunk_lock, f"quests-store:{store.path.resolve()}")
    futures = {
        client.submit(compute_region, str(store.path), region, _frame_tasks(store, region), params, lock,
                      key=f"ingest-{region.index}-{store.path.name}", pure=False): region
        for region in regions
    }
    progress = Progress("descriptors", sum(r.stop - r.start for r in regions), "environments")
    try:
        for future in as_completed(futures):
            region = futures[future]
            frames, cells, pbcs = future.result()
            store.write_frame_info(frames, cells, pbcs)
            store.mark_done(region.index)
            progress.advance(region.stop - region.start)
    except BaseException:
        for future in futures:
            future.cancel()
        raise


def _chunk_lock(prefix: str, chunk: int) -> Lock:
    return Lock(f"{prefix}:{chunk}")


def compute_region(store_path: str, region: Region, tasks: list[FrameTask], params: StoreParams, chunk_lock):
    """Worker side: descriptors of a region's frames, written to its rows of the store."""
    store = DescriptorStore.open(store_path, mode="r+", allow_incomplete=True)
    columns = {name: [] for name in ("descriptors", "env_frame", "env_atom", "env_number", "env_position")}
    cells, pbcs = [], []
    by_source: dict[tuple, list[FrameTask]] = {}
    for task in tasks:
        by_source.setdefault((task.path, task.fmt), []).append(task)
    for (path, fmt), group in by_source.items():
        lookup = {task.ref.index: task for task in group}
        for ref, frame in readers.read(Path(path), fmt, [task.ref for task in group], group[0].species):
            task = lookup[ref.index]
            x = _frame_descriptors(frame, params, path, ref)
            columns["descriptors"].append(x.astype(params.dtype))
            columns["env_frame"].append(np.full(len(frame), task.frame, dtype=np.int64))
            columns["env_atom"].append(np.arange(len(frame), dtype=np.int64))
            columns["env_number"].append(frame.numbers)
            columns["env_position"].append(frame.positions)
            cells.append(frame.cell)
            pbcs.append(frame.pbc)
    stacked = {name: np.concatenate(values) for name, values in columns.items()}
    if len(stacked["descriptors"]) != region.stop - region.start:
        raise InputError(f"region {region.index} read {len(stacked['descriptors'])} environments, planned "
                         f"{region.stop - region.start}: did an input file change since the ingest started?")
    store.write_rows(region.start, stacked, chunk_lock)
    return [task.frame for task in tasks], np.array(cells), np.array(pbcs)


def _frame_descriptors(frame, params: StoreParams, path, ref) -> np.ndarray:
    if len(frame) == 0:
        raise InputError("frame has no atoms", path=path, frame=ref.index)
    if len(frame) != ref.n_atoms:
        raise InputError(f"frame has {len(frame)} atoms, {ref.n_atoms} when scanned: did the file change?",
                         path=path, frame=ref.index)
    try:
        return compute_descriptors(frame.positions, frame.cell, frame.pbc, k=params.k, cutoff=params.cutoff,
                                   species=frame.numbers if params.species else None,
                                   species_list=params.species)
    except ValueError as error:
        raise InputError(str(error), path=path, frame=ref.index) from None
