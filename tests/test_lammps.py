"""pipeline.lammps: the LAMMPS text-dump reader against a slow reference reader written here
from the format, against ase.io.read, under any read-block size, and on every kind of bad input
(messages pinned)."""

import gzip
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lammps_dumps import SPECIES, STYLES, dump_text
from pipeline import lammps
from pipeline.errors import InputError
from pipeline.lammps import FrameLocation, iter_frames, read_frame, scan_frames

NUMBERS = {1: 29, 2: 28, 3: 13}
NUMBERS_OF = {"Cu": 29, "Ni": 28, "Al": 13, "Fe": 26}


# ---------------------------------------------------------------------------------------------
# a writer: frames made from a known cell, origin and fractional coordinates


def make_frame(rng, n_atoms=7, triclinic=False, unwrapped=False, timestep=0, n_types=3):
    lengths = rng.uniform(8, 12, 3)
    cell = np.diag(lengths)
    if triclinic:  # tilts of either sign, within LAMMPS' half-length limit
        cell[1, 0], cell[2, 0], cell[2, 1] = rng.uniform(-0.45, 0.45, 3) * lengths[[0, 0, 1]]
    fractional = rng.uniform(-1, 2, (n_atoms, 3)) if unwrapped else rng.random((n_atoms, 3))
    return dict(timestep=timestep, cell=cell, origin=rng.uniform(-20, 20, 3), fractional=fractional,
                ids=rng.permutation(n_atoms) + 1, types=rng.integers(1, n_types + 1, n_atoms))


def expected(frame):
    """What read_frame must return: id order, positions relative to the box origin."""
    order = np.argsort(frame["ids"])
    return frame["fractional"][order] @ frame["cell"], np.array([NUMBERS[t] for t in frame["types"][order]])


def write(tmp_path, text, name="dump.lammpstrj"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# ---------------------------------------------------------------------------------------------
# a slow reference reader: line by line, from the format


def naive_read(path, species):
    lines = open(path).read().splitlines()
    frames, k = [], 0
    while k < len(lines):
        if not lines[k].strip():
            k += 1
            continue
        items = {}
        while not lines[k].startswith("ITEM: ATOMS"):
            name = lines[k][len("ITEM: "):]
            count = 3 if name.startswith("BOX BOUNDS") else 1
            items[name.split()[0] if name.startswith("BOX") else name] = (name, lines[k + 1:k + 1 + count])
            k += 1 + count
        columns = lines[k].split()[2:]
        n = int(items["NUMBER OF ATOMS"][1][0])
        rows = [dict(zip(columns, line.split())) for line in lines[k + 1:k + 1 + n]]
        k += 1 + n
        name, bounds = items["BOX"]
        words = name.split()
        numbers = [[float(v) for v in line.split()] for line in bounds]
        if "xy" in words:
            (xlo_b, xhi_b, xy), (ylo_b, yhi_b, xz), (zlo, zhi, yz) = numbers
            xlo, xhi = xlo_b - min(0, xy, xz, xy + xz), xhi_b - max(0, xy, xz, xy + xz)
            ylo, yhi = ylo_b - min(0, yz), yhi_b - max(0, yz)
        else:
            (xlo, xhi), (ylo, yhi), (zlo, zhi) = numbers
            xy = xz = yz = 0.0
        cell = np.array([[xhi - xlo, 0, 0], [xy, yhi - ylo, 0], [xz, yz, zhi - zlo]])
        rows.sort(key=lambda row: int(row["id"]))
        for names in (("x", "y", "z"), ("xs", "ys", "zs"), ("xu", "yu", "zu"), ("xsu", "ysu", "zsu")):
            if all(c in columns for c in names):
                break
        xyz = np.array([[float(row[c]) for c in names] for row in rows])
        positions = xyz @ cell if names[0].startswith("xs") else xyz - [xlo, ylo, zlo]
        numbers = np.array([NUMBERS_OF[species[int(row["type"])]] for row in rows])
        frames.append(dict(positions=positions, numbers=numbers, cell=cell,
                           pbc=np.array([flag == "pp" for flag in words[-3:]])))
    return frames


def assert_frame(frame, reference, atol=1e-9):
    assert frame.positions.dtype == np.float64 and frame.positions.shape == (len(reference["numbers"]), 3)
    assert frame.numbers.dtype == np.int64 and frame.cell.dtype == np.float64 and frame.pbc.dtype == bool
    np.testing.assert_allclose(frame.positions, reference["positions"], rtol=0, atol=atol)
    np.testing.assert_array_equal(frame.numbers, reference["numbers"])
    np.testing.assert_allclose(frame.cell, reference["cell"], rtol=0, atol=atol)
    np.testing.assert_array_equal(frame.pbc, reference["pbc"])


# ---------------------------------------------------------------------------------------------
# reading


@pytest.mark.parametrize("triclinic", [False, True], ids=["orthogonal", "triclinic"])
@pytest.mark.parametrize("style", list(STYLES))
def test_frames_match_the_writer_and_the_naive_reader(tmp_path, style, triclinic):
    rng = np.random.default_rng(len(style) + 10 * triclinic)
    frames = [make_frame(rng, n, triclinic, unwrapped=style.endswith("u"), timestep=100 * k)
              for k, n in enumerate([7, 1, 30])]
    columns = ("vx", "*", "c_pe", "type", "element", "id", "q") if triclinic else ("id", "type", "*")
    path = write(tmp_path, dump_text(frames, style, columns, flags="pp ff sm", triclinic=triclinic))
    reference = naive_read(path, SPECIES)
    read = list(iter_frames(path, SPECIES))
    assert len(read) == len(reference) == 3
    for frame, wanted, made in zip(read, reference, frames):
        assert_frame(frame, wanted)
        positions, numbers = expected(made)
        np.testing.assert_allclose(frame.positions, positions, rtol=0, atol=1e-9)
        np.testing.assert_array_equal(frame.numbers, numbers)
        np.testing.assert_allclose(frame.cell, made["cell"], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(frame.pbc, [True, False, False])


@pytest.mark.parametrize("triclinic", [False, True], ids=["orthogonal", "triclinic"])
@pytest.mark.parametrize("style", list(STYLES))
def test_agrees_with_ase(tmp_path, style, triclinic):
    """ASE keeps the box origin in positions read from x/xu columns (and gives it as celldisp);
    it leaves it out for xs/xsu. Ours always leaves it out."""
    from ase.io import read

    rng = np.random.default_rng(7 + len(style) + 10 * triclinic)
    frames = [make_frame(rng, n, triclinic, unwrapped=style.endswith("u"), timestep=k) for k, n in enumerate([9, 4])]
    flags = "pp fs pp" if triclinic else "ff pp sm"
    path = write(tmp_path, dump_text(frames, style, ("id", "type", "*", "vx"), flags=flags, triclinic=triclinic))
    theirs = read(path, format="lammps-dump-text", index=":", specorder=["Cu", "Ni", "Al"])
    ours = list(iter_frames(path, SPECIES))
    assert len(theirs) == len(ours) == 2
    for frame, atoms in zip(ours, theirs):
        origin = 0.0 if "s" in style else atoms.get_celldisp().ravel()
        np.testing.assert_allclose(frame.positions, atoms.positions - origin, rtol=0, atol=1e-10)
        np.testing.assert_allclose(frame.cell, atoms.cell.array, rtol=0, atol=1e-10)
        np.testing.assert_array_equal(frame.pbc, atoms.pbc)
        np.testing.assert_array_equal(frame.numbers, atoms.numbers)


def test_scan_finds_every_frame_and_read_frame_reads_any_of_them(tmp_path):
    rng = np.random.default_rng(1)
    frames = [make_frame(rng, n, triclinic=k % 2 == 1, timestep=1000 + k) for k, n in enumerate([5, 40, 1, 12])]
    text = "".join(dump_text([f], triclinic=k % 2 == 1) for k, f in enumerate(frames))
    path = write(tmp_path, text)
    data = text.encode()
    starts = [i for i in range(len(data)) if data.startswith(b"ITEM: TIMESTEP", i)]
    locations = scan_frames(path)
    assert [loc.offset for loc in locations] == starts
    assert [loc.index for loc in locations] == [0, 1, 2, 3]
    assert [loc.n_atoms for loc in locations] == [5, 40, 1, 12]
    assert [loc.timestep for loc in locations] == [1000, 1001, 1002, 1003]
    assert [loc.offset + loc.size for loc in locations] == starts[1:] + [len(data)]
    streamed = list(iter_frames(path, SPECIES))
    for loc in reversed(locations):  # random access, any order
        by_location = read_frame(path, loc, SPECIES)
        by_offset = read_frame(path, loc.offset, SPECIES)
        for frame in (by_location, by_offset):
            positions, numbers = expected(frames[loc.index])
            np.testing.assert_allclose(frame.positions, positions, rtol=0, atol=1e-9)
            np.testing.assert_array_equal(frame.numbers, numbers)
            np.testing.assert_array_equal(frame.positions, streamed[loc.index].positions)
    assert pickle.loads(pickle.dumps(locations[2])) == locations[2]


@pytest.mark.parametrize("block", [7, 64, 1000, None])
def test_results_do_not_depend_on_the_read_block_size(tmp_path, monkeypatch, block):
    rng = np.random.default_rng(3)
    frames = [make_frame(rng, n, timestep=k) for k, n in enumerate([50, 3, 200, 1])]
    path = write(tmp_path, dump_text(frames, columns=("id", "type", "*", "vx", "c_pe")))
    if block is not None:
        monkeypatch.setattr(lammps, "_BLOCK", block)
        monkeypatch.setattr(lammps, "_MAX_BLOCK", 3 * block)
    locations = scan_frames(path)
    assert [loc.n_atoms for loc in locations] == [50, 3, 200, 1]
    for frame, made, loc in zip(iter_frames(path, SPECIES), frames, locations):
        positions, numbers = expected(made)
        for got in (frame, read_frame(path, loc, SPECIES), read_frame(path, loc.offset, SPECIES)):
            np.testing.assert_allclose(got.positions, positions, rtol=0, atol=1e-9)
            np.testing.assert_array_equal(got.numbers, numbers)


def test_large_frame_across_many_reads(tmp_path):
    """A frame larger than the first read (1 MiB) and than _count_lines' runs."""
    rng = np.random.default_rng(4)
    frames = [make_frame(rng, 30000, timestep=0), make_frame(rng, 2, timestep=1)]
    path = write(tmp_path, dump_text(frames))
    locations = scan_frames(path)
    assert locations[0].size > 1 << 20 and [loc.n_atoms for loc in locations] == [30000, 2]
    frame = read_frame(path, 0, SPECIES)
    positions, numbers = expected(frames[0])
    np.testing.assert_allclose(frame.positions, positions, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(frame.numbers, numbers)
    np.testing.assert_array_equal(read_frame(path, locations[1], SPECIES).numbers, expected(frames[1])[1])


def test_box_conversion_the_lammps_way(tmp_path):
    """Bounds include the tilt: xlo = xlo_bound - min(0, xy, xz, xy + xz), and so on."""
    text = """ITEM: TIMESTEP
5
ITEM: NUMBER OF ATOMS
2
ITEM: BOX BOUNDS xy xz yz pp pp pp
-3.0 12.0 -2.0
1.0 11.5 -1.0
2.0 12.0 1.5
ITEM: ATOMS id type x y z xs ys zs
2 1 0.0 1.0 2.0 0 0 0
1 2 1.0 2.0 5.0 0.5 0.5 0.5
"""
    path = write(tmp_path, text)
    frame = read_frame(path, 0, SPECIES)
    # xlo = -3 - min(0, -2, -1, -3) = 0, xhi = 12 - max(0, ...) = 12; ylo = 1, yhi = 10; zlo = 2
    cell = np.array([[12.0, 0, 0], [-2.0, 9.0, 0], [-1.0, 1.5, 10.0]])
    np.testing.assert_array_equal(frame.cell, cell)
    np.testing.assert_array_equal(frame.positions, [[1.0, 1.0, 3.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(frame.numbers, [28, 29])
    scaled = text.replace("x y z xs ys zs", "xu yu zu xs ys zs").replace("ATOMS id type xu yu zu", "ATOMS id type q r s")
    frame = read_frame(write(tmp_path, scaled, "scaled.dump"), 0, SPECIES)
    np.testing.assert_allclose(frame.positions, [[0.5 * (12 - 2 - 1), 0.5 * (9 + 1.5), 5.0], [0, 0, 0]], atol=1e-12)


def test_general_triclinic_units_time_and_crlf(tmp_path):
    """ITEM: BOX BOUNDS abc origin (LAMMPS 2024), ITEM: UNITS and ITEM: TIME before the
    timestep (the frame's offset is its first ITEM line), Windows line ends, no final newline."""
    frame_text = """ITEM: UNITS
nano
ITEM: TIME
0.25
ITEM: TIMESTEP
10
ITEM: NUMBER OF ATOMS
2
ITEM: BOX BOUNDS abc origin pp ff pp
1.0 0.0 0.0 0.5
0.5 1.0 0.0 -0.5
0.0 0.25 2.0 1.0
ITEM: ATOMS id type x y z
1 1 0.5 -0.5 1.0
2 1 1.5 1.0 3.0"""
    text = frame_text.replace("\n", "\r\n") + "\r\n" + frame_text.replace("TIMESTEP\n10", "TIMESTEP\n20")
    path = write(tmp_path, text)
    locations = scan_frames(path)
    assert [(loc.offset, loc.timestep) for loc in locations] == [(0, 10), (text.index("ITEM: UNITS", 1), 20)]
    for frame in [*iter_frames(path, SPECIES), read_frame(path, locations[1].offset, SPECIES)]:
        np.testing.assert_allclose(frame.cell, 10 * np.array([[1.0, 0, 0], [0.5, 1.0, 0], [0, 0.25, 2.0]]))
        np.testing.assert_allclose(frame.positions, [[0, 0, 0], [10.0, 15.0, 20.0]])
        np.testing.assert_array_equal(frame.pbc, [True, False, True])


def test_blank_lines_between_frames_and_many_types(tmp_path):
    rng = np.random.default_rng(5)
    frames = [make_frame(rng, 20, n_types=3, timestep=k) for k in range(2)]
    text = dump_text(frames[:1]) + "\n\n" + dump_text(frames[1:]) + "\n"
    path = write(tmp_path, text)
    assert [loc.timestep for loc in scan_frames(path)] == [0, 1]
    species = {1: "Cu", 2: "Ni", 3: "Al", 40: "Fe"}  # a mapping for a type the file lacks is fine
    for frame, made in zip(iter_frames(path, species), frames):
        np.testing.assert_array_equal(frame.numbers, expected(made)[1])


@pytest.mark.parametrize("ids", [[10, 3, 7, 1000000], [1, 2, 6, 4], [5, 4, 3, 2]],
                         ids=["sparse (argsort)", "gaps (counting)", "not from 1 (placed by id)"])
def test_ids_that_are_not_1_to_n_are_sorted(tmp_path, ids):
    lines = [f"{i} 1 {i * 0.001} 0 0" for i in ids]
    text = "ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n4\nITEM: BOX BOUNDS pp pp pp\n0 10\n0 10\n0 10\n"
    path = write(tmp_path, text + "ITEM: ATOMS id type x y z\n" + "\n".join(lines) + "\n")
    np.testing.assert_allclose(read_frame(path, 0, SPECIES).positions[:, 0], np.sort(ids) * 0.001)


FORMATS = ["%.17g", "%.15g", "%g", "%.6e", "%.10f", "%.3E", "%+.8g"]


def significant_digits(text: str) -> int:
    return len(text.lstrip("+-").lower().split("e")[0].replace(".", "").lstrip("0"))


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.floats(
    min_value=-1e-3, max_value=1e-3, allow_nan=False), min_size=1, max_size=20), fmt=st.sampled_from(FORMATS))
def test_numbers_parse_like_python_float(tmp_path_factory, values, fmt):
    """Equal to float() (correctly rounded) for up to 15 significant digits and magnitudes from
    1e-7 up, which covers what LAMMPS writes; within a few ulp otherwise."""
    path = tmp_path_factory.mktemp("floats") / "dump"
    texts = [fmt % v for v in values]
    rows = "".join(f"{k + 1} 1 {t} {t} {t}\n" for k, t in enumerate(texts))
    path.write_text(f"ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n{len(texts)}\nITEM: BOX BOUNDS ff ff ff\n"
                    f"0 1\n0 1\n0 1\nITEM: ATOMS id type x y z\n{rows}")
    got = read_frame(path, 0, SPECIES).positions[:, 1]
    wanted = np.array([float(t) for t in texts])
    exact = np.array([significant_digits(t) <= 15 for t in texts]) & ((wanted == 0) | (np.abs(wanted) >= 1e-7))
    np.testing.assert_array_equal(got[exact], wanted[exact])
    np.testing.assert_array_less(np.abs(got - wanted)[~exact], 8 * np.spacing(np.abs(wanted[~exact])))


# ---------------------------------------------------------------------------------------------
# bad input: one line, naming the file and the frame


HEADER = "ITEM: TIMESTEP\n{t}\nITEM: NUMBER OF ATOMS\n{n}\nITEM: BOX BOUNDS pp pp pp\n0 10\n0 10\n0 10\n"
GOOD = HEADER.format(t=0, n=2) + "ITEM: ATOMS id type x y z\n1 1 0 0 0\n2 2 1 1 1\n"


def frame(body, n=2, t=1, columns="id type x y z"):
    return HEADER.format(t=t, n=n) + f"ITEM: ATOMS {columns}\n" + body


def raises_everywhere(path, match):
    """iter_frames, and read_frame at the offset of the bad frame (the second, after GOOD), raise
    the same one-line error naming the file and frame 1."""
    for read in (lambda: list(iter_frames(path, SPECIES)), lambda: read_frame(path, len(GOOD), SPECIES)):
        with pytest.raises(InputError, match=match) as error:
            read()
        assert str(error.value).startswith(f"{path}, frame 1: ") and "\n" not in str(error.value)


BAD_ATOMS = {
    "truncated at the end": (frame("1 1 0 0 0\n", n=3), r"NUMBER OF ATOMS is 3 but only 1 atom lines follow, "
                             r"before the end of the file \(truncated\)", True),
    "fewer lines than atoms": (frame("1 1 0 0 0\n", n=2) + GOOD, r"NUMBER OF ATOMS is 2 but only 1 atom "
                               r"lines follow, before the next ITEM line", True),
    "file ends in the header": (HEADER.format(t=1, n=2).split("ITEM: BOX")[0], r"file ends after ITEM: NUMBER OF "
                                r"ATOMS, before ITEM: ATOMS \(truncated\)", True),
    "file ends in the box": (HEADER.format(t=1, n=2)[:60], r"ITEM: BOX BOUNDS needs 3 lines of values, found 0",
                             True),
    "no BOX BOUNDS section": ("ITEM: TIMESTEP\n1\nITEM: NUMBER OF ATOMS\n1\nITEM: ATOMS id type x y z\n1 1 0 0 0\n",
                              r"missing ITEM: BOX BOUNDS section before ITEM: ATOMS", True),
    "no ATOMS line": (HEADER.format(t=1, n=1) + "1 1 0 0 0\n", r"expected an ITEM line after ITEM: BOX BOUNDS, "
                      r"found '1 1 0 0 0': is the ITEM: ATOMS line missing\?", True),
    "no ATOMS section": (HEADER.format(t=1, n=1) + GOOD, r"ITEM: TIMESTEP appears twice before ITEM: ATOMS: the "
                         r"ITEM: ATOMS section is missing", True),
    "short BOX BOUNDS": ("ITEM: TIMESTEP\n1\nITEM: NUMBER OF ATOMS\n1\nITEM: BOX BOUNDS pp pp pp\n0 1\n0 1\n"
                         "ITEM: ATOMS id type x y z\n1 1 0 0 0\n", r"ITEM: BOX BOUNDS needs 3 lines of values, "
                         r"found 2", True),
    "zero atoms": (frame("", n=0), r"frame has zero atoms \(ITEM: NUMBER OF ATOMS is 0\)", True),
    "bad atom count": (frame("1 1 0 0 0\n", n="two"), r"ITEM: NUMBER OF ATOMS value 'two' is not an integer", True),
    "bad timestep": (frame("1 1 0 0 0\n", n=1, t="1.5"), r"ITEM: TIMESTEP value '1.5' is not an integer", True),
    "bad boundary flags": (GOOD.replace("pp pp pp", "pp pp") , r"needs three boundary flags such as 'pp pp ff'",
                           True),
    "box bounds not numbers": (GOOD.replace("0 10\n0 10", "0 10\n0 ten"), r"ITEM: BOX BOUNDS has a line that is "
                               r"not numbers", True),
    "empty box": (GOOD.replace("0 10\n0 10\n0 10", "0 10\n5 5\n0 10"), r"box of length 0 along y", True),
    "lj units": ("ITEM: UNITS\nlj\n" + GOOD, r"ITEM: UNITS is 'lj', which has no length in Å", True),
    "no position columns": (frame("1 1 0 0 0\n", n=1, columns="id type vx vy vz"), r"ITEM: ATOMS has no position "
                            r"columns \(x y z, xs ys zs, xu yu zu or xsu ysu zsu\): columns are id type vx vy vz",
                            True),
    "two of three positions": (frame("1 1 0 0\n", n=1, columns="id type x y"), r"no position columns .*: only x y "
                               r"of them", True),
    "no id column": (frame("1 0 0 0\n", n=1, columns="type x y z"), r"ITEM: ATOMS has no id column \(atoms are "
                     r"sorted by id\): add id to the dump command", True),
    "no type column": (frame("1 0 0 0\n", n=1, columns="id x y z"), r"ITEM: ATOMS has no type column", True),
    "column twice": (frame("1 1 0 0 0 0\n", n=1, columns="id type x y z x"), r"names a column twice", True),
    "nan": (frame("1 1 0 0 0\n2 1 nan 0.5 0\n"), r"atom id 2 has a non-finite position: x y z = nan 0.5 0", False),
    "inf": (frame("1 1 0 0 -inf\n2 1 0 0 0\n"), r"atom id 1 has a non-finite position: x y z = 0 0 -inf", False),
    "1e999": (frame("1 1 0 0 1e999\n2 1 0 0 0\n"), r"atom id 1 has a non-finite position", False),
    "type without element": (frame("1 1 0 0 0\n2 4 0 0 0\n"), r"type 4 has no element: pass species=\{1: 'Cu', "
                             r"2: 'Ni', 3: 'Al', 4: <symbol>\}", False),
    "types without elements": (frame("1 5 0 0 0\n2 4 0 0 0\n"), r"types 4, 5 have no element", False),
    "type 0": (frame("1 0 0 0 0\n2 1 0 0 0\n"), r"atom line 1 \(of 2\): type 0 is not a LAMMPS type", False),
    "malformed float": (frame("1 1 0 0 0\n2 1 1.0.0 0 0\n"), r"atom line 2 \(of 2\): cannot read '1\.0\.0' in "
                        r"column x as a number", False),
    "word for a float": (frame("1 1 0 abc 0\n2 1 0 0 0\n"), r"cannot read 'abc' in column y as a number", False),
    "bare exponent": (frame("1 1 0 0 1e\n2 1 0 0 0\n"), r"cannot read '1e' in column z as a number", False),
    "float for an id": (frame("1 1 0 0 0\n2.0 1 0 0 0\n"), r"cannot read '2\.0' in column id as an integer", False),
    "too few values": (frame("1 1 0 0 0\n2 1 0 0\n"), r"atom line 2 \(of 2\) has 4 values, ITEM: ATOMS names 5 "
                       r"\(id type x y z\)", False),
    "too many values": (frame("1 1 0 0 0 7\n2 1 0 0 0\n"), r"atom line 1 \(of 2\) has more values than", False),
    "blank atom line": (frame("1 1 0 0 0\n\n"), r"atom line 2 \(of 2\) has 0 values", False),
    "duplicate id": (frame("2 1 0 0 0\n2 1 0 0 0\n"), r"atom id 2 appears more than once", False),
    "duplicate id among 1..N": (frame("3 1 0 0 0\n1 1 0 0 0\n3 1 0 0 0\n", n=3), r"atom id 3 appears more than "
                                r"once", False),
    "duplicate sparse id": (frame("7 1 0 0 0\n7000000 1 0 0 0\n7 1 0 0 0\n", n=3), r"atom id 7 appears more than "
                            r"once", False),
}


@pytest.mark.parametrize("case", list(BAD_ATOMS))
def test_bad_frames_raise_input_error_naming_file_and_frame(tmp_path, case):
    """The bad frame is the second in the file (index 1), after a good one."""
    body, match, in_header = BAD_ATOMS[case]
    path = write(tmp_path, GOOD + body)
    raises_everywhere(path, match)
    if in_header:  # scan_frames reads headers and counts lines: it sees these too
        with pytest.raises(InputError, match=match) as error:
            scan_frames(path)
        assert str(error.value).startswith(f"{path}, frame 1: ")
    else:
        assert len(scan_frames(path)) == 2
        with pytest.raises(InputError, match=match):
            read_frame(path, scan_frames(path)[1], SPECIES)
    read_frame(path, 0, SPECIES)  # the good frame before it still reads


def test_extra_atom_lines_show_as_a_bad_next_frame(tmp_path):
    path = write(tmp_path, GOOD.replace("2 2 1 1 1\n", "2 2 1 1 1\n3 1 0 0 0\n") + GOOD)
    with pytest.raises(InputError, match=r"frame 1: expected 'ITEM: TIMESTEP' at byte \d+, found '3 1 0 0 0': not "
                       r"a LAMMPS text dump, or the frame before has more atom lines than its NUMBER OF ATOMS"):
        scan_frames(path)


def test_files_that_are_not_dumps(tmp_path, monkeypatch):
    with pytest.raises(InputError, match=r"missing\.dump: no such file"):
        scan_frames(tmp_path / "missing.dump")
    with pytest.raises(InputError, match=r": is a directory, not a LAMMPS dump file"):
        read_frame(tmp_path, 0, SPECIES)
    empty = write(tmp_path, "", "empty.dump")
    for read in (lambda: scan_frames(empty), lambda: list(iter_frames(empty, SPECIES))):
        with pytest.raises(InputError, match=r"empty\.dump: no frames: the file is empty"):
            read()
    xyz = write(tmp_path, "2\ncomment\nCu 0 0 0\nCu 1 1 1\n", "atoms.xyz")
    with pytest.raises(InputError, match=r"atoms\.xyz, frame 0: expected 'ITEM: TIMESTEP' at byte 0, found '2': "
                       r"not a LAMMPS text dump"):
        scan_frames(xyz)
    compressed = write(tmp_path, gzip.compress(GOOD.encode()), "dump.gz")
    with pytest.raises(InputError, match=r"dump\.gz: is gzip-compressed: decompress it first"):
        scan_frames(compressed)
    binary = write(tmp_path, b"\x00\x01" * 100000, "binary.dump")
    with pytest.raises(InputError, match=r"binary\.dump, frame 0: a header line at byte 0 is longer than"):
        scan_frames(binary)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    good = write(tmp_path, GOOD, "good.dump")
    monkeypatch.setattr(lammps, "open", refuse, raising=False)
    with pytest.raises(InputError, match=r"good\.dump: cannot read: Permission denied"):
        read_frame(good, 0, SPECIES)


def test_offsets_that_are_not_frames(tmp_path):
    path = write(tmp_path, GOOD + GOOD.replace("TIMESTEP\n0", "TIMESTEP\n1"))
    with pytest.raises(InputError, match=r"dump\.lammpstrj: byte offset 5 is not the start of a frame \(found "
                       r"'TIMESTEP'\): use an offset from scan_frames"):
        read_frame(path, 5, SPECIES)
    with pytest.raises(InputError, match=r"dump\.lammpstrj: no frame at byte offset 9999: the file ends before it"):
        read_frame(path, 9999, SPECIES)
    with pytest.raises(InputError, match=r"byte offset -1 is negative"):
        read_frame(path, -1, SPECIES)
    location = scan_frames(path)[1]
    # a location built without the timestep (as pipeline.readers does) reads the same frame
    unknown_timestep = FrameLocation(location.offset, location.n_atoms, -1, location.index, location.size)
    np.testing.assert_array_equal(read_frame(path, unknown_timestep, SPECIES).positions,
                                  read_frame(path, location, SPECIES).positions)
    write(tmp_path, GOOD + frame("1 1 0 0 0\n2 1 0 0 0\n3 1 0 0 0\n", n=3))
    with pytest.raises(InputError, match=r"frame 1: the frame at byte \d+ has 3 atoms, its location 2: the file "
                       r"changed since scan_frames"):
        read_frame(path, location, SPECIES)
    write(tmp_path, GOOD + GOOD.replace("1 1 1\n", "1.5 1 1\n"))
    with pytest.raises(InputError, match=r"frame 1: the frame ends at byte \d+, where scan_frames found byte \d+: "
                       r"the file changed since scan_frames"):
        read_frame(path, location, SPECIES)
    write(tmp_path, GOOD + GOOD.replace("TIMESTEP\n0", "TIMESTEP\n1")[:-5])
    with pytest.raises(InputError, match=r"frame 1: the file ends at byte \d+, before the end of the frame "
                       r"scan_frames found"):
        read_frame(path, location, SPECIES)


@pytest.mark.parametrize("species, match", [
    (None, r"species must be a non-empty dict of LAMMPS type -> chemical symbol, e\.g\. species=\{1: 'Cu', 2: 'Ni'\}"),
    ({}, r"species must be a non-empty dict"),
    (["Cu"], r"species must be a non-empty dict"),
    ({"1": "Cu"}, r"species key '1' is not a LAMMPS type \(1, 2, \.\.\.\)"),
    ({0: "Cu"}, r"species key 0 is not a LAMMPS type"),
    ({1: "Xx"}, r"species\[1\] = 'Xx' is not a chemical symbol"),
    ({1: 29}, r"species\[1\] = 29 is not a chemical symbol"),
])
def test_bad_species(tmp_path, species, match):
    path = write(tmp_path, GOOD)
    for read in (lambda: read_frame(path, 0, species), lambda: next(iter_frames(path, species))):
        with pytest.raises(InputError, match=match):
            read()


def test_location_is_a_small_picklable_record():
    location = FrameLocation(offset=10, n_atoms=3, timestep=7, index=1, size=99)
    assert pickle.loads(pickle.dumps(location)) == location
    with pytest.raises(AttributeError):
        location.offset = 11
