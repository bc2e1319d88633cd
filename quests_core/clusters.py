"""Reference descriptors partitioned into k-means clusters, for stratified kernel sums.

Redundant references (crystals, long MD at low temperature) spread a query's kernel sum over
hundreds or thousands of reference points at similar distances, so a sum over a few nearest
neighbours badly underestimates it. Here the sum is split by cluster: the clusters nearest
the query are summed exactly, every other cluster is estimated from a fixed random sample of
its members (a stratified estimate, unbiased, with its variance), and clusters are added in
order of centroid distance until the estimate's relative standard error is below a
tolerance. Every evaluated term is exact, so their sum is a rigorous lower bound on p; the
triangle inequality bounds the terms never evaluated, so an upper bound on p comes with it.
"""

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from ._numba import JIT, PARALLEL_JIT
from .fastexp import _exp_sum

KMEANS_ITERATIONS = 10
# relative slack on cluster radii for the rounding of the distances that measured them
RADIUS_SLACK = 1e-9


@dataclass(frozen=True)
class ClusterPartition:
    """Reference rows grouped by cluster. Rows starts[c]:starts[c + 1] of `members` are
    cluster c, in random order; the first n_sampled[c] of them are its sample."""

    members: np.ndarray  # (N, F) float64
    order: np.ndarray  # (N,) members[i] is reference row order[i]
    starts: np.ndarray  # (C + 1,) int64
    n_sampled: np.ndarray  # (C,) int64
    centroids: np.ndarray  # (C, F) float64
    radii: np.ndarray  # (C,) largest distance of a member to its centroid

    @property
    def n_clusters(self) -> int:
        return len(self.n_sampled)

    def cluster_of_rows(self) -> np.ndarray:
        """Cluster of each reference row, in the reference's own order."""
        clusters = np.repeat(np.arange(self.n_clusters), np.diff(self.starts))
        labels = np.empty_like(clusters)
        labels[self.order] = clusters
        return labels


def squared_distances(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """|y_i - x_j|^2 by one matrix product, on rows centred on x's mean (fewer cancelled digits)."""
    centre = x.mean(axis=0)
    y = y - centre
    x = x - centre
    d2 = np.einsum("ij,ij->i", y, y)[:, None] + np.einsum("ij,ij->i", x, x)[None, :] - 2.0 * (y @ x.T)
    return np.maximum(d2, 0.0)


def kmeans_labels(x: np.ndarray, n_clusters: int, rng: np.random.Generator,
                  iterations: int = KMEANS_ITERATIONS) -> np.ndarray:
    """Lloyd's k-means from randomly chosen rows; returns each row's cluster (empty ones dropped
    by the caller). Rows are assigned in blocks so memory stays O(block * n_clusters)."""
    centroids = x[rng.choice(len(x), n_clusters, replace=False)]
    block = max(1, 2**22 // max(n_clusters, 1))
    for _ in range(iterations + 1):
        labels = np.concatenate([squared_distances(x[i:i + block], centroids).argmin(axis=1)
                                 for i in range(0, len(x), block)])
        counts = np.bincount(labels, minlength=n_clusters)
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, x)
        filled = counts > 0
        centroids = np.where(filled[:, None], sums / np.maximum(counts, 1)[:, None], centroids)
    return labels


def partition(x: np.ndarray, n_clusters: int, sample_size: int, rng: np.random.Generator) -> ClusterPartition:
    """k-means partition of reference rows x with a stratified sample of about sample_size
    rows (at least two per cluster, so each cluster's variance can be estimated)."""
    n_clusters = max(1, min(n_clusters, len(x)))
    labels = kmeans_labels(x, n_clusters, rng)
    order = np.lexsort((rng.random(len(x)), labels))
    counts = np.bincount(labels, minlength=n_clusters)
    counts = counts[counts > 0]
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    members = np.ascontiguousarray(x[order])
    centroids = np.stack([members[a:b].mean(axis=0) for a, b in zip(starts[:-1], starts[1:])])
    radii = np.array([np.sqrt(((members[a:b] - centre) ** 2).sum(axis=1).max())
                      for a, b, centre in zip(starts[:-1], starts[1:], centroids)]) * (1 + RADIUS_SLACK)
    n_sampled = np.minimum(counts, np.maximum(2, np.round(sample_size * counts / len(x)))).astype(np.int64)
    return ClusterPartition(members=members, order=order.astype(np.int64), starts=starts, n_sampled=n_sampled,
                            centroids=centroids, radii=radii)


def sample_rows(part: ClusterPartition) -> np.ndarray:
    """Rows of part.members that form the stratified sample, cluster by cluster."""
    return np.concatenate([np.arange(a, a + s) for a, s in zip(part.starts[:-1], part.n_sampled)])


@dataclass(frozen=True)
class StratifiedSums:
    """Per query, in units of exp(-shift * a_h): the sampled kernel sum of each cluster and
    the sum of its squares."""

    shift: np.ndarray  # (n_y,) a squared distance no larger than any sampled one
    sums: np.ndarray  # (n_y, C, n_h)
    squares: np.ndarray  # (n_y, C, n_h)


def sampled_sums(y: np.ndarray, part: ClusterPartition, sample: np.ndarray, a: np.ndarray) -> StratifiedSums:
    """Kernel terms of every query against every sampled row, by one matrix product, summed
    per cluster."""
    d2 = squared_distances(y, part.members[sample])
    shift = d2.min(axis=1)
    terms = np.exp(-(d2 - shift[:, None])[:, :, None] * a[None, None, :])
    first = np.concatenate([[0], np.cumsum(part.n_sampled)[:-1]])
    return StratifiedSums(shift=shift, sums=np.add.reduceat(terms, first, axis=1),
                          squares=np.add.reduceat(terms * terms, first, axis=1))


@nb.njit(**JIT)
def _squared_distance(y, x):
    total = 0.0
    for f in range(y.shape[0]):
        diff = y[f] - x[f]
        total += diff * diff
    return total


@nb.njit(**JIT)
def _stratum_variance(total, squares, n_sampled, size):
    """Variance of size/n_sampled * (sum of a sample) as an estimate of a cluster's sum."""
    if n_sampled >= size or n_sampled < 2:
        return 0.0
    mean = total / n_sampled
    spread = max(squares / n_sampled - mean * mean, 0.0) * n_sampled / (n_sampled - 1)
    return size * size * (1.0 - n_sampled / size) * spread / n_sampled


@nb.njit(**PARALLEL_JIT)
def _probe(y, members, starts, n_sampled, radii, centroid_d2, forced, shift, sums, squares, a,
           n_probe, max_probe, relative_error):
    """Per query: add clusters exactly, forced ones first, then by centroid distance, until at
    least n_probe are in and the stratified estimate of the rest has a relative standard error
    <= relative_error (or max_probe are in). Returns log estimate, log lower and upper bounds,
    relative standard error (worst bandwidth) and the number of terms evaluated."""
    n_y, n_clusters, n_h = sums.shape
    log_estimate = np.empty((n_y, n_h))
    log_lower = np.empty((n_y, n_h))
    log_upper = np.empty((n_y, n_h))
    error = np.empty(n_y)
    n_evaluated = np.empty(n_y, dtype=np.int64)
    largest = 0
    for c in range(n_clusters):
        largest = max(largest, starts[c + 1] - starts[c] - n_sampled[c])
    for i in nb.prange(n_y):
        d2 = np.empty(largest)
        arguments = np.empty(largest)
        scratch = np.empty(largest)
        bits = np.empty(largest, dtype=np.int64)
        cluster_sums = sums[i].copy()
        variances = np.empty((n_clusters, n_h))
        for c in range(n_clusters):
            size = starts[c + 1] - starts[c]
            for h in range(n_h):
                variances[c, h] = _stratum_variance(cluster_sums[c, h], squares[i, c, h], n_sampled[c], size)
        probed = np.zeros(n_clusters, dtype=np.bool_)
        ranking = np.argsort(centroid_d2[i])
        exact = np.zeros(n_h)
        reference = shift[i]
        evaluated = np.sum(n_sampled)
        n_probed = 0
        next_rank = 0
        next_forced = 0
        while n_probed < n_clusters:
            c = -1
            while next_forced < forced.shape[1] and c < 0:
                candidate = forced[i, next_forced]
                next_forced += 1
                if candidate >= 0 and not probed[candidate]:
                    c = candidate
            if c < 0:
                if n_probed >= n_probe:
                    if n_probed >= max_probe:
                        break
                    worst = 0.0
                    for h in range(n_h):
                        tail = 0.0
                        variance = 0.0
                        for cc in range(n_clusters):
                            if not probed[cc]:
                                size = starts[cc + 1] - starts[cc]
                                tail += cluster_sums[cc, h] * size / n_sampled[cc]
                                variance += variances[cc, h]
                        worst = max(worst, math.sqrt(variance) / (exact[h] + tail))
                    if worst <= relative_error:
                        break
                while probed[ranking[next_rank]]:
                    next_rank += 1
                c = ranking[next_rank]
            probed[c] = True
            n_probed += 1
            first, stop = starts[c] + n_sampled[c], starts[c + 1]
            count = stop - first
            evaluated += count
            closest = np.inf
            for j in range(count):
                d2[j] = _squared_distance(y[i], members[first + j])
                closest = min(closest, d2[j])
            if closest < reference:
                # a nearer term than any so far: rescale every accumulator to it
                for h in range(n_h):
                    scale = math.exp(-(reference - closest) * a[h])
                    exact[h] *= scale
                    for cc in range(n_clusters):
                        cluster_sums[cc, h] *= scale
                        variances[cc, h] *= scale * scale
                reference = closest
            for h in range(n_h):
                for j in range(count):
                    arguments[j] = -(d2[j] - reference) * a[h]
                exact[h] += cluster_sums[c, h] + (_exp_sum(arguments, count, scratch, bits) if count else 0.0)
        error[i] = 0.0
        for h in range(n_h):
            tail = 0.0
            variance = 0.0
            sampled = 0.0
            bound = 0.0
            for c in range(n_clusters):
                if probed[c]:
                    continue
                size = starts[c + 1] - starts[c]
                tail += cluster_sums[c, h] * size / n_sampled[c]
                variance += variances[c, h]
                sampled += cluster_sums[c, h]
                # triangle inequality: every unsampled member is at least |y - centroid| - radius away
                gap = max(math.sqrt(centroid_d2[i, c]) - radii[c], 0.0)
                bound += (size - n_sampled[c]) * math.exp(-(gap * gap - reference) * a[h])
            estimate = exact[h] + tail
            lower = exact[h] + sampled
            log_estimate[i, h] = math.log(estimate) - reference * a[h]
            log_lower[i, h] = math.log(lower) - reference * a[h]
            log_upper[i, h] = math.log(lower + bound) - reference * a[h]
            error[i] = max(error[i], math.sqrt(variance) / estimate)
        n_evaluated[i] = evaluated
    return log_estimate, log_lower, log_upper, error, n_evaluated
