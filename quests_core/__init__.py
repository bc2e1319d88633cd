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
from .compression import (
    COMPRESSION_METHODS,
    CompressionSummary,
    check_compression_method,
    compress,
    compression_size,
    compression_summary,
    fps,
    k_means,
    mean_fps,
    msc,
    random_selection,
)
from .descriptors import compute_descriptors, compute_descriptors_many, descriptor_width
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
from .sampling import (
    SampledEntropy,
    check_runs,
    check_sample_size,
    entropy_sampler,
    fraction_size,
    fraction_sizes,
    learning_curve,
    sample_indices,
)
from .tools import (
    InformationGap,
    ToolParams,
    bandwidth_from_volume,
    entropies_from_self_dh,
    information_gap,
    mean_volume_per_atom,
    structure_delta_entropy,
    structure_entropies,
)

__all__ = [
    "COMPRESSION_METHODS", "CompressionSummary", "InformationGap", "SampledEntropy", "ToolParams",
    "bandwidth_from_volume", "compress", "compression_size", "compression_summary", "entropy_sampler", "fps",
    "fraction_size", "information_gap", "k_means", "learning_curve", "mean_fps", "mean_volume_per_atom", "msc",
    "random_selection", "sample_indices", "structure_delta_entropy", "structure_entropies", "check_compression_method",
    "check_runs", "check_sample_size", "entropies_from_self_dh", "fraction_sizes",
    "AdaptiveLogKernelSum", "DeltaEntropyEstimate", "adaptive_delta_entropy", "adaptive_log_kernel_sum",
    "ApproxLogKernelSum", "ApproxParams", "DeltaEntropyBracket", "DeltaEntropyPartial", "DescriptorParams",
    "EntropyPartial", "KernelParams", "ReferenceIndex", "approx_delta_entropy", "approx_log_kernel_sum",
    "build_index", "compute_descriptors", "compute_descriptors_many", "delta_entropy", "delta_entropy_bracket", "descriptor_width",
    "diversity", "entropy", "get_descriptors", "get_descriptors_multicomponent", "grouped_delta_entropy_partials", "kernel_sum",
    "log_kernel_sum", "novelty", "overlap",
]
