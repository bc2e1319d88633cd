"""Dataset-level tools of spec §3 that need no sampling or selection: the bandwidth rule,
per-structure self-entropies, and the information gap of a subset.

A dataset of several structures is its descriptor rows x, structure after structure, and
n_atoms, the number of rows of each structure in order (a descriptor store's frames).
"""

from dataclasses import dataclass

import numba as nb
import numpy as np

from ._numba import PARALLEL_JIT
from .estimators import EntropyPartial, DeltaEntropyPartial, _per_bandwidth, _rows_by_bandwidth
from .kernels import log_kernel_sum
from .params import KernelParams
from .validation import as_bandwidths, as_descriptor_pair, as_descriptors

# spec §3: h(V) = AMPLITUDE exp(-0.5 (V / WIDTH)^2) + FLOOR, V in Å^3/atom (quests' Gaussian fit)
BANDWIDTH_FIT_AMPLITUDE = 0.0897141
BANDWIDTH_FIT_WIDTH = 10.896
BANDWIDTH_FIT_FLOOR = 0.0119417
# Structures up to this many atoms get their self-sums from one pairwise numba pass over all
# of them: log_kernel_sum costs about a millisecond per call before any work (thread-pool
# limits, validation), which thousands of small structures would pay thousands of times.
SMALL_STRUCTURE_ATOMS = 256


@dataclass(frozen=True)
class ToolParams:
    """Defaults of the dataset tools (quests' defaults where quests has the tool)."""

    seed: int = 0
    sampler_sample_size: int = 1000
    sampler_runs: int = 20
    learning_curve_fractions: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    learning_curve_runs: int = 3
    compression_method: str = "msc"
    compression_fraction: float = 0.5
    k_means_iterations: int = 300


def bandwidth_from_volume(volume):
    """Bandwidth h (1/Å) for an atomic volume in Å^3/atom, by quests' Gaussian fit (spec §3):
    a float for one volume, an array for several."""
    values = np.asarray(volume, dtype=np.float64)
    if not (np.isfinite(values) & (values > 0)).all():
        raise ValueError(f"volume must be > 0 Å^3/atom, got {volume!r}")
    h = BANDWIDTH_FIT_AMPLITUDE * np.exp(-0.5 * (values / BANDWIDTH_FIT_WIDTH) ** 2) + BANDWIDTH_FIT_FLOOR
    return float(h) if h.ndim == 0 else h


def mean_volume_per_atom(cells, n_atoms) -> float:
    """Mean over structures of |det(cell)| / n_atoms (Å^3/atom), as quests averages it."""
    cells = np.asarray(cells, dtype=np.float64).reshape(-1, 3, 3)
    n_atoms = np.asarray(n_atoms, dtype=np.int64).reshape(-1)
    if len(cells) == 0:
        raise ValueError("no structures to take a volume from")
    if len(cells) != len(n_atoms):
        raise ValueError(f"{len(cells)} cells but {len(n_atoms)} atom counts")
    if (n_atoms < 1).any():
        raise ValueError(f"structure {int(np.argmax(n_atoms < 1))} has no atoms")
    volumes = np.abs(np.linalg.det(cells))
    empty = ~(volumes > 0)
    if empty.any():
        raise ValueError(f"structure {int(np.argmax(empty))} has no cell volume (no 3-D cell)")
    return float(np.mean(volumes / n_atoms))


def structure_starts(n_atoms, n_rows: int) -> np.ndarray:
    """First row of each structure; checks that n_atoms (each >= 1) covers exactly n_rows rows."""
    n_atoms = np.asarray(n_atoms)
    if n_atoms.ndim != 1 or len(n_atoms) == 0 or not np.issubdtype(n_atoms.dtype, np.integer):
        raise ValueError(f"n_atoms must be a non-empty 1-D array of integers, got {n_atoms!r}")
    if (n_atoms < 1).any():
        raise ValueError(f"n_atoms: structure {int(np.argmax(n_atoms < 1))} has no atoms")
    if int(n_atoms.sum()) != n_rows:
        raise ValueError(f"n_atoms adds up to {int(n_atoms.sum())} rows, the descriptors have {n_rows}")
    return np.concatenate([[0], np.cumsum(n_atoms)[:-1]]).astype(np.int64)


def structure_delta_entropy(x, n_atoms, h=KernelParams.bandwidth, *, block_size: int = KernelParams.block_size):
    """dH(x_i | S) of every row against its own structure S: (n_rows,) or (n_rows, n_bandwidths).

    quests' per-frame dH of a trajectory (delta_entropy(frame, frame) for each frame); <= 0
    (the self term), and the closer to 0 the more an environment stands alone in its structure.
    """
    x = as_descriptors(x, "x")
    bandwidths, scalar = as_bandwidths(h)
    n_atoms = np.asarray(n_atoms)
    starts = structure_starts(n_atoms, len(x))
    log_p = np.empty((len(x), len(bandwidths)))
    small = n_atoms <= SMALL_STRUCTURE_ATOMS
    _small_structure_log_p(x, starts[small], n_atoms[small].astype(np.int64), 0.5 / bandwidths**2, log_p)
    for start, n in zip(starts[~small], n_atoms[~small]):
        log_p[start:start + n] = log_kernel_sum(x[start:start + n], x[start:start + n], bandwidths, block_size=block_size)
    return -log_p[:, 0] if scalar else -log_p


@nb.njit(**PARALLEL_JIT)
def _small_structure_log_p(x, starts, counts, inverse_two_h2, log_p):
    """log_p[i, h] = log sum_j exp(-|x_i - x_j|^2 inverse_two_h2[h]) over the rows j of i's own
    structure, from explicit differences. The self term makes every sum >= 1: no shift needed."""
    n_h = inverse_two_h2.shape[0]
    for s in nb.prange(starts.shape[0]):
        first, last = starts[s], starts[s] + counts[s]
        for i in range(first, last):
            sums = np.zeros(n_h)
            for j in range(first, last):
                squared = 0.0
                for d in range(x.shape[1]):
                    diff = np.float64(x[i, d]) - np.float64(x[j, d])
                    squared += diff * diff
                for h in range(n_h):
                    sums[h] += np.exp(-squared * inverse_two_h2[h])
            for h in range(n_h):
                log_p[i, h] = np.log(sums[h])


def structure_entropies(x, n_atoms, h=KernelParams.bandwidth, *, block_size: int = KernelParams.block_size):
    """H of each structure alone: (n_structures,) or (n_structures, n_bandwidths)."""
    dh = structure_delta_entropy(x, n_atoms, h, block_size=block_size)
    return entropies_from_self_dh(dh, n_atoms)


def entropies_from_self_dh(dh, n_atoms):
    """H of each structure from structure_delta_entropy's output: H = log n + mean_i dH_i
    (dH_i = -log p_i against the structure itself)."""
    n_atoms = np.asarray(n_atoms)
    rows = _rows_by_bandwidth(dh)
    sums = np.add.reduceat(rows, structure_starts(n_atoms, len(rows)), axis=0)
    entropies = np.log(n_atoms)[:, None] + sums / n_atoms[:, None]
    return entropies[:, 0] if np.ndim(dh) == 1 else entropies


@dataclass(frozen=True)
class InformationGap:
    """How much of a dataset X a subset S leaves out (arrays over bandwidths where several).

    gap = H(X) - H(S): positive where S holds less information than X (it may be negative:
    dropping near-duplicates raises H). dh = dH(x | S) per environment of X says which
    environments S misses: novelty is the fraction with dH > 0, overlap the fraction with
    dH < overlap_eps.
    """

    entropy: float | np.ndarray
    subset_entropy: float | np.ndarray
    gap: float | np.ndarray
    dh: np.ndarray
    dh_mean: float | np.ndarray
    dh_max: float | np.ndarray
    novelty: float | np.ndarray
    overlap: float | np.ndarray
    overlap_eps: float


def information_gap(x, subset, h=KernelParams.bandwidth, overlap_eps: float = KernelParams.overlap_eps, *,
                    block_size: int = KernelParams.block_size) -> InformationGap:
    """H(X), H(S), their gap and dH(X | S) for a dataset x and a subset (rows of descriptors)."""
    as_bandwidths(h)
    subset, x = as_descriptor_pair(subset, x)
    full = EntropyPartial.from_log_p(log_kernel_sum(x, x, h, block_size=block_size))
    part = EntropyPartial.from_log_p(log_kernel_sum(subset, subset, h, block_size=block_size))
    dh = -log_kernel_sum(x, subset, h, block_size=block_size)
    missed = DeltaEntropyPartial.from_dh(dh, overlap_eps)
    return InformationGap(
        entropy=_per_bandwidth(full.entropy, h),
        subset_entropy=_per_bandwidth(part.entropy, h),
        gap=_per_bandwidth(full.entropy - part.entropy, h),
        dh=dh,
        dh_mean=_per_bandwidth(missed.dh_mean, h),
        dh_max=_per_bandwidth(missed.max_dh, h),
        novelty=_per_bandwidth(missed.novelty, h),
        overlap=_per_bandwidth(missed.overlap, h),
        overlap_eps=overlap_eps,
    )
