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
    """Approximate kernel sums over the n nearest reference points (pynndescent)."""

    n_neighbors: int = 3
    graph_neighbors: int = 10
    query_epsilon: float = 0.1
