"""Parameters of the method and their defaults, defined once for the whole project."""

from dataclasses import dataclass


@dataclass(frozen=True)
class DescriptorParams:
    """Atom-centred descriptor (spec §1): k nearest neighbours inside a smooth cutoff."""

    k: int = 32
    cutoff: float = 5.0


@dataclass(frozen=True)
class KernelParams:
    """Gaussian kernel density (spec §2).

    block_size bounds scratch memory: one exact tile holds block_size**2 distances.
    overlap_eps is the dH threshold below which an environment counts as overlapping.
    """

    bandwidth: float = 0.015
    block_size: int = 2048
    overlap_eps: float = 1e-5


@dataclass(frozen=True)
class ApproxParams:
    """Approximate kernel sums.

    Truncated (quests' method, quests' default n = 3): the n_neighbors nearest reference
    points from a pynndescent graph of graph_neighbors neighbours per point. Adaptive (ours):
    the reference split into about clusters_per_sqrt_n * sqrt(N) k-means clusters; the
    clusters holding the n_neighbors nearest points and the n_probe nearest clusters summed
    exactly, the rest estimated from a stratified sample of about sample_size reference
    points; more clusters are added, up to max_probe, until the estimate's interval of two
    standard errors either side is narrower than tolerance (nats).
    """

    n_neighbors: int = 10
    graph_neighbors: int = 10
    query_epsilon: float = 0.1
    clusters_per_sqrt_n: float = 2.0
    sample_size: int = 1024
    n_probe: int = 3
    max_probe: int = 32
    tolerance: float = 0.1
