"""H, D, dH, novelty and overlap (spec §2 and §4): against naive.py, the sanity facts of the
method as properties, and associative partial statistics."""

import functools

import numpy as np
import pytest
from ase.build import bulk
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
import quests_core
import structures
from conftest import descriptors_of, gemm_tolerance
from quests_core import DeltaEntropyPartial, EntropyPartial

HS = np.array([0.008, 0.015, 0.05])


def test_entropy_and_diversity_match_naive(mixed_x):
    tolerance = gemm_tolerance(mixed_x, mixed_x, HS, np.float64)
    for h, tol in zip(HS, tolerance):
        H = quests_core.entropy(mixed_x, h)
        D = quests_core.diversity(mixed_x, h)
        assert isinstance(H, float) and isinstance(D, float)
        assert abs(H - naive.entropy(mixed_x, h)) <= tol
        assert abs(D - naive.diversity(mixed_x, h)) <= tol
        assert 0.0 < H < np.log(len(mixed_x)) and 0.0 < D <= np.log(len(mixed_x))
    H = quests_core.entropy(mixed_x, HS)
    D = quests_core.diversity(mixed_x, list(HS))
    assert H.shape == D.shape == (3,)
    assert np.all(np.abs(H - naive.entropy(mixed_x, HS)) <= tolerance)
    assert np.all(np.abs(D - naive.diversity(mixed_x, HS)) <= tolerance)
    assert np.all(np.diff(H) < 0)  # a wider kernel sees more overlap


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_delta_entropy_novelty_overlap_match_naive(mixed_x, dtype):
    rng = np.random.default_rng(3)
    x = mixed_x[::2].astype(dtype)
    y = np.concatenate([mixed_x[1::2][:60], mixed_x[::2][:20], mixed_x[:20] + rng.normal(0, 0.05, (20, 63))])
    y = y.astype(dtype)
    dh = quests_core.delta_entropy(y, x, HS)
    expected = naive.delta_entropy(y, x, HS)
    assert dh.shape == (len(y), 3)
    assert np.all(np.abs(dh - expected) <= gemm_tolerance(y, x, HS, dtype))
    eps = 1e-5
    # no dH within rounding of a threshold (other than an exact 0), so the fractions are exact
    near_zero = np.abs(expected) < 1e-6
    assert (expected[near_zero] == 0).all() and (dh[near_zero] == 0).all()
    assert np.abs(expected - eps).min() > 1e-6
    novel = (expected > 0).mean(axis=0)
    covered = (expected < eps).mean(axis=0)
    assert 0 < novel[0] < 1 and 0 < covered[0] < 1
    np.testing.assert_array_equal(quests_core.novelty(y, x, HS), novel)
    np.testing.assert_array_equal(quests_core.overlap(y, x, HS), covered)
    for j, h in enumerate(HS):
        assert quests_core.novelty(y, x, h) == novel[j]
        assert quests_core.overlap(y, x, h, eps) == covered[j]
    # eps moves the overlap threshold
    assert quests_core.overlap(y, x, 0.015, eps=1e6) == 1.0


# ---------------------------------------------------------------------------------------
# sanity facts (spec §4)

PERFECT_CRYSTALS = {
    # a k that closes a neighbour shell: the k-th and (k+1)-th neighbours are never tied
    "fcc_k12": ("fcc", 12),
    "fcc_k18": ("fcc", 18),
    "fcc_k42": ("fcc", 42),
    "bcc_k14": ("bcc", 14),
}


@settings(deadline=None, max_examples=15)
@given(name=st.sampled_from(sorted(PERFECT_CRYSTALS)), lattice_constant=st.floats(2.6, 4.2),
       cubic=st.booleans(), repeat=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_identical_environments_have_zero_entropy(name, lattice_constant, cubic, repeat, seed):
    structure, k = PERFECT_CRYSTALS[name]
    atoms = bulk("Cu", structure, a=lattice_constant, cubic=cubic).repeat(repeat)
    rotation = structures.random_rotation(np.random.default_rng(seed))
    atoms.positions = atoms.positions @ rotation.T
    atoms.cell = atoms.cell.array @ rotation.T
    x = descriptors_of(atoms, k=k, cutoff=5.0)
    assert x[:, 0].min() > 0  # the first shell is inside the cutoff: x is not trivially zero
    for h in (0.015, 1e-3):
        assert abs(quests_core.entropy(x, h)) <= 1e-12
        assert abs(quests_core.diversity(x, h)) <= 1e-12


def test_perturbed_crystal_has_positive_entropy():
    # the counterpart of the above: the same crystal, thermally perturbed
    x = descriptors_of(structures.thermal_fcc_cu(repeat=2, sigma=0.05, seed=4), k=12)
    assert quests_core.entropy(x, 0.015) > 0.1


@settings(deadline=None, max_examples=20)
@given(n=st.integers(1, 63), h=st.sampled_from([0.005, 0.015, 0.1]), seed=st.integers(0, 2**32 - 1))
def test_mutually_far_environments_have_entropy_log_n(n, h, seed):
    # n points 60 bandwidths apart (pairwise): every kernel cross term is below exp(-1800)
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(63, 63)))
    x = (60 * h / np.sqrt(2)) * np.eye(63)[:n] @ rotation + rng.normal(0.0, 1.0, 63)
    assert abs(quests_core.entropy(x, h) - np.log(n)) <= 1e-12 * max(np.log(n), 1.0)
    assert abs(quests_core.diversity(x, h) - np.log(n)) <= 1e-12 * max(np.log(n), 1.0)
    np.testing.assert_allclose(quests_core.entropy(x, [h, 2 * h]), np.log(n), rtol=1e-12, atol=1e-12)


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 200), block_size=st.sampled_from([16, 2048]))
def test_duplicated_dataset_has_the_same_entropy(mixed_x, seed, n, block_size):
    x = mixed_x[np.random.default_rng(seed).choice(len(mixed_x), n, replace=False)]
    doubled = np.concatenate([x, x])
    H = quests_core.entropy(x, HS, block_size=block_size)
    np.testing.assert_allclose(quests_core.entropy(doubled, HS, block_size=block_size), H, rtol=1e-12, atol=1e-13)
    D = quests_core.diversity(x, HS, block_size=block_size)
    np.testing.assert_allclose(quests_core.diversity(doubled, HS, block_size=block_size), D, rtol=1e-12, atol=1e-13)


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 200), dtype=st.sampled_from([np.float32, np.float64]),
       block_size=st.sampled_from([5, 16, 2048]))
def test_dataset_is_never_novel_to_itself(mixed_x, seed, n, dtype, block_size):
    x = mixed_x[np.random.default_rng(seed).choice(len(mixed_x), n, replace=False)].astype(dtype)
    dh = quests_core.delta_entropy(x, x, HS, block_size=block_size)
    assert (dh <= 0).all()  # exactly: the self term is exactly 1
    assert quests_core.novelty(x, x, 0.015, block_size=block_size) == 0.0
    assert quests_core.overlap(x, x, 0.015, block_size=block_size) == 1.0
    H = quests_core.entropy(x, HS, block_size=block_size)
    assert ((H >= 0) & (H <= np.log(n) + 1e-12)).all()


# ---------------------------------------------------------------------------------------
# associative partial statistics


def _tree_sum(parts):
    while len(parts) > 1:
        parts = [parts[i] + parts[i + 1] if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
    return parts[0]


@pytest.fixture(scope="module")
def entropy_case(mixed_x):
    log_p = quests_core.log_kernel_sum(mixed_x, mixed_x, HS)
    return log_p, quests_core.entropy(mixed_x, HS), quests_core.diversity(mixed_x, HS)


@pytest.fixture(scope="module")
def delta_entropy_case(mixed_x):
    rng = np.random.default_rng(7)
    x = mixed_x[::3]
    y = np.concatenate([mixed_x[1::3][:60], mixed_x[:60] + rng.normal(0, 0.03, (60, 63))])
    return quests_core.delta_entropy(y, x, HS), quests_core.novelty(y, x, HS), quests_core.overlap(y, x, HS)


def _split(n, cuts, seed):
    """Non-empty [a, b) chunks covering range(n), in a random order."""
    bounds = [0, *sorted({c % n for c in cuts} - {0}), n]
    chunks = list(zip(bounds[:-1], bounds[1:]))
    return [chunks[i] for i in np.random.default_rng(seed).permutation(len(chunks))]


@settings(deadline=None, max_examples=25)
@given(cuts=st.lists(st.integers(1, 10_000), max_size=8), seed=st.integers(0, 2**32 - 1))
def test_entropy_partials_combine_in_any_order(entropy_case, cuts, seed):
    log_p, H, D = entropy_case
    whole = EntropyPartial.from_log_p(log_p)
    np.testing.assert_allclose(whole.entropy, H, rtol=1e-14)
    np.testing.assert_allclose(whole.diversity, D, rtol=1e-14)
    chunks = [EntropyPartial.from_log_p(log_p[a:b]) for a, b in _split(len(log_p), cuts, seed)]
    for combined in (functools.reduce(lambda a, b: a + b, chunks), _tree_sum(chunks),
                     functools.reduce(lambda a, b: b + a, chunks)):
        assert combined.n_environments == len(log_p)
        np.testing.assert_allclose(combined.entropy, H, rtol=1e-12)
        np.testing.assert_allclose(combined.diversity, D, rtol=1e-12)


@settings(deadline=None, max_examples=25)
@given(cuts=st.lists(st.integers(1, 10_000), max_size=8), seed=st.integers(0, 2**32 - 1))
def test_delta_entropy_partials_combine_in_any_order(delta_entropy_case, cuts, seed):
    dh, novel, covered = delta_entropy_case
    assert 0 < novel[1] < 1 and 0 < covered[1] < 1
    chunks = [DeltaEntropyPartial.from_dh(dh[a:b]) for a, b in _split(len(dh), cuts, seed)]
    for combined in (functools.reduce(lambda a, b: a + b, chunks), _tree_sum(chunks),
                     functools.reduce(lambda a, b: b + a, chunks)):
        assert combined.n_environments == len(dh)
        np.testing.assert_allclose(combined.dh_mean, dh.mean(axis=0), rtol=1e-12)
        np.testing.assert_array_equal(combined.max_dh, dh.max(axis=0))
        np.testing.assert_array_equal(combined.novelty, novel)
        np.testing.assert_array_equal(combined.overlap, covered)


def test_partials_of_one_bandwidth():
    log_p = np.array([0.0, np.log(2.0), np.log(4.0)])
    partial = EntropyPartial.from_log_p(log_p[:1]) + EntropyPartial.from_log_p(log_p[1:])
    # H = log 3 - mean log p; D = log(1 + 1/2 + 1/4)
    np.testing.assert_allclose(partial.entropy, [np.log(3) - np.log(8) / 3], rtol=1e-15)
    np.testing.assert_allclose(partial.diversity, [np.log(1.75)], rtol=1e-15)
    dh = DeltaEntropyPartial.from_dh([-1.0, 0.5]) + DeltaEntropyPartial.from_dh([2.0, 0.0, 1e-6])
    assert (dh.n_environments, dh.max_dh[0]) == (5, 2.0)
    assert dh.dh_mean[0] == pytest.approx((1.5 + 1e-6) / 5, rel=1e-15)
    assert (dh.novelty[0], dh.overlap[0]) == (0.6, 0.6)  # > 0: 0.5, 2, 1e-6; < 1e-5: -1, 0, 1e-6
