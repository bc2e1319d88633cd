"""pipeline.extxyz against ase.io.read on files ase.io.write makes, numbers against float(),
random access, and every bad input with its message."""

import gzip
import re

import numpy as np
import pytest
from ase import Atoms
from ase.io import read, write
from hypothesis import given, settings
from hypothesis import strategies as st

import structures
from pipeline.errors import InputError
from pipeline.extxyz import FrameLocation, iter_frames, read_frame, scan_frames
from pipeline.textparse import EXACT, INEXACT, parse_float


def with_extras(atoms: Atoms, seed: int) -> Atoms:
    """atoms with forces, momenta and tags arrays and info keys that need quoting."""
    rng = np.random.default_rng(seed)
    atoms = atoms.copy()
    atoms.arrays["forces"] = rng.normal(size=(len(atoms), 3))
    atoms.set_momenta(rng.normal(size=(len(atoms), 3)))
    atoms.set_tags(rng.integers(0, 3, len(atoms)))
    atoms.info.update(energy=-1.5 * seed, comment='a "quoted" string, with key=value inside', step=seed,
                      converged=True, label="two words")
    return atoms


def slab(**kwargs) -> Atoms:
    atoms = structures.cu111_slab(**kwargs)
    atoms.info.pop("adsorbate_info", None)  # a dict ASE's extxyz writer skips with a warning
    return atoms


STRUCTURES = {
    "bulk": lambda: [structures.thermal_fcc_cu(repeat=2, seed=1)],
    "triclinic": lambda: [structures.triclinic_cell(seed=2, n_atoms=4)],
    "slab": lambda: [slab(size=(2, 2, 3), seed=3)],
    "molecule": lambda: [structures.small_molecule("CH3CH2OH", seed=4)],
    "alloy": lambda: [structures.binary_alloy(repeat=2, seed=5)],
    "wire": lambda: [structures.cu_wire(length=2, seed=6)],
    "extras": lambda: [with_extras(structures.thermal_fcc_cu(repeat=2, seed=s), s) for s in range(3)],
    "trajectory": lambda: [structures.thermal_fcc_cu(repeat=2, seed=7), structures.small_molecule("H2O", seed=8),
                           with_extras(slab(size=(3, 2, 2), seed=9), 9),
                           structures.binary_alloy(repeat=1, seed=10)],
}


def assert_same(frame, atoms: Atoms):
    assert frame.positions.dtype == np.float64 and frame.positions.shape == (len(atoms), 3)
    assert frame.numbers.dtype == np.int64 and frame.pbc.dtype == bool
    assert np.array_equal(frame.positions, atoms.positions)
    assert np.array_equal(frame.numbers, atoms.numbers)
    assert np.array_equal(frame.cell, atoms.cell.array)
    assert np.array_equal(frame.pbc, atoms.pbc)


def write_text(tmp_path, text: str, name="bad.extxyz"):
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_frames_equal_ase(tmp_path, name):
    path = tmp_path / f"{name}.extxyz"
    write(path, STRUCTURES[name](), format="extxyz")
    expected = read(path, index=":", format="extxyz")
    locations = scan_frames(path)
    assert [(loc.index, loc.n_atoms) for loc in locations] == [(i, len(a)) for i, a in enumerate(expected)]
    for location, atoms in zip(locations, expected):
        assert_same(read_frame(path, location), atoms)
    frames = list(iter_frames(path))
    assert len(frames) == len(expected)
    for frame, atoms in zip(frames, expected):
        assert_same(frame, atoms)


def test_random_access(tmp_path):
    path = tmp_path / "trajectory.extxyz"
    write(path, STRUCTURES["trajectory"](), format="extxyz")
    expected = read(path, index=":")
    locations = scan_frames(path)
    data = path.read_bytes()
    assert locations[0].offset == 0
    assert sum(loc.size for loc in locations) == len(data)
    for before, after in zip(locations, locations[1:]):
        assert after.offset == before.offset + before.size
    for location in reversed(locations):
        assert data[location.offset:].split(b"\n", 1)[0].strip() == str(location.n_atoms).encode()
        assert_same(read_frame(path, location), expected[location.index])


def test_layouts_and_header_keys(tmp_path):
    """Columns before and between species and pos, Z, symbols in any case, pbc spelled out
    or absent, no Lattice, no Properties, blank lines and a last line without a newline."""
    lattice = 'Lattice="4.0 0.0 0.0 1.0 5.0 0.0 0.5 0.5 6.0"'
    text = (f'2\n{lattice} Properties=id:I:1:species:S:1:q:R:1:pos:R:3:fixed:L:1 pbc="True true F"\n'
            "1 CU 0.5 0.0 0.1 0.2 T\n 2\tcu -1 1e-3 -2.5E+1 3 F  \n"
            f"1\n{lattice} Properties=species:S:1:Z:I:1:pos:R:3\nH 79 1 2 3\n"
            f"1\n{lattice}\nO 1 2 3\n"
            '1\nPhase=solid pbc="T T T"\n  Fe 4 5 6\n'
            '1\nLattice="2 0 0 0 2 0 0 0 2" pbc=F\nFe 1 1 1\n'
            "2\nplain xyz comment line, 'no keys'\nX 0 0 0\nNa 1 1 1\n\n\n"
            '0\nLattice="1 0 0 0 1 0 0 0 1" pbc="F F T"\n'
            "1\n\nHe 1.5 2.5 3.5")
    path = write_text(tmp_path, text, "layouts.extxyz")
    frames = list(iter_frames(path))
    assert [len(f) for f in frames] == [2, 1, 1, 1, 1, 2, 0, 1]
    first = frames[0]
    assert np.array_equal(first.numbers, [29, 29])
    assert np.array_equal(first.positions, [[0.0, 0.1, 0.2], [1e-3, -25.0, 3.0]])
    assert np.array_equal(first.cell, [[4, 0, 0], [1, 5, 0], [0.5, 0.5, 6]])
    assert np.array_equal(first.pbc, [True, True, False])
    assert np.array_equal(frames[1].numbers, [79])  # Z wins over species, as in ASE
    assert np.array_equal(frames[2].pbc, [True] * 3)  # Lattice without pbc: periodic
    assert np.array_equal(frames[3].cell, np.zeros((3, 3))) and not frames[3].pbc.any()  # no Lattice
    assert np.array_equal(frames[4].pbc, [False] * 3)  # one value for all three axes
    assert np.array_equal(frames[5].numbers, [0, 11])
    assert frames[6].positions.shape == (0, 3) and np.array_equal(frames[6].pbc, [False, False, True])
    assert np.array_equal(frames[7].positions, [[1.5, 2.5, 3.5]])
    for frame, atoms in zip(frames[:3], read(path, index="0:3")):
        assert_same(frame, atoms)


def test_windows_line_ends(tmp_path):
    path = tmp_path / "crlf.extxyz"
    write(path, STRUCTURES["trajectory"](), format="extxyz")
    expected = read(path, index=":")
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    frames = list(iter_frames(path))
    assert len(frames) == len(expected)
    for frame, atoms in zip(frames, expected):
        assert_same(frame, atoms)


def number_texts(rng: np.random.Generator, n: int) -> list[str]:
    """Number texts of many shapes: 17-digit reprs and long mantissas (float() needed),
    exponents far beyond +-22, fixed and scientific notation, signs, nan and inf."""
    values = rng.normal(size=n) * 10.0 ** rng.integers(-40, 40, n)
    shapes = [lambda v: repr(float(v)), lambda v: f"{v:.8f}", lambda v: f"{v:.20e}", lambda v: f"{v:+.3E}",
              lambda v: f"{v:.25f}", lambda v: f"{v:g}", lambda v: f"{v:.17g}"]
    texts = [shapes[k](v) for k, v in zip(rng.integers(0, len(shapes), n), values)]
    texts[:8] = ["nan", "-inf", "Infinity", "-0.0", ".5", "7.", "9007199254740993", "1e22"]
    return texts


def test_positions_equal_float_of_their_text(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000
    texts = number_texts(rng, 3 * n)
    lines = [f"Cu {x} {y} {z}" for x, y, z in zip(texts[0::3], texts[1::3], texts[2::3])]
    path = write_text(tmp_path, f"{n}\nProperties=species:S:1:pos:R:3\n" + "\n".join(lines) + "\n", "numbers.xyz")
    positions = read_frame(path, scan_frames(path)[0]).positions.ravel()
    expected = np.array([float(t) for t in texts])
    assert np.array_equal(positions, expected, equal_nan=True)
    assert np.array_equal(np.signbit(positions), np.signbit(expected))


@settings(deadline=None, max_examples=300)
@given(value=st.floats(allow_nan=False, allow_infinity=False),
       shape=st.sampled_from(["{!r}", "{:.8f}", "{:16.8f}", "{:.15e}", "{:.3g}", "{:.30f}"]))
def test_parse_float_is_float_or_hands_over(value, shape):
    text = shape.format(value).strip()
    parsed, stop, state = parse_float(np.frombuffer(bytearray(text.encode() + b"\n"), np.uint8), 0)
    assert stop == len(text) and state in (EXACT, INEXACT)
    if state == EXACT:
        assert parsed == float(text) and np.signbit(parsed) == np.signbit(float(text))


def test_nan_and_inf_positions_are_returned(tmp_path):
    path = write_text(tmp_path, "2\n\nCu nan 0 0\nCu 0 -inf 1\n")
    positions = read_frame(path, scan_frames(path)[0]).positions
    assert np.isnan(positions[0, 0]) and positions[1, 1] == -np.inf


GOOD = '2\nLattice="3 0 0 0 3 0 0 0 3" Properties=species:S:1:pos:R:3\nCu 0 0 0\nCu 1.5 1.5 0\n'
BAD_FRAMES = {  # the text of frame 1 (after GOOD), message
    "truncated": ("3\n\nCu 0 0 0\nCu 1 1 1\n",
                  r"the count line gives 3 atoms but only 2 atom lines follow before the end of the file \(truncated\)"),
    "no comment": ("3\n", r"the file ends after the count line \(3 atoms\), before the comment line \(truncated\)"),
    "count not an integer": ("two\n\nCu 0 0 0\nCu 1 1 1\n", r"expected the number of atoms, found 'two'"),
    "negative count": ("-2\n\n", r"the number of atoms is negative \(-2\)"),
    "malformed number": ("2\n\nCu 0 0 0\nCu 1.5 1.2.3 0\n",
                         r"atom line 2 \(of 2\): cannot read '1\.2\.3' in column pos\[1\] as a number"),
    "fortran exponent": ("1\n\nCu 1.0D+00 0 0\n",
                         r"atom line 1 \(of 1\): cannot read '1\.0D\+00' in column pos\[0\]"),
    "unknown symbol": ("2\n\nCu 0 0 0\nXx 1 1 1\n", r"atom line 2 \(of 2\): unknown chemical symbol 'Xx'"),
    "long symbol": ("1\n\nCopperium 0 0 0\n", r"atom line 1 \(of 1\): unknown chemical symbol 'Copperium'"),
    "Z not an element": ("1\nProperties=Z:I:1:pos:R:3\n200 0 0 0\n",
                         r"atom line 1 \(of 1\): Z = 200 is not an atomic number"),
    "Z not an integer": ("1\nProperties=Z:I:1:pos:R:3\n2.0 0 0 0\n",
                         r"atom line 1 \(of 1\): cannot read '2\.0' in column Z as an atomic number"),
    "too few values": ("1\nProperties=species:S:1:pos:R:3:forces:R:3\nCu 0 0 0 1 1\n",
                       r"atom line 1 \(of 1\) has 6 values, not the 7 columns of Properties=species:S:1:pos:R:3:forces"),
    "too many values": ("1\n\nCu 0 0 0 0\n", r"atom line 1 \(of 1\) has more values than the 4 columns"),
    "no pos": ("1\nProperties=species:S:1:forces:R:3\nCu 0 0 0\n",
               r"Properties=species:S:1:forces:R:3 has no pos:R:3 column, so no positions"),
    "no species": ("1\nProperties=pos:R:3:forces:R:3\n0 0 0 0 0 0\n",
                   r"Properties=pos:R:3:forces:R:3 has no species:S:1 \(or Z:I:1\) column, so no elements"),
    "pos not R:3": ("1\nProperties=species:S:1:pos:R:2\nCu 0 0\n",
                    r"Properties=species:S:1:pos:R:2 gives pos as R:2, not pos:R:3"),
    "species not S:1": ("1\nProperties=species:I:1:pos:R:3\n29 0 0 0\n",
                        r"Properties=species:I:1:pos:R:3 gives species as I:1, not species:S:1"),
    "not triples": ("1\nProperties=species:S:pos:R:3\nCu 0 0 0\n",
                    r"Properties=species:S:pos:R:3 is not NAME:TYPE:COLUMNS triples"),
    "unknown type": ("1\nProperties=species:S:1:pos:R:3:x:Q:1\nCu 0 0 0 1\n",
                     r"Properties=species:S:1:pos:R:3:x:Q:1: column x has type 'Q', not one of S, R, I, L"),
    "column twice": ("1\nProperties=species:S:1:pos:R:3:pos:R:3\nCu 0 0 0 0 0 0\n",
                     r"Properties=species:S:1:pos:R:3:pos:R:3 names pos twice"),
    "bad Lattice": ('1\nLattice="1 0 0 0 1 0 0 0"\nCu 0 0 0\n', r'Lattice="1 0 0 0 1 0 0 0" is not 9 numbers'),
    "bad pbc": ('1\nLattice="1 0 0 0 1 0 0 0 1" pbc="T T yes"\nCu 0 0 0\n',
                r'pbc="T T yes" is not three \(or one\) of T, F, True, False'),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_bad_frame(tmp_path, case):
    text, message = BAD_FRAMES[case]
    path = write_text(tmp_path, GOOD + text)
    pattern = re.escape(str(path)) + r", frame 1: " + message
    with pytest.raises(InputError, match=pattern):
        for location in scan_frames(path):
            read_frame(path, location)
    frames = iter_frames(path)
    assert len(next(frames)) == 2  # frame 0 comes before the error
    with pytest.raises(InputError, match=pattern):
        next(frames)


def test_extra_atom_line(tmp_path):
    path = write_text(tmp_path, GOOD.replace("Cu 1.5 1.5 0\n", "Cu 1.5 1.5 0\nCu 3 3 3\n") + GOOD)
    with pytest.raises(InputError, match=r"frame 1: expected the number of atoms, found 'Cu 3 3 3': does the frame "
                                         r"before have more atom lines than its count says\?"):
        scan_frames(path)


def test_vec_lines(tmp_path):
    path = write_text(tmp_path, GOOD + "VEC1 3 0 0\n")
    with pytest.raises(InputError, match=r"frame 1: expected the number of atoms, found 'VEC1 3 0 0': VEC lines "
                                         r"\(an old way to give the cell\) are not read, give it as Lattice="):
        scan_frames(path)


@pytest.mark.parametrize("content, message", [
    (b"", r"no frames: the file is empty"),
    (b"\n \n", r"no frames: the file is empty"),
    (b"hello world\n", r"frame 0: expected the number of atoms, found 'hello world': not an XYZ file"),
    (gzip.compress(GOOD.encode()), r"is gzip-compressed: decompress it first"),
])
def test_bad_file(tmp_path, content, message):
    path = tmp_path / "bad.extxyz"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        scan_frames(path)
    with pytest.raises(InputError, match=message):
        list(iter_frames(path))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match=r"missing\.extxyz: no such file"):
        scan_frames(tmp_path / "missing.extxyz")
    with pytest.raises(InputError, match=r"missing\.extxyz: no such file"):
        read_frame(tmp_path / "missing.extxyz", FrameLocation(offset=0, n_atoms=2, index=0, size=10))
    with pytest.raises(InputError, match=r"is a directory, not an extxyz file"):
        scan_frames(tmp_path)


def test_file_changed_since_scan(tmp_path):
    path = write_text(tmp_path, GOOD + GOOD)
    locations = scan_frames(path)
    path.write_bytes((GOOD + GOOD).encode()[:-10])
    with pytest.raises(InputError, match=r"frame 1: the file ends at byte \d+, inside the frame scan_frames found "
                                         r"at bytes \d+-\d+: the file changed since scan_frames"):
        read_frame(path, locations[1])
    path.write_bytes(("1\n\nCu 0 0 0\n" + GOOD + GOOD).encode())
    with pytest.raises(InputError, match=r"frame 1: the frame at byte \d+ is not the 2-atom frame scan_frames found "
                                         r"there: the file changed since scan_frames"):
        read_frame(path, locations[1])
