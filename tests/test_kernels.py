"""Exact kernel sums (spec §2) against the full-distance-matrix reference in naive.py, over
dtypes, bandwidths, tilings and thread counts; exact self terms; far outliers."""

import numba
import numpy as np
import pytest

import naive
import quests_core
from conftest import gemm_tolerance

BANDWIDTHS = [0.015, 0.05, np.array([0.005, 0.03, 0.1])]
BLOCK_SIZES = [1, 7, 64, None]  # None: the default


@pytest.fixture(scope="module")
def query_and_reference(mixed_x):
    rng = np.random.default_rng(100)
    reference = mixed_x[rng.choice(len(mixed_x), 150, replace=False)]
    queries = mixed_x[rng.choice(len(mixed_x), 37, replace=False)] + rng.normal(0.0, 0.005, (37, 63))
    return queries, reference


def call(function, y, x, bandwidth, block_size):
    if block_size is None:
        return function(y, x, bandwidth)
    return function(y, x, bandwidth, block_size=block_size)


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
@pytest.mark.parametrize("bandwidth", BANDWIDTHS, ids=["h0.015", "h0.05", "h_vector"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_kernel_sum_matches_naive(query_and_reference, dtype, bandwidth, block_size):
    y, x = (a.astype(dtype) for a in query_and_reference)
    log_p = call(quests_core.log_kernel_sum, y, x, bandwidth, block_size)
    expected = naive.log_kernel_sum(y, x, bandwidth)  # float64 on the same (rounded) inputs
    assert log_p.dtype == np.float64
    assert log_p.shape == ((len(y),) if np.ndim(bandwidth) == 0 else (len(y), len(bandwidth)))
    assert np.all(np.abs(log_p - expected) <= gemm_tolerance(y, x, bandwidth, dtype))
    # the sum is over a real mix of near and far references, not trivially one term
    assert np.ptp(expected) > 1.0


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_kernel_sum_and_self_sums_match_naive(mixed_x, block_size):
    x = mixed_x[::4]
    bandwidth = np.array([0.01, 0.05])
    p = call(quests_core.kernel_sum, x, x, bandwidth, block_size)
    expected = np.exp(naive.log_kernel_sum(x, x, bandwidth))
    assert p.shape == (len(x), 2)
    np.testing.assert_allclose(p, expected, rtol=1e-11)
    assert (p >= 1.0).all()  # the self term


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("block_size", [7, 64])
def test_result_does_not_depend_on_threads(query_and_reference, n_threads, block_size):
    y, x = query_and_reference
    before = numba.get_num_threads()
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        log_p = quests_core.log_kernel_sum(y, x, 0.02, block_size=block_size)
        single = quests_core.log_kernel_sum(y[:1], x, 0.02, block_size=block_size)  # splits the references
    finally:
        numba.set_num_threads(before)
    expected = naive.log_kernel_sum(y, x, 0.02)
    tolerance = gemm_tolerance(y, x, 0.02, np.float64)
    assert np.all(np.abs(log_p - expected) <= tolerance)
    assert np.abs(single[0] - expected[0]) <= tolerance


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
@pytest.mark.parametrize("n_reference", [1, 2, 3, 5])
def test_single_query_and_tiny_reference_sets(mixed_x, n_reference, block_size):
    y = mixed_x[200:201] + 0.004
    x = mixed_x[:n_reference * 40:40]
    for bandwidth in (0.015, [0.01, 0.2]):
        log_p = call(quests_core.log_kernel_sum, y, x, bandwidth, block_size)
        expected = naive.log_kernel_sum(y, x, bandwidth)
        assert log_p.shape == expected.shape == ((1,) if np.ndim(bandwidth) == 0 else (1, 2))
        np.testing.assert_allclose(log_p, expected, rtol=1e-12, atol=1e-12)


def test_bandwidth_shapes():
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 0.02, (20, 7))
    y = x[:3] + 0.01
    scalar = quests_core.log_kernel_sum(y, x, 0.03)
    assert scalar.shape == (3,)
    one = quests_core.log_kernel_sum(y, x, [0.03])
    assert one.shape == (3, 1)
    many = quests_core.log_kernel_sum(y, x, (0.03, 0.5, 0.01, 0.2))
    assert many.shape == (3, 4)  # (n_y, n_bandwidths), never transposed
    np.testing.assert_array_equal(one[:, 0], scalar)
    np.testing.assert_allclose(many[:, 0], scalar, rtol=1e-15)
    np.testing.assert_allclose(many, naive.log_kernel_sum(y, x, np.array([0.03, 0.5, 0.01, 0.2])), rtol=1e-12)


# ---------------------------------------------------------------------------------------
# exact self terms


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_identical_rows_sum_to_n(mixed_x, dtype, n, block_size):
    x = np.repeat(mixed_x[17:18], n, axis=0).astype(dtype)
    log_p = call(quests_core.log_kernel_sum, x, x, [0.015, 1e-4], block_size)
    assert np.abs(log_p - np.log(n)).max() <= 1e-15 * max(np.log(n), 1.0)


def test_mixed_environments_are_distinct(mixed_x):
    # precondition of the test below: no two environments closer than 5e-3
    distances = np.sqrt(((mixed_x[:, None, :] - mixed_x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(distances, np.inf)
    assert distances.min() > 5e-3


@pytest.mark.parametrize("offset", [0.0, 50.0, 1e3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_distance_of_a_point_to_itself_is_exactly_zero(mixed_x, dtype, offset):
    # at h = 1e-6 every other environment is > 1000 h away (float32 rounding at 1e3 moves a
    # distance by < 3e-4), so p(x_i|X) is the self term alone and log p is 0 only if
    # |x_i - x_i|^2 is exactly 0, even when large norms make the dot-product formula cancel
    x = (mixed_x + offset).astype(dtype)
    log_p = quests_core.log_kernel_sum(x, x, 1e-6)
    np.testing.assert_array_equal(log_p, 0.0)
    dh = quests_core.delta_entropy(x, x, 1e-6, block_size=64)
    np.testing.assert_array_equal(dh, 0.0)


# ---------------------------------------------------------------------------------------
# far outliers: log-domain sums never underflow


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_far_outlier_against_one_point(block_size):
    h = 0.015
    x = np.zeros((1, 63))
    y = np.zeros((1, 63))
    y[0, 5] = 100 * h  # 100 bandwidths away
    dh = call(quests_core.delta_entropy, y, x, h, block_size)
    assert dh[0] == pytest.approx(100**2 / 2, rel=1e-12)
    hs = np.array([h, 2 * h, 0.5 * h])
    dh = call(quests_core.delta_entropy, y, x, hs, block_size)
    np.testing.assert_allclose(dh[0], (100 * h) ** 2 / (2 * hs**2), rtol=1e-12)  # 5000, 1250, 20000
    assert quests_core.kernel_sum(y, x, h)[0] == 0.0  # exp(-5000) underflows; log p did not


@pytest.mark.parametrize("block_size", [1, 7, None])
def test_far_outliers_match_analytic_log_sum_exp(mixed_x, block_size):
    rng = np.random.default_rng(2)
    x = mixed_x[:40]
    direction = rng.normal(size=(5, 63))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    y = x[[0, 5, 10, 15, 20]] + direction * np.array([1.0, 3.0, 10.0, 30.0, 100.0])[:, None]
    hs = np.array([0.015, 0.1])
    dh = call(quests_core.delta_entropy, y, x, hs, block_size)
    d2 = ((y[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    exponent = -d2[:, :, None] / (2 * hs**2)
    top = exponent.max(axis=1)
    expected = -(top + np.log(np.exp(exponent - top[:, None, :]).sum(axis=1)))
    assert np.isfinite(dh).all() and (dh > 2000).any()
    np.testing.assert_allclose(dh, expected, rtol=1e-12)
