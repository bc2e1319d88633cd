"""Approximate kernel sums over the n nearest reference environments (spec §2).

All approximate tests live here: pynndescent compiles for ~40 s on first use in a process,
so the module shares its indices through module-scoped fixtures.

pynndescent's neighbours are approximate. Truncation can only lower p whatever neighbours
are returned (as long as they are distinct reference points), so dh >= exact dH always.
The upper bound on p needs the n found to be the true n nearest; these tests check it on
the queries for which a brute-force search confirms that.
"""

import pickle

import numpy as np
import pytest

import quests_core
import structures
from conftest import descriptors_of, gemm_tolerance
from quests_core import ApproxParams

HS = np.array([0.008, 0.015, 0.05])


def true_nearest(y, x):
    d2 = ((y[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return np.argsort(d2, axis=1, kind="stable")


def found_exactly(index, y, n, order):
    """Rows of y whose n neighbours from the index (queried as approx_log_kernel_sum does)
    are the true n nearest."""
    neighbours, _ = index.graph.query(y, k=n, epsilon=ApproxParams.query_epsilon)
    return np.array([set(neighbours[i].tolist()) == set(order[i, :n].tolist()) for i in range(len(y))])


@pytest.fixture(scope="module")
def reference():
    """Thermal FCC Cu at three temperatures (768 environments) and its index."""
    x = np.concatenate([descriptors_of(structures.thermal_fcc_cu(repeat=4, sigma=s, seed=70 + i))
                        for i, s in enumerate([0.03, 0.07, 0.12])])
    # a sample smaller than the reference, so the adaptive sums have something to estimate
    return x, quests_core.build_index(x, sample_size=128, random_state=0)


@pytest.fixture(scope="module")
def queries(reference):
    x, _ = reference
    rng = np.random.default_rng(5)
    members = x[rng.choice(len(x), 60, replace=False)]
    new = np.concatenate([descriptors_of(structures.thermal_fcc_cu(repeat=2, sigma=s, seed=80 + i))
                          for i, s in enumerate([0.05, 0.1, 0.2])])
    far = descriptors_of(structures.nanoparticle("icosahedron", seed=83))[:12]  # surface-rich: outliers
    return np.concatenate([members, new, far])


def test_index_holds_the_reference(reference):
    x, index = reference
    assert len(index) == len(x) == 768
    assert index.graph_neighbors == ApproxParams.graph_neighbors
    np.testing.assert_array_equal(index.descriptors, x)


@pytest.mark.parametrize("n_neighbors", [1, 3, 10, 40])
def test_truncated_sum_never_exceeds_the_exact_sum(reference, queries, n_neighbors):
    x, index = reference
    exact = quests_core.log_kernel_sum(queries, x, HS)
    sums = quests_core.approx_log_kernel_sum(queries, index, HS, n_neighbors)
    tolerance = gemm_tolerance(queries, x, HS, np.float64)
    assert sums.lower.shape == sums.upper.shape == exact.shape == (len(queries), 3)
    assert sums.n_neighbors == n_neighbors
    np.testing.assert_array_equal(sums.bandwidth, HS)
    assert np.all(sums.lower <= exact + tolerance)
    assert np.all(sums.lower <= sums.upper)
    # truncation matters here: the approximation is not trivially exact
    assert np.median(exact[:, 2] - sums.lower[:, 2]) > 0.1


@pytest.mark.parametrize("n_neighbors", [1, 3, 10, 40])
def test_bracket_holds_when_the_neighbours_are_exact(reference, queries, n_neighbors):
    x, index = reference
    exact = quests_core.log_kernel_sum(queries, x, HS)
    sums = quests_core.approx_log_kernel_sum(queries, index, HS, n_neighbors)
    exact_rows = found_exactly(index, queries, n_neighbors, true_nearest(queries, x))
    assert exact_rows.sum() >= len(queries) // 2  # the check below is not vacuous
    tolerance = gemm_tolerance(queries, x, HS, np.float64)
    lower, upper, expected = sums.lower[exact_rows], sums.upper[exact_rows], exact[exact_rows]
    assert np.all(lower <= expected + tolerance)
    assert np.all(expected <= upper + tolerance)
    # the bracket in dH terms, as delta_entropy_bracket reports it
    bracket = quests_core.delta_entropy_bracket(queries, index, HS, n_neighbors)
    np.testing.assert_array_equal(bracket.dh, -sums.lower)
    np.testing.assert_array_equal(bracket.dh_max, -sums.lower)
    np.testing.assert_array_equal(bracket.dh_min, -sums.upper)
    assert bracket.n_neighbors == n_neighbors


def test_bracket_is_wide_for_redundant_data():
    # a cold crystal: hundreds of references within one bandwidth, so n = 3 underestimates p
    # badly; the bracket must show it
    x = descriptors_of(structures.thermal_fcc_cu(repeat=4, sigma=0.003, seed=90))
    y = descriptors_of(structures.thermal_fcc_cu(repeat=2, sigma=0.003, seed=91))
    index = quests_core.build_index(x, random_state=0)
    exact = quests_core.delta_entropy(y, x, 0.015)
    bracket = quests_core.delta_entropy_bracket(y, index, 0.015, n_neighbors=3)
    assert bracket.dh.shape == (len(y),)
    assert np.all(bracket.dh >= exact - 1e-9)
    assert np.median(bracket.dh - exact) > 3.0  # log(256 / 3) ~ 4.4
    exact_rows = found_exactly(index, y, 3, true_nearest(y, x))
    assert exact_rows.sum() >= len(y) // 2
    assert np.all(bracket.dh_min[exact_rows] <= exact[exact_rows] + 1e-9)
    assert np.median(bracket.dh_max - bracket.dh_min) > 3.0


@pytest.fixture(scope="module")
def two_phase():
    """FCC Cu and BCC Fe references (162 environments), FCC queries: a reference set small
    enough that n_neighbors reaches N."""
    x = np.concatenate([descriptors_of(structures.thermal_fcc_cu(repeat=3, sigma=0.05, seed=70)),
                        descriptors_of(structures.thermal_bcc_fe(repeat=3, sigma=0.07, seed=72))])
    y = descriptors_of(structures.thermal_fcc_cu(repeat=2, sigma=0.08, seed=80))
    return (x, quests_core.build_index(x, random_state=0)), y


@pytest.mark.parametrize("case", ["fcc", "two_phase"])
def test_converges_to_exact_as_n_neighbors_grows(request, case):
    if case == "fcc":
        (x, index), queries = request.getfixturevalue("reference"), request.getfixturevalue("queries")
    else:
        (x, index), queries = request.getfixturevalue("two_phase")
    exact = quests_core.delta_entropy(queries, x, HS)
    order = true_nearest(queries, x)
    n_values = sorted({1, 2, 3, 5, 10, 30, 100, len(x) // 2, len(x) - 20, len(x) - 1, len(x), len(x) + 10})
    tolerance = gemm_tolerance(queries, x, HS, np.float64)
    previous_dh, previous_upper, previous_found = None, None, None
    always_exact = np.ones(len(queries), dtype=bool)
    for n in n_values:
        bracket = quests_core.delta_entropy_bracket(queries, index, HS, n)
        # truncation can only raise dH, for every n and every query
        assert np.all(bracket.dh >= exact - tolerance), f"n_neighbors={n}"
        # pynndescent returns the true nearest reliably for small n only (for n near N it
        # repeats points instead), so monotonicity is checked where the sets were exact
        found = found_exactly(index, queries, n, order) if n < len(x) else np.ones(len(queries), dtype=bool)
        if n <= len(x) // 4:
            always_exact &= found
        if previous_dh is not None:
            # neighbour sets grow with n where they are exact: dH falls monotonically and
            # the bracket narrows
            rows = always_exact & found & previous_found
            assert np.all(bracket.dh[rows] <= previous_dh[rows] + 1e-12), f"n_neighbors={n}"
            assert np.all(bracket.dh_min[rows] >= previous_upper[rows] - 1e-12), f"n_neighbors={n}"
        previous_dh, previous_upper, previous_found = bracket.dh, bracket.dh_min, found
    assert always_exact.sum() >= 10
    # at n = N (and beyond) nothing is truncated: exactly the exact sums
    for n in (len(x), len(x) + 10):
        bracket = quests_core.delta_entropy_bracket(queries, index, HS, n)
        np.testing.assert_array_equal(bracket.dh, exact)
        np.testing.assert_array_equal(bracket.dh_min, exact)
        assert bracket.n_neighbors == len(x)


def test_error_shrinks_with_n_neighbors(reference, queries):
    x, index = reference
    exact = quests_core.delta_entropy(queries, x, 0.015)
    errors = [np.median(quests_core.approx_delta_entropy(queries, index, 0.015, n) - exact)
              for n in (1, 3, 10, 100, 400)]
    assert errors[0] > 0.5 and errors[-1] < 0.02 * errors[0]
    assert all(a > b for a, b in zip(errors[:-1], errors[1:]))


def test_scalar_and_vector_bandwidths(reference, queries):
    x, index = reference
    y = queries[:7]
    one = quests_core.approx_delta_entropy(y, index, 0.015, 3)
    many = quests_core.approx_delta_entropy(y, index, [0.015, 0.05], 3)
    assert one.shape == (7,) and many.shape == (7, 2)
    np.testing.assert_allclose(many[:, 0], one, rtol=1e-14)
    sums = quests_core.approx_log_kernel_sum(y, index, 0.015, 3)
    assert sums.lower.shape == sums.upper.shape == (7,)


def test_float32_queries_and_raw_reference(reference, queries):
    x, index = reference
    y = queries[:20]
    from_index = quests_core.approx_delta_entropy(y, index, 0.015, 3)
    from_float32 = quests_core.approx_delta_entropy(y.astype(np.float32), index, 0.015, 3)
    assert from_float32.dtype == np.float64
    np.testing.assert_allclose(from_float32, from_index, rtol=1e-4, atol=1e-3)  # y rounded to float32
    # a raw array builds its own index: same result wherever both searches are exact
    from_array = quests_core.approx_delta_entropy(y, x, 0.015, 3)
    exact = found_exactly(index, y, 3, true_nearest(y, x))
    np.testing.assert_allclose(from_array[exact], from_index[exact], rtol=1e-12)


def test_index_pickles(reference, queries):
    x, index = reference
    clone = pickle.loads(pickle.dumps(index))
    assert len(clone) == len(index)
    expected = quests_core.approx_log_kernel_sum(queries, index, HS, 3)
    # queries are deterministic (found_exactly above relies on it)
    np.testing.assert_array_equal(quests_core.approx_log_kernel_sum(queries, index, HS, 3).lower, expected.lower)
    got = quests_core.approx_log_kernel_sum(queries, clone, HS, 3)
    np.testing.assert_array_equal(got.lower, expected.lower)
    np.testing.assert_array_equal(got.upper, expected.upper)


def test_approximate_input_errors(reference):
    x, index = reference
    with pytest.raises(ValueError, match="n_neighbors must be >= 1, got 0"):
        quests_core.approx_log_kernel_sum(x[:2], index, 0.015, 0)
    with pytest.raises(ValueError, match="graph_neighbors must be >= 1, got 0"):
        quests_core.build_index(x, graph_neighbors=0)
    with pytest.raises(ValueError, match="bandwidth must be > 0, got -0.1"):
        quests_core.approx_log_kernel_sum(x[:2], index, -0.1)
    with pytest.raises(ValueError, match=r"bandwidth must be > 0, got \[0.01, 0.0\]"):
        quests_core.approx_delta_entropy(x[:2], index, [0.01, 0.0])
    with pytest.raises(ValueError, match="descriptor widths differ: y has 31 columns, x has 63"):
        quests_core.delta_entropy_bracket(x[:2, :31], index)
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        quests_core.build_index(np.where(x == x[0, 0], np.nan, x))


# --- adaptive kernel sums: clusters summed exactly near the query, a stratified sample far ---

@pytest.mark.parametrize("n_neighbors", [0, 3, 10])
def test_adaptive_bracket_always_holds(reference, queries, n_neighbors):
    # every evaluated term is exact and the triangle inequality bounds the rest: no condition
    # on the neighbours pynndescent finds
    x, index = reference
    exact = quests_core.log_kernel_sum(queries, x, HS)
    sums = quests_core.adaptive_log_kernel_sum(queries, index, HS, n_neighbors)
    tolerance = gemm_tolerance(queries, x, HS, np.float64)
    assert sums.estimate.shape == sums.lower.shape == sums.upper.shape == (len(queries), 3)
    assert sums.error.shape == sums.n_evaluated.shape == (len(queries),)
    assert np.all(sums.lower <= exact + tolerance)
    assert np.all(exact <= sums.upper + tolerance)
    assert np.all((sums.lower <= sums.estimate + 1e-12) & (sums.estimate <= sums.upper + 1e-12))
    assert np.all(sums.n_evaluated <= len(x))


def test_adaptive_is_exact_when_every_cluster_is_summed(reference, queries):
    x, index = reference
    n_clusters = index.clusters.n_clusters
    exact = quests_core.delta_entropy(queries, x, HS)
    estimate = quests_core.adaptive_delta_entropy(queries, index, HS, n_probe=n_clusters, max_probe=n_clusters)
    np.testing.assert_allclose(estimate.dh, exact, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(estimate.dh_min, exact, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(estimate.dh_error, 0.0)
    np.testing.assert_array_equal(estimate.n_evaluated, len(x))


def test_adaptive_is_accurate_where_truncation_fails():
    # a cold crystal: hundreds of references within one bandwidth. Truncation to 3 neighbours
    # is off by log(N / 3); the adaptive estimate is within its tolerance
    x = np.concatenate([descriptors_of(structures.thermal_fcc_cu(repeat=4, sigma=s, seed=90 + i))
                        for i, s in enumerate([0.02, 0.03, 0.04, 0.05])])
    y = np.concatenate([descriptors_of(structures.thermal_fcc_cu(repeat=2, sigma=s, seed=95 + i))
                        for i, s in enumerate([0.03, 0.06, 0.09])])
    index = quests_core.build_index(x, sample_size=256, random_state=0)  # the default samples all of 1024
    exact = quests_core.delta_entropy(y, x, 0.015)
    truncated = quests_core.approx_delta_entropy(y, index, 0.015, 3)
    adaptive = quests_core.adaptive_delta_entropy(y, index, 0.015)
    assert np.median(truncated - exact) > 1.0
    error = np.abs(adaptive.dh - exact)
    assert np.median(error) < 0.05
    assert np.mean(np.sign(adaptive.dh) == np.sign(exact)) >= 0.99
    assert np.all((adaptive.dh_min <= exact + 1e-9) & (exact <= adaptive.dh_max + 1e-9))
    # the standard error says how far off the estimate is: two of them cover most errors
    assert np.mean(error <= 2 * adaptive.dh_error + 0.01) > 0.8
    # it samples: far fewer exact terms than the reference holds
    assert adaptive.n_evaluated.mean() < 0.8 * len(x)
    # H of the reference itself, the estimate of the mean
    self_estimate = quests_core.adaptive_delta_entropy(x, index, 0.015)
    assert abs(self_estimate.dh.mean() - quests_core.delta_entropy(x, x, 0.015).mean()) < 0.02


def test_adaptive_tolerance_buys_accuracy(reference, queries):
    x, index = reference
    exact = quests_core.delta_entropy(queries, x, 0.015)
    loose = quests_core.adaptive_delta_entropy(queries, index, 0.015, tolerance=10.0, n_probe=1)
    tight = quests_core.adaptive_delta_entropy(queries, index, 0.015, tolerance=0.01, n_probe=1,
                                               max_probe=index.clusters.n_clusters)
    assert tight.n_evaluated.mean() > loose.n_evaluated.mean()
    assert np.all(4 * tight.dh_error <= 0.01 + 1e-12)
    assert np.abs(tight.dh - exact).mean() < np.abs(loose.dh - exact).mean()


def test_adaptive_pickled_index_and_bandwidths(reference, queries):
    x, index = reference
    clone = pickle.loads(pickle.dumps(index))
    many = quests_core.adaptive_delta_entropy(queries, clone, [0.015, 0.05])
    one = quests_core.adaptive_delta_entropy(queries, index, 0.015)
    assert many.dh.shape == (len(queries), 2) and one.dh.shape == (len(queries),)
    np.testing.assert_array_equal(quests_core.adaptive_delta_entropy(queries, index, 0.015).dh, one.dh)
    # clusters are chosen on the worst bandwidth's error, so the 0.015 column may use more
    np.testing.assert_array_less(one.n_evaluated, many.n_evaluated + 1)


def test_adaptive_input_errors(reference):
    x, index = reference
    with pytest.raises(ValueError, match="need 1 <= n_probe <= max_probe, got n_probe=4, max_probe=2"):
        quests_core.adaptive_log_kernel_sum(x[:2], index, n_probe=4, max_probe=2)
    with pytest.raises(ValueError, match="tolerance must be > 0, got 0.0"):
        quests_core.adaptive_delta_entropy(x[:2], index, tolerance=0.0)
    with pytest.raises(ValueError, match="n_neighbors must be >= 0, got -1"):
        quests_core.adaptive_log_kernel_sum(x[:2], index, 0.015, -1)
    with pytest.raises(ValueError, match="n_clusters must be >= 1, got 0"):
        quests_core.build_index(x, n_clusters=0)
    with pytest.raises(ValueError, match="sample_size must be >= 1, got 0"):
        quests_core.build_index(x, sample_size=0)
