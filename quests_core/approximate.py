"""Approximate kernel sums over the n nearest reference environments (spec §2).

A pynndescent graph finds the n nearest reference points of each query; the kernel is then
summed over those n with distances recomputed exactly in float64 (pynndescent works in
float32). Truncation only lowers p, and when the n found are the true nearest, every other
reference point is at least as far as the n-th, which bounds what was left out:
    sum_{j<=n} K(d_j) <= p <= sum_{j<=n} K(d_j) + (N - n) K(d_n).
"""

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from ._numba import JIT, PARALLEL_JIT
from .clusters import ClusterPartition, _probe, partition, sample_rows, sampled_sums, squared_distances
from .kernels import log_kernel_sum
from .params import ApproxParams, KernelParams
from .validation import as_bandwidths, as_descriptor_pair, as_descriptors


@dataclass(frozen=True)
class ReferenceIndex:
    """Reference descriptors with their nearest-neighbour graph; pickles, so it can be
    built once and shipped to workers."""

    descriptors: np.ndarray
    graph: object  # pynndescent.NNDescent, imported lazily: it compiles for ~25 s on import
    graph_neighbors: int
    clusters: ClusterPartition
    cluster_of_rows: np.ndarray  # (N,) cluster of each reference row
    sample: np.ndarray  # rows of clusters.members forming the stratified sample

    def __len__(self) -> int:
        return len(self.descriptors)


@dataclass(frozen=True)
class ApproxLogKernelSum:
    """Bounds on log p(y|X), shaped (n_y,) or (n_y, n_bandwidths). upper equals lower when
    n_neighbors covers the whole reference."""

    lower: np.ndarray
    upper: np.ndarray
    n_neighbors: int
    bandwidth: np.ndarray


@dataclass(frozen=True)
class DeltaEntropyBracket:
    """Approximate dH(y|X) with its bracket dh_min <= exact dH <= dh_max (rigorous when the
    neighbours found are the true nearest). dh is the truncated-sum value quests reports."""

    dh: np.ndarray
    dh_min: np.ndarray
    dh_max: np.ndarray
    n_neighbors: int
    bandwidth: np.ndarray


@dataclass(frozen=True)
class AdaptiveLogKernelSum:
    """log p(y|X) estimated by clusters summed exactly plus a stratified sample of the rest,
    shaped (n_y,) or (n_y, n_bandwidths); lower <= log p <= upper always hold, whatever
    neighbours pynndescent finds.
    error is the estimate's relative standard error (worst bandwidth), about its error in
    nats; n_evaluated counts the exact kernel terms behind each estimate."""

    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    error: np.ndarray
    n_evaluated: np.ndarray
    bandwidth: np.ndarray


@dataclass(frozen=True)
class DeltaEntropyEstimate:
    """Adaptive dH(y|X) with its rigorous bracket dh_min <= exact dH <= dh_max and its
    standard error dh_error (nats)."""

    dh: np.ndarray
    dh_min: np.ndarray
    dh_max: np.ndarray
    dh_error: np.ndarray
    n_evaluated: np.ndarray
    bandwidth: np.ndarray


def build_index(
    x,
    graph_neighbors: int = ApproxParams.graph_neighbors,
    *,
    n_clusters: int | None = None,
    sample_size: int = ApproxParams.sample_size,
    random_state: int | None = None,
    n_jobs: int | None = None,
) -> ReferenceIndex:
    """Build the nearest-neighbour graph and the cluster partition of reference descriptors x
    once, for many queries. n_clusters defaults to ApproxParams.clusters_per_sqrt_n * sqrt(N)."""
    import pynndescent

    x = as_descriptors(x, "x")
    if graph_neighbors < 1:
        raise ValueError(f"graph_neighbors must be >= 1, got {graph_neighbors}")
    if n_clusters is not None and n_clusters < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
    if sample_size < 1:
        raise ValueError(f"sample_size must be >= 1, got {sample_size}")
    graph_neighbors = min(graph_neighbors, max(len(x) - 1, 1))
    graph = pynndescent.NNDescent(x, n_neighbors=graph_neighbors, random_state=random_state, n_jobs=n_jobs)
    graph.prepare()
    clusters = partition(x, n_clusters or math.ceil(ApproxParams.clusters_per_sqrt_n * math.sqrt(len(x))), sample_size,
                         np.random.default_rng(random_state))
    return ReferenceIndex(descriptors=x, graph=graph, graph_neighbors=graph_neighbors, clusters=clusters,
                          cluster_of_rows=clusters.cluster_of_rows(), sample=sample_rows(clusters))


def approx_log_kernel_sum(
    y,
    index: ReferenceIndex,
    bandwidth=KernelParams.bandwidth,
    n_neighbors: int = ApproxParams.n_neighbors,
    *,
    query_epsilon: float = ApproxParams.query_epsilon,
) -> ApproxLogKernelSum:
    """Lower and upper bounds on log p(y|X) from the n_neighbors nearest reference points."""
    y, x = as_descriptor_pair(y, index.descriptors)
    bandwidths, scalar = as_bandwidths(bandwidth)
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
    if n_neighbors >= len(x):
        # nothing left to truncate: the exact sum, and a graph query for all N could miss some
        exact = log_kernel_sum(y, x, bandwidths)
        exact = exact[:, 0] if scalar else exact
        return ApproxLogKernelSum(lower=exact, upper=exact.copy(), n_neighbors=len(x), bandwidth=bandwidths)
    neighbors, _ = index.graph.query(y, k=int(n_neighbors), epsilon=query_epsilon)
    lower, farthest_d2, n_found = _truncated_log_sums(y, x, neighbors.astype(np.int64), 0.5 / bandwidths**2)
    n_left_out = len(x) - n_found
    upper = lower.copy()
    has_tail = n_left_out > 0
    tail = np.log(n_left_out[has_tail, None].astype(np.float64)) - farthest_d2[has_tail, None] * (0.5 / bandwidths**2)
    upper[has_tail] = np.logaddexp(lower[has_tail], tail)
    if scalar:
        lower, upper = lower[:, 0], upper[:, 0]
    return ApproxLogKernelSum(lower=lower, upper=upper, n_neighbors=n_neighbors, bandwidth=bandwidths)


def adaptive_log_kernel_sum(
    y,
    index: ReferenceIndex,
    bandwidth=KernelParams.bandwidth,
    n_neighbors: int = ApproxParams.n_neighbors,
    *,
    n_probe: int = ApproxParams.n_probe,
    max_probe: int = ApproxParams.max_probe,
    tolerance: float = ApproxParams.tolerance,
    block_size: int = KernelParams.block_size,
) -> AdaptiveLogKernelSum:
    """log p(y|X) from the clusters of the reference: exact near the query, sampled far from
    it, refined until the interval of two standard errors either side of the estimate is
    narrower than tolerance nats (see quests_core.clusters).
    The clusters of the n_neighbors nearest reference points (pynndescent) are always summed
    exactly: far from the reference, a few nearest points carry the whole sum."""
    y, x = as_descriptor_pair(y, index.descriptors)
    bandwidths, scalar = as_bandwidths(bandwidth)
    if n_neighbors < 0:
        raise ValueError(f"n_neighbors must be >= 0, got {n_neighbors}")
    if n_probe < 1 or max_probe < n_probe:
        raise ValueError(f"need 1 <= n_probe <= max_probe, got n_probe={n_probe}, max_probe={max_probe}")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance}")
    a = 0.5 / bandwidths**2
    clusters = index.clusters
    parts = []
    for start in range(0, len(y), block_size):
        block = y[start:start + block_size]
        if n_neighbors:
            neighbors, _ = index.graph.query(block, k=min(int(n_neighbors), len(x)), epsilon=ApproxParams.query_epsilon)
            forced = np.where(neighbors >= 0, index.cluster_of_rows[np.maximum(neighbors, 0)], -1)
        else:
            forced = np.full((len(block), 1), -1, dtype=np.int64)
        sampled = sampled_sums(block, clusters, index.sample, a)
        parts.append(_probe(block, clusters.members, clusters.starts, clusters.n_sampled, clusters.radii,
                            squared_distances(block, clusters.centroids), forced.astype(np.int64), sampled.shift,
                            sampled.sums, sampled.squares, a, n_probe, max_probe, tolerance / 4))
    estimate, lower, upper, error, n_evaluated = (np.concatenate(arrays) for arrays in zip(*parts))
    if scalar:
        estimate, lower, upper = estimate[:, 0], lower[:, 0], upper[:, 0]
    return AdaptiveLogKernelSum(estimate=estimate, lower=lower, upper=upper, error=error, n_evaluated=n_evaluated,
                                bandwidth=bandwidths)


def adaptive_delta_entropy(
    y,
    x,
    h=KernelParams.bandwidth,
    n_neighbors: int = ApproxParams.n_neighbors,
    *,
    tolerance: float = ApproxParams.tolerance,
    **options,
) -> DeltaEntropyEstimate:
    """Adaptive dH(y|X) with its bracket and standard error; x is reference descriptors or a
    ReferenceIndex. options: n_probe, max_probe, block_size."""
    index = x if isinstance(x, ReferenceIndex) else build_index(x)
    sums = adaptive_log_kernel_sum(y, index, h, n_neighbors, tolerance=tolerance, **options)
    return DeltaEntropyEstimate(dh=-sums.estimate, dh_min=-sums.upper, dh_max=-sums.lower, dh_error=sums.error,
                                n_evaluated=sums.n_evaluated, bandwidth=sums.bandwidth)


def delta_entropy_bracket(
    y,
    x,
    h=KernelParams.bandwidth,
    n_neighbors: int = ApproxParams.n_neighbors,
    graph_neighbors: int = ApproxParams.graph_neighbors,
) -> DeltaEntropyBracket:
    """Approximate dH(y|X) with its bracket; x is reference descriptors or a ReferenceIndex."""
    index = x if isinstance(x, ReferenceIndex) else build_index(x, graph_neighbors)
    sums = approx_log_kernel_sum(y, index, h, n_neighbors)
    return DeltaEntropyBracket(dh=-sums.lower, dh_min=-sums.upper, dh_max=-sums.lower,
                               n_neighbors=sums.n_neighbors, bandwidth=sums.bandwidth)


def approx_delta_entropy(
    y,
    x,
    h=KernelParams.bandwidth,
    n_neighbors: int = ApproxParams.n_neighbors,
    graph_neighbors: int = ApproxParams.graph_neighbors,
) -> np.ndarray:
    """Approximate dH(y|X) from the n_neighbors nearest reference points (quests' argument
    order); shaped (n_y,) or (n_y, n_bandwidths). delta_entropy_bracket adds the bracket."""
    return delta_entropy_bracket(y, x, h, n_neighbors, graph_neighbors).dh


@nb.njit(**JIT)
def _listed_before(row, a):
    for b in range(a):
        if row[b] == row[a]:
            return True
    return False


@nb.njit(**PARALLEL_JIT)
def _truncated_log_sums(y, x, neighbors, inverse_two_h2):
    """Per query: log sum of the kernel over its listed neighbours (exact float64 distances),
    the largest squared distance among them, and how many distinct ones were listed."""
    n_y, n_listed = neighbors.shape
    n_h = inverse_two_h2.shape[0]
    log_sums = np.empty((n_y, n_h))
    farthest = np.zeros(n_y)
    n_found = np.zeros(n_y, dtype=np.int64)
    for i in nb.prange(n_y):
        d2 = np.empty(n_listed)
        count = 0
        nearest = np.inf
        for a in range(n_listed):
            j = neighbors[i, a]
            if j < 0 or _listed_before(neighbors[i], a):
                continue  # pynndescent pads with -1 and can list one point twice
            total = 0.0
            for d in range(y.shape[1]):
                diff = np.float64(y[i, d]) - np.float64(x[j, d])
                total += diff * diff
            d2[count] = total
            nearest = min(nearest, total)
            farthest[i] = max(farthest[i], total)
            count += 1
        n_found[i] = count
        for h in range(n_h):
            acc = 0.0
            for a in range(count):
                acc += np.exp(-(d2[a] - nearest) * inverse_two_h2[h])
            log_sums[i, h] = np.log(acc) - nearest * inverse_two_h2[h] if count else -np.inf
    return log_sums, farthest, n_found
