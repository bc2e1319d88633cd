"""Dataset compression (spec §3): choose `size` of the M structures of a dataset.

- msc: the first pick is the structure of highest entropy H_s (alone); then each pick is the
  remaining structure with the largest max_i dH(x_i | selected) + H_s, the dH of its
  least-covered environment. Conditional msc starts from a reference set instead of the
  first pick.
- fps: the first pick is the structure of highest H_s; then each pick is the remaining
  structure farthest from the selected ones, the distance between two structures being the
  mean Euclidean distance over all pairs of their environments.
- mean-fps: farthest-point sampling on the structures' mean descriptors from a random start.
- k-means: k-means (k-means++ start, Lloyd iterations) on the mean descriptors; the structure
  nearest each centre, each structure taken once.
- random: a random subset.

msc and fps pick what quests picks, in the same order, ties going to the lowest index.
Where quests' linear-domain kernel sums underflow to 0 (a structure farther than about 38
bandwidths from every selected environment), quests scores every such structure +inf and
takes the lowest index among them; here dH stays finite, so the farthest one is taken.
mean-fps, k-means and random draw from np.random.default_rng(seed): the same seed gives the
same selection.
"""

from dataclasses import dataclass

import numpy as np

from .estimators import DeltaEntropyPartial, EntropyPartial, _per_bandwidth
from .kernels import log_kernel_sum
from .params import KernelParams
from .sampling import fraction_size
from .tools import ToolParams, structure_entropies, structure_starts
from .validation import as_bandwidths, as_descriptor_pair, as_descriptors

COMPRESSION_METHODS = ("msc", "fps", "mean-fps", "k-means", "random")
# The greedy loop's batch sizes, tuned on 2,000 MD structures (scripts/bench_tools.py): a
# leader refresh costs leaders x lagging picks kernel terms, a catch-up all environments x
# lagging picks, and every call to log_kernel_sum about a millisecond besides.
LEADERS = 16  # structures whose scores a greedy pick brings up to date first; doubled while too few
MAX_LEADERS = 512  # beyond this many leaders, bring every score up to date instead
CATCH_UP_PICKS = 16  # picks the bounds may lag behind before every score is brought up to date


class _Structures:
    """Row ranges of the structures of a dataset (rows of structure s: starts[s] + arange(n_atoms[s]))."""

    def __init__(self, n_atoms, n_rows: int):
        self.starts = structure_starts(n_atoms, n_rows)
        self.n_atoms = np.asarray(n_atoms, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.n_atoms)

    def rows(self, structures) -> np.ndarray:
        """Rows of the given structures, concatenated in their order."""
        counts = self.n_atoms[structures]
        first_of_each = np.repeat(np.cumsum(counts) - counts, counts)
        return np.repeat(self.starts[structures], counts) + np.arange(int(counts.sum())) - first_of_each

    def local_starts(self, structures) -> np.ndarray:
        """Where each structure's rows begin within rows(structures)."""
        counts = self.n_atoms[structures]
        return np.cumsum(counts) - counts


def compression_size(n_structures: int, size: int | None = None, fraction: float | None = None) -> int:
    """The number of structures to keep: size itself, or round(fraction * n_structures)."""
    if (size is None) == (fraction is None):
        raise ValueError("give either a size (a number of structures) or a fraction, exactly one of them")
    if fraction is not None:
        return fraction_size(n_structures, fraction)
    return _checked_size(size, n_structures)


def _checked_size(size: int, n_structures: int) -> int:
    if int(size) != size or size < 1:
        raise ValueError(f"size must be a whole number of structures >= 1, got {size}")
    if size > n_structures:
        raise ValueError(f"size {size} is larger than the dataset ({n_structures} structures)")
    return int(size)


def check_compression_method(method: str, with_reference: bool = False) -> None:
    if method not in COMPRESSION_METHODS:
        raise ValueError(f"unknown compression method {method!r}; choose one of {', '.join(COMPRESSION_METHODS)}")
    if with_reference and method != "msc":
        raise ValueError(f"a reference set makes msc conditional; method {method!r} takes none")


def compress(x, n_atoms, size: int, method: str = ToolParams.compression_method, h=KernelParams.bandwidth, *,
             reference=None, seed: int = ToolParams.seed, block_size: int = KernelParams.block_size) -> np.ndarray:
    """Indices of the selected structures, in the order they were picked.

    reference (descriptor rows) makes msc conditional on a set already chosen. seed drives
    mean-fps, k-means and random.
    """
    check_compression_method(method, reference is not None)
    if method == "msc":
        return msc(x, n_atoms, size, h, reference=reference, block_size=block_size)
    if method == "fps":
        return fps(x, n_atoms, size, h, block_size=block_size)
    if method == "mean-fps":
        return mean_fps(x, n_atoms, size, seed=seed)
    if method == "k-means":
        return k_means(x, n_atoms, size, seed=seed)
    return random_selection(len(_Structures(n_atoms, len(as_descriptors(x, "x")))), size, seed=seed)


def _single_bandwidth(h) -> float:
    bandwidths, scalar = as_bandwidths(h)
    if not scalar:
        raise ValueError(f"compression scores structures with one bandwidth, got {h!r}")
    return float(bandwidths[0])


def _greedy(bounds: np.ndarray, first: list[int], size: int, update) -> np.ndarray:
    """Pick structures one at a time up to `size`, each the highest-scoring one not yet picked
    (the lowest index on ties), starting from the picks `first`.

    Scores may only decrease as the selection grows (msc: each pick adds kernel terms to p;
    fps: a minimum over more distances), so scores computed against an earlier selection,
    `bounds`, are upper bounds of the current ones. Each pick brings only the leaders (the
    structures of highest bound) up to date: if the best of them, up to date, beats every
    other bound, it is the structure that recomputing every score would pick. When the
    leaders are not enough, or the bounds lag CATCH_UP_PICKS picks behind, every bound is
    brought up to date at once. The result is the same as recomputing every score after
    every pick; the work is in few, large kernel sums instead of one per pick.

    update(structures, picks, keep) returns the scores of `structures` after adding `picks`
    to the selection the bounds account for; keep=True makes them the new bounds.
    """
    picked = list(first)
    chosen = np.zeros(len(bounds), dtype=bool)
    chosen[picked] = True
    bounds[chosen] = -np.inf
    caught_up = 0  # the bounds account for picked[:caught_up]
    while len(picked) < size:
        if len(picked) - caught_up >= CATCH_UP_PICKS:
            update(np.flatnonzero(~chosen), np.asarray(picked[caught_up:]), True)
            caught_up = len(picked)
        n_leaders = LEADERS
        while True:
            recent = np.asarray(picked[caught_up:], dtype=np.int64)
            if len(recent) == 0:
                best = int(np.argmax(bounds))
                break
            n_leaders = min(n_leaders, len(bounds))
            leaders = np.argpartition(-bounds, n_leaders - 1)[:n_leaders]
            leaders = leaders[~chosen[leaders]]
            current = bounds.copy()
            current[leaders] = update(leaders, recent, False)
            best = int(np.argmax(current))
            if best in leaders:
                break
            n_leaders *= 2
            if n_leaders > MAX_LEADERS:
                update(np.flatnonzero(~chosen), recent, True)
                caught_up = len(picked)
                n_leaders = LEADERS
        picked.append(best)
        chosen[best] = True
        bounds[best] = -np.inf
    return np.asarray(picked, dtype=np.int64)


def msc(x, n_atoms, size: int, h=KernelParams.bandwidth, *, reference=None,
        block_size: int = KernelParams.block_size) -> np.ndarray:
    """msc selection (conditional on reference rows where given); indices in pick order."""
    x = as_descriptors(x, "x")
    h = _single_bandwidth(h)
    structures = _Structures(n_atoms, len(x))
    size = _checked_size(size, len(structures))
    entropies = structure_entropies(x, structures.n_atoms, h, block_size=block_size)
    if reference is None:
        log_p = np.full(len(x), -np.inf)  # log p(x_i | selection the bounds account for), still empty
        bounds = np.full(len(structures), np.inf)
        first = [int(np.argmax(entropies))]
    else:
        reference, x = as_descriptor_pair(reference, x)
        log_p = log_kernel_sum(x, reference, h, block_size=block_size)
        bounds = -np.minimum.reduceat(log_p, structures.starts) + entropies
        first = []

    def update(group: np.ndarray, picks: np.ndarray, keep: bool) -> np.ndarray:
        rows = structures.rows(group)
        added = log_kernel_sum(x[rows], x[structures.rows(picks)], h, block_size=block_size)
        group_log_p = np.logaddexp(log_p[rows], added)
        scores = -np.minimum.reduceat(group_log_p, structures.local_starts(group)) + entropies[group]
        if keep:
            log_p[rows] = group_log_p
            bounds[group] = scores
        return scores

    return _greedy(bounds, first, size, update)


def fps(x, n_atoms, size: int, h=KernelParams.bandwidth, *, block_size: int = KernelParams.block_size) -> np.ndarray:
    """Farthest-point sampling of structures by mean environment distance; indices in pick order.
    h only enters through the first pick (the structure of highest entropy)."""
    x = as_descriptors(x, "x")
    h = _single_bandwidth(h)
    structures = _Structures(n_atoms, len(x))
    size = _checked_size(size, len(structures))
    entropies = structure_entropies(x, structures.n_atoms, h, block_size=block_size)
    bounds = np.full(len(structures), np.inf)  # distance to the nearest selected structure

    def update(group: np.ndarray, picks: np.ndarray, keep: bool) -> np.ndarray:
        scores = np.minimum(bounds[group], _mean_pair_distances(x, structures, group, picks, block_size).min(axis=1))
        if keep:
            bounds[group] = scores
        return scores

    return _greedy(bounds, [int(np.argmax(entropies))], size, update)


def _mean_pair_distances(x: np.ndarray, structures: _Structures, group: np.ndarray, picks: np.ndarray,
                         block_size: int) -> np.ndarray:
    """(len(group), len(picks)): mean of |x_i - x_j| over rows i of group[p] and j of picks[q].

    Distances come from dot products (as quests computes them; rounding below zero is
    clipped), of rows centred on the block of columns they meet, which keeps the rounding
    small. Scratch memory: a block of rows by a block of columns.
    """
    rows, columns = structures.rows(group), structures.rows(picks)
    owners = np.repeat(np.arange(len(picks)), structures.n_atoms[picks])  # the pick of each column
    row_sums = np.zeros((len(rows), len(picks)))
    for c0 in range(0, len(columns), block_size):
        block_owners = owners[c0:c0 + block_size]
        first_owner = block_owners[0]
        owner_starts = np.flatnonzero(np.diff(block_owners, prepend=first_owner - 1))
        right = x[columns[c0:c0 + block_size]]
        centre = right.mean(axis=0)
        right = right - centre
        right_norms = np.einsum("ij,ij->i", right, right)
        for r0 in range(0, len(rows), block_size):
            left = x[rows[r0:r0 + block_size]] - centre
            squared = np.einsum("ij,ij->i", left, left)[:, None] + right_norms[None, :] - 2.0 * left @ right.T
            distances = np.sqrt(np.maximum(squared, 0.0))
            row_sums[r0:r0 + len(left), first_owner:first_owner + len(owner_starts)] += np.add.reduceat(
                distances, owner_starts, axis=1)
    totals = np.add.reduceat(row_sums, structures.local_starts(group), axis=0)
    return totals / (structures.n_atoms[group][:, None] * structures.n_atoms[picks][None, :])


def _mean_descriptors(x, n_atoms) -> np.ndarray:
    x = as_descriptors(x, "x")
    structures = _Structures(n_atoms, len(x))
    return np.add.reduceat(x.astype(np.float64), structures.starts, axis=0) / structures.n_atoms[:, None]


def mean_fps(x, n_atoms, size: int, *, seed: int = ToolParams.seed) -> np.ndarray:
    """Farthest-point sampling on mean descriptors from a random first structure; indices in pick order."""
    means = _mean_descriptors(x, n_atoms)
    size = _checked_size(size, len(means))
    picked = [int(np.random.default_rng(seed).integers(len(means)))]
    nearest = np.full(len(means), np.inf)  # distance to the nearest picked structure
    while len(picked) < size:
        nearest = np.minimum(nearest, np.linalg.norm(means - means[picked[-1]], axis=1))
        nearest[picked] = -np.inf
        picked.append(int(np.argmax(nearest)))
    return np.asarray(picked, dtype=np.int64)


def k_means(x, n_atoms, size: int, *, seed: int = ToolParams.seed,
            max_iterations: int = ToolParams.k_means_iterations, block_size: int = KernelParams.block_size) -> np.ndarray:
    """size clusters of the mean descriptors; for each centre in turn, the nearest structure
    not taken yet (so the result always holds size distinct structures)."""
    means = _mean_descriptors(x, n_atoms)
    size = _checked_size(size, len(means))
    rng = np.random.default_rng(seed)
    centres = _k_means_plus_plus(means, size, rng)
    for _ in range(max_iterations):
        labels, distances = _nearest_centres(means, centres, block_size)
        updated = _cluster_means(means, labels, distances, centres)
        if np.array_equal(updated, centres):
            break
        centres = updated
    taken = np.zeros(len(means), dtype=bool)
    picked = []
    for centre in centres:
        squared = ((means - centre) ** 2).sum(axis=1)
        squared[taken] = np.inf
        picked.append(int(np.argmin(squared)))
        taken[picked[-1]] = True
    return np.asarray(picked, dtype=np.int64)


def _k_means_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Initial centres: each drawn with probability proportional to its squared distance to the nearest centre so far."""
    centres = [points[rng.integers(len(points))]]
    squared = ((points - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = squared.sum()
        # all points on centres already: any point will do
        choice = rng.choice(len(points), p=squared / total) if total > 0 else rng.integers(len(points))
        centres.append(points[choice])
        squared = np.minimum(squared, ((points - centres[-1]) ** 2).sum(axis=1))
    return np.array(centres)


def _nearest_centres(points: np.ndarray, centres: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Label (nearest centre) and squared distance to it of every point; scratch memory is
    block_size**2 distances, whatever the number of centres."""
    labels = np.empty(len(points), dtype=np.int64)
    distances = np.empty(len(points))
    centre_norms = (centres**2).sum(axis=1)
    rows = max(1, block_size * block_size // len(centres))
    for start in range(0, len(points), rows):
        block = points[start:start + rows]
        squared = (block**2).sum(axis=1)[:, None] + centre_norms[None, :] - 2.0 * block @ centres.T
        nearest = np.argmin(squared, axis=1)
        labels[start:start + rows] = nearest
        distances[start:start + rows] = np.maximum(squared[np.arange(len(block)), nearest], 0.0)
    return labels, distances


def _cluster_means(points: np.ndarray, labels: np.ndarray, distances: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Lloyd update; an empty cluster takes the point farthest from its centre, as sklearn does."""
    counts = np.bincount(labels, minlength=len(centres))
    sums = np.zeros_like(centres)
    np.add.at(sums, labels, points)
    updated = centres.copy()
    filled = counts > 0
    updated[filled] = sums[filled] / counts[filled, None]
    farthest_first = np.argsort(-distances, kind="stable")
    for empty, point in zip(np.flatnonzero(~filled), farthest_first):
        updated[empty] = points[point]
    return updated


def random_selection(n_structures: int, size: int, *, seed: int = ToolParams.seed) -> np.ndarray:
    """size distinct structures drawn uniformly, in the order drawn."""
    size = _checked_size(size, n_structures)
    return np.random.default_rng(seed).choice(n_structures, size, replace=False).astype(np.int64)


@dataclass(frozen=True)
class CompressionSummary:
    """H and D of the selected structures' environments, and the overlap of the whole dataset
    with them: the fraction of all environments with dH(x | selected) < overlap_eps."""

    entropy: float | np.ndarray
    diversity: float | np.ndarray
    overlap: float | np.ndarray
    n_structures: int
    n_environments: int
    original_structures: int
    original_environments: int


def compression_summary(x, n_atoms, indices, h=KernelParams.bandwidth, overlap_eps: float = KernelParams.overlap_eps,
                        *, block_size: int = KernelParams.block_size) -> CompressionSummary:
    x = as_descriptors(x, "x")
    as_bandwidths(h)
    structures = _Structures(n_atoms, len(x))
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) == 0 or indices.min() < 0 or indices.max() >= len(structures):
        raise ValueError(f"indices must be a non-empty list of structures 0..{len(structures) - 1}")
    selected = x[structures.rows(indices)]
    own = EntropyPartial.from_log_p(log_kernel_sum(selected, selected, h, block_size=block_size))
    covered = DeltaEntropyPartial.from_dh(-log_kernel_sum(x, selected, h, block_size=block_size), overlap_eps)
    return CompressionSummary(
        entropy=_per_bandwidth(own.entropy, h),
        diversity=_per_bandwidth(own.diversity, h),
        overlap=_per_bandwidth(covered.overlap, h),
        n_structures=len(indices),
        n_environments=len(selected),
        original_structures=len(structures),
        original_environments=len(x),
    )
