"""Ingest: structure files -> zarr descriptor store, descriptors computed on Dask workers.

The client plans (scans files, appends frames and regions to the store), submits one task
per region, and records each finished region; tasks read their frames, compute descriptors
with quests_core and write their own rows. A region is marked done only after its rows are
written, so a run killed at any point resumes by computing the regions not marked done.
"""

import logging
import math
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from distributed import Client, Future, as_completed

from quests_core import compute_descriptors
from quests_core.validation import as_cell_and_pbc, as_positions
from quests_core.domains import SlabLayers, domain_descriptors, halo_layers

from . import readers, split_frames
from .cluster import release, use_worker_cores, worker_count
from .errors import InputError
from .progress import Progress
from .store import DOMAIN, FRAMES, SPLIT_FRAME, DescriptorStore, Region, StoreParams, source_record

log = logging.getLogger("quests_pipeline")

DEFAULT_CHUNK_ROWS = 16384  # at most, when not given: a new store's chunks are one task's rows
DEFAULT_REGION_ROWS = 65536  # environments per task for frames of ordinary size
DEFAULT_SPLIT_ATOMS = 200_000  # frames above this are split into slab domains, about this size each
MIN_REGION_ROWS = 1024
TASKS_PER_WORKER = 2
RECORD_SECONDS = 2.0  # finished regions are recorded at most this often: a killed run redoes at most these


@dataclass(frozen=True)
class IngestRequest:
    paths: tuple[Path, ...]
    params: StoreParams
    fmt: str | None = None
    frames: readers.FrameSelection = field(default_factory=readers.FrameSelection)
    species: dict[int, str] | None = None  # LAMMPS type -> chemical symbol
    chunk_rows: int | None = None  # None: the rows of the first task, at most DEFAULT_CHUNK_ROWS
    region_rows: int = DEFAULT_REGION_ROWS
    split_atoms: int = DEFAULT_SPLIT_ATOMS
    skip_bad: bool = False  # leave out (and record) frames that cannot be read or are invalid


@dataclass(frozen=True)
class FrameTask:
    frame: int  # frame id in the store
    path: str
    fmt: str
    species: dict | None
    ref: readers.FrameRef
    start: int  # first environment row


def ingest(request: IngestRequest, store_path: Path, client: Client) -> DescriptorStore:
    n_workers = worker_count(client)
    store_path = Path(store_path)
    store = _open_existing(store_path, request)
    if store is not None:
        store.begin_plan()
    plans = _scan_sources(store, store_path, request, n_workers)
    run = uuid.uuid4().hex[:12]
    store_id = store.token[0] if store is not None else uuid.uuid4().hex
    planned = (store_id, _planned_environments(store, plans))  # the store's token once the plan is written
    pending = _frames_of_pending_regions(store) + [item for plan in plans for item in plan.frame_tasks()]
    # regions are computed (and split frames read and sorted into layers) while their plan is
    # written (a new store's plan was written 0.03-0.07 s into traced trajectory ingests, once
    # 0.13 s, against 0.1-0.3 s for a task over whole frames); a compute task that finds the
    # plan written writes its rows itself, and its write task only passes on the result
    computing = {region: client.submit(compute_region, region, tasks, request.params, str(store_path), planned,
                                       key=_key("compute", store_path, region, run), pure=False)
                 for region, tasks in pending if region.kind == FRAMES}
    layering = [_submit_layering(client, store_path, run, task, n_groups, request.params.cutoff)
                for task, n_groups in _split_frames(store, pending).values()]
    try:
        store = _write_plan(store, store_path, request, plans, planned)
        if store.token != planned:
            raise RuntimeError(f"{store_path}: planned token {planned}, written {store.token}")
    except BaseException:
        release([*computing.values(), *(future for layers in layering for future in layers.futures())])
        raise
    if not pending and not store.pending_regions():
        log.info("%s: every region is already written; nothing to compute", store.path)
    token = store.token
    writes = {}
    for region in list(computing):
        # priority: a worker writes a computed region before it computes the next, so finished
        # rows never pile up in its memory; popped, so its rows are freed once written
        writes[client.submit(write_region, str(store.path), token, computing.pop(region), priority=1,
                             key=_key("write", store_path, region, run), pure=False)] = region
    try:
        # a split frame's domains start once its layers are counted: the client plans them
        # while its groups are sorted, and each domain writes its own rows (written by group
        # tasks first and read back by the domains, a 1M-atom frame's layering took 0.5-0.8 s
        # of a 4.2 s ingest on 2 workers, against 0.45-0.7 s on 1)
        while layering:
            writes.update(_submit_split_frame(store, layering.pop(0), request, n_workers, token, client, run))
    except BaseException:
        release([*writes, *(future for layers in layering for future in layers.futures())])
        raise
    _gather(store, writes)
    store.mark_complete()
    log.info("%s: complete, %d environments in %d frames", store.path, store.n_environments, store.n_frames)
    return store


def _submit_split_frame(store: DescriptorStore, layers: "_Layering", request: IngestRequest, n_workers: int,
                        token: tuple, client: Client, run: str) -> dict:
    """Plan the domains of a split frame from its layout and layer counts (once), mark its groups
    done, and submit its domains not yet written: {future: region}. A frame too thin to split is
    computed whole as its first group."""
    layout, starts = client.gather([layers.layout, layers.starts])
    frame = layers.task.frame
    done = store.array("region_done")
    groups = [region for region in store.regions() if region.kind == SPLIT_FRAME and region.frame_start == frame]
    if layout.slabs is None:
        first, *others = groups
        store.mark_done([region.index for region in others if not done[region.index]])
        if done[first.index]:
            return {}
        return {client.submit(compute_region, first, [layers.task], request.params, str(store.path), token,
                              key=_key("compute", store.path, first, run), pure=False): first}
    if frame not in store.split_frames:
        store.write_frame_info(frame, layout.cell[None], layout.pbc[None])
        store.record_split_frame(frame, _split_record(layout.slabs, starts))
    _plan_domains(store, request.split_atoms, n_workers)
    store.mark_done([region.index for region in groups if not done[region.index]])
    split = store.split_frames[frame]
    slabs = SlabLayers(**_slab_fields(split))
    domains = [region for region in store.pending_regions() if region.kind == DOMAIN and region.frame_start == frame]
    # Tasks that take other tasks' results are placed by the scheduler as soon as those are
    # ready, each on the worker that has most of its inputs, and equal priorities run in any
    # order (traced: three whole domains on one worker, the other idle for 1.4 s at the end).
    # So each worker is given its share in turn, to run in the planned order (whole domains
    # first, halves last) as their inputs arrive; a worker left idle may take a waiting one.
    # Handing the domains out two per worker and then one as each finishes measured the same
    # (4.15 against 4.09 s, 12 alternating rounds on the 1M-atom snapshots).
    workers = sorted(client.nthreads())
    futures = {}
    for number, region in enumerate(domains):
        needed = _domain_groups(slabs, region, layers.n_groups)
        futures[client.submit(compute_domain, str(store.path), token, region, layers.task, request.params, slabs,
                              split["layer_start"], layout.cell, layout.pbc, *(layers.sorted[g] for g in needed),
                              workers=workers[number % len(workers)] if workers else None, allow_other_workers=True,
                              priority=-number, key=_key("domain", store.path, region, run), pure=False)] = region
    return futures


def _split_record(slabs: SlabLayers, starts: np.ndarray) -> dict:
    """What the store records of a split frame: its slab layers and each layer's first row."""
    return {"axis": slabs.axis, "periodic": slabs.periodic, "n_layers": slabs.n_layers, "origin": slabs.origin,
            "thickness": float(slabs.thickness), "layer_start": starts.tolist()}


def _domain_layers(slabs: SlabLayers, region: Region) -> list[tuple[int, int]]:
    """The runs of layers [a, b) a domain reads: its own, then each halo layer once (one layer
    where both sides wrap to it)."""
    first, last = region.layer_first, region.layer_last
    halo = sorted({layer for layer, _ in halo_layers(slabs, first, last)})
    return [(first, last)] + [(layer, layer + 1) for layer in halo]


def _domain_groups(slabs: SlabLayers, region: Region, n_groups: int) -> list[int]:
    """The sorted groups a domain task takes: those holding the layers it reads."""
    layers = [layer for a, b in _domain_layers(slabs, region) for layer in range(a, b)]
    return split_frames.groups_of_layers(layers, slabs.n_layers, n_groups)


def _key(stage: str, store_path: Path, region: Region, run: str) -> str:
    """A task key unique to this run: a key the scheduler still holds from an earlier ingest
    (a store of the same name) would hand this run that task's result, or leave it waiting."""
    return f"{stage}-{store_path.name}-{region.index}-{run}"


def _open_existing(path: Path, request: IngestRequest) -> DescriptorStore | None:
    if not path.exists():
        return None
    store = DescriptorStore.open(path, mode="r+", allow_incomplete=True)
    if store.params != request.params:
        raise InputError(f"store was made with {store.params.to_attrs()}, this run asks for "
                         f"{request.params.to_attrs()}; use another store path", path=path)
    return store


@dataclass(frozen=True)
class _SourcePlan:
    record: dict
    species: dict[int, str] | None
    refs: list[readers.FrameRef]
    skipped: list[dict]
    first_frame: int
    starts: np.ndarray  # first environment row of each frame
    regions: list[Region]  # numbered as the store will number them

    def frame_tasks(self) -> list[tuple[Region, list[FrameTask]]]:
        """Each region with the frames it reads."""
        return [(region, [FrameTask(frame, self.record["path"], self.record["format"], self.species,
                                    self.refs[frame - self.first_frame], int(self.starts[frame - self.first_frame]))
                          for frame in range(region.frame_start, region.frame_stop)])
                for region in self.regions]


def _scan_sources(store: DescriptorStore | None, store_path: Path, request: IngestRequest,
                  n_workers: int) -> list[_SourcePlan]:
    """Scan the sources not yet in the store and plan their frames and regions (nothing is
    written here)."""
    known = {_source_key(source) for source in store.sources} if store else set()
    first_frame, first_row, first_region = (store.n_frames, store.n_environments, store.n_regions) if store else (0, 0, 0)
    plans = []
    for path in request.paths:
        path = Path(path)
        fmt = readers.resolve_format(path, request.fmt)
        if fmt == readers.LAMMPS_DUMP and not request.species:
            raise InputError("a LAMMPS dump names atom types, not elements: give each type its element with "
                             "--species 1=Cu,2=Ni", path=path)
        record = source_record(path, fmt, str(request.frames), request.species)
        if _source_key(record) in known:
            log.info("%s: already in %s with the same frames; not added again", path, store_path)
            continue
        refs = readers.scan(path, fmt, request.frames)
        skipped = []
        if request.skip_bad:
            refs, skipped = _drop_bad_frames(path, fmt, refs, request.species)
            for entry in skipped:
                log.warning("skipped %s, frame %d: %s", path, entry["frame"], entry["reason"])
            if not refs:
                raise InputError("every selected frame is bad", path=path)
        for ref in refs:
            if ref.n_atoms == 0:
                raise InputError("frame has no atoms", path=path, frame=ref.index)
        n_atoms = [ref.n_atoms for ref in refs]
        starts = first_row + np.concatenate([[0], np.cumsum(n_atoms)[:-1]]).astype(np.int64)
        # at least TASKS_PER_WORKER tasks per worker, so every worker has work and the last is short
        region_rows = min(request.region_rows, max(MIN_REGION_ROWS, math.ceil(sum(n_atoms) / (TASKS_PER_WORKER * n_workers))))
        regions = [replace(region, index=first_region + i) for i, region in enumerate(
            _batch_regions(first_frame, starts, n_atoms, region_rows,
                           # multicomponent descriptors are not cut into domains: such frames are computed whole
                           math.inf if request.params.species else request.split_atoms, n_workers))]
        plans.append(_SourcePlan(record, request.species or None, refs, skipped, first_frame, starts, regions))
        known.add(_source_key(record))
        first_frame, first_row, first_region = first_frame + len(refs), first_row + sum(n_atoms), first_region + len(regions)
    return plans


def _planned_environments(store: DescriptorStore | None, plans: list[_SourcePlan]) -> int:
    """The store's environments once the plans are written."""
    if not plans:
        return store.n_environments
    return int(plans[-1].starts[-1]) + plans[-1].refs[-1].n_atoms


def _write_plan(store: DescriptorStore | None, store_path: Path, request: IngestRequest,
                plans: list[_SourcePlan], planned: tuple) -> DescriptorStore:
    """Write the plans into the store (created here when there is none yet, with the planned
    token: its store_id and size), one source at a time, each committed with one attribute write."""
    if store is None:
        # chunks of one task's rows: tasks over frames of equal size then write whole chunks,
        # with no chunk shared with a neighbouring task (shared rows go through the client)
        first = plans[0].regions[0]
        last = plans[-1]
        store = DescriptorStore.create(store_path, request.params,
                                       request.chunk_rows or min(DEFAULT_CHUNK_ROWS, first.stop - first.start), planned[0],
                                       reserve={"n_environments": planned[1],
                                                "n_frames": last.first_frame + len(last.refs),
                                                "n_regions": last.regions[-1].index + 1})
    for plan in plans:
        if plan.skipped:
            store.record_skipped(plan.skipped)
        refs = plan.refs
        store.add_frames(len(store.sources), [r.index for r in refs], [r.n_atoms for r in refs], [r.offset for r in refs],
                         [r.size for r in refs])
        store.add_regions(plan.regions)
        store.commit_plan([plan.record])
        log.info("%s: %d frames, %d environments planned", plan.record["path"], len(refs), sum(r.n_atoms for r in refs))
    return store


def _frames_of_pending_regions(store: DescriptorStore | None) -> list[tuple[Region, list[FrameTask]]]:
    """Each planned, unwritten region of a store (other than domains) with the frames it reads."""
    if store is None:
        return []
    sources = store.sources
    tables = {name: store.array(name) for name in FRAME_TABLES}
    return [(region, _frame_tasks(sources, tables, region)) for region in store.pending_regions() if region.kind != DOMAIN]


def _source_key(record: dict) -> tuple:
    return record["sha256"], record["frames"], record["format"], tuple(sorted(record["species"].items()))


def _drop_bad_frames(path: Path, fmt: str, refs: list[readers.FrameRef], species) -> tuple[list, list[dict]]:
    """Read every selected frame once and keep the valid ones; the others, with reasons."""
    good, skipped = [], []
    remaining = list(refs)
    while remaining:
        try:
            for ref, frame in readers.read(path, fmt, remaining, species):
                remaining = remaining[1:]
                try:
                    _check_frame(frame, FrameTask(-1, str(path), fmt, species, ref, -1))
                    as_positions(frame.positions)
                    as_cell_and_pbc(frame.cell, frame.pbc)
                    good.append(ref)
                except (InputError, ValueError) as error:
                    skipped.append({"path": str(path.resolve()), "frame": ref.index, "reason": _reason(error)})
        except InputError as error:
            # the reader failed on the next frame; a file read as a stream ends there
            failed, remaining = remaining[0], remaining[1:]
            skipped.append({"path": str(path.resolve()), "frame": failed.index, "reason": _reason(error)})
            if fmt != readers.LAMMPS_DUMP:
                skipped += [{"path": str(path.resolve()), "frame": ref.index, "reason": "after an unreadable frame"} for ref in remaining]
                remaining = []
    return good, skipped


def _reason(error: Exception) -> str:
    return str(error).split("frame ", 1)[-1].split(": ", 1)[-1] if isinstance(error, InputError) else str(error)


def _batch_regions(first_frame: int, starts, n_atoms, region_rows: int, split_atoms: int,
                   n_workers: int) -> list[Region]:
    """Consecutive frames grouped into regions of about region_rows environments; a frame
    above split_atoms is read in pieces and stored in groups of its layers (pipeline.split_frames),
    one region per group: about split_atoms atoms each, their number a multiple of the workers."""
    regions = []
    batch = []

    def close_batch():
        if batch:
            regions.append(Region(-1, FRAMES, int(starts[batch[0]]), int(starts[batch[-1]] + n_atoms[batch[-1]]),
                                  first_frame + batch[0], first_frame + batch[-1] + 1))
            batch.clear()

    for i, count in enumerate(n_atoms):
        if count > split_atoms:
            close_batch()
            n_groups = _multiple_of_workers(count, split_atoms, n_workers)
            regions += [Region(-1, SPLIT_FRAME, int(starts[i]), int(starts[i] + count), first_frame + i, first_frame + i + 1,
                               group, n_groups) for group in range(n_groups)]
            continue
        batch.append(i)
        if sum(n_atoms[j] for j in batch) >= region_rows:
            close_batch()
    close_batch()
    return regions


def _plan_domains(store: DescriptorStore, split_atoms: int, n_workers: int) -> None:
    """Domain regions for every split frame that has none yet (also after a resume), sized
    by _domain_shares, cut at chunk boundaries where that leaves every domain a halo, else
    at layer boundaries."""
    planned = {region.frame_start for region in store.regions() if region.kind == DOMAIN}
    starts = store.array("frame_start")
    new = []
    for frame, info in sorted(store.split_frames.items()):
        if frame in planned:
            continue
        layer_start = np.asarray(info["layer_start"], dtype=np.int64) + starts[frame]
        n_atoms = int(layer_start[-1] - layer_start[0])
        cuts = np.cumsum(_domain_shares(n_atoms, split_atoms, n_workers))[:-1]
        new += [Region(-1, DOMAIN, start, stop, frame, frame + 1, first, last) for start, stop, first, last in
                _domains_at_chunks(layer_start, cuts, store.chunk_rows) or _domains_at_layers(layer_start, cuts)]
    if new:
        store.add_regions(new)
        store.commit_plan()


def _domain_shares(n_atoms: int, split_atoms: int, n_workers: int) -> np.ndarray:
    """Each domain's share of a split frame, in the order the domains are submitted (and run):
    parts of at most split_atoms atoms, their number a multiple of the workers, the last of
    them (one per worker) each cut in two. Equal domains take 1.1-1.6 s each here, and the
    workers finished their last ones up to 0.6 s apart; with halves last, the worker that
    finishes first takes another half instead of waiting."""
    n_parts = _multiple_of_workers(n_atoms, split_atoms, n_workers)
    if n_workers == 1:
        return np.full(n_parts, 1 / n_parts)
    sizes = np.array([1.0] * (n_parts - n_workers) + [0.5] * (2 * n_workers))
    return sizes / sizes.sum()


def _multiple_of_workers(n_atoms: int, split_atoms: int, n_workers: int) -> int:
    """Parts of at most split_atoms atoms, their number rounded up to a multiple of the workers."""
    return math.ceil(math.ceil(n_atoms / split_atoms) / n_workers) * n_workers


def _domains_at_chunks(layer_start, cuts, chunk_rows: int) -> list[tuple[int, int, int, int]]:
    """(first row, stop row, first layer, last layer) of runs of a split frame's rows
    (layer_start: each layer's first row, then the frame's end) cut at the chunk boundaries
    nearest to the given fractions of its rows (cuts, rising, between 0 and 1), so that no two
    domains write one chunk; each domain's layers are those its rows touch. Empty where a
    domain would touch every layer (it would have no halo)."""
    n_layers = len(layer_start) - 1
    start, stop = int(layer_start[0]), int(layer_start[-1])
    rows = start + (stop - start) * np.asarray(cuts)
    at_chunks = np.unique(np.round(rows / chunk_rows).astype(np.int64) * chunk_rows)
    edges = [start, *(int(cut) for cut in at_chunks if start < cut < stop), stop]
    domains = []
    for first_row, stop_row in zip(edges[:-1], edges[1:]):
        first = int(np.searchsorted(layer_start, first_row, side="right")) - 1
        last = int(np.searchsorted(layer_start, stop_row - 1, side="right"))
        if last - first >= n_layers:
            return []
        domains.append((first_row, stop_row, first, last))
    return domains


def _domains_at_layers(layer_start, cuts) -> list[tuple[int, int, int, int]]:
    """As _domains_at_chunks, cut at layer boundaries instead: runs of whole layers (at least
    2, at most one per layer), cut at the boundaries nearest to the given fractions of the
    atoms; equal shares where there are more domains than layers."""
    n_layers = len(layer_start) - 1
    n_domains = min(max(len(cuts) + 1, 2), n_layers)
    fractions = list(cuts) if n_domains == len(cuts) + 1 else list(np.arange(1, n_domains) / n_domains)
    edges = layer_start - layer_start[0]
    layers = [0]
    for number, fraction in enumerate(fractions, start=1):
        nearest = int(np.argmin(np.abs(edges - edges[-1] * fraction)))
        layers.append(min(max(nearest, layers[-1] + 1), n_layers - (n_domains - number)))
    layers.append(n_layers)
    return [(int(layer_start[first]), int(layer_start[last]), first, last) for first, last in zip(layers[:-1], layers[1:])]


FRAME_TABLES = ("frame_source", "frame_index", "frame_n_atoms", "frame_offset", "frame_size", "frame_start")


def _frame_tasks(sources: list[dict], tables: dict[str, np.ndarray], region: Region) -> list[FrameTask]:
    """The frames of a region, from the store's sources and frame tables (read once per run)."""
    tasks = []
    for frame in range(region.frame_start, region.frame_stop):
        source = sources[int(tables["frame_source"][frame])]
        species = {int(key): value for key, value in source["species"].items()} or None
        ref = readers.FrameRef(int(tables["frame_index"][frame]), int(tables["frame_n_atoms"][frame]),
                               int(tables["frame_offset"][frame]), int(tables["frame_size"][frame]))
        tasks.append(FrameTask(frame, source["path"], source["format"], species, ref, int(tables["frame_start"][frame])))
    return tasks


def _gather(store: DescriptorStore, futures: dict) -> None:
    """Wait for the write tasks of regions, recording them as they finish."""
    if not futures:
        return
    regions = list(futures.values())
    progress = Progress("descriptors", sum(r.n_rows for r in regions), "environments")
    finished = []
    recorded = time.monotonic()
    try:
        # plain as_completed and result(): with_results=True left ingests waiting forever
        # (tests/test_ingest.py, back-to-back ingests on a 1-worker cluster after the module's
        # other tests)
        for future in as_completed(futures):
            region = futures[future]
            finished.append((region, future.result()))
            progress.advance(region.n_rows)
            if time.monotonic() - recorded >= RECORD_SECONDS:
                _record(store, finished)
                finished, recorded = [], time.monotonic()
        _record(store, finished)
    except BaseException:
        release(futures)
        raise


def _record(store: DescriptorStore, finished: list[tuple[Region, object]]) -> None:
    """Record finished regions: the rows they share a chunk with a neighbour (written here,
    by the one client) and their frames' cells and pbc (one write per run of adjacent frames),
    then, in one write, that they are done."""
    if not finished:
        return
    runs = []  # [first frame, cells, pbcs] of adjacent frames
    shared = []  # row pieces that share a chunk with a neighbouring region
    for region, result in sorted(finished, key=lambda item: item[0].frame_start):
        if region.kind == DOMAIN:
            shared += result
            continue
        cells, pbcs, pieces = result
        shared += pieces
        if runs and runs[-1][0] + len(runs[-1][1]) == region.frame_start:
            runs[-1][1].extend(cells)
            runs[-1][2].extend(pbcs)
        else:
            runs.append([region.frame_start, list(cells), list(pbcs)])
    store.write_row_pieces(shared)
    for first_frame, cells, pbcs in runs:
        store.write_frame_info(first_frame, np.array(cells), np.array(pbcs))
    store.mark_done([region.index for region, _ in finished])


def _slab_fields(info: dict) -> dict:
    return {name: info[name] for name in ("axis", "periodic", "n_layers", "origin", "thickness")}


@dataclass(frozen=True)
class RegionRows:
    """What a region's compute task hands its write task: environment columns from row start
    on, and its frames' cells and pbc."""

    start: int
    columns: dict[str, np.ndarray]
    cells: np.ndarray
    pbcs: np.ndarray


def compute_region(region: Region, tasks: list[FrameTask], params: StoreParams, store_path: str | None = None,
                   planned: tuple | None = None):
    """Worker side: descriptors of a region's whole frames. Given the store and its token once
    planned, and the plan is written by the time the rows are computed, they are written here
    and what write_region returns is returned; else the rows, for write_region. (Written by
    a separate task, a region's rows waited in the worker's memory for the next region to be
    computed, as that was already queued there, and the last regions' writes all came after
    the last computation: 0.04-0.08 s of a traced 0.44-0.53 s trajectory ingest.)"""
    use_worker_cores()
    columns = {name: [] for name in ("descriptors", "env_frame", "env_atom", "env_number", "env_position")}
    cells, pbcs = [], []
    for task, frame in _read_frames(tasks):
        columns["descriptors"].append(_frame_descriptors(frame, params, task).astype(params.dtype, copy=False))
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
    rows = RegionRows(region.start, stacked, np.array(cells), np.array(pbcs))
    store = _planned_worker_store(store_path, planned) if store_path is not None else None
    return rows if store is None else _write_rows(store, rows)


def write_region(store_path: str, token: tuple, rows):
    """Worker side: write a computed region's rows (unless its compute task did); returns what
    the client records."""
    if not isinstance(rows, RegionRows):
        return rows
    return _write_rows(_worker_store(store_path, token), rows)


def _write_rows(store: DescriptorStore, rows: RegionRows):
    return rows.cells, rows.pbcs, store.write_rows(rows.start, rows.columns)


def _split_frames(store: DescriptorStore | None, pending: list[tuple[Region, list[FrameTask]]]) -> dict[int, tuple[FrameTask, int]]:
    """Each split frame with work left, with its number of groups: those with groups pending,
    and (resuming) those whose domains are planned and not all written."""
    frames = {}
    for region, (task,) in ((region, tasks) for region, tasks in pending if region.kind == SPLIT_FRAME):
        frames.setdefault(region.frame_start, (task, region.group[1]))
    left = store and [region for region in store.pending_regions() if region.kind == DOMAIN and region.frame_start not in frames]
    if left:
        sources, tables = store.sources, {name: store.array(name) for name in FRAME_TABLES}
        n_groups = {region.frame_start: region.group[1] for region in store.regions() if region.kind == SPLIT_FRAME}
        for region in left:
            if region.frame_start not in frames:
                frames[region.frame_start] = (_frame_tasks(sources, tables, region)[0], n_groups[region.frame_start])
    return dict(sorted(frames.items()))


@dataclass
class _Layering:
    """The submitted layering graph of one split frame (see pipeline.split_frames), up to its
    sorted groups."""

    task: FrameTask
    n_groups: int
    layout: Future
    starts: Future
    sorted: list[Future]  # per group, its atoms in slab-layer order

    def futures(self) -> list:
        return [self.layout, self.starts, *self.sorted]


def _submit_layering(client: Client, store_path: Path, run: str, task: FrameTask, n_groups: int,
                     cutoff: float) -> _Layering:
    n_pieces = n_groups
    key_suffix = f"{store_path.name}-frame{task.frame}-{run}"

    def submit(stage, function, *args, piece=""):
        return client.submit(function, *args, key=f"{stage}{piece}-{key_suffix}", pure=False)

    pieces = [submit("read-piece", _read_piece, task, p, n_pieces, piece=p) for p in range(n_pieces)]
    summaries = [submit("piece-summary", split_frames.summary, piece, piece=p) for p, piece in enumerate(pieces)]
    layout = submit("layout", split_frames.lay_out, task, cutoff, *summaries)
    buckets = [submit("bucket", split_frames.bucket, task, piece, p, layout, n_pieces, piece=p)
               for p, piece in enumerate(pieces)]
    starts = submit("layer-starts", split_frames.layer_starts,
                    *(submit("layer-counts", split_frames.layer_counts, b, piece=p) for p, b in enumerate(buckets)))
    id_bitmap = None
    if task.fmt == readers.LAMMPS_DUMP:
        bitmaps = [submit("id-bitmap", split_frames.id_bitmap, b, piece=p) for p, b in enumerate(buckets)]
        level = 0
        while len(bitmaps) > 1:
            step = split_frames.BITMAP_FAN_IN
            bitmaps = [submit(f"merge-ids{level}-", split_frames.merge_id_bitmaps, task, layout, *bitmaps[i:i + step],
                              piece=i) for i in range(0, len(bitmaps), step)]
            level += 1
        id_bitmap, = bitmaps
    groups = [submit("sorted-group", split_frames.sort_group, layout, starts, id_bitmap, group, n_groups,
                     *(submit(f"group{group}-of-", split_frames.group_of, b, group, piece=p) for p, b in enumerate(buckets)),
                     piece=group)
              for group in range(n_groups)]
    return _Layering(task, n_groups, layout, starts, groups)


def _read_piece(task: FrameTask, piece: int, n_pieces: int):
    use_worker_cores()
    return split_frames.read_piece(task, piece, n_pieces)


def compute_domain(store_path: str, token: tuple, region: Region, task: FrameTask, params: StoreParams,
                   slabs: SlabLayers, layer_start: list[int], cell: np.ndarray, pbc: np.ndarray, *groups):
    """Worker side: descriptors of one slab domain of a split frame, from the sorted groups
    (pipeline.split_frames.sort_group) that hold its layers and its halo; writes its rows, the
    descriptors with the atoms' index, number and position."""
    use_worker_cores()
    layer_start = np.asarray(layer_start)  # rows within the frame
    groups = list(groups)
    positions = np.concatenate([split_frames.rows_of(groups, "env_position", layer_start[a], layer_start[b])
                                for a, b in _domain_layers(slabs, region)])
    layer = slabs.layer_of(positions, cell, pbc)
    own = (region.start - task.start, region.stop - task.start)
    try:
        x = domain_descriptors(positions, layer, cell, pbc, slabs, region.layer_first, region.layer_last, k=params.k,
                               cutoff=params.cutoff, centres=np.arange(*own) - layer_start[region.layer_first])
    except ValueError as error:
        raise InputError(str(error), path=task.path, frame=task.ref.index) from None
    if len(x) != region.stop - region.start:
        raise RuntimeError(f"domain {region.index}: {len(x)} environments, expected {region.stop - region.start}")
    columns = {"descriptors": x.astype(params.dtype, copy=False),
               **{name: split_frames.rows_of(groups, name, *own) for name in ("env_atom", "env_number", "env_position")},
               "env_frame": np.full(len(x), task.frame, dtype=np.int64)}
    return _worker_store(store_path, token).write_rows(region.start, columns)


_worker_stores: dict[str, tuple[tuple, DescriptorStore]] = {}


def _worker_store(store_path: str, token: tuple) -> DescriptorStore:
    """This worker's handle on a store, kept for its next tasks while the client's token (the
    store's identity and size) is unchanged: opening reads every array's metadata, 5-6 ms
    in a warm process here, against 0.1-0.3 s for a task. Any other change to the store's arrays comes with a new plan, a new size."""
    kept = _worker_stores.get(store_path)
    if kept is not None and kept[0] == token:
        return kept[1]
    store = DescriptorStore.open(store_path, mode="r+", allow_incomplete=True)
    _worker_stores.clear()  # one store at a time: a long-running worker serves many ingests
    if _is_planned(store, token):
        _worker_stores[store_path] = (token, store)
    return store


def _planned_worker_store(store_path: str, planned: tuple) -> DescriptorStore | None:
    """This worker's handle on the store if its plan is written, up to the planned token, else
    None: the store may not exist yet, or be midway through its plan (arrays being grown)."""
    if not (Path(store_path) / "zarr.json").exists():
        return None
    store = _worker_store(store_path, planned)
    return store if _is_planned(store, planned) else None


def _is_planned(store: DescriptorStore, token: tuple) -> bool:
    return store.token == token and store.committed_environments == token[1]


def _read_frames(tasks: list[FrameTask]):
    """(task, Frame) for each task, reading each source file once, in order."""
    by_source: dict[tuple, list[FrameTask]] = {}
    for task in tasks:
        by_source.setdefault((task.path, task.fmt), []).append(task)
    for (path, fmt), group in by_source.items():
        lookup = {task.ref.index: task for task in group}
        for ref, frame in readers.read(Path(path), fmt, [task.ref for task in group], group[0].species):
            yield lookup[ref.index], frame


def _check_frame(frame, task: FrameTask) -> None:
    if len(frame) == 0:
        raise InputError("frame has no atoms", path=task.path, frame=task.ref.index)
    if len(frame) != task.ref.n_atoms:
        raise InputError(f"frame has {len(frame)} atoms, {task.ref.n_atoms} when scanned: did the file change?",
                         path=task.path, frame=task.ref.index)


def _frame_descriptors(frame, params: StoreParams, task: FrameTask) -> np.ndarray:
    _check_frame(frame, task)
    try:
        return compute_descriptors(frame.positions, frame.cell, frame.pbc, k=params.k, cutoff=params.cutoff,
                                   species=frame.numbers if params.species else None,
                                   species_list=params.species)
    except ValueError as error:
        raise InputError(str(error), path=task.path, frame=task.ref.index) from None
