"""quests_core: the numerics of the QUESTS method (spec in shared/spec/method.md).

Arrays in, arrays out: descriptors, exact and approximate kernel sums, and the estimators
H, D, dH, novelty and overlap. Imports numpy and numba (pynndescent lazily, in
approximate); never dask, zarr, yaml or ase at module level.
"""

from .approximate import (
    AdaptiveLogKernelSum,
    ApproxLogKernelSum,
    DeltaEntropyBracket,
    DeltaEntropyEstimate,
    ReferenceIndex,
    adaptive_delta_entropy,
    adaptive_log_kernel_sum,
    approx_delta_entropy,
    approx_log_kernel_sum,
    build_index,
    delta_entropy_bracket,
)
from .ase_adapter import get_descriptors, get_descriptors_multicomponent
from .descriptors import compute_descriptors, descriptor_width
from .estimators import (
    DeltaEntropyPartial,
    EntropyPartial,
    delta_entropy,
    diversity,
    entropy,
    grouped_delta_entropy_partials,
    novelty,
    overlap,
)
from .kernels import kernel_sum, log_kernel_sum
from .params import ApproxParams, DescriptorParams, KernelParams

__all__ = [
    "AdaptiveLogKernelSum", "DeltaEntropyEstimate", "adaptive_delta_entropy", "adaptive_log_kernel_sum",
    "ApproxLogKernelSum", "ApproxParams", "DeltaEntropyBracket", "DeltaEntropyPartial", "DescriptorParams",
    "EntropyPartial", "KernelParams", "ReferenceIndex", "approx_delta_entropy", "approx_log_kernel_sum",
    "build_index", "compute_descriptors", "delta_entropy", "delta_entropy_bracket", "descriptor_width",
    "diversity", "entropy", "get_descriptors", "get_descriptors_multicomponent", "grouped_delta_entropy_partials", "kernel_sum",
    "log_kernel_sum", "novelty", "overlap",
]
