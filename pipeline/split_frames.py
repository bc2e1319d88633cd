"""The layering of a large frame, in pieces, so that no task holds the whole frame.

A frame above --split-atoms is stored in slab-layer order (its atoms sorted by layer, then
by atom index) by its domain tasks. Its atom lines are read by P pieces of the file and
sorted by G = P groups of consecutive layers. The stages, one Dask graph per frame (ingest
submits it whole; only the layout and the layer counts come back to the client, which plans
the domains from them):

1. `read_piece` (P tasks): a near-equal share of the frame's atom lines, parsed alone.
2. `lay_out` (1 task), from each piece's `summary` (its atom count, bounding box and id
   range): the slab layers, and how atoms get their index (numbered by line, or by the rank
   of their LAMMPS id).
3. `bucket` (P tasks): each piece's atoms sorted out by group, with its per-layer counts and
   (LAMMPS) a bitmap of its ids; `merge_id_bitmaps` checks that no id comes twice.
4. `sort_group` (G tasks): each takes its share from every piece, gives each atom its index
   and sorts them by (layer, index), at the rows `layer_starts` gives them. A domain task
   takes the sorted groups that hold its layers and the layer on either side, and writes its
   rows (`rows_of`).

A task holds about one piece or one group (and the id bitmap, one bit per id); between
stages the pieces and groups live in the workers' memory, about 1 / n_workers of the frame
each.
"""

from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from quests_core.descriptors import bounding_box
from quests_core.domains import SlabLayers, slab_layers_of_bounds
from quests_core.validation import as_cell_and_pbc

from . import readers
from .errors import InputError

MAX_ID_SPAN = 1 << 34  # LAMMPS ids are ranked with one bit per id in their range: at most 2 GiB
BITMAP_FAN_IN = 8  # id bitmaps merged this many at a time


@dataclass(frozen=True)
class PieceSummary:
    n_atoms: int
    low: np.ndarray  # (3,) minimum position on each axis (+inf for no atoms)
    high: np.ndarray  # (3,) maximum (-inf for no atoms)
    id_low: int | None  # LAMMPS ids: the lowest and highest of the piece (None: numbered by line)
    id_high: int | None
    cell: np.ndarray
    pbc: np.ndarray


@dataclass(frozen=True)
class FrameLayout:
    slabs: SlabLayers | None  # None: the frame is too thin to split (one layer)
    cell: np.ndarray
    pbc: np.ndarray
    first_atom: tuple[int, ...]  # index of each piece's first atom, where atoms are numbered by line
    id_low: int | None  # LAMMPS: ids are ranked over [id_low, id_low + id_span)
    id_span: int


@dataclass(frozen=True)
class Buckets:
    """One piece's atoms sorted out by group: per group a dict of `layer`, `atom` (LAMMPS id,
    or index), `position` and `number`, in file order; the piece's atoms in each layer; and
    its ids' bitmap."""

    groups: list[dict]
    layer_counts: np.ndarray
    id_bitmap: np.ndarray | None


def read_piece(task, piece: int, n_pieces: int):
    """(Frame, ids) of one piece of a frame's atom lines (readers.read_piece), its positions checked."""
    frame, ids = readers.read_piece(Path(task.path), task.fmt, task.ref, task.species, piece, n_pieces)
    if not np.isfinite(frame.positions).all():
        raise InputError("positions contain NaN or inf", path=task.path, frame=task.ref.index)
    return frame, ids


def summary(piece) -> PieceSummary:
    frame, ids = piece
    empty = len(frame) == 0
    low, high = (np.full(3, np.inf), np.full(3, -np.inf)) if empty else bounding_box(frame.positions)
    id_range = (None, None) if ids is None or empty else (int(ids.min()), int(ids.max()))
    return PieceSummary(len(frame), low, high, *id_range, frame.cell, frame.pbc)


def lay_out(task, cutoff: float, *summaries: PieceSummary) -> FrameLayout:
    """The frame's slab layers, and how its atoms are numbered, from its pieces' summaries."""
    n_atoms = sum(s.n_atoms for s in summaries)
    if n_atoms != task.ref.n_atoms:
        raise InputError(f"frame has {n_atoms} atoms, {task.ref.n_atoms} when scanned: did the file change?",
                         path=task.path, frame=task.ref.index)
    cell, pbc = summaries[0].cell, summaries[0].pbc
    try:
        as_cell_and_pbc(cell, pbc)
        slabs = slab_layers_of_bounds(np.min([s.low for s in summaries], axis=0),
                                      np.max([s.high for s in summaries], axis=0), cell, pbc, cutoff)
    except ValueError as error:
        raise InputError(str(error), path=task.path, frame=task.ref.index) from None
    if slabs is not None and slabs.n_layers < 2:
        slabs = None
    first_atom = tuple(int(n) for n in np.cumsum([0] + [s.n_atoms for s in summaries[:-1]]))
    ranges = [(s.id_low, s.id_high) for s in summaries if s.id_low is not None]
    if not ranges:
        return FrameLayout(slabs, cell, pbc, first_atom, None, 0)
    id_low, id_high = min(low for low, _ in ranges), max(high for _, high in ranges)
    if id_high - id_low >= MAX_ID_SPAN:
        raise InputError(f"atom ids run from {id_low} to {id_high}, more than {MAX_ID_SPAN} apart: renumber them "
                         "(LAMMPS reset_atoms id) to split this frame", path=task.path, frame=task.ref.index)
    return FrameLayout(slabs, cell, pbc, first_atom, id_low, id_high - id_low + 1)


def group_layers(n_layers: int, group: int, n_groups: int) -> tuple[int, int]:
    """The layers [first, last) of a group: near-equal runs of consecutive layers."""
    return group * n_layers // n_groups, (group + 1) * n_layers // n_groups


def bucket(task, piece, piece_number: int, layout: FrameLayout, n_groups: int) -> Buckets:
    frame, ids = piece
    if layout.slabs is None:
        return Buckets([None] * n_groups, np.zeros(0, dtype=np.int64), None)
    slabs = layout.slabs
    layer = slabs.layer_of(frame.positions, layout.cell, layout.pbc)
    firsts = [group_layers(slabs.n_layers, g, n_groups)[0] for g in range(n_groups)]
    group = np.searchsorted(firsts, layer, side="right") - 1
    order = np.argsort(group, kind="stable")
    edges = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=n_groups))])
    atom = ids if ids is not None else layout.first_atom[piece_number] + np.arange(len(frame), dtype=np.int64)
    groups = []
    for g in range(n_groups):
        rows = order[edges[g]:edges[g + 1]]
        groups.append({"layer": layer[rows].astype(np.int32), "atom": atom[rows], "position": frame.positions[rows],
                       "number": frame.numbers[rows]})
    bitmap = None
    if ids is not None:
        bitmap = np.zeros(layout.id_span // 64 + 1, dtype=np.uint64)
        repeated = _mark_ids(ids, layout.id_low, bitmap)
        if repeated != layout.id_low - 1:
            raise InputError(f"atom id {repeated} appears more than once", path=task.path, frame=task.ref.index)
    return Buckets(groups, np.bincount(layer, minlength=slabs.n_layers), bitmap)


def group_of(buckets: Buckets, group: int) -> dict | None:
    return buckets.groups[group]


def layer_counts(buckets: Buckets) -> np.ndarray:
    return buckets.layer_counts


def id_bitmap(buckets: Buckets) -> np.ndarray | None:
    return buckets.id_bitmap


def merge_id_bitmaps(task, layout: FrameLayout, *bitmaps: np.ndarray) -> np.ndarray:
    """The union of id bitmaps; raises InputError naming an id that two of them hold. None for
    a frame that is not split (it has no bitmaps)."""
    if layout.slabs is None:
        return None
    merged = bitmaps[0].copy()
    for bitmap in bitmaps[1:]:
        common = merged & bitmap
        if common.any():
            word = int(np.flatnonzero(common)[0])
            bit = int(common[word]) & -int(common[word])
            raise InputError(f"atom id {layout.id_low + 64 * word + bit.bit_length() - 1} appears more than once",
                             path=task.path, frame=task.ref.index)
        merged |= bitmap
    return merged


def layer_starts(*counts: np.ndarray) -> np.ndarray:
    """Each layer's first row in the frame, then the frame's end."""
    return np.concatenate([[0], np.cumsum(np.sum(counts, axis=0))]).astype(np.int64)


def sort_group(layout: FrameLayout, starts: np.ndarray, bitmap: np.ndarray | None, group: int, n_groups: int,
               *parts: dict) -> tuple[int, dict[str, np.ndarray]] | None:
    """(first row in the frame, columns) of a group's atoms, from its share of every piece,
    sorted by (layer, atom index): the rows a stable sort by layer of all the frame's atoms, in
    atom order, gives them. None for a frame too thin to split."""
    if layout.slabs is None:
        return None
    first, last = group_layers(layout.slabs.n_layers, group, n_groups)
    joined = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    atom = joined["atom"] if bitmap is None else _id_ranks(joined["atom"], layout.id_low, bitmap)
    order = np.lexsort((atom, joined["layer"]))
    if len(order) != starts[last] - starts[first]:
        raise RuntimeError(f"layers {first}-{last} hold {len(order)} atoms, {starts[last] - starts[first]} counted")
    return int(starts[first]), {"env_atom": atom[order], "env_number": joined["number"][order],
                                "env_position": joined["position"][order]}


def groups_of_layers(layers, n_layers: int, n_groups: int) -> list[int]:
    """The groups that hold the given layers, in order."""
    firsts = [group_layers(n_layers, group, n_groups)[0] for group in range(n_groups)]
    return sorted({int(np.searchsorted(firsts, layer, side="right")) - 1 for layer in layers})


def rows_of(groups: list[tuple[int, dict[str, np.ndarray]]], name: str, start: int, stop: int) -> np.ndarray:
    """Column `name` of the frame's rows [start, stop), from sorted groups ((first row, columns),
    as sort_group gives them) that hold every one of them."""
    pieces = []
    for first, columns in sorted(groups, key=lambda group: group[0]):
        values = columns[name]
        low, high = max(start, first), min(stop, first + len(values))
        if low < high:
            pieces.append(values[low - first:high - first])
    found = sum(len(piece) for piece in pieces)
    if found != stop - start:
        raise RuntimeError(f"rows {start}-{stop}: the groups given hold {found} of them")
    if not pieces:
        return groups[0][1][name][:0]
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def _id_ranks(ids: np.ndarray, low: int, bitmap: np.ndarray) -> np.ndarray:
    """Each id's rank among all the frame's ids (its atom index: atoms are in id order), from
    the bitmap of every id."""
    before = np.concatenate([[0], np.cumsum(np.bitwise_count(bitmap), dtype=np.int64)[:-1]])
    offset = (ids - low).astype(np.uint64)
    word = (offset >> np.uint64(6)).astype(np.int64)
    below = bitmap[word] & ((np.uint64(1) << (offset & np.uint64(63))) - np.uint64(1))
    return before[word] + np.bitwise_count(below).astype(np.int64)


@numba.njit(nogil=True, cache=True)
def _mark_ids(ids, low, bitmap):
    """Set each id's bit; the first id seen twice, or low - 1."""
    for i in range(ids.shape[0]):
        offset = ids[i] - low
        bit = np.uint64(1) << np.uint64(offset & 63)
        if bitmap[offset >> 6] & bit:
            return ids[i]
        bitmap[offset >> 6] |= bit
    return low - 1
