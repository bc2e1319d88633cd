"""Entropy of random subsamples (spec §3): the entropy sampler (s environments, r runs) and
the learning curve (fractions f of the dataset, r runs each).

Every run draws its own sample from np.random.default_rng([seed, series, run]), so a run's
sample depends only on those three numbers: runs can be computed in any order, in any
process, and give the same answer. Samples are drawn without replacement by default (a
fraction of the dataset is a subset of it); replace=True draws with replacement, as quests
does, which puts duplicates in the sample and lowers H below that of a subset of the same size.
"""

from dataclasses import dataclass

import numpy as np

from .estimators import entropy
from .params import KernelParams
from .tools import ToolParams
from .validation import as_bandwidths, as_descriptors


def fraction_size(n: int, fraction: float) -> int:
    """round(n * fraction), at least 1, for 0 < fraction <= 1 (quests' compress rounds the same
    way; its learning curve truncates, which differs by at most one)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return max(1, int(np.round(n * fraction)))


def check_sample_size(sample_size: int, n_environments: int) -> None:
    if sample_size < 1:
        raise ValueError(f"sample size must be >= 1, got {sample_size}")
    if sample_size > n_environments:
        raise ValueError(f"sample size {sample_size} is larger than the dataset ({n_environments} environments)")


def check_runs(n_runs: int) -> None:
    if n_runs < 1:
        raise ValueError(f"the number of runs must be >= 1, got {n_runs}")


def fraction_sizes(n: int, fractions) -> list[int]:
    """fraction_size of each of a non-empty list of fractions."""
    if len(fractions) == 0:
        raise ValueError("fractions is empty: give at least one fraction in (0, 1]")
    return [fraction_size(n, fraction) for fraction in fractions]


def sample_indices(n_environments: int, sample_size: int, seed: int, run: int, *, series: int = 0,
                   replace: bool = False) -> np.ndarray:
    """Rows of one run's sample (sorted; repeated rows where replace=True)."""
    check_sample_size(sample_size, n_environments)
    rng = np.random.default_rng([seed, series, run])
    if replace:
        return np.sort(rng.integers(0, n_environments, sample_size))
    return np.sort(rng.choice(n_environments, sample_size, replace=False))


@dataclass(frozen=True)
class SampledEntropy:
    """H of r samples of one size: entropies is (n_runs,) for one bandwidth, (n_runs, n_bandwidths) for several."""

    sample_size: int
    entropies: np.ndarray

    @property
    def mean(self):
        return _per_run_statistic(self.entropies.mean(axis=0))

    @property
    def std(self):
        """Spread over runs (population standard deviation, as quests reports it)."""
        return _per_run_statistic(self.entropies.std(axis=0))

    @property
    def max_entropy(self) -> float:
        """log of the sample size: H of a sample with no two environments alike."""
        return float(np.log(self.sample_size))


def _per_run_statistic(values):
    return float(values) if np.ndim(values) == 0 else values


def entropy_sampler(x, sample_size: int, n_runs: int = ToolParams.sampler_runs, h=KernelParams.bandwidth, *,
                    seed: int = ToolParams.seed, replace: bool = False, series: int = 0) -> SampledEntropy:
    """H of n_runs random samples of sample_size environments of x."""
    x = as_descriptors(x, "x")
    as_bandwidths(h)
    check_runs(n_runs)
    entropies = [entropy(x[sample_indices(len(x), sample_size, seed, run, series=series, replace=replace)], h)
                 for run in range(n_runs)]
    return SampledEntropy(sample_size, np.asarray(entropies, dtype=np.float64))


def learning_curve(x, fractions=ToolParams.learning_curve_fractions, n_runs: int = ToolParams.learning_curve_runs,
                   h=KernelParams.bandwidth, *, seed: int = ToolParams.seed, replace: bool = False) -> list[SampledEntropy]:
    """H of random fractions of x, n_runs samples each; fraction i draws its samples as series i."""
    x = as_descriptors(x, "x")
    sizes = fraction_sizes(len(x), fractions)
    return [entropy_sampler(x, size, n_runs, h, seed=seed, replace=replace, series=series)
            for series, size in enumerate(sizes)]
