"""Dataset tools of quests_core (spec §3) against quests==2026.2.22 where quests is
deterministic (bandwidth rule, per-frame dH, msc, conditional msc, fps), against its
sampling within sampling error (learning curve), and against brute-force numpy references
written here from the spec: every score recomputed from a full distance matrix after
every pick."""

import numpy as np
import pytest
import quests.cli.learning_curve
import quests.compression.fps
import quests.descriptor
import quests.entropy
from ase.build import bulk

import naive
import quests_core
from quests_core import (
    bandwidth_from_volume,
    compress,
    compression_size,
    compression_summary,
    entropy_sampler,
    fps,
    information_gap,
    k_means,
    learning_curve,
    mean_fps,
    mean_volume_per_atom,
    msc,
    random_selection,
    sample_indices,
    structure_delta_entropy,
    structure_entropies,
)

H = 0.015
REPEATS = [(1, 1, 2), (1, 2, 2), (2, 2, 2)]  # 8, 16 and 32 atoms


def cu_cells(n_structures, seed):
    """Small FCC Cu cells, strained by up to 2 % and displaced by 0.03-0.12 Å: one element
    and one phase, so every structure is within reach of the others' kernels."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_structures):
        atoms = bulk("Cu", "fcc", a=3.61 * (1 + rng.uniform(-0.02, 0.02)), cubic=True).repeat(
            REPEATS[rng.integers(len(REPEATS))])
        atoms.positions += rng.normal(0.0, rng.uniform(0.03, 0.12), atoms.positions.shape)
        frames.append(atoms)
    return frames


@pytest.fixture(scope="module")
def dataset():
    """30 structures: ours as (x, n_atoms), quests' as a list of per-structure arrays."""
    frames = cu_cells(30, seed=7)
    per_structure = [quests.descriptor.get_descriptors([atoms]) for atoms in frames]
    return quests_core.get_descriptors(frames), np.array([len(a) for a in frames]), per_structure, frames


def quests_entropies(per_structure, h=H):
    return np.array([quests.entropy.entropy(x, h) for x in per_structure])


# ------------------------------------------------------------------ bandwidth and volume

def test_bandwidth_from_volume_matches_quests():
    volumes = [4.0, 10.896, 11.8, 16.6, 25.0, 120.0]
    for volume in volumes:
        assert bandwidth_from_volume(volume) == pytest.approx(quests.entropy.get_bandwidth(volume), rel=1e-15)
    h = bandwidth_from_volume(np.array(volumes))
    assert h.shape == (6,) and np.all(np.diff(h) < 0) and h[-1] == pytest.approx(0.0119417, rel=1e-6)
    assert bandwidth_from_volume(11.8) == pytest.approx(0.06185, abs=1e-5)  # FCC Cu, by hand from spec §3


@pytest.mark.parametrize("volume", [0.0, -3.0, np.nan])
def test_bandwidth_refuses_a_volume_that_is_not_positive(volume):
    with pytest.raises(ValueError, match="volume must be > 0"):
        bandwidth_from_volume(volume)


def test_mean_volume_per_atom_is_quests_average(dataset):
    frames = dataset[3]
    expected = np.mean([atoms.get_volume() / len(atoms) for atoms in frames])
    cells = [atoms.cell.array for atoms in frames]
    assert mean_volume_per_atom(cells, [len(a) for a in frames]) == pytest.approx(expected, rel=1e-14)
    with pytest.raises(ValueError, match="structure 1 has no cell volume"):
        mean_volume_per_atom([np.eye(3), np.zeros((3, 3))], [1, 2])


# ------------------------------------------------------------------ per-structure dH and H

def test_structure_delta_entropy_is_quests_per_frame_dh(dataset):
    x, n_atoms, per_structure, _ = dataset
    expected = np.concatenate([quests.entropy.delta_entropy(xs, xs, H) for xs in per_structure])
    dh = structure_delta_entropy(x, n_atoms, H)
    assert dh.shape == (len(x),) and (dh <= 0).all()
    # dH near 0 (an environment alone in its frame) carries quests' distance rounding, ~1e-12 absolute
    np.testing.assert_allclose(dh, expected, rtol=1e-9, atol=1e-10)
    starts = np.cumsum(n_atoms) - n_atoms
    brute_force = np.concatenate([naive.delta_entropy(x[s:s + n], x[s:s + n], H) for s, n in zip(starts, n_atoms)])
    np.testing.assert_allclose(dh, brute_force, rtol=1e-12, atol=1e-14)
    several = structure_delta_entropy(x, n_atoms, [H, 0.05])
    assert several.shape == (len(x), 2)
    np.testing.assert_array_equal(several[:, 0], dh)


def test_structure_entropies_are_each_structure_alone(dataset):
    x, n_atoms, per_structure, _ = dataset
    starts = np.cumsum(n_atoms) - n_atoms
    expected = [naive.entropy(x[s:s + n], H) for s, n in zip(starts, n_atoms)]
    np.testing.assert_allclose(structure_entropies(x, n_atoms, H), expected, rtol=1e-12)
    np.testing.assert_allclose(structure_entropies(x, n_atoms, H), quests_entropies(per_structure), rtol=1e-9)


def test_large_structures_take_the_blocked_kernel_sums_with_the_same_result():
    rng = np.random.default_rng(2)
    n_atoms = np.array([300, 3, 257, 1, 256])  # either side of SMALL_STRUCTURE_ATOMS = 256
    x = rng.normal(0.0, 0.03, (n_atoms.sum(), 6))
    starts = np.cumsum(n_atoms) - n_atoms
    expected = np.concatenate([naive.delta_entropy(x[s:s + n], x[s:s + n], [0.02, 0.05]) for s, n in zip(starts, n_atoms)])
    np.testing.assert_allclose(structure_delta_entropy(x, n_atoms, [0.02, 0.05]), expected, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(structure_delta_entropy(x.astype(np.float32), n_atoms, 0.02), expected[:, 0],
                               rtol=1e-4, atol=1e-6)


def test_structures_must_cover_the_rows(dataset):
    x, n_atoms, _, _ = dataset
    with pytest.raises(ValueError, match="n_atoms adds up to"):
        structure_delta_entropy(x, n_atoms[:-1], H)
    with pytest.raises(ValueError, match="structure 1 has no atoms"):
        structure_entropies(x[:3], np.array([3, 0]), H)


# ------------------------------------------------------------------ msc and fps against quests

@pytest.mark.parametrize("size", [1, 12, 30])
def test_msc_picks_what_quests_picks(dataset, size):
    x, n_atoms, per_structure, _ = dataset
    expected = quests.compression.fps.msc(per_structure, quests_entropies(per_structure), size, h=H)
    assert msc(x, n_atoms, size, H).tolist() == [int(i) for i in expected]


def test_conditional_msc_picks_what_quests_picks(dataset):
    x, n_atoms, per_structure, _ = dataset
    reference_frames = cu_cells(4, seed=8)
    reference = [quests.descriptor.get_descriptors([atoms]) for atoms in reference_frames]
    expected = quests.compression.fps.msc_conditional(per_structure, quests_entropies(per_structure), 10,
                                                      reference=reference, h=H)
    ours = msc(x, n_atoms, 10, H, reference=quests_core.get_descriptors(reference_frames))
    assert ours.tolist() == [int(i) for i in expected]
    assert ours[0] != msc(x, n_atoms, 1, H)[0]  # the reference changes the first pick


@pytest.mark.parametrize("size", [2, 15, 30])
def test_fps_picks_what_quests_picks(dataset, size):
    x, n_atoms, per_structure, _ = dataset
    expected = quests.compression.fps.fps(per_structure, quests_entropies(per_structure), size)
    assert fps(x, n_atoms, size, H).tolist() == [int(i) for i in expected]


# ------------------------------------------------------------------ brute force references

def pairwise_squared(x):
    """Full matrix of squared distances from explicit differences, in row blocks."""
    return np.concatenate([((x[i:i + 64, None, :] - x[None, :, :]) ** 2).sum(axis=-1) for i in range(0, len(x), 64)])


def brute_force_msc(x, n_atoms, size, h, reference=None):
    """Every score recomputed from scratch after every pick (spec §3)."""
    bounds = np.cumsum(np.concatenate([[0], n_atoms]))
    rows = [slice(bounds[s], bounds[s + 1]) for s in range(len(n_atoms))]
    points = x if reference is None else np.concatenate([x, reference])
    exponent = -pairwise_squared(points)[:len(x)] / (2 * h**2)
    own = [-(np.logaddexp.reduce(exponent[r, r], axis=1) - np.log(n)).mean() for r, n in zip(rows, n_atoms)]
    picked = [int(np.argmax(own))] if reference is None else []
    while len(picked) < size:
        columns = np.concatenate([np.arange(len(x), len(points))] + [np.arange(len(x))[rows[s]] for s in picked])
        log_p = np.logaddexp.reduce(exponent[:, columns], axis=1)
        scores = np.array([(-log_p[r]).max() + own[s] for s, r in enumerate(rows)])
        scores[picked] = -np.inf
        picked.append(int(np.argmax(scores)))
    return picked


def brute_force_fps(x, n_atoms, size, first):
    bounds = np.cumsum(np.concatenate([[0], n_atoms]))[:-1]
    distances = np.sqrt(pairwise_squared(x))
    # mean over every pair of environments of structures s and t
    mean_distance = np.add.reduceat(np.add.reduceat(distances, bounds, axis=0), bounds, axis=1) / np.outer(n_atoms, n_atoms)
    picked = [first]
    while len(picked) < size:
        scores = mean_distance[:, picked].min(axis=1)
        scores[picked] = -np.inf
        picked.append(int(np.argmax(scores)))
    return picked


@pytest.fixture(scope="module")
def points():
    """700 'structures' of 1-3 points in 4 dimensions, in clumps: more structures than the
    greedy loop's largest leader group, so every path of it runs."""
    rng = np.random.default_rng(11)
    n_atoms = rng.integers(1, 4, 700)
    centres = rng.normal(0.0, 0.1, (40, 4))
    x = centres[rng.integers(0, 40, n_atoms.sum())] + rng.normal(0.0, 0.02, (n_atoms.sum(), 4))
    return x, n_atoms


@pytest.mark.parametrize("h", [0.02, 0.05])
def test_msc_equals_recomputing_every_score_after_every_pick(points, h):
    x, n_atoms = points
    assert msc(x, n_atoms, 60, h).tolist() == brute_force_msc(x, n_atoms, 60, h)
    reference = x[:30] + 0.01
    assert msc(x, n_atoms, 40, h, reference=reference).tolist() == brute_force_msc(x, n_atoms, 40, h, reference)


def test_fps_equals_recomputing_every_distance_after_every_pick(points):
    x, n_atoms = points
    first = int(np.argmax(structure_entropies(x, n_atoms, 0.02)))
    assert fps(x, n_atoms, 60, 0.02).tolist() == brute_force_fps(x, n_atoms, 60, first)


def test_msc_ranks_far_structures_by_distance_where_quests_sees_infinity():
    """Three structures far beyond every kernel (quests: p = 0, dH = inf for all, so it takes
    the lowest index); here dH stays finite and the farthest from the first pick comes next."""
    rng = np.random.default_rng(3)
    base = rng.normal(0.0, 0.01, (4, 5))
    x = np.concatenate([base, base + 1.0, base + 3.0, base + 2.0])
    n_atoms = np.array([4, 4, 4, 4])
    picks = msc(x, n_atoms, 4, H)
    assert picks[1] == {0: 2, 1: 2, 2: 0, 3: 0}[int(picks[0])]  # the structure 3 apart from the first
    assert sorted(picks.tolist()) == [0, 1, 2, 3]


# ------------------------------------------------------------------ baselines

def test_mean_fps_is_farthest_point_sampling_of_mean_descriptors(dataset):
    x, n_atoms, per_structure, _ = dataset
    means = np.array([xs.mean(axis=0) for xs in per_structure])
    picks = mean_fps(x, n_atoms, 10, seed=4)
    assert picks[0] == np.random.default_rng(4).integers(len(n_atoms))
    for step in range(1, 10):
        nearest = np.linalg.norm(means[:, None] - means[picks[:step]][None], axis=-1).min(axis=1)
        nearest[picks[:step]] = -np.inf
        assert picks[step] == np.argmax(nearest)
    np.testing.assert_array_equal(mean_fps(x, n_atoms, 10, seed=4), picks)


def test_k_means_takes_one_structure_per_cluster():
    rng = np.random.default_rng(5)
    centres = rng.normal(0.0, 1.0, (6, 3)) * 10
    n_atoms = np.full(60, 2)
    x = np.repeat(centres, 20, axis=0) + rng.normal(0.0, 0.05, (120, 3))  # structures 10i..10i+9 in blob i
    for seed in range(3):
        picks = k_means(x, n_atoms, 6, seed=seed)
        assert sorted(picks // 10) == list(range(6))
        np.testing.assert_array_equal(k_means(x, n_atoms, 6, seed=seed), picks)
    everything = k_means(x, n_atoms, 60, seed=0)
    assert sorted(everything) == list(range(60))


def test_random_selection_is_seeded_and_distinct():
    picks = random_selection(50, 20, seed=9)
    assert len(set(picks.tolist())) == 20 and picks.min() >= 0 and picks.max() < 50
    np.testing.assert_array_equal(random_selection(50, 20, seed=9), picks)
    assert not np.array_equal(random_selection(50, 20, seed=10), picks)


@pytest.mark.parametrize("method", quests_core.COMPRESSION_METHODS)
def test_compress_dispatches_every_method(dataset, method):
    x, n_atoms, _, _ = dataset
    picks = compress(x, n_atoms, 7, method, H, seed=1)
    assert len(set(picks.tolist())) == 7
    direct = {"msc": lambda: msc(x, n_atoms, 7, H), "fps": lambda: fps(x, n_atoms, 7, H),
              "mean-fps": lambda: mean_fps(x, n_atoms, 7, seed=1), "k-means": lambda: k_means(x, n_atoms, 7, seed=1),
              "random": lambda: random_selection(30, 7, seed=1)}[method]
    np.testing.assert_array_equal(picks, direct())


def test_compression_summary_against_brute_force(dataset):
    x, n_atoms, _, _ = dataset
    picks = [3, 17, 5]
    starts = np.cumsum(n_atoms) - n_atoms
    selected = np.concatenate([x[starts[i]:starts[i] + n_atoms[i]] for i in picks])
    summary = compression_summary(x, n_atoms, picks, H)
    assert summary.entropy == pytest.approx(naive.entropy(selected, H), rel=1e-12)
    assert summary.diversity == pytest.approx(naive.diversity(selected, H), rel=1e-12)
    assert summary.overlap == pytest.approx((naive.delta_entropy(x, selected, H) < 1e-5).mean())
    assert (summary.n_structures, summary.n_environments) == (3, len(selected))
    assert (summary.original_structures, summary.original_environments) == (30, len(x))
    assert 0 < summary.overlap < 1


# ------------------------------------------------------------------ sizes and errors

def test_compression_size_from_a_count_or_a_fraction():
    assert compression_size(30, size=7) == 7
    assert compression_size(30, fraction=0.5) == 15
    assert compression_size(30, fraction=1.0) == 30
    assert compression_size(30, fraction=0.001) == 1


@pytest.mark.parametrize(("arguments", "message"), [
    (dict(size=31), r"size 31 is larger than the dataset \(30 structures\)"),
    (dict(size=0), "size must be a whole number of structures >= 1"),
    (dict(fraction=0.0), r"fraction must be in \(0, 1\], got 0.0"),
    (dict(fraction=1.5), r"fraction must be in \(0, 1\], got 1.5"),
    (dict(), "give either a size"),
    (dict(size=3, fraction=0.5), "give either a size"),
])
def test_compression_size_errors(arguments, message):
    with pytest.raises(ValueError, match=message):
        compression_size(30, **arguments)


def test_compress_errors(dataset):
    x, n_atoms, _, _ = dataset
    with pytest.raises(ValueError, match="unknown compression method 'kmeans'; choose one of msc, fps, mean-fps"):
        compress(x, n_atoms, 3, "kmeans")
    with pytest.raises(ValueError, match="method 'fps' takes none"):
        compress(x, n_atoms, 3, "fps", reference=x[:5])
    with pytest.raises(ValueError, match=r"size 40 is larger than the dataset \(30 structures\)"):
        compress(x, n_atoms, 40, "msc")
    with pytest.raises(ValueError, match="one bandwidth"):
        msc(x, n_atoms, 3, [0.015, 0.03])
    with pytest.raises(ValueError, match="x has no environments"):
        compress(x[:0], np.array([], dtype=np.int64), 1, "random")


# ------------------------------------------------------------------ sampling

@pytest.fixture(scope="module")
def environments(dataset):
    return dataset[0]


def test_samples_depend_only_on_seed_series_and_run(environments):
    n = len(environments)
    first = sample_indices(n, 100, seed=3, run=2, series=1)
    assert len(np.unique(first)) == 100 and np.all(np.diff(first) > 0)
    np.testing.assert_array_equal(sample_indices(n, 100, seed=3, run=2, series=1), first)
    for other in (dict(seed=4, run=2, series=1), dict(seed=3, run=1, series=1), dict(seed=3, run=2, series=0)):
        assert not np.array_equal(sample_indices(n, 100, **other), first)
    repeated = sample_indices(n, n, seed=3, run=0, replace=True)
    assert len(repeated) == n and len(np.unique(repeated)) < n


def test_entropy_sampler_entropies_are_those_of_the_samples(environments):
    result = entropy_sampler(environments, 120, 4, [H, 0.05], seed=2)
    assert result.entropies.shape == (4, 2) and result.sample_size == 120
    for run in range(4):
        sample = environments[sample_indices(len(environments), 120, 2, run)]
        np.testing.assert_allclose(result.entropies[run], naive.entropy(sample, [H, 0.05]), rtol=1e-12)
    np.testing.assert_allclose(result.mean, result.entropies.mean(axis=0))
    np.testing.assert_allclose(result.std, result.entropies.std(axis=0))
    assert result.max_entropy == pytest.approx(np.log(120))


def test_sampling_the_whole_dataset_without_replacement_gives_its_entropy(environments):
    result = entropy_sampler(environments, len(environments), 3, H)
    np.testing.assert_allclose(result.entropies, quests_core.entropy(environments, H), rtol=1e-13)
    assert result.std == pytest.approx(0.0, abs=1e-12)


def test_learning_curve_is_one_sampler_series_per_fraction(environments):
    curve = learning_curve(environments, [0.25, 1.0], 3, H, seed=5)
    assert [point.sample_size for point in curve] == [round(len(environments) / 4), len(environments)]
    np.testing.assert_array_equal(curve[0].entropies, entropy_sampler(environments, curve[0].sample_size, 3, H,
                                                                      seed=5, series=0).entropies)
    assert curve[0].mean < curve[1].mean


def test_learning_curve_means_agree_with_quests_within_sampling_error(environments):
    """quests draws environments with replacement from numpy's global generator; with
    replace=True ours draws from the same distribution, so the means over 12 runs agree
    within their standard errors (seeds fixed, so the test is deterministic)."""
    fractions, runs = (0.2, 0.5, 0.9), 12
    ours = learning_curve(environments, fractions, runs, H, seed=0, replace=True)
    np.random.seed(0)
    for fraction, point in zip(fractions, ours):
        draw = quests.cli.learning_curve.get_sampling_fn(environments, fraction)
        theirs = np.array([quests.entropy.perfect_entropy(draw(), h=H) for _ in range(runs)])
        error = np.sqrt((point.std**2 + theirs.std() ** 2) / runs)
        assert abs(point.mean - theirs.mean()) < 4 * error + 1e-3
    without = learning_curve(environments, (0.9,), runs, H, seed=0)[0]
    # duplicates lower H: by far more than the standard error of the difference
    assert without.mean - ours[2].mean > 5 * np.sqrt((without.std**2 + ours[2].std**2) / runs)


@pytest.mark.parametrize(("call", "message"), [
    (lambda x: entropy_sampler(x, len(x) + 1, 2, H), "sample size .* is larger than the dataset"),
    (lambda x: entropy_sampler(x, 0, 2, H), "sample size must be >= 1"),
    (lambda x: entropy_sampler(x, 10, 0, H), "the number of runs must be >= 1"),
    (lambda x: learning_curve(x, [0.5, 1.2], 2, H), r"fraction must be in \(0, 1\], got 1.2"),
    (lambda x: learning_curve(x, [], 2, H), "fractions is empty"),
    (lambda x: learning_curve(x[:0], [0.5], 2, H), "x has no environments"),
])
def test_sampling_errors(environments, call, message):
    with pytest.raises(ValueError, match=message):
        call(environments)


# ------------------------------------------------------------------ information gap

def test_information_gap_against_brute_force(dataset):
    x, n_atoms, _, _ = dataset
    subset = x[: len(x) // 3]
    gap = information_gap(x, subset, [H, 0.05])
    np.testing.assert_allclose(gap.entropy, naive.entropy(x, [H, 0.05]), rtol=1e-12)
    np.testing.assert_allclose(gap.subset_entropy, naive.entropy(subset, [H, 0.05]), rtol=1e-12)
    np.testing.assert_allclose(gap.gap, gap.entropy - gap.subset_entropy)
    dh = naive.delta_entropy(x, subset, [H, 0.05])
    np.testing.assert_allclose(gap.dh, dh, rtol=1e-10)
    np.testing.assert_allclose(gap.novelty, (dh > 0).mean(axis=0))
    np.testing.assert_allclose(gap.overlap, (dh < 1e-5).mean(axis=0))
    np.testing.assert_allclose(gap.dh_max, dh.max(axis=0), rtol=1e-10)
    assert (gap.dh[: len(subset)] <= 0).all()  # the subset covers itself
    whole = information_gap(x, x, H)
    assert whole.gap == 0.0 and whole.novelty == 0.0 and whole.overlap == 1.0
