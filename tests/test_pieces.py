"""Frames read in pieces (pipeline.readers.read_piece, pipeline.split_frames): the pieces of a
frame together are the frame read whole, bit for bit, in both fast readers and through ASE;
bad lines name the byte where their piece begins; LAMMPS ids are ranked and checked for
repeats across pieces."""

import re

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write
from hypothesis import given, settings
from hypothesis import strategies as st

from lammps_dumps import dump_text
from pipeline import readers, split_frames
from pipeline.errors import InputError
from pipeline.readers import EXTXYZ, LAMMPS_DUMP, FrameSelection
from quests_core.domains import SlabLayers

SPECIES = {1: "Cu", 2: "Ni"}
PIECE_COUNTS = [1, 2, 3, 7, 40, 500]  # 500: more pieces than some frames have lines
SLABS = SlabLayers(axis=0, periodic=True, n_layers=4, origin=0.0, thickness=2.5)


def lammps_frames(rng, sizes):
    frames = []
    for step, n in enumerate(sizes):
        cell = np.array([[12.0, 0, 0], [1.5, 11.0, 0], [-0.7, 0.4, 10.0]])
        frames.append(dict(timestep=step, cell=cell, origin=rng.uniform(-5, 5, 3), fractional=rng.random((n, 3)),
                           ids=rng.permutation(n) * 3 + 2, types=rng.integers(1, 3, n)))
    return frames


def files(tmp_path):
    """(path, format, species) of a three-frame LAMMPS dump (triclinic, scaled, ids 2, 5, 8, ...
    shuffled; CRLF line ends; no newline at the end) and of a three-frame extxyz file."""
    rng = np.random.default_rng(3)
    dump = tmp_path / "frames.lammpstrj"
    text = dump_text(lammps_frames(rng, [200, 37, 150]), style="xs", columns=("id", "vx", "type", "*", "q"), triclinic=True)
    dump.write_bytes(text.replace("\n", "\r\n").rstrip().encode())
    structures = []
    for seed, size in enumerate([(3, 3, 3), (2, 2, 2), (3, 3, 2)]):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * size
        atoms.positions += np.random.default_rng(seed).normal(0, 0.1, atoms.positions.shape)
        atoms.numbers[::3] = 28
        atoms.set_velocities(rng.normal(size=atoms.positions.shape))
        structures.append(atoms)
    xyz = tmp_path / "frames.extxyz"
    write(xyz, structures)
    traj = tmp_path / "frames.traj"
    write(traj, structures)
    return [(dump, LAMMPS_DUMP, SPECIES), (xyz, EXTXYZ, None), (traj, "traj", None)]


@pytest.mark.parametrize("n_pieces", PIECE_COUNTS)
def test_pieces_together_are_the_frame(tmp_path, n_pieces):
    for path, fmt, species in files(tmp_path):
        refs = readers.scan(path, fmt, FrameSelection())
        for ref, (_, whole) in zip(refs, readers.read(path, fmt, refs, species)):
            pieces = [readers.read_piece(path, fmt, ref, species, p, n_pieces) for p in range(n_pieces)]
            positions = np.concatenate([frame.positions for frame, _ in pieces])
            numbers = np.concatenate([frame.numbers for frame, _ in pieces])
            if fmt == LAMMPS_DUMP:  # read_frame puts atoms in id order
                order = np.argsort(np.concatenate([ids for _, ids in pieces]))
                positions, numbers = positions[order], numbers[order]
            else:
                assert all(ids is None for _, ids in pieces)
            np.testing.assert_array_equal(positions, whole.positions, err_msg=f"{fmt} frame {ref.index}")
            np.testing.assert_array_equal(numbers, whole.numbers)
            for frame, _ in pieces:
                np.testing.assert_array_equal(frame.cell, whole.cell)
                np.testing.assert_array_equal(frame.pbc, whole.pbc)
            sizes = [len(frame) for frame, _ in pieces]
            if fmt != LAMMPS_DUMP and n_pieces <= ref.n_atoms:  # lines of equal length: near-equal shares
                assert max(sizes) - min(sizes) <= 1, sizes


@pytest.mark.parametrize("fmt", [LAMMPS_DUMP, EXTXYZ])
def test_a_bad_line_names_the_byte_its_piece_begins_at(tmp_path, fmt):
    path, _, species = next(item for item in files(tmp_path) if item[1] == fmt)
    data = path.read_bytes()
    refs = readers.scan(path, fmt, FrameSelection())
    ref = refs[2]
    lines = data[ref.offset:ref.offset + ref.size].splitlines(keepends=True)
    header = 9 if fmt == LAMMPS_DUMP else 2
    target = header + 50  # atom line 51 of frame 2
    bad_at = ref.offset + sum(len(line) for line in lines[:target])
    token = lines[target].split()[3 if fmt == LAMMPS_DUMP else 1]
    path.write_bytes(data[:bad_at] + lines[target].replace(token, b"x" * len(token), 1) + data[bad_at + len(lines[target]):])
    errors = []
    for p in range(4):
        try:
            readers.read_piece(path, fmt, ref, species, p, 4)
        except InputError as error:
            errors.append(str(error))
    assert len(errors) == 1, errors
    match = re.fullmatch(rf"{re.escape(str(path))}, frame 2: in the (\d+) atom lines from byte (\d+): atom line (\d+) "
                         rf"\(of \1\): cannot read 'x+' in column \S+ as a number", errors[0])
    assert match, errors[0]
    first_byte, line = int(match.group(2)), int(match.group(3))
    assert first_byte + sum(len(text) for text in data[first_byte:].splitlines(keepends=True)[:line - 1]) == bad_at


def test_a_file_cut_short_after_the_scan_is_refused(tmp_path):
    path, fmt, species = files(tmp_path)[1]
    ref = readers.scan(path, fmt, FrameSelection())[2]
    path.write_bytes(path.read_bytes()[:ref.offset + ref.size // 2])
    with pytest.raises(InputError, match=r"frame 2: the file ends at byte \d+, before byte \d+: the file changed since scan_frames$"):
        readers.read_piece(path, fmt, ref, species, 1, 2)


@settings(max_examples=50, deadline=None)
@given(ids=st.lists(st.integers(0, 5000), min_size=1, max_size=300, unique=True), n_pieces=st.integers(1, 6))
def test_id_ranks_are_the_atom_indices_of_id_order(ids, n_pieces):
    """Each piece marks its ids in a bitmap; the merged bitmap ranks every id: its place in id order."""
    ids = np.array(ids, dtype=np.int64) + 17
    low, span = int(ids.min()), int(ids.max() - ids.min() + 1)
    bitmaps = []
    for part in np.array_split(ids, n_pieces):
        bitmap = np.zeros(span // 64 + 1, dtype=np.uint64)
        assert split_frames._mark_ids(part, low, bitmap) == low - 1
        bitmaps.append(bitmap)
    layout = split_frames.FrameLayout(SLABS, np.eye(3), np.ones(3, bool), (0,), low, span)
    merged = split_frames.merge_id_bitmaps(None, layout, *bitmaps)
    np.testing.assert_array_equal(split_frames._id_ranks(ids, low, merged), np.argsort(np.argsort(ids)))


class _Task:  # what the error messages read of an ingest FrameTask
    path = "dump.lammpstrj"
    ref = readers.FrameRef(4, 10)


def test_an_id_in_two_pieces_or_twice_in_one_is_named():
    layout = split_frames.FrameLayout(SLABS, np.eye(3), np.ones(3, bool), (0,), 1, 200)
    first, second = (np.zeros(200 // 64 + 1, dtype=np.uint64) for _ in range(2))
    split_frames._mark_ids(np.array([1, 5, 130]), 1, first)
    split_frames._mark_ids(np.array([2, 130, 7]), 1, second)
    with pytest.raises(InputError, match=r"^dump\.lammpstrj, frame 4: atom id 130 appears more than once$"):
        split_frames.merge_id_bitmaps(_Task, layout, first, second)
    assert split_frames._mark_ids(np.array([3, 66, 9, 66]), 1, np.zeros(4, dtype=np.uint64)) == 66


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.integers(1, 12), st.data())
def test_groups_of_layers_are_the_groups_whose_runs_hold_them(n_layers, n_groups, data):
    layers = data.draw(st.lists(st.integers(0, n_layers - 1), min_size=1, max_size=6))
    runs = [split_frames.group_layers(n_layers, group, n_groups) for group in range(n_groups)]
    want = sorted({group for layer in layers for group, (first, last) in enumerate(runs) if first <= layer < last})
    assert split_frames.groups_of_layers(layers, n_layers, n_groups) == want


def test_rows_of_joins_the_groups_that_hold_them_in_any_order():
    """Sorted groups (first row, columns) as a domain task receives them (wrapped around: the
    last group before the first); rows outside the groups given are refused."""
    column = np.arange(100, 112) * 1.5
    groups = [(9, {"x": column[9:]}), (0, {"x": column[:5]}), (5, {"x": column[5:9]})]
    for start, stop in [(0, 12), (3, 10), (5, 9), (6, 7), (4, 4), (11, 12)]:
        np.testing.assert_array_equal(split_frames.rows_of(groups, "x", start, stop), column[start:stop])
    with pytest.raises(RuntimeError, match="rows 3-7: the groups given hold 2 of them"):
        split_frames.rows_of(groups[1:2], "x", 3, 7)
