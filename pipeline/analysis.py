"""Distributed kernel sums and the reducer: H, D and per-atom dH from descriptor stores.

Exact path: the query rows are cut into blocks aligned with the store's chunks; each query
block x reference block tile is one Dask task (quests_core.log_kernel_sum on the two blocks,
memory bounded by the block sizes); the tiles of a query block are merged by a tree of
log-add-exp tasks; a last task per query block writes its per-environment dH to the query
store's results group and returns associative partial statistics (quests_core
EntropyPartial / DeltaEntropyPartial, overall and per frame), which the client adds up.
"""

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
from distributed import Client, as_completed

from quests_core import (
    ApproxParams,
    DeltaEntropyPartial,
    EntropyPartial,
    KernelParams,
    adaptive_delta_entropy,
    build_index,
    grouped_delta_entropy_partials,
    log_kernel_sum,
)

from .cluster import use_worker_cores, worker_count
from .progress import Progress
from .store import DescriptorStore

log = logging.getLogger("quests_pipeline")

DEFAULT_BLOCK_ROWS = 16384
MERGE_FAN_IN = 8
RESULT_CHUNK_ROWS = 4096  # rows per chunk of a results array; query blocks are whole chunks of it
TASKS_PER_WORKER = 4  # tiles (exact) or query blocks (approximate) per worker, at least
DH_QUANTILES = (0.5, 0.9, 0.99)
APPROX_ARRAYS = ("dh", "dh_min", "dh_max", "dh_error")


@dataclass(frozen=True)
class Block:
    path: str
    start: int
    stop: int


def _blocks(store: DescriptorStore, block_rows: int, n_pieces: int = 1, align: int = 1) -> list[Block]:
    """At least n_pieces row blocks of a store, of at most about block_rows rows, equal in size
    up to a multiple of align (query blocks align with the results' chunks, so no two tasks
    write one chunk)."""
    n = store.n_environments
    pieces = max(math.ceil(n / block_rows), n_pieces, 1)
    rows = max(math.ceil(math.ceil(n / pieces) / align) * align, 1)
    return [Block(str(store.path), start, min(start + rows, n)) for start in range(0, n, rows)]


def _tile(query: Block, reference: Block, bandwidths: np.ndarray) -> np.ndarray:
    use_worker_cores()
    y = DescriptorStore.open(query.path).read_descriptors(query.start, query.stop)
    x = DescriptorStore.open(reference.path).read_descriptors(reference.start, reference.stop)
    return log_kernel_sum(y, x, bandwidths)


def _merge(*parts: np.ndarray) -> np.ndarray:
    return np.logaddexp.reduce(np.stack(parts), axis=0)


def _finish(query: Block, log_p: np.ndarray, results: str, overlap_eps: float):
    """Write dH = -log p of a query block; return its partial statistics."""
    store = DescriptorStore.open(query.path, mode="r+")
    dh = -log_p
    store.group[f"results/{results}/dh"][query.start:query.stop] = dh
    frames = store.group["env_frame"][query.start:query.stop]
    return (EntropyPartial.from_log_p(log_p), DeltaEntropyPartial.from_dh(dh, overlap_eps),
            grouped_delta_entropy_partials(dh, frames, overlap_eps))


def exact_kernel_sums(client: Client, query: DescriptorStore, references: list[DescriptorStore], bandwidths,
                      results: str, *, block_rows: int = DEFAULT_BLOCK_ROWS, overlap_eps: float = KernelParams.overlap_eps):
    """log p(y|X) of every query environment against the union of the reference stores,
    written as dh to the query store's results group; returns the summed partials."""
    bandwidths = np.atleast_1d(np.asarray(bandwidths, dtype=np.float64))
    # enough tiles of even size to keep every worker busy to the end: query blocks of whole
    # results chunks first, then the references cut to make up the count
    n_tasks = TASKS_PER_WORKER * worker_count(client)
    query_blocks = _blocks(query, block_rows, min(math.ceil(query.n_environments / RESULT_CHUNK_ROWS), n_tasks),
                           align=RESULT_CHUNK_ROWS)
    reference_pieces = math.ceil(n_tasks / len(query_blocks))
    reference_blocks = [block for reference in references
                        for block in _blocks(reference, block_rows, math.ceil(reference_pieces / len(references)))]
    finals = {}
    for q in query_blocks:
        parts = [client.submit(_tile, q, r, bandwidths, pure=False) for r in reference_blocks]
        while len(parts) > 1:
            parts = [client.submit(_merge, *parts[i:i + MERGE_FAN_IN], pure=False) if len(parts[i:i + MERGE_FAN_IN]) > 1
                     else parts[i] for i in range(0, len(parts), MERGE_FAN_IN)]
        finals[client.submit(_finish, q, parts[0], results, overlap_eps, pure=False)] = q
    return _reduce_partials(finals, query.n_environments)


def _reduce_partials(finals: dict, n_environments: int):
    """Add up each block's partials (entropy, dH, per-frame dH, and ApproxTotals in approximate
    mode) as blocks finish."""
    progress = Progress("kernel sums", n_environments, "environments")
    totals = None
    for future in as_completed(finals):
        entropy_part, dh_part, per_frame, *approx = future.result()
        if totals is None:
            totals = [entropy_part, dh_part, dict(per_frame), *approx]
        else:
            totals[0] = totals[0] + entropy_part
            totals[1] = totals[1] + dh_part
            for frame, part in per_frame.items():
                totals[2][frame] = totals[2][frame] + part if frame in totals[2] else part
            if approx:
                totals[3] = totals[3] + approx[0]
        block = finals[future]
        progress.advance(block.stop - block.start)
    return totals


def _reference_index(paths: list[str], graph_neighbors: int):
    use_worker_cores()
    x = np.concatenate([DescriptorStore.open(path).read_descriptors() for path in paths])
    return build_index(x, graph_neighbors, random_state=0)


def _approx_block(query: Block, index, bandwidths: np.ndarray, n_neighbors: int, tolerance: float, results: str,
                  overlap_eps: float):
    use_worker_cores()
    store = DescriptorStore.open(query.path, mode="r+")
    y = store.read_descriptors(query.start, query.stop)
    estimate = adaptive_delta_entropy(y, index, bandwidths, n_neighbors, tolerance=tolerance)
    group = store.group[f"results/{results}"]
    for name in APPROX_ARRAYS:
        values = getattr(estimate, name)
        group[name][query.start:query.stop] = values if values.ndim == 2 else values[:, None]
    frames = store.group["env_frame"][query.start:query.stop]
    n_uncertain = int((4 * estimate.dh_error > tolerance).sum())
    bounds = (EntropyPartial.from_log_p(-estimate.dh_max), EntropyPartial.from_log_p(-estimate.dh_min))
    return (EntropyPartial.from_log_p(-estimate.dh), DeltaEntropyPartial.from_dh(estimate.dh, overlap_eps),
            grouped_delta_entropy_partials(estimate.dh, frames, overlap_eps),
            ApproxTotals(n_uncertain, float(estimate.dh_error.sum()), *bounds))


@dataclass(frozen=True)
class ApproxTotals:
    """What the approximate path adds to the partials: atoms whose interval of two standard
    errors either side is wider than the tolerance, the summed standard errors, and the
    entropy partials of the rigorous bracket's two ends."""

    n_uncertain: int
    sum_error: float
    lowest: EntropyPartial  # from dh_max: p at its lower bound
    highest: EntropyPartial  # from dh_min

    def __add__(self, other: "ApproxTotals") -> "ApproxTotals":
        return ApproxTotals(self.n_uncertain + other.n_uncertain, self.sum_error + other.sum_error,
                            self.lowest + other.lowest, self.highest + other.highest)


def approx_kernel_sums(client: Client, query: DescriptorStore, references: list[DescriptorStore], bandwidths,
                       results: str, *, n_neighbors: int = ApproxParams.n_neighbors,
                       tolerance: float = ApproxParams.tolerance,
                       graph_neighbors: int = ApproxParams.graph_neighbors, block_rows: int = DEFAULT_BLOCK_ROWS,
                       overlap_eps: float = KernelParams.overlap_eps):
    """Adaptive approximate dH with its bracket and standard error for every query environment
    (quests_core.adaptive_delta_entropy). The index (pynndescent graph and cluster partition)
    is built once on a worker and copied to every worker once; tasks on a worker share it.
    pynndescent compiles for about 40 s in each new worker process."""
    bandwidths = np.atleast_1d(np.asarray(bandwidths, dtype=np.float64))
    index = client.submit(_reference_index, [str(r.path) for r in references], graph_neighbors, pure=False)
    client.replicate([index])
    query_blocks = _blocks(query, block_rows, TASKS_PER_WORKER * worker_count(client), align=RESULT_CHUNK_ROWS)
    finals = {client.submit(_approx_block, q, index, bandwidths, n_neighbors, tolerance, results, overlap_eps,
                            pure=False): q
              for q in query_blocks}
    return _reduce_partials(finals, query.n_environments)


def prepare_results(query: DescriptorStore, name: str, n_bandwidths: int, attrs: dict) -> None:
    """(Re)create the results group `name` in the query store, marked incomplete."""
    group = query.group.require_group("results")
    if name in group:
        del group[name]
    results = group.create_group(name)
    names = APPROX_ARRAYS if attrs["method"] == "approx" else ("dh",)
    for array in names:
        results.create_array(array, shape=(query.n_environments, n_bandwidths),
                             chunks=(min(RESULT_CHUNK_ROWS, max(query.n_environments, 1)), n_bandwidths),
                             dtype="float64", fill_value=np.nan, dimension_names=("environment", "bandwidth"))
    results.update_attributes({**attrs, "complete": False})


def _listed(values: np.ndarray, scalar: bool):
    values = np.asarray(values, dtype=np.float64)
    return float(values[0]) if scalar else values.tolist()


def _kernel_sums(method: str, n_neighbors: int, tolerance: float):
    if method == "exact":
        return exact_kernel_sums
    return lambda *args, **kwargs: approx_kernel_sums(*args, n_neighbors=n_neighbors, tolerance=tolerance, **kwargs)


def _approx_figures(approx: list, n_environments: int, tolerance: float, scalar: bool, entropy: bool) -> dict:
    """Error figures of the approximate path for a summary (nothing for the exact one)."""
    if not approx:
        return {}
    totals = approx[0]
    figures = {
        "tolerance": tolerance,
        "n_uncertain": totals.n_uncertain,
        "dh_error_mean": totals.sum_error / n_environments,
    }
    if totals.n_uncertain:
        log.warning("%d of %d environments kept a standard error above %g / 4 nats after the most clusters allowed",
                    totals.n_uncertain, n_environments, tolerance)
    if entropy:
        # H and D rise as p falls: the bracket's ends give rigorous bounds on both
        figures["entropy_bounds"] = [_listed(totals.highest.entropy, scalar), _listed(totals.lowest.entropy, scalar)]
        figures["diversity_bounds"] = [_listed(totals.highest.diversity, scalar),
                                       _listed(totals.lowest.diversity, scalar)]
    return figures


def entropy_summary(client: Client, store: DescriptorStore, bandwidth, *, method: str = "exact",
                    n_neighbors: int = ApproxParams.n_neighbors, tolerance: float = ApproxParams.tolerance,
                    results: str = "entropy", block_rows: int = DEFAULT_BLOCK_ROWS) -> dict:
    """H and D of one store (reference = query, self terms included). In approximate mode the
    summary adds the mean standard error of dH (the error of H is at most about that), rigorous
    bounds on H and D, and the count of environments left above the tolerance."""
    bandwidths = np.atleast_1d(np.asarray(bandwidth, dtype=np.float64))
    scalar = np.ndim(bandwidth) == 0
    started = time.perf_counter()
    prepare_results(store, results, len(bandwidths), {"kind": "entropy", "bandwidth": bandwidths.tolist(), "method": method,
                                                      "references": [str(store.path)]})
    entropy_part, _, _, *approx = _kernel_sums(method, n_neighbors, tolerance)(client, store, [store], bandwidths,
                                                                              results, block_rows=block_rows)
    store.group[f"results/{results}"].update_attributes({"complete": True})
    params = store.params
    return {
        "kind": "entropy",
        "entropy": _listed(entropy_part.entropy, scalar),
        "diversity": _listed(entropy_part.diversity, scalar),
        "n_environments": entropy_part.n_environments,
        "bandwidth": _listed(bandwidths, scalar),
        "method": method,
        "k": params.k,
        "cutoff": params.cutoff,
        "store": str(store.path),
        **_approx_figures(approx, entropy_part.n_environments, tolerance, scalar, entropy=True),
        "seconds": round(time.perf_counter() - started, 3),
    }


def dh_summary(client: Client, query: DescriptorStore, references: list[DescriptorStore], bandwidth, *,
               method: str = "exact", n_neighbors: int = ApproxParams.n_neighbors,
               tolerance: float = ApproxParams.tolerance, results: str = "dh",
               overlap_eps: float = KernelParams.overlap_eps, block_rows: int = DEFAULT_BLOCK_ROWS) -> dict:
    """dH of every query environment against the references merged: statistics, novelty,
    overlap and per-frame aggregates."""
    bandwidths = np.atleast_1d(np.asarray(bandwidth, dtype=np.float64))
    scalar = np.ndim(bandwidth) == 0
    started = time.perf_counter()
    prepare_results(query, results, len(bandwidths), {"kind": "dh", "bandwidth": bandwidths.tolist(), "method": method,
                                                      "references": [str(r.path) for r in references]})
    _, dh_part, per_frame, *approx = _kernel_sums(method, n_neighbors, tolerance)(
        client, query, references, bandwidths, results, block_rows=block_rows, overlap_eps=overlap_eps)
    query.group[f"results/{results}"].update_attributes({"complete": True})
    dh = query.group[f"results/{results}/dh"][:]
    quantiles = np.quantile(dh, DH_QUANTILES, axis=0)
    params = query.params
    return {
        "kind": "dh",
        "dh_mean": _listed(dh_part.dh_mean, scalar),
        "dh_max": _listed(dh_part.max_dh, scalar),
        "dh_quantiles": {f"{q:g}": _listed(row, scalar) for q, row in zip(DH_QUANTILES, quantiles)},
        "novelty": _listed(dh_part.novelty, scalar),
        "overlap": _listed(dh_part.overlap, scalar),
        "overlap_eps": overlap_eps,
        "n_environments": dh_part.n_environments,
        "bandwidth": _listed(bandwidths, scalar),
        "method": method,
        "k": params.k,
        "cutoff": params.cutoff,
        "store": str(query.path),
        "references": [str(r.path) for r in references],
        "frames": [{"frame": frame, "dh_mean": _listed(part.dh_mean, scalar), "dh_max": _listed(part.max_dh, scalar),
                    "novelty": _listed(part.novelty, scalar)} for frame, part in sorted(per_frame.items())],
        **_approx_figures(approx, dh_part.n_environments, tolerance, scalar, entropy=False),
        "seconds": round(time.perf_counter() - started, 3),
    }
