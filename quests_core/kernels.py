"""Exact Gaussian kernel sums p(y|X) = sum_j exp(-|y - x_j|^2 / 2h^2) (spec §2), in the log domain.

Work is tiled: each thread takes tiles of block_size/4 query rows against block_size
reference rows, gets their dot products from one single-threaded BLAS GEMM, then turns them
into squared distances and per-row log-sum-exp partials (numba), merged into a running
log p. Scratch memory is one tile per thread, whatever the sizes of y and x.

Accuracy: each reference tile is centred on its own mean before the GEMM (smaller norms,
less cancellation), and any pair whose GEMM distance is within rounding of zero is
recomputed directly, so identical environments are at distance exactly 0.
"""

import functools
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np
from threadpoolctl import ThreadpoolController

from ._numba import JIT
from .fastexp import _exp_sum
from .params import KernelParams
from .validation import as_bandwidths, as_descriptor_pair

COLUMN_CHUNK = 256  # reference columns per log-sum-exp partial; sized for the L1 cache


def log_kernel_sum(y, x, bandwidth=KernelParams.bandwidth, *, block_size: int = KernelParams.block_size) -> np.ndarray:
    """log p(y_i | X) for every query row; shape (n_y,) for one bandwidth, (n_y, n_bandwidths) for several.

    Finite for any distance (no underflow to log 0), so dH = -log p of a far outlier is exact.
    """
    y, x = as_descriptor_pair(y, x)
    bandwidths, scalar = as_bandwidths(bandwidth)
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    log_p = _log_kernel_sum(y, x, bandwidths, block_size)
    return log_p[:, 0] if scalar else log_p


def kernel_sum(y, x, bandwidth=KernelParams.bandwidth, *, block_size: int = KernelParams.block_size) -> np.ndarray:
    """p(y_i | X) for every query row, shaped like log_kernel_sum (may underflow to 0 for far outliers)."""
    return np.exp(log_kernel_sum(y, x, bandwidth, block_size=block_size))


def _log_kernel_sum(y: np.ndarray, x: np.ndarray, bandwidths: np.ndarray, block_size: int) -> np.ndarray:
    """Validated inputs (same dtype and width); returns (n_y, n_bandwidths) float64.

    One Python thread per numba thread, each with single-threaded BLAS and its own tile:
    two thread pools taking turns on the cores (BLAS, then numba) lose a third of the time
    to spinning. Threads split the query rows, or the reference rows when there are too
    few query rows to go round.
    """
    n_threads = nb.get_num_threads()
    query_rows = max(block_size // 4, 1)
    reference_rows = max(block_size, 1)
    query_starts = list(range(0, len(y), query_rows))
    reference_starts = list(range(0, len(x), reference_rows))
    split_queries = len(query_starts) >= n_threads or len(reference_starts) == 1
    n_threads = min(n_threads, len(query_starts) if split_queries else len(reference_starts))
    accumulators = [np.full((len(y), len(bandwidths)), -np.inf) for _ in range(1 if split_queries else n_threads)]

    def work(thread: int) -> None:
        if split_queries:
            tiles = [(q0, r0) for q0 in query_starts[thread::n_threads] for r0 in reference_starts]
            log_p = accumulators[0]
        else:
            tiles = [(q0, r0) for q0 in query_starts for r0 in reference_starts[thread::n_threads]]
            log_p = accumulators[thread]
        _accumulate_tiles(y, x, tiles, query_rows, reference_rows, bandwidths, log_p)

    with _blas_controller().limit(limits=1, user_api="blas"):
        if n_threads == 1:
            work(0)
        else:
            with ThreadPoolExecutor(n_threads) as pool:
                list(pool.map(work, range(n_threads)))
    return accumulators[0] if len(accumulators) == 1 else np.logaddexp.reduce(accumulators)


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """threadpoolctl's view of the loaded BLAS, made once per process: making it scans every
    loaded library (about 0.7 ms), which small calls (one per structure in msc) cannot repeat."""
    return ThreadpoolController()


def _accumulate_tiles(y, x, tiles, query_rows, reference_rows, bandwidths, log_p) -> None:
    inverse_two_h2 = 0.5 / bandwidths**2
    # a GEMM distance below this fraction of |y|^2 + |x|^2 may be pure rounding
    recompute_tolerance = 4 * x.shape[1] * np.finfo(x.dtype).eps
    # scratch made once per call and reused by every tile: Dask workers run with glibc's
    # MALLOC_TRIM_THRESHOLD_ set, which makes every large temporary a fresh mmap, and the
    # page faults of new temporaries per tile cost about 15 % of the kernel there
    dots_buffer = np.empty(query_rows * reference_rows, dtype=x.dtype)
    x_buffer = np.empty((min(reference_rows, len(x)), x.shape[1]), dtype=x.dtype)
    y_buffer = np.empty((min(query_rows, len(y)), y.shape[1]), dtype=y.dtype)
    row_buffers = (np.empty(COLUMN_CHUNK), np.empty(COLUMN_CHUNK), np.empty(COLUMN_CHUNK),
                   np.empty(COLUMN_CHUNK, dtype=np.int64))
    for q0, r0 in tiles:
        x_block = x[r0 : r0 + reference_rows]
        y_block = y[q0 : q0 + query_rows]
        centre = x_block.mean(axis=0, dtype=np.float64).astype(x.dtype)
        x_centred = np.subtract(x_block, centre, out=x_buffer[: len(x_block)])
        y_centred = np.subtract(y_block, centre, out=y_buffer[: len(y_block)])
        x_norms = np.einsum("ij,ij->i", x_centred, x_centred, dtype=np.float64)
        y_norms = np.einsum("ij,ij->i", y_centred, y_centred, dtype=np.float64)
        dots = dots_buffer[: len(y_centred) * len(x_centred)].reshape(len(y_centred), len(x_centred))
        np.dot(y_centred, x_centred.T, out=dots)
        _merge_tile(dots, y_centred, x_centred, y_norms, x_norms, inverse_two_h2, recompute_tolerance,
                    log_p[q0 : q0 + query_rows], *row_buffers)


@nb.njit(**JIT)
def _merge_tile(dots, y, x, y_norms, x_norms, inverse_two_h2, recompute_tolerance, log_p,
                d2, arguments, scratch, bits):
    """log_p[i, h] <- logaddexp(log_p[i, h], log sum_j exp(-d2_ij * inverse_two_h2[h])).

    Rows are taken COLUMN_CHUNK columns at a time; each chunk is shifted by its smallest
    distance, so its exp sum is >= 1 and its log is finite whatever the distances.
    """
    n_rows, n_columns = dots.shape
    n_h = inverse_two_h2.shape[0]
    for i in range(n_rows):
        y_norm = y_norms[i]
        for c0 in range(0, n_columns, COLUMN_CHUNK):
            width = min(COLUMN_CHUNK, n_columns - c0)
            nearest = np.inf
            n_suspect = 0
            for j in range(width):
                norms = y_norm + x_norms[c0 + j]
                value = norms - 2.0 * dots[i, c0 + j]
                d2[j] = value
                n_suspect += value <= recompute_tolerance * norms
                nearest = value if value < nearest else nearest
            if n_suspect:
                nearest = np.inf
                for j in range(width):
                    if d2[j] <= recompute_tolerance * (y_norm + x_norms[c0 + j]):
                        d2[j] = _squared_distance(y[i], x[c0 + j])
                    nearest = min(nearest, d2[j])
            for h in range(n_h):
                scale = inverse_two_h2[h]
                for j in range(width):
                    arguments[j] = (nearest - d2[j]) * scale
                total = _exp_sum(arguments, width, scratch, bits)
                log_p[i, h] = _logaddexp(log_p[i, h], np.log(total) - nearest * scale)


@nb.njit(**JIT)
def _squared_distance(a, b):
    total = 0.0
    for d in range(a.shape[0]):
        diff = np.float64(a[d]) - np.float64(b[d])
        total += diff * diff
    return total


@nb.njit(**JIT)
def _logaddexp(a, b):
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    top = max(a, b)
    return top + np.log1p(np.exp(-abs(a - b)))
