"""Descriptors (spec §1) against the brute-force reference in naive.py, mixed periodicity,
and invariance properties (rotation, translation, permutation, supercells)."""

import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from ase.build import bulk, fcc111
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
import quests_core
import structures
from conftest import descriptors_of

ATOL = 1e-12  # descriptors are O(0.1-1); agreement is to rounding


def naive_of(atoms, k=32, cutoff=5.0):
    return naive.descriptors(atoms.positions, atoms.cell.array, atoms.pbc, k, cutoff)


STRUCTURES = {
    "fcc_bulk": lambda: structures.thermal_fcc_cu(repeat=3, seed=10),
    "bcc_bulk": lambda: structures.thermal_bcc_fe(repeat=3, seed=11),
    "icosahedron": lambda: structures.nanoparticle("icosahedron", seed=12),
    "octahedron": lambda: structures.nanoparticle("octahedron", seed=13),
    "CH4": lambda: structures.small_molecule("CH4", seed=14),
    "H2O": lambda: structures.small_molecule("H2O", seed=15),
    "C6H6": lambda: structures.small_molecule("C6H6", seed=16),
    "slab_TTF": lambda: structures.cu111_slab(seed=17),
    "wire_TFF": lambda: structures.cu_wire(seed=18),
    "triclinic": lambda: structures.triclinic_cell(seed=19, n_atoms=4),
}


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_matches_naive_reference(name):
    atoms = STRUCTURES[name]()
    x = descriptors_of(atoms)
    assert x.shape == (len(atoms), 63)
    assert x.dtype == np.float64
    np.testing.assert_allclose(x, naive_of(atoms), rtol=0, atol=ATOL)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 12, 17, 31, 32, 33, 64, 100])
def test_matches_naive_reference_for_any_k(k):
    # k = 64 and 100 exceed the ~42 neighbours inside 5 Å: x1 is zero-padded, x2 divides by k
    atoms = structures.thermal_fcc_cu(repeat=2, seed=20)
    x = descriptors_of(atoms, k=k)
    assert x.shape == (len(atoms), 2 * k - 1)
    np.testing.assert_allclose(x, naive_of(atoms, k=k), rtol=0, atol=ATOL)
    if k == 100:
        assert (x[:, 60:k] == 0).all()


@pytest.mark.parametrize("cutoff", [2.0, 3.0, 4.2, 6.5, 9.0])
def test_matches_naive_reference_for_any_cutoff(cutoff):
    # 2.0 Å is below the nearest-neighbour distance: every descriptor is all zeros
    atoms = structures.thermal_fcc_cu(repeat=2, seed=21)
    x = descriptors_of(atoms, k=24, cutoff=cutoff)
    np.testing.assert_allclose(x, naive_of(atoms, k=24, cutoff=cutoff), rtol=0, atol=ATOL)
    assert (x == 0).all() == (cutoff == 2.0)


@pytest.mark.parametrize(("lattice", "k"), [("fcc", 12), ("fcc", 18), ("fcc", 42), ("fcc", 64), ("bcc", 14)])
def test_one_atom_cell_much_smaller_than_cutoff(lattice, k):
    # cell vectors 2.5 Å against a 5 Å cutoff: many images of the single atom
    atoms = bulk("Cu", "fcc", a=3.61) if lattice == "fcc" else bulk("Fe", "bcc", a=2.87)
    x = descriptors_of(atoms, k=k)
    np.testing.assert_allclose(x, naive_of(atoms, k=k), rtol=0, atol=ATOL)
    first_shell = 3.61 / np.sqrt(2) if lattice == "fcc" else 2.87 * np.sqrt(3) / 2
    assert x[0, 0] == pytest.approx(naive.weight(first_shell, 5.0) / first_shell, rel=1e-14)


def test_fewer_atoms_than_k_are_zero_padded():
    atoms = structures.small_molecule("CH4")
    x = descriptors_of(atoms, k=32)
    x1, x2 = x[:, :32], x[:, 32:]
    assert (x1[:, :4] > 0).all()  # all 4 other atoms are within 5 Å
    assert (x1[:, 4:] == 0).all()
    # each neighbour pairs with the 3 others: 3 non-zero entries per row of V
    assert (x2[:, :3] > 0).all() and (x2[:, 3:] == 0).all()
    # a lone atom has no neighbours at all
    assert (quests_core.compute_descriptors([[0.0, 0.0, 0.0]], k=5) == 0).all()


def test_descriptor_width():
    assert quests_core.descriptor_width(32) == 63
    assert quests_core.descriptor_width(1) == 1


# ---------------------------------------------------------------------------------------
# mixed periodicity


def test_slab_equals_periodic_slab_with_wide_vacuum():
    slab = structures.cu111_slab(size=(3, 3, 4), vacuum=6.0, seed=30)
    gap = slab.cell[2, 2] - np.ptp(slab.positions[:, 2])
    assert gap > 2 * 5.0
    open_z = quests_core.compute_descriptors(slab.positions, slab.cell.array, (True, True, False), 32, 5.0)
    periodic = quests_core.compute_descriptors(slab.positions, slab.cell.array, (True, True, True), 32, 5.0)
    np.testing.assert_allclose(open_z, periodic, rtol=0, atol=ATOL)
    np.testing.assert_allclose(open_z, naive_of(slab), rtol=0, atol=ATOL)
    # and it is not the non-periodic answer: in-plane images matter
    assert np.abs(open_z - descriptors_of_open(slab)).max() > 1e-2


def descriptors_of_open(atoms, k=32, cutoff=5.0):
    return quests_core.compute_descriptors(atoms.positions, None, False, k, cutoff)


def test_wire_equals_periodic_wire_with_wide_vacuum():
    wire = structures.cu_wire(length=4, seed=31)
    assert wire.pbc.tolist() == [True, False, False]
    open_yz = descriptors_of(wire)
    periodic = quests_core.compute_descriptors(wire.positions, wire.cell.array, True, 32, 5.0)
    np.testing.assert_allclose(open_yz, periodic, rtol=0, atol=ATOL)
    np.testing.assert_allclose(open_yz, naive_of(wire), rtol=0, atol=ATOL)
    assert np.abs(open_yz - descriptors_of_open(wire)).max() > 1e-2


def test_open_axis_cell_vector_is_ignored():
    # ase.build without vacuum leaves cell[2] = 0 on the open axis; a tilted or zero open
    # vector must give the same descriptors as the orthogonal one
    slab = fcc111("Cu", size=(3, 3, 3), a=3.61, vacuum=None)
    slab = structures.perturb(slab, 0.05, 32)
    assert slab.pbc.tolist() == [True, True, False]
    reference = quests_core.compute_descriptors(slab.positions, np.vstack([slab.cell[:2], [0, 0, 40.0]]),
                                                slab.pbc, 32, 5.0)
    for third in ([0.0, 0.0, 0.0], [3.0, -2.0, 7.0], [1.0, 1.0, 0.01]):
        cell = np.vstack([slab.cell[:2], third])
        np.testing.assert_allclose(quests_core.compute_descriptors(slab.positions, cell, slab.pbc, 32, 5.0),
                                   reference, rtol=0, atol=ATOL)


# ---------------------------------------------------------------------------------------
# invariance properties

INVARIANCE_CASES = {
    # name: (builder(seed), k, cutoff); all free of neighbour ties at the k-th slot
    "fcc_cubic_cell": (lambda seed: structures.thermal_fcc_cu(repeat=1, seed=seed), 32, 5.0),
    "fcc_supercell": (lambda seed: structures.thermal_fcc_cu(repeat=2, seed=seed), 32, 5.0),
    "nanoparticle": (lambda seed: structures.nanoparticle("icosahedron", seed=seed), 32, 5.0),
    "molecule": (lambda seed: structures.small_molecule("C6H6", seed=seed), 32, 5.0),
    "slab": (lambda seed: structures.cu111_slab(size=(2, 2, 3), seed=seed), 32, 5.0),
    "wire": (lambda seed: structures.cu_wire(length=2, seed=seed), 32, 5.0),
    # k above the number of neighbours inside 3.5 Å: no slot is cut among tied self-images
    "triclinic": (lambda seed: structures.triclinic_cell(seed=seed, n_atoms=3), 48, 3.5),
}


@settings(deadline=None, max_examples=12)
@given(name=st.sampled_from(sorted(INVARIANCE_CASES)), seed=st.integers(0, 2**32 - 1))
def test_rotation_and_translation_invariance(name, seed):
    build, k, cutoff = INVARIANCE_CASES[name]
    rng = np.random.default_rng(seed)
    atoms = build(seed)
    x = descriptors_of(atoms, k, cutoff)
    rotation = structures.random_rotation(rng)
    shift = rng.uniform(-20.0, 20.0, 3)
    moved = atoms.copy()
    moved.positions = atoms.positions @ rotation.T + shift
    moved.cell = atoms.cell.array @ rotation.T
    np.testing.assert_allclose(descriptors_of(moved, k, cutoff), x, rtol=0, atol=ATOL)


@settings(deadline=None, max_examples=10)
@given(name=st.sampled_from(sorted(INVARIANCE_CASES)), seed=st.integers(0, 2**32 - 1))
def test_permutation_invariance(name, seed):
    build, k, cutoff = INVARIANCE_CASES[name]
    atoms = build(seed)
    order = np.random.default_rng(seed).permutation(len(atoms))
    x = descriptors_of(atoms, k, cutoff)
    permuted = descriptors_of(atoms[order], k, cutoff)
    np.testing.assert_allclose(permuted, x[order], rtol=0, atol=ATOL)


@settings(deadline=None, max_examples=10)
@given(name=st.sampled_from(["fcc_cubic_cell", "fcc_supercell", "triclinic", "slab", "wire"]),
       seed=st.integers(0, 2**32 - 1))
def test_shifting_atoms_by_lattice_vectors_changes_nothing(name, seed):
    build, k, cutoff = INVARIANCE_CASES[name]
    rng = np.random.default_rng(seed)
    atoms = build(seed)
    integers = rng.integers(-3, 4, size=(len(atoms), 3)) * atoms.pbc  # only along periodic axes
    shifted = atoms.copy()
    shifted.positions = atoms.positions + integers @ atoms.cell.array
    np.testing.assert_allclose(descriptors_of(shifted, k, cutoff), descriptors_of(atoms, k, cutoff),
                               rtol=0, atol=ATOL)


SUPERCELL_CASES = {
    # name: (primitive builder(seed), k, cutoff)
    "fcc_1_atom_k12": (lambda seed: bulk("Cu", "fcc", a=3.61), 12, 5.0),
    "fcc_1_atom_k42": (lambda seed: bulk("Cu", "fcc", a=3.61), 42, 5.0),
    "bcc_1_atom_k14": (lambda seed: bulk("Fe", "bcc", a=2.87), 14, 5.0),
    "fcc_4_atom_thermal": (lambda seed: structures.thermal_fcc_cu(repeat=1, seed=seed), 32, 5.0),
    "triclinic_thermal": (lambda seed: structures.triclinic_cell(seed=seed, n_atoms=3), 48, 3.5),
    # a 1x1 surface cell has six tied self-images at 4.42 Å: k = 48 keeps all of them
    "slab_thermal": (lambda seed: structures.cu111_slab(size=(1, 1, 3), seed=seed), 48, 5.0),
}


@settings(deadline=None, max_examples=12)
@given(name=st.sampled_from(sorted(SUPERCELL_CASES)), seed=st.integers(0, 2**32 - 1),
       repeat=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)))
def test_supercell_repeats_primitive_descriptors(name, seed, repeat):
    build, k, cutoff = SUPERCELL_CASES[name]
    primitive = build(seed)
    if not primitive.pbc[2]:
        repeat = (repeat[0], repeat[1], 1)
    x = descriptors_of(primitive, k, cutoff)
    supercell = primitive.repeat(repeat)  # ase tiles: all primitive atoms, once per lattice shift
    np.testing.assert_allclose(descriptors_of(supercell, k, cutoff), np.tile(x, (np.prod(repeat), 1)),
                               rtol=0, atol=ATOL)


def test_triclinic_case_really_keeps_every_neighbour():
    # precondition of the tie-free claim above: k exceeds the neighbours inside the cutoff
    build, k, cutoff = INVARIANCE_CASES["triclinic"]
    x = descriptors_of(build(0), k, cutoff)
    assert (x[:, k - 1] == 0).all() and (x[:, 0] > 0).all()


# ---------------------------------------------------------------------------------------
# multicomponent (array API)


def test_multicomponent_blocks_are_sublattice_descriptors():
    atoms = structures.binary_alloy(repeat=2, seed=40)
    numbers = atoms.numbers
    x = quests_core.compute_descriptors(atoms.positions, atoms.cell.array, atoms.pbc, 12, 5.0, species=numbers)
    width = 23
    assert x.shape == (len(atoms), 3 * width)
    np.testing.assert_allclose(x[:, :width], naive_of(atoms, k=12), rtol=0, atol=ATOL)
    for block, z in enumerate(sorted(set(numbers)), start=1):
        members = numbers == z
        expected = np.zeros((len(atoms), width))
        expected[members] = naive_of(atoms[members], k=12)
        np.testing.assert_allclose(x[:, block * width:(block + 1) * width], expected, rtol=0, atol=ATOL)


def test_multicomponent_species_list_adds_empty_blocks():
    atoms = structures.thermal_fcc_cu(repeat=1, seed=41)
    x = quests_core.compute_descriptors(atoms.positions, atoms.cell.array, True, 8, 5.0,
                                        species=atoms.numbers, species_list=[29, 79, 28])
    assert x.shape == (4, 4 * 15)
    plain = descriptors_of(atoms, 8)
    np.testing.assert_array_equal(x[:, :15], plain)
    np.testing.assert_array_equal(x[:, 15:30], 0.0)  # Ni (28) sorts first, absent
    np.testing.assert_array_equal(x[:, 30:45], plain)  # Cu (29) is every atom
    np.testing.assert_array_equal(x[:, 45:], 0.0)  # Au (79) absent


# ---------------------------------------------------------------------------------------
# geometries that stress the neighbour search


def test_sparse_gas_matches_naive_reference():
    # 300 atoms spread over 150 Å: far more cutoff-sized bins than atoms
    rng = np.random.default_rng(42)
    positions = rng.uniform(0.0, 150.0, (300, 3))
    x = quests_core.compute_descriptors(positions, None, False, 8, 5.0)
    np.testing.assert_allclose(x, naive.descriptors(positions, None, False, 8, 5.0), rtol=0, atol=ATOL)
    assert (x[:, 0] > 0).sum() > 10 and (x[:, 0] == 0).sum() > 10  # some neighbours, some isolated


def test_strongly_skewed_cell_matches_naive_reference():
    # lattice vectors at ~20 degrees to each other; k exceeds the neighbours inside 3.5 Å
    cell = 1.6 * np.array([[3.0, 0.0, 0.0], [2.8, 1.1, 0.0], [2.7, 0.9, 1.2]])
    rng = np.random.default_rng(43)
    positions = rng.uniform(0.0, 1.0, (2, 3)) @ cell
    x = quests_core.compute_descriptors(positions, cell, True, 80, 3.5)
    assert (x[:, 79] == 0).all() and (x[:, 0] > 0).all()
    np.testing.assert_allclose(x, naive.descriptors(positions, cell, True, 80, 3.5), rtol=0, atol=ATOL)


@pytest.mark.parametrize("axes", [(0, 1, 2), (2, 0, 1), (1, 2, 0), (0, 2, 1)])
@pytest.mark.parametrize("kind", ["slab", "wire"])
def test_any_axis_can_be_the_periodic_one(kind, axes):
    atoms = structures.cu111_slab(size=(2, 2, 3), seed=44) if kind == "slab" else structures.cu_wire(length=2, seed=45)
    expected = descriptors_of(atoms)
    axes = list(axes)
    # relabel the Cartesian axes and the cell rows together
    positions = atoms.positions[:, axes]
    cell = atoms.cell.array[axes][:, axes]
    pbc = atoms.pbc[axes]
    assert pbc.tolist() != [True, True, True]
    x = quests_core.compute_descriptors(positions, cell, pbc, 32, 5.0)
    np.testing.assert_allclose(x, expected, rtol=0, atol=ATOL)


def test_descriptors_do_not_depend_on_threads():
    atoms = structures.thermal_fcc_cu(repeat=3, seed=46)
    expected = descriptors_of(atoms)
    before = numba.get_num_threads()
    try:
        for n_threads in range(1, numba.config.NUMBA_NUM_THREADS + 1):
            numba.set_num_threads(n_threads)
            np.testing.assert_array_equal(descriptors_of(atoms), expected)
    finally:
        numba.set_num_threads(before)


def test_many_structures_equal_one_at_a_time_in_order():
    """compute_descriptors_many runs small structures on a thread pool and large ones with
    every thread; the results must come back bit-identical and in input order."""
    small = [structures.thermal_fcc_cu(repeat=2, seed=seed) for seed in range(60, 66)]
    large = structures.thermal_fcc_cu(repeat=11, seed=66)  # 5,324 atoms: above the small limit
    assert len(large) >= quests_core.descriptors.SMALL_STRUCTURE_ATOMS > len(small[0])
    frames = small[:3] + [large] + small[3:] + [structures.nanoparticle("icosahedron", seed=67)]
    many = quests_core.compute_descriptors_many((a.positions, a.cell.array, a.pbc) for a in frames)
    assert len(many) == len(frames)
    for atoms, x in zip(frames, many):
        np.testing.assert_array_equal(x, quests_core.compute_descriptors(atoms.positions, atoms.cell.array, atoms.pbc))


def test_many_structures_raise_for_the_first_bad_one_in_order():
    good = structures.thermal_fcc_cu(repeat=2, seed=70)
    nan_positions = good.positions.copy()
    nan_positions[3] = np.nan
    clash = good.positions.copy()
    clash[1] = clash[0]
    batch = [(good.positions, good.cell.array, True), (nan_positions, good.cell.array, True),
             (clash, good.cell.array, True)]
    with pytest.raises(ValueError, match=r"positions contain NaN or inf \(atom 3\)"):
        quests_core.compute_descriptors_many(batch)


def test_many_structures_under_the_workqueue_threading_layer(tmp_path):
    """numba's workqueue layer aborts on parallel launches from two threads at once; small
    structures on the pool must not launch any (they run the serial kernel)."""
    script = tmp_path / "many.py"
    script.write_text(
        "import numba, numpy as np, quests_core, structures\n"
        "frames = [structures.thermal_fcc_cu(repeat=2, seed=s) for s in range(8)]\n"
        "many = quests_core.compute_descriptors_many((a.positions, a.cell.array, a.pbc) for a in frames)\n"
        "assert numba.threading_layer() == 'workqueue', numba.threading_layer()\n"
        "for a, x in zip(frames, many):\n"
        "    np.testing.assert_array_equal(x, quests_core.compute_descriptors(a.positions, a.cell.array, a.pbc))\n"
        "print('ok')\n")
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue", "NUMBA_NUM_THREADS": "2",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 300), seed=st.integers(0, 2**32 - 1))
def test_bounding_box_equals_numpy_reductions_over_rows(n, seed):
    points = np.random.default_rng(seed).normal(0.0, 10.0, (n, 3))
    low, high = quests_core.descriptors.bounding_box(points)
    np.testing.assert_array_equal(low, points.min(axis=0))
    np.testing.assert_array_equal(high, points.max(axis=0))
