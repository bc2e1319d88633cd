"""The zarr (v3) descriptor store: the contract between ingest and analysis.

Layout (documented in docs/store.md), format "quests-store/2":
  descriptors      (environment, feature)   float32|float64, chunked by rows
  env_frame        (environment,)           int64   frame of each environment
  env_atom         (environment,)           int64   atom index within its frame
  env_number       (environment,)           int64   atomic number
  env_position     (environment, xyz)       float64 Cartesian position, Å
  frame_n_atoms, frame_start, frame_source, frame_index, frame_offset   (frame,) int64
  frame_cell       (frame, vector, xyz)     float64
  frame_pbc        (frame, axis)            bool
  region_table     (region, field)          int64   kind, start, stop, frame_start, frame_stop,
                                                    layer_first, layer_last of each region
  region_done      (region,)                bool
Attributes: format, complete, descriptor parameters, package versions, sources.

Writers: each ingest task writes only the chunks its region's environment rows cover whole
and returns the rows it shares a chunk with a neighbouring region; the one client that runs the
ingest writes those, and everything per frame or per region, before marking the region done.
No two processes write one chunk; every chunk file is written under a temporary name and
replaced into place (ChunkFileStore, which writes large ones past the page cache), so a killed
task never damages a finished region.
"""

import asyncio
import contextlib
import errno
import functools
import mmap
import os
import shutil
import threading
import uuid
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import zarr
from zarr.core.sync import sync
from zarr.storage import LocalStore, MemoryStore, StorePath

from .errors import InputError

FORMAT = "quests-store/2"  # 2: the region columns are one region_table
FRAME_CHUNK = 65536
REGION_CHUNK = 65536
VERSIONED_PACKAGES = ("quests-pipeline", "numpy", "numba", "zarr", "ase", "dask", "distributed")

_ENVIRONMENT_ARRAYS = {  # name: (dtype, trailing shape, dimension names after "environment")
    "env_frame": ("int64", (), ()),
    "env_atom": ("int64", (), ()),
    "env_number": ("int64", (), ()),
    "env_position": ("float64", (3,), ("xyz",)),
}
_FRAME_ARRAYS = {
    "frame_n_atoms": ("int64", (), ()),
    "frame_start": ("int64", (), ()),
    "frame_source": ("int64", (), ()),
    "frame_index": ("int64", (), ()),
    "frame_offset": ("int64", (), ()),
    "frame_size": ("int64", (), ()),
    "frame_cell": ("float64", (3, 3), ("vector", "xyz")),
    "frame_pbc": ("bool", (3,), ("axis",)),
}
REGION_FIELDS = ("kind", "start", "stop", "frame_start", "frame_stop", "layer_first", "layer_last")
_REGION_ARRAYS = {
    "region_table": ("int64", (len(REGION_FIELDS),), ("field",)),
    "region_done": ("bool", (), ()),
}
PLAN_SIZES = ("n_environments", "n_frames", "n_regions")
# small per-frame and per-region tables: the client reads them whole, often; cached per store object
_TABLES = (*_FRAME_ARRAYS, *_REGION_ARRAYS)


@dataclass(frozen=True)
class StoreParams:
    """What makes two stores' descriptors comparable; a store refuses rows made otherwise."""

    k: int
    cutoff: float
    dtype: str
    species: tuple[int, ...] | None = None  # atomic numbers of the multicomponent variant

    @property
    def width(self) -> int:
        blocks = 1 + (len(self.species) if self.species else 0)
        return blocks * (2 * self.k - 1)

    def to_attrs(self) -> dict:
        attrs = asdict(self)
        attrs["species"] = list(self.species) if self.species else None
        return attrs

    @classmethod
    def from_attrs(cls, attrs: dict) -> "StoreParams":
        species = attrs.get("species")
        return cls(int(attrs["k"]), float(attrs["cutoff"]), str(attrs["dtype"]), tuple(species) if species else None)


FRAMES, SPLIT_FRAME, DOMAIN = 0, 1, 2  # region kinds


@dataclass(frozen=True)
class Region:
    """A unit of ingest work on environment rows [start, stop) of frames [frame_start, frame_stop).

    kind FRAMES: whole frames. SPLIT_FRAME: one large frame, stored in slab-layer order by its
    DOMAIN regions, each of which writes its rows (descriptors, and the atoms' index, number
    and position), which lie in layers [layer_first, layer_last). A frame's SPLIT_FRAME regions
    share its rows: each is group layer_first of layer_last groups of consecutive layers
    (pipeline.split_frames), done once the frame's domains are planned.
    """

    index: int
    kind: int
    start: int
    stop: int
    frame_start: int
    frame_stop: int
    layer_first: int = -1
    layer_last: int = -1

    @property
    def group(self) -> tuple[int, int]:
        """(group, n_groups) of a SPLIT_FRAME region."""
        return self.layer_first, self.layer_last

    @property
    def n_rows(self) -> int:
        """Rows this region accounts for in progress: the groups of a split frame share its rows."""
        rows = self.stop - self.start
        if self.kind != SPLIT_FRAME:
            return rows
        group, n_groups = self.group
        return rows // n_groups + (group < rows % n_groups)


@functools.cache
def package_versions() -> dict:
    found = {}
    for name in VERSIONED_PACKAGES:
        with contextlib.suppress(Exception):
            found[name] = version(name)
    return found


class DescriptorStore:
    def __init__(self, path: Path, group: zarr.Group):
        self.path = Path(path)
        self.group = group
        self._handles: dict[str, zarr.Array] = {}
        self._tables: dict[str, np.ndarray] = {}
        self._planned: dict[str, int] | None = None  # sizes once the plan being written is committed

    def _handle(self, name: str) -> zarr.Array:
        """The named array, opened once per store object: every open reads its metadata from
        disk (about 2 ms), and planning and bookkeeping touch the tables hundreds of times.
        The first call opens all arrays together (their metadata is read concurrently)."""
        if not self._handles:
            self._handles = {key: array.with_config(_ARRAY_CONFIG) for key, array in self.group.arrays()}
        if name not in self._handles:
            self._handles[name] = self.group[name].with_config(_ARRAY_CONFIG)
        return self._handles[name]

    # ---- opening -------------------------------------------------------------------
    @classmethod
    def create(cls, path, params: StoreParams, chunk_rows: int, store_id: str | None = None,
               reserve: dict | None = None) -> "DescriptorStore":
        """An empty store, built beside its path and renamed into place, so a store that
        exists always has its layout and attributes. store_id: its identity (part of its
        token), new unless given. reserve (n_environments, n_frames,
        n_regions) makes the arrays that long already, for the plan about to be added: they
        then need no resizing (nothing is planned until commit_plan)."""
        path = Path(path)
        lengths = {**dict.fromkeys(PLAN_SIZES, 0), **(reserve or {})}
        if path.exists():
            raise InputError(f"{path} already exists", path=None)
        building = path.with_name(path.name + ".creating")
        shutil.rmtree(building, ignore_errors=True)
        arrays = {
            # floats barely compress (10 %) and zstd costs a third of a write: stored raw
            "descriptors": {"shape": (lengths["n_environments"], params.width), "chunks": (chunk_rows, params.width),
                            "dtype": params.dtype, "fill_value": np.nan, "dimension_names": ("environment", "feature"),
                            "compressors": None},
        }
        for dimension, length, chunk, layout in (("environment", lengths["n_environments"], chunk_rows, _ENVIRONMENT_ARRAYS),
                                                 ("frame", lengths["n_frames"], FRAME_CHUNK, _FRAME_ARRAYS),
                                                 ("region", lengths["n_regions"], REGION_CHUNK, _REGION_ARRAYS)):
            for name, (dtype, trailing, dims) in layout.items():
                arrays[name] = {"shape": (length, *trailing), "chunks": (chunk, *trailing), "dtype": dtype,
                                "fill_value": _fill(dtype), "dimension_names": (dimension, *dims)}
        arrays["region_table"]["attributes"] = {"fields": list(REGION_FIELDS)}
        documents, group_metadata, array_metadata = sync(_layout(arrays, {
            "format": FORMAT,
            "store_id": store_id or uuid.uuid4().hex,
            "complete": False,
            "descriptor": params.to_attrs(),
            "versions": package_versions(),
            "sources": [],
            "skipped_frames": [],
            "split_frames": {},
            "plan": dict.fromkeys(PLAN_SIZES, 0),
        }))
        # plain writes: the directory is renamed into place whole (zarr's own file store
        # checks for an existing node, then writes each document to a temporary file and
        # renames it: half the CPU of an ingest's planning on a 200-frame trajectory)
        for key, document in documents.items():
            (building / key).parent.mkdir(parents=True, exist_ok=True)
            (building / key).write_bytes(document.to_bytes())
        os.rename(building, path)
        # bound to the files from the metadata just made, rather than read back from them
        files = ChunkFileStore(path)
        store = cls(path, zarr.Group(zarr.AsyncGroup(group_metadata, StorePath(files))))
        store._handles = {name: zarr.Array(zarr.AsyncArray(metadata, StorePath(files, name))).with_config(_ARRAY_CONFIG)
                          for name, metadata in array_metadata.items()}
        store._planned = dict.fromkeys(PLAN_SIZES, 0)
        return store

    @classmethod
    def open(cls, path, mode: str = "r", allow_incomplete: bool = False) -> "DescriptorStore":
        path = Path(path)
        if not (path / "zarr.json").exists():
            raise InputError("not a descriptor store (no zarr.json)", path=path)
        group = zarr.open_group(store=ChunkFileStore(path, read_only=mode == "r"), mode=mode, zarr_format=3)
        found = group.attrs.get("format")
        if found != FORMAT:
            raise InputError(f"store format is {found!r}, this version reads {FORMAT!r}", path=path)
        store = cls(path, group)
        if not allow_incomplete and not store.complete:
            done = int(np.count_nonzero(store._handle("region_done")[:]))
            raise InputError(f"store is incomplete ({done} of {store.n_regions} regions written); "
                             "run the same ingest again to finish it", path=path)
        return store

    # ---- description ---------------------------------------------------------------
    @property
    def params(self) -> StoreParams:
        return StoreParams.from_attrs(self.group.attrs["descriptor"])

    @property
    def complete(self) -> bool:
        return bool(self.group.attrs["complete"])

    @property
    def sources(self) -> list[dict]:
        return list(self.group.attrs["sources"])

    @property
    def skipped_frames(self) -> list[dict]:
        return list(self.group.attrs["skipped_frames"])

    @property
    def token(self) -> tuple:
        """Identifies this store at its current size: a new store at the same path, or a new
        plan, gives another token."""
        return self.group.attrs.get("store_id"), self.n_environments

    @property
    def committed_environments(self) -> int:
        """The environments of the plan as last committed (as read when this object was opened)."""
        return int(self.group.attrs["plan"]["n_environments"])

    @property
    def chunk_rows(self) -> int:
        return int(self.descriptors.chunks[0])

    @property
    def descriptors(self) -> zarr.Array:
        return self._handle("descriptors")

    @property
    def n_environments(self) -> int:
        return int(self.descriptors.shape[0])

    @property
    def n_frames(self) -> int:
        return int(self._handle("frame_n_atoms").shape[0])

    @property
    def n_regions(self) -> int:
        return int(self._handle("region_done").shape[0])

    def array(self, name: str) -> np.ndarray:
        """The whole array. The frame and region tables are read once per store object (read
        only; this object's own writes refresh them): the client that plans and records an
        ingest is their one writer, and reads them many times."""
        if name not in _TABLES:
            return self._handle(name)[:]
        if name not in self._tables:
            table = self._handle(name)[:]
            table.setflags(write=False)
            self._tables[name] = table
        return self._tables[name]

    def _write(self, writes: dict[str, tuple]) -> None:
        """Write name: (selection, values) into several arrays, together (one request to
        zarr's I/O loop, not one per array)."""
        sync(_set_together([(self._handle(name).async_array, selection, values)
                            for name, (selection, values) in writes.items()]))
        for name, (selection, values) in writes.items():
            array = self._handle(name)
            if name in self._tables:  # keep the cached table up to date rather than read it again
                table = self._tables[name].copy()
                table[selection] = values
            elif name in _TABLES and selection == slice(0, array.shape[0]):  # the whole table, as written
                table = np.empty(array.shape, dtype=array.dtype)
                table[...] = values
            else:
                continue
            table.setflags(write=False)
            self._tables[name] = table

    def _resize(self, name: str, length: int) -> None:
        array = self._handle(name)
        if array.shape[0] != length:
            array.resize((length, *array.shape[1:]))
            self._tables.pop(name, None)

    def _reserve(self, name: str, length: int) -> None:
        if self._handle(name).shape[0] < length:
            self._resize(name, length)

    def regions(self) -> list[Region]:
        return [Region(i, *map(int, row)) for i, row in enumerate(self.array("region_table"))]

    def pending_regions(self) -> list[Region]:
        done = self.array("region_done")
        return [region for region in self.regions() if not done[region.index]]

    # ---- planning (client only) ----------------------------------------------------
    # Planning grows the arrays first and then commits the new sizes together with the new
    # sources in one attribute write; whatever a killed planning left past the committed
    # sizes is cut off the next time the store is opened for writing.
    def begin_plan(self) -> None:
        self.group.update_attributes({"complete": False})
        plan = self.group.attrs["plan"]
        for name in ("descriptors", *_ENVIRONMENT_ARRAYS):
            self._resize(name, plan["n_environments"])
        for name in _FRAME_ARRAYS:
            self._resize(name, plan["n_frames"])
        for name in _REGION_ARRAYS:
            self._resize(name, plan["n_regions"])
        self._planned = {size: plan[size] for size in PLAN_SIZES}

    def _plan_sizes(self) -> dict[str, int]:
        if self._planned is None:
            self._planned = {size: self.group.attrs["plan"][size] for size in PLAN_SIZES}
        return self._planned

    def commit_plan(self, new_sources: list[dict] = ()) -> None:
        self.group.update_attributes({"sources": self.sources + list(new_sources), "plan": dict(self._plan_sizes())})

    def add_frames(self, source: int, indices, n_atoms, offsets, sizes) -> None:
        """Append frames of one source to the plan."""
        n_atoms = np.asarray(n_atoms, dtype=np.int64)
        planned = self._plan_sizes()
        first_frame, first_row = planned["n_frames"], planned["n_environments"]
        last_frame, last_row = first_frame + len(n_atoms), first_row + int(n_atoms.sum())
        for name in _FRAME_ARRAYS:
            self._reserve(name, last_frame)
        for name in ("descriptors", *_ENVIRONMENT_ARRAYS):
            self._reserve(name, last_row)
        planned.update(n_frames=last_frame, n_environments=last_row)
        frames = slice(first_frame, last_frame)
        starts = first_row + np.concatenate([[0], np.cumsum(n_atoms)[:-1]]).astype(np.int64)
        self._write({"frame_n_atoms": (frames, n_atoms), "frame_start": (frames, starts), "frame_source": (frames, source),
                     "frame_index": (frames, np.asarray(indices, dtype=np.int64)),
                     "frame_offset": (frames, np.asarray(offsets, dtype=np.int64)),
                     "frame_size": (frames, np.asarray(sizes, dtype=np.int64))})

    def add_regions(self, regions: list[Region]) -> None:
        """Append regions (their index fields are ignored: they are numbered in order)."""
        planned = self._plan_sizes()
        first = planned["n_regions"]
        last = first + len(regions)
        for name in _REGION_ARRAYS:
            self._reserve(name, last)
        planned["n_regions"] = last
        if regions:
            table = np.array([[getattr(region, field) for field in REGION_FIELDS] for region in regions], dtype=np.int64)
            self._write({"region_table": (slice(first, last), table), "region_done": (slice(first, last), False)})

    @property
    def split_frames(self) -> dict[int, dict]:
        """Large frames stored in slab-layer order: frame -> layers and their row offsets."""
        return {int(frame): info for frame, info in self.group.attrs.get("split_frames", {}).items()}

    def record_split_frame(self, frame: int, info: dict) -> None:
        split = dict(self.group.attrs.get("split_frames", {}))
        split[str(frame)] = info
        self.group.update_attributes({"split_frames": split})

    # ---- results -------------------------------------------------------------------
    def write_rows(self, start: int, columns: dict[str, np.ndarray]) -> list[tuple[int, dict[str, np.ndarray]]]:
        """Write the chunks that environment rows [start, start + n) of descriptors and env_*
        arrays cover whole; return the rest, (first row, columns) pieces that share a chunk
        with rows outside the range, for write_row_pieces by the one client (so no two
        processes ever write the same chunk, and no lock is needed)."""
        n_rows = len(next(iter(columns.values())))
        stop = start + n_rows
        rows = self.chunk_rows
        first_whole = -(-start // rows) * rows
        last_whole = max(first_whole, (stop // rows) * rows if stop < self.n_environments else stop)
        shared = []
        for piece_start, piece_stop, whole in ((start, min(first_whole, stop), False), (first_whole, last_whole, True),
                                               (max(last_whole, start), stop, False)):
            if piece_stop <= piece_start:
                continue
            piece = {name: values[piece_start - start : piece_stop - start] for name, values in columns.items()}
            if whole:
                self.write_row_pieces([(piece_start, piece)])
            else:
                shared.append((piece_start, piece))
        return shared

    def write_row_pieces(self, pieces: list[tuple[int, dict[str, np.ndarray]]]) -> None:
        """Write (first row, columns) pieces of environment rows. Adjacent pieces are joined
        first: the pieces two neighbouring regions share a chunk with are then one whole chunk,
        written once rather than written and then read back and rewritten. The rest go in
        rounds, each one request to zarr's I/O loop in which no two pieces touch one chunk.
        Rows are handed to zarr a chunk at a time: given exactly a chunk's values it stores
        them as they are, where a larger selection is first copied chunk by chunk into new
        buffers filled with the fill value (measured: a third of the CPU of a 90 MB write)."""
        rows = self.chunk_rows
        rounds: list[tuple[set, list]] = []  # (chunks touched, writes)
        for piece_start, columns in _join_adjacent(pieces):
            stop = piece_start + len(next(iter(columns.values())))
            chunks = set(range(piece_start // rows, (stop - 1) // rows + 1))
            edges = sorted({piece_start, stop, *range(-(-piece_start // rows) * rows, stop, rows)})
            writes = [(self._handle(name).async_array, slice(a, b), values[a - piece_start:b - piece_start])
                      for name, values in columns.items() for a, b in zip(edges[:-1], edges[1:])]
            free = next((round_ for round_ in rounds if not round_[0] & chunks), None)
            if free is None:
                rounds.append((chunks, writes))
            else:
                free[0].update(chunks)
                free[1].extend(writes)
        for _, writes in rounds:
            sync(_set_together(writes))

    def write_frame_info(self, first_frame: int, cells: np.ndarray, pbcs: np.ndarray) -> None:
        """Cells and pbc of consecutive frames from first_frame on, in one write each."""
        frames = slice(first_frame, first_frame + len(cells))
        self._write({"frame_cell": (frames, cells), "frame_pbc": (frames, pbcs)})

    def mark_done(self, regions: list[int]) -> None:
        """Mark regions done, in one write of the span they cover."""
        if not len(regions):
            return
        done = self.array("region_done").copy()
        done[regions] = True
        first, last = min(regions), max(regions) + 1
        self._write({"region_done": (slice(first, last), done[first:last])})

    def mark_complete(self) -> None:
        done = self.array("region_done")
        if not done.all():
            raise RuntimeError(f"{self.path}: {int((~done).sum())} regions are not written")
        self.group.update_attributes({"complete": True, "versions": package_versions()})

    def record_skipped(self, skipped: list[dict]) -> None:
        self.group.update_attributes({"skipped_frames": self.skipped_frames + skipped})

    # ---- reading -------------------------------------------------------------------
    def read_descriptors(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        return self.descriptors[start:stop]

    def summary(self) -> dict:
        done = self.array("region_done")
        return {
            "path": str(self.path),
            "format": FORMAT,
            "complete": self.complete,
            "n_environments": self.n_environments,
            "n_frames": self.n_frames,
            "regions_written": int(done.sum()),
            "n_regions": int(done.size),
            "descriptor": self.params.to_attrs(),
            "chunk_rows": self.chunk_rows,
            "sources": self.sources,
            "skipped_frames": self.skipped_frames,
            "versions": dict(self.group.attrs["versions"]),
        }


async def _layout(arrays: dict[str, dict], attributes: dict) -> tuple[dict, object, dict]:
    """The documents (key: zarr buffer) of a group with its attributes and its arrays (name:
    create_array arguments), made by zarr in memory; and the group's and each array's metadata."""
    documents = {}
    group = await zarr.api.asynchronous.open_group(store=MemoryStore(documents), mode="w", attributes=attributes,
                                                   zarr_format=3)
    created = await asyncio.gather(*(group.create_array(name, **spec) for name, spec in arrays.items()))
    return documents, group.metadata, {name: array.metadata for name, array in zip(arrays, created)}


def _join_adjacent(pieces: list[tuple[int, dict[str, np.ndarray]]]) -> list[tuple[int, dict[str, np.ndarray]]]:
    """(first row, columns) pieces in row order, each run of pieces that follow one another
    (with the same columns) joined into one."""
    runs: list[tuple[int, int, list[dict]]] = []  # (first row, stop row, pieces' columns)
    for start, columns in sorted(pieces, key=lambda piece: piece[0]):
        stop = start + len(next(iter(columns.values())))
        if runs and runs[-1][1] == start and runs[-1][2][0].keys() == columns.keys():
            runs[-1] = (runs[-1][0], stop, runs[-1][2] + [columns])
        else:
            runs.append((start, stop, [columns]))
    return [(start, parts[0] if len(parts) == 1 else {name: np.concatenate([part[name] for part in parts])
                                                      for name in parts[0]})
            for start, _, parts in runs]


async def _set_together(writes: list) -> None:
    """(async array, selection, values) writes, run concurrently."""
    await asyncio.gather(*(array.setitem(selection, values) for array, selection, values in writes))


DIRECT_WRITE_BYTES = 1 << 20  # chunk files at least this large are written past the page cache
_DIRECT_SLICE = 1 << 20  # bytes copied into the aligned buffer and written per call
# O_DIRECT wants buffer, length and offset aligned to the device's block size (some file
# systems: to the page size)
_DIRECT_ALIGN = max(4096, mmap.PAGESIZE)
_DIRECT_REFUSED = (errno.EINVAL, errno.EOPNOTSUPP)  # file systems without O_DIRECT (tmpfs) say so


class ChunkFileStore(LocalStore):
    """zarr's local store, writing large chunk files with O_DIRECT, past the page cache.

    A buffered write copies every byte into page-cache pages the kernel must first find, and a
    virtual machine that hands free memory back to its host charges for each afresh: 0.17-0.20 s
    of system time per 90 MB domain against 0.045-0.06 s of wall and next to no CPU written
    direct (docs/benchmarks.md). It also keeps a 32-million-atom ingest (16 GB of float64
    descriptors, by arithmetic) from filling the page cache. Files are written as zarr writes
    them, to a temporary name replaced into place; a file system that refuses O_DIRECT gets
    zarr's buffered writes."""

    direct_writes = True  # until a file system refuses them

    async def set(self, key: str, value) -> None:
        if self.direct_writes and len(value) >= DIRECT_WRITE_BYTES:
            if not self._is_open:
                await self._open()
            self._check_writable()
            if await asyncio.to_thread(_write_direct, self.root / key, value.as_buffer_like()):
                return
            self.direct_writes = False
        await super().set(key, value)


_aligned = threading.local()  # one buffer per zarr I/O thread, kept for its next writes


def _write_direct(path: Path, data) -> bool:
    """Write data to path with O_DIRECT, through a temporary file replaced into place; False,
    writing nothing, where the file system refuses O_DIRECT."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_DIRECT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        if error.errno in _DIRECT_REFUSED:
            return False
        raise
    try:
        if not hasattr(_aligned, "buffer"):
            _aligned.buffer = mmap.mmap(-1, _DIRECT_SLICE)  # page-aligned
        buffer = _aligned.buffer
        staging = np.frombuffer(buffer, dtype=np.uint8)
        source = np.frombuffer(data, dtype=np.uint8)
        for offset in range(0, len(source), _DIRECT_SLICE):
            piece = source[offset:offset + _DIRECT_SLICE]
            staging[:len(piece)] = piece
            padded = -(-len(piece) // _DIRECT_ALIGN) * _DIRECT_ALIGN  # the tail is cut off below
            written = os.write(handle, memoryview(buffer)[:padded])
            if written != padded:  # the next write would start unaligned
                raise OSError(errno.EIO, f"{written} of {padded} bytes written", str(temporary))
        os.ftruncate(handle, len(source))
    except BaseException as error:
        os.close(handle)
        os.unlink(temporary)
        if isinstance(error, OSError) and error.errno in _DIRECT_REFUSED:
            return False
        raise
    os.close(handle)
    os.replace(temporary, path)
    return True


# chunks equal to the fill value are written too: zarr would otherwise compare every chunk it
# writes with the fill value (a pass over the data) to leave such chunks out
_ARRAY_CONFIG = {"write_empty_chunks": True}


def _fill(dtype: str):
    return {"float64": np.nan, "float32": np.nan, "bool": False}.get(dtype, -1)


def source_record(path, fmt: str, frames: str, species: dict | None) -> dict:
    """Provenance of one input file: where, how big, when modified, and its content hash."""
    import hashlib

    path = Path(path).resolve()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    stat = os.stat(path)
    return {
        "path": str(path),
        "size": stat.st_size,
        "mtime": stat.st_mtime,
        "sha256": digest.hexdigest(),
        "format": fmt,
        "frames": frames,
        "species": {str(key): value for key, value in (species or {}).items()},
    }
