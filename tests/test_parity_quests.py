"""Agreement with the reference implementation, quests==2026.2.22, which is only called here.

Descriptors to 1e-10 absolute; H, D and dH to 1e-9 relative wherever quests is finite.
Structures are thermally perturbed, so no neighbour ties make x2 ambiguous (spec §1).
"""

import numpy as np
import pytest
import quests.descriptor
import quests.entropy

import quests_core
import structures
from conftest import descriptors_of

DESCRIPTOR_ATOL = 1e-10
ESTIMATOR_RTOL = 1e-9
BANDWIDTHS = [0.008, 0.015, 0.05, 0.2]

FRAMES = {
    "fcc_3x3x3": lambda: structures.thermal_fcc_cu(repeat=3, sigma=0.07, seed=50),
    "fcc_4x4x4": lambda: structures.thermal_fcc_cu(repeat=4, sigma=0.1, seed=51),
    "bcc_3x3x3": lambda: structures.thermal_bcc_fe(repeat=3, sigma=0.05, seed=52),
    "icosahedron": lambda: structures.nanoparticle("icosahedron", sigma=0.05, seed=53),
    "octahedron": lambda: structures.nanoparticle("octahedron", sigma=0.08, seed=54),
    "CH4": lambda: structures.small_molecule("CH4", seed=55),
    "H2O": lambda: structures.small_molecule("H2O", seed=56),
    "C6H6": lambda: structures.small_molecule("C6H6", seed=57),
}


def reference_descriptors(frames, k=32, cutoff=5.0):
    return quests.descriptor.get_descriptors(frames, k=k, cutoff=cutoff)


@pytest.fixture(scope="module")
def frames():
    return {name: build() for name, build in FRAMES.items()}


@pytest.mark.parametrize("name", sorted(FRAMES))
@pytest.mark.parametrize(("k", "cutoff"), [(32, 5.0), (16, 4.0), (40, 6.0)])
def test_descriptors_match_quests(frames, name, k, cutoff):
    atoms = frames[name]
    expected = reference_descriptors([atoms], k, cutoff)
    x = descriptors_of(atoms, k, cutoff)
    assert x.shape == expected.shape == (len(atoms), 2 * k - 1)
    assert np.abs(x - expected).max() <= DESCRIPTOR_ATOL
    if len(atoms) <= k:  # small molecule: padded slots are zero in both
        assert (x[:, len(atoms) - 1 : k] == 0).all()


def assert_rel_close_where_finite(ours, theirs, rtol=ESTIMATOR_RTOL):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape
    assert np.isfinite(ours).all()
    finite = np.isfinite(theirs)
    assert finite.any()
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=rtol, atol=0)


@pytest.mark.parametrize("name", ["fcc_4x4x4", "icosahedron", "C6H6", "mixed"])
def test_entropy_and_diversity_match_quests(frames, name):
    if name == "mixed":
        atoms_list = [frames["fcc_3x3x3"], frames["bcc_3x3x3"], frames["octahedron"], frames["H2O"]]
    else:
        atoms_list = [frames[name]]
    x = reference_descriptors(atoms_list)
    for h in BANDWIDTHS:
        assert_rel_close_where_finite(quests_core.entropy(x, h), quests.entropy.entropy(x, h))
        assert_rel_close_where_finite(quests_core.diversity(x, h), quests.entropy.diversity(x, h))
    hs = np.array(BANDWIDTHS)
    H, D = quests_core.entropy(x, hs), quests_core.diversity(x, hs)
    assert H.shape == D.shape == (len(hs),)
    assert_rel_close_where_finite(H, quests.entropy.entropy(x, hs))
    assert_rel_close_where_finite(D, quests.entropy.diversity(x, hs))
    assert np.all(H > 0) and np.all(np.diff(H) < 0)


@pytest.mark.filterwarnings("ignore:divide by zero encountered in log:RuntimeWarning")
def test_delta_entropy_matches_quests(frames):
    x = reference_descriptors([frames["fcc_3x3x3"], frames["icosahedron"]])
    hot = structures.thermal_fcc_cu(repeat=2, sigma=0.2, seed=58)
    y = np.concatenate([
        reference_descriptors([hot, frames["octahedron"], frames["CH4"]]),
        x[:5],  # members of X
        x[:2] + 1.0,  # far outliers: quests' p underflows to 0 and its dH is inf
    ])
    for h in BANDWIDTHS:
        dh = quests_core.delta_entropy(y, x, h)
        expected = quests.entropy.delta_entropy(y, x, h)
        assert_rel_close_where_finite(dh, expected)
        assert (dh[-7:-2] <= 0).all()
    assert np.isinf(quests.entropy.delta_entropy(y, x, 0.015)[-2:]).all()
    assert (quests_core.delta_entropy(y, x, 0.015)[-2:] > 1000).all()
    hs = np.array(BANDWIDTHS)
    dh = quests_core.delta_entropy(y, x, hs)
    expected = quests.entropy.delta_entropy(y, x, hs)
    # quests 2026.2.22 returns (n_y, n_bandwidths) here too, as n_y != n_bandwidths shows
    assert dh.shape == expected.shape == (len(y), len(hs))
    assert_rel_close_where_finite(dh, expected)
    # novelty and overlap follow from dH: compare with quests' dH thresholded
    finite = np.isfinite(expected).all(axis=1)
    np.testing.assert_array_equal(quests_core.novelty(y[finite], x, hs), (expected[finite] > 0).mean(axis=0))
    np.testing.assert_array_equal(quests_core.overlap(y[finite], x, hs), (expected[finite] < 1e-5).mean(axis=0))


def reorder_quests_multicomponent(x, k, n_blocks):
    """quests: [x1_all, x1_sp1, ..., x2_all, x2_sp1, ...]  ->  ours: [x1_all, x2_all, x1_sp1, x2_sp1, ...]."""
    x1_end = n_blocks * k
    blocks = []
    for b in range(n_blocks):
        blocks.append(x[:, b * k : (b + 1) * k])
        blocks.append(x[:, x1_end + b * (k - 1) : x1_end + (b + 1) * (k - 1)])
    return np.concatenate(blocks, axis=1)


@pytest.mark.parametrize("k", [32, 12])
def test_multicomponent_matches_quests(k):
    frames = [structures.binary_alloy(repeat=3, fraction=0.35, seed=60),
              structures.binary_alloy(repeat=2, fraction=0.5, seed=61)]
    expected = quests.descriptor.get_descriptors_multicomponent(frames, k=k, cutoff=5.0)
    ours = quests_core.get_descriptors_multicomponent(frames, k=k, cutoff=5.0)
    width = 2 * k - 1
    assert ours.shape == expected.shape == (sum(len(f) for f in frames), 3 * width)
    # the layout claim, checked on quests' own output: its first k columns are the plain x1,
    # and its columns 3k .. 3k + k - 1 the plain x2
    plain = reference_descriptors(frames, k)
    assert np.abs(expected[:, :k] - plain[:, :k]).max() <= DESCRIPTOR_ATOL
    assert np.abs(expected[:, 3 * k : 4 * k - 1] - plain[:, k:]).max() <= DESCRIPTOR_ATOL
    assert np.abs(ours - reorder_quests_multicomponent(expected, k, 3)).max() <= DESCRIPTOR_ATOL
    # blocks are Au then Cu (sorted symbols); the Au block is zero on Cu atoms
    is_cu = np.concatenate([f.numbers for f in frames]) == 29
    assert (ours[is_cu, width : 2 * width] == 0).all() and (ours[~is_cu, width : 2 * width] != 0).any()


def test_multicomponent_single_species_keeps_its_block():
    # quests_core appends the species block even for S = 1 (quests 2026.2.22 fails on a
    # single species with concat=True, so its plain descriptor is the reference here)
    frame = structures.thermal_fcc_cu(repeat=2, seed=62)
    expected = reference_descriptors([frame])
    ours = quests_core.get_descriptors_multicomponent([frame], k=32, cutoff=5.0)
    assert ours.shape == (32, 126)
    assert np.abs(ours[:, :63] - expected).max() <= DESCRIPTOR_ATOL
    np.testing.assert_array_equal(ours[:, 63:], ours[:, :63])
    with_absent = quests_core.get_descriptors_multicomponent([frame], k=32, cutoff=5.0, species=["Au", "Cu"])
    assert with_absent.shape == (32, 189)
    np.testing.assert_array_equal(with_absent[:, 63:126], 0.0)
    np.testing.assert_array_equal(with_absent[:, 126:], ours[:, 63:])


def test_slab_is_open_in_quests_and_periodic_in_plane_here():
    slab = structures.cu111_slab(seed=63)
    expected = reference_descriptors([slab])
    as_open = quests_core.compute_descriptors(slab.positions, None, False, 32, 5.0)
    assert np.abs(as_open - expected).max() <= DESCRIPTOR_ATOL
    assert np.abs(quests_core.get_descriptors([slab]) - expected).max() > 1e-2


# ---------------------------------------------------------------------------------------
# the ASE adapter


def test_adapter_matches_quests_on_several_frames(frames):
    dataset = [frames["fcc_3x3x3"], frames["C6H6"], frames["icosahedron"],
               structures.thermal_fcc_cu(repeat=3, sigma=0.1, seed=64), frames["bcc_3x3x3"]]
    expected = reference_descriptors(dataset, 32, 5.0)
    x = quests_core.get_descriptors(dataset, k=32, cutoff=5.0)
    assert x.shape == expected.shape == (sum(len(f) for f in dataset), 63)
    assert x.dtype == np.float64
    assert np.abs(x - expected).max() <= DESCRIPTOR_ATOL
    x1, x2 = quests_core.get_descriptors(dataset, k=32, cutoff=5.0, concat=False)
    e1, e2 = quests.descriptor.get_descriptors(dataset, k=32, cutoff=5.0, concat=False)
    assert x1.shape == e1.shape == (len(x), 32) and x2.shape == e2.shape == (len(x), 31)
    assert np.abs(x1 - e1).max() <= DESCRIPTOR_ATOL and np.abs(x2 - e2).max() <= DESCRIPTOR_ATOL
    np.testing.assert_array_equal(np.concatenate([x1, x2], axis=1), x)
    single = quests_core.get_descriptors(frames["CH4"], k=32, cutoff=5.0, dtype="float32")  # one Atoms
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, reference_descriptors([frames["CH4"]]), rtol=1e-6, atol=1e-7)
