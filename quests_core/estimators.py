"""Dataset entropy H, diversity D, differential entropy dH, novelty and overlap (spec §2),
and associative partial statistics that let a reducer combine chunks without gathering
per-environment values."""

from dataclasses import dataclass

import numpy as np

from .kernels import log_kernel_sum
from .params import KernelParams
from .validation import as_bandwidths, as_descriptors


def _per_bandwidth(values: np.ndarray, h):
    """A float for one bandwidth given as a number, else the array over bandwidths."""
    return float(values[0]) if np.ndim(h) == 0 else values


def _rows_by_bandwidth(values) -> np.ndarray:
    """Per-environment values as (n_environments, n_bandwidths); a 1-D array is one bandwidth."""
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(-1, 1) if values.ndim == 1 else values


@dataclass(frozen=True)
class EntropyPartial:
    """Sums over a chunk of log p(x_i|X), p against the whole dataset X: enough for H and D.
    Arrays are over bandwidths."""

    n_environments: int
    sum_log_p: np.ndarray
    log_sum_inverse_p: np.ndarray

    @classmethod
    def from_log_p(cls, log_p) -> "EntropyPartial":
        log_p = _rows_by_bandwidth(log_p)
        return cls(len(log_p), log_p.sum(axis=0), np.logaddexp.reduce(-log_p, axis=0))

    def __add__(self, other: "EntropyPartial") -> "EntropyPartial":
        return EntropyPartial(
            self.n_environments + other.n_environments,
            self.sum_log_p + other.sum_log_p,
            np.logaddexp(self.log_sum_inverse_p, other.log_sum_inverse_p),
        )

    @property
    def entropy(self) -> np.ndarray:
        return np.log(self.n_environments) - self.sum_log_p / self.n_environments

    @property
    def diversity(self) -> np.ndarray:
        return self.log_sum_inverse_p


@dataclass(frozen=True)
class DeltaEntropyPartial:
    """Counts and sums of dH(y|X) over a chunk of Y: enough for mean and max dH, novelty
    and overlap. Arrays are over bandwidths."""

    n_environments: int
    sum_dh: np.ndarray
    max_dh: np.ndarray
    n_novel: np.ndarray
    n_overlapping: np.ndarray
    overlap_eps: float = KernelParams.overlap_eps

    @classmethod
    def from_dh(cls, dh, overlap_eps: float = KernelParams.overlap_eps) -> "DeltaEntropyPartial":
        dh = _rows_by_bandwidth(dh)
        return cls(len(dh), dh.sum(axis=0), dh.max(axis=0, initial=-np.inf), (dh > 0).sum(axis=0),
                   (dh < overlap_eps).sum(axis=0), overlap_eps)

    def __add__(self, other: "DeltaEntropyPartial") -> "DeltaEntropyPartial":
        if other.overlap_eps != self.overlap_eps:
            raise ValueError(f"overlap_eps differs: {self.overlap_eps} vs {other.overlap_eps}")
        return DeltaEntropyPartial(
            self.n_environments + other.n_environments,
            self.sum_dh + other.sum_dh,
            np.maximum(self.max_dh, other.max_dh),
            self.n_novel + other.n_novel,
            self.n_overlapping + other.n_overlapping,
            self.overlap_eps,
        )

    @property
    def dh_mean(self) -> np.ndarray:
        return self.sum_dh / self.n_environments

    @property
    def novelty(self) -> np.ndarray:
        return self.n_novel / self.n_environments

    @property
    def overlap(self) -> np.ndarray:
        return self.n_overlapping / self.n_environments


def entropy(x, h=KernelParams.bandwidth, *, block_size: int = KernelParams.block_size):
    """H(X) in nats: a float for one bandwidth, an array for several."""
    as_bandwidths(h)
    x = as_descriptors(x, "x")
    return _per_bandwidth(EntropyPartial.from_log_p(log_kernel_sum(x, x, h, block_size=block_size)).entropy, h)


def diversity(x, h=KernelParams.bandwidth, *, block_size: int = KernelParams.block_size):
    """D(X) = log sum_i 1/p(x_i|X) in nats: a float for one bandwidth, an array for several."""
    as_bandwidths(h)
    x = as_descriptors(x, "x")
    return _per_bandwidth(EntropyPartial.from_log_p(log_kernel_sum(x, x, h, block_size=block_size)).diversity, h)


def delta_entropy(y, x, h=KernelParams.bandwidth, *, block_size: int = KernelParams.block_size) -> np.ndarray:
    """dH(y|X) = -log p(y|X) per query row (quests' argument order); (n_y,) or (n_y, n_bandwidths)."""
    return -log_kernel_sum(y, x, h, block_size=block_size)


def novelty(y, x, h=KernelParams.bandwidth, *, block_size: int = KernelParams.block_size):
    """Fraction of y with dH(y|X) > 0: environments no reference covers."""
    return _per_bandwidth(DeltaEntropyPartial.from_dh(delta_entropy(y, x, h, block_size=block_size)).novelty, h)


def overlap(y, x, h=KernelParams.bandwidth, eps: float = KernelParams.overlap_eps, *,
            block_size: int = KernelParams.block_size):
    """Fraction of y with dH(y|X) < eps: environments the reference covers."""
    dh = delta_entropy(y, x, h, block_size=block_size)
    return _per_bandwidth(DeltaEntropyPartial.from_dh(dh, overlap_eps=eps).overlap, h)


def grouped_delta_entropy_partials(dh, groups, overlap_eps: float = KernelParams.overlap_eps) -> dict[int, DeltaEntropyPartial]:
    """One DeltaEntropyPartial per group label (e.g. per frame) of the rows of dh."""
    dh = _rows_by_bandwidth(dh)
    groups = np.asarray(groups)
    order = np.argsort(groups, kind="stable")
    labels, starts = np.unique(groups[order], return_index=True)
    bounds = np.append(starts, len(groups))
    return {int(label): DeltaEntropyPartial.from_dh(dh[order[bounds[i]:bounds[i + 1]]], overlap_eps)
            for i, label in enumerate(labels)}
