"""Dataset tools (spec §3) on descriptor stores: one function per tool, each returning a
JSON-serialisable summary with a "kind" key (the command line prints or writes it; an audit
runner can collect it).

On the Dask cluster (client first):
- learning_curve_summary, entropy_sampler_summary: one task per run; each task draws its
  sample (quests_core.sample_indices: seed, series and run fix it, wherever it runs), reads
  those rows of the store and returns their H.
- trajectory_summary: one task per batch of whole frames for the dH of each frame against
  itself; the dH against references is analysis.dh_summary (exact or approximate).

In the calling process, because they are one sequential greedy loop or one in-memory sum
with nothing to split into tasks: compression_result, information_gap_summary,
bandwidth_summary.

Structures are the store's frames. Bad options (a size larger than the dataset, a fraction
outside (0, 1], an unknown method) and empty stores raise InputError.
"""

import contextlib
import logging
import os
import time
from pathlib import Path

import numpy as np
from distributed import Client, as_completed

from quests_core import (
    ApproxParams,
    KernelParams,
    SampledEntropy,
    ToolParams,
    bandwidth_from_volume,
    check_compression_method,
    check_runs,
    check_sample_size,
    compress,
    compression_size,
    compression_summary,
    entropies_from_self_dh,
    entropy,
    fraction_sizes,
    grouped_delta_entropy_partials,
    information_gap,
    mean_volume_per_atom,
    sample_indices,
    structure_delta_entropy,
)
from quests_core.validation import as_bandwidths

from . import ase_io
from .analysis import dh_summary, prepare_results
from .cluster import use_worker_cores
from .errors import InputError
from .exports import write_atomically
from .frames import Frame
from .inputs import check_comparable
from .progress import Progress
from .store import DescriptorStore

log = logging.getLogger("quests_pipeline")

TRAJECTORY_BATCH_ROWS = 16384  # environments of whole frames per self-dH task
EXTXYZ = "extxyz"


@contextlib.contextmanager
def _options_checked(path=None):
    """quests_core's argument checks, reported as the user's input errors (exit code 2)."""
    try:
        yield
    except ValueError as error:
        raise InputError(str(error), path=path) from None


def _non_empty(store: DescriptorStore) -> DescriptorStore:
    if store.n_environments == 0:
        raise InputError("the dataset has no environments", path=store.path)
    return store


def _listed(values):
    """A float for a scalar, a (nested) list for an array."""
    values = np.asarray(values, dtype=np.float64)
    return float(values) if values.ndim == 0 else values.tolist()


def _bandwidths(bandwidth) -> tuple[np.ndarray, bool]:
    with _options_checked():
        return as_bandwidths(bandwidth)


def _per_bandwidth(values: np.ndarray, scalar: bool) -> np.ndarray:
    """Rows over bandwidths as given: (n,) for one bandwidth given as a number, else (n, n_bandwidths)."""
    return values[..., 0] if scalar else values


def _described(store: DescriptorStore) -> dict:
    params = store.params
    return {"store": str(store.path), "k": params.k, "cutoff": params.cutoff}


# ---------------------------------------------------------------- sampled entropies

def _sample_entropy(path: str, sample_size: int, seed: int, run: int, series: int, replace: bool,
                    bandwidths: np.ndarray) -> np.ndarray:
    """H (over bandwidths) of one run's sample, read from the store."""
    use_worker_cores()
    store = DescriptorStore.open(path)
    rows = sample_indices(store.n_environments, sample_size, seed, run, series=series, replace=replace)
    distinct = np.unique(rows)
    x = store.descriptors.get_orthogonal_selection((distinct, slice(None)))
    return np.atleast_1d(entropy(x[np.searchsorted(distinct, rows)], bandwidths))


def _sampled_entropies(client: Client, store: DescriptorStore, sizes: list[int], runs: int, seed: int, replace: bool,
                       bandwidths: np.ndarray, scalar: bool) -> list[SampledEntropy]:
    """H of `runs` samples of each size (series i for sizes[i]), one task per run."""
    futures = {client.submit(_sample_entropy, str(store.path), size, seed, run, series, replace, bandwidths,
                             pure=False): (series, run)
               for series, size in enumerate(sizes) for run in range(runs)}
    entropies = np.empty((len(sizes), runs, len(bandwidths)))
    progress = Progress("sampled entropies", len(futures), "runs")
    for future in as_completed(futures):
        series, run = futures[future]
        entropies[series, run] = future.result()
        progress.advance()
    return [SampledEntropy(size, _per_bandwidth(entropies[series], scalar)) for series, size in enumerate(sizes)]


def _sampled_record(sampled: SampledEntropy) -> dict:
    return {
        "sample_size": sampled.sample_size,
        "entropy_mean": _listed(sampled.mean),
        "entropy_std": _listed(sampled.std),
        "entropies": _listed(sampled.entropies),
        "max_entropy": sampled.max_entropy,
    }


def learning_curve_summary(client: Client, store: DescriptorStore, *, bandwidth=KernelParams.bandwidth,
                           fractions=ToolParams.learning_curve_fractions, runs: int = ToolParams.learning_curve_runs,
                           seed: int = ToolParams.seed, replace: bool = False) -> dict:
    """H of random fractions of the store's environments, `runs` samples each: mean and spread."""
    started = time.perf_counter()
    n = _non_empty(store).n_environments
    bandwidths, scalar = _bandwidths(bandwidth)
    with _options_checked():
        check_runs(runs)
        sizes = fraction_sizes(n, fractions)
    sampled = _sampled_entropies(client, store, sizes, runs, seed, replace, bandwidths, scalar)
    return {
        "kind": "learning_curve",
        **_described(store),
        "n_environments": n,
        "bandwidth": _listed(bandwidth),
        "runs": runs,
        "seed": seed,
        "replace": replace,
        "points": [{"fraction": float(fraction), **_sampled_record(point)} for fraction, point in zip(fractions, sampled)],
        "seconds": round(time.perf_counter() - started, 3),
    }


def entropy_sampler_summary(client: Client, store: DescriptorStore, *, bandwidth=KernelParams.bandwidth,
                            sample_size: int = ToolParams.sampler_sample_size, runs: int = ToolParams.sampler_runs,
                            seed: int = ToolParams.seed, replace: bool = False) -> dict:
    """H of `runs` random samples of sample_size environments: mean and spread."""
    started = time.perf_counter()
    n = _non_empty(store).n_environments
    bandwidths, scalar = _bandwidths(bandwidth)
    with _options_checked():
        check_runs(runs)
        check_sample_size(sample_size, n)
    sampled = _sampled_entropies(client, store, [sample_size], runs, seed, replace, bandwidths, scalar)[0]
    return {
        "kind": "entropy_sampler",
        **_described(store),
        "n_environments": n,
        "bandwidth": _listed(bandwidth),
        "runs": runs,
        "seed": seed,
        "replace": replace,
        **_sampled_record(sampled),
        "seconds": round(time.perf_counter() - started, 3),
    }


# ---------------------------------------------------------------- trajectory

def _frame_batches(store: DescriptorStore, batch_rows: int) -> list[tuple[int, int]]:
    """[first, last) frame ranges of about batch_rows environments, whole frames each."""
    ends = np.cumsum(store.array("frame_n_atoms"))
    batches, first = [], 0
    while first < len(ends):
        before = ends[first - 1] if first else 0
        last = max(int(np.searchsorted(ends, before + batch_rows, side="right")), first + 1)
        batches.append((first, min(last, len(ends))))
        first = batches[-1][1]
    return batches


def _self_dh_batch(path: str, first: int, last: int, bandwidths: np.ndarray) -> tuple[int, np.ndarray]:
    """dH of each environment of frames [first, last) against its own frame; (first row, (rows, n_bandwidths))."""
    use_worker_cores()
    store = DescriptorStore.open(path)
    n_atoms = store.group["frame_n_atoms"][first:last]
    start = int(store.group["frame_start"][first])
    x = store.read_descriptors(start, start + int(n_atoms.sum()))
    return start, structure_delta_entropy(x, n_atoms, bandwidths).reshape(len(x), len(bandwidths))


def trajectory_summary(client: Client, store: DescriptorStore, references: list[DescriptorStore] = (), *,
                       bandwidth=KernelParams.bandwidth, method: str = "exact",
                       n_neighbors: int = ApproxParams.n_neighbors, tolerance: float = ApproxParams.tolerance,
                       overlap_eps: float = KernelParams.overlap_eps,
                       results: str = "trajectory", batch_rows: int = TRAJECTORY_BATCH_ROWS) -> dict:
    """Per frame: its entropy and the dH of its environments against the frame itself (quests'
    trajectory dH), and against the references where given (mean, max, novelty).

    Per-environment values go to the store's results group: `{results}_self/dh` and, with
    references, `{results}_reference/dh` (see analysis.prepare_results).
    """
    started = time.perf_counter()
    _non_empty(store)
    bandwidths, scalar = _bandwidths(bandwidth)
    batches = _frame_batches(store, batch_rows)
    futures = {client.submit(_self_dh_batch, str(store.path), first, last, bandwidths, pure=False): (first, last)
               for first, last in batches}
    dh = np.empty((store.n_environments, len(bandwidths)))
    progress = Progress("trajectory dH", store.n_frames, "frames")
    for future in as_completed(futures):
        start, values = future.result()
        dh[start:start + len(values)] = values
        first, last = futures[future]
        progress.advance(last - first)
    prepare_results(store, f"{results}_self", len(bandwidths), {"kind": "trajectory_self", "bandwidth": bandwidths.tolist(),
                                                               "method": "exact", "references": [str(store.path)]})
    store.group[f"results/{results}_self/dh"][:] = dh
    store.group[f"results/{results}_self"].update_attributes({"complete": True})

    n_atoms = store.array("frame_n_atoms")
    frame_entropies = _per_bandwidth(entropies_from_self_dh(dh, n_atoms), scalar)
    self_parts = grouped_delta_entropy_partials(dh, store.array("env_frame"), overlap_eps)
    frames = [{"frame": frame, "n_environments": int(n_atoms[frame]), "entropy": _listed(frame_entropies[frame]),
               "dh_self_mean": _listed(_per_bandwidth(part.dh_mean, scalar)),
               "dh_self_max": _listed(_per_bandwidth(part.max_dh, scalar))}
              for frame, part in sorted(self_parts.items())]
    summary = {"kind": "trajectory", **_described(store), "n_frames": store.n_frames,
               "n_environments": store.n_environments, "bandwidth": _listed(bandwidth), "references": [], "frames": frames}
    if references:
        check_comparable(store, list(references))
        against = dh_summary(client, store, list(references), bandwidth, method=method, n_neighbors=n_neighbors,
                             tolerance=tolerance, results=f"{results}_reference", overlap_eps=overlap_eps)
        for record, reference_record in zip(frames, against["frames"]):
            record.update({key: reference_record[key] for key in ("dh_mean", "dh_max", "novelty")})
        summary.update({key: against[key] for key in ("references", "method", "dh_mean", "dh_max", "novelty", "overlap",
                                                       "overlap_eps")})
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary


# ---------------------------------------------------------------- compression

def compression_result(store: DescriptorStore, *, size: int | None = None, fraction: float | None = None,
                       method: str = ToolParams.compression_method, bandwidth: float = KernelParams.bandwidth,
                       references: list[DescriptorStore] = (), seed: int = ToolParams.seed,
                       overlap_eps: float = KernelParams.overlap_eps) -> dict:
    """Select structures (frames) of the store; references make msc conditional on them.

    Returns {"kind": "compress", "indices": [frames, in pick order], "method": ..., "summary":
    {H, D and overlap of the selection against the whole store}, ...}.
    """
    started = time.perf_counter()
    n_atoms = _non_empty(store).array("frame_n_atoms")
    with _options_checked():
        check_compression_method(method, bool(references))
        count = compression_size(len(n_atoms), size, fraction)
    check_comparable(store, list(references))
    x = store.read_descriptors()
    reference = np.concatenate([r.read_descriptors() for r in references]) if references else None
    with _options_checked():
        indices = compress(x, n_atoms, count, method, bandwidth, reference=reference, seed=seed)
    picked = time.perf_counter()
    summary = compression_summary(x, n_atoms, indices, bandwidth, overlap_eps)
    return {
        "kind": "compress",
        "indices": indices.tolist(),
        "method": method,
        "size": count,
        **_described(store),
        "references": [str(r.path) for r in references],
        "bandwidth": _listed(bandwidth),
        "seed": seed,
        "summary": {
            "entropy": _listed(summary.entropy),
            "diversity": _listed(summary.diversity),
            "overlap": _listed(summary.overlap),
            "overlap_eps": overlap_eps,
            "n_structures": summary.n_structures,
            "n_environments": summary.n_environments,
            "original_structures": summary.original_structures,
            "original_environments": summary.original_environments,
        },
        "seconds": {"selection": round(picked - started, 3), "summary": round(time.perf_counter() - picked, 3)},
    }


def write_selected_frames(path: Path, store: DescriptorStore, indices) -> None:
    """The frames `indices` of the store as extended XYZ, in that order.

    Frames read from extended XYZ files are copied byte for byte (energies, forces and every
    other property kept); otherwise every frame is rebuilt from the store: species,
    positions, cell and pbc only.
    """
    indices = np.asarray(indices, dtype=np.int64)
    sources = store.sources
    frame_source = store.array("frame_source")[indices]
    offsets = store.array("frame_offset")[indices]
    if all(sources[s]["format"] == EXTXYZ for s in frame_source) and (offsets >= 0).all():
        sizes = store.array("frame_size")[indices]
        write_atomically(Path(path), lambda target: _copy_frames(target, [sources[s] for s in frame_source], offsets, sizes))
        return
    log.warning("%s: not every selected frame comes from an extxyz file; writing species, positions, cell and pbc only",
                path)
    write_atomically(Path(path), lambda target: ase_io.write_extxyz(target, _frames(store, indices)))


def _copy_frames(target: Path, sources: list[dict], offsets: np.ndarray, sizes: np.ndarray) -> None:
    handles = {}
    with contextlib.ExitStack() as stack, open(target, "wb") as out:
        for source, offset, size in zip(sources, offsets, sizes):
            name = source["path"]
            if name not in handles:
                _check_unchanged(source)
                handles[name] = stack.enter_context(open(name, "rb"))
            handles[name].seek(int(offset))
            out.write(handles[name].read(int(size)))


def _check_unchanged(source: dict) -> None:
    try:
        status = os.stat(source["path"])
    except OSError as error:
        raise InputError(f"cannot copy frames from it ({error.strerror})", path=source["path"]) from None
    if status.st_size != source["size"] or status.st_mtime != source["mtime"]:
        raise InputError("changed since its descriptors were computed; compute them again", path=source["path"])


def _frames(store: DescriptorStore, indices: np.ndarray):
    """(Frame, no per-atom values) for each index, atoms in their file order."""
    starts, counts = store.array("frame_start"), store.array("frame_n_atoms")
    cells, pbcs = store.array("frame_cell"), store.array("frame_pbc")
    for frame in indices:
        rows = slice(int(starts[frame]), int(starts[frame] + counts[frame]))
        order = np.argsort(store.group["env_atom"][rows])
        yield Frame(store.group["env_position"][rows][order], store.group["env_number"][rows][order], cells[frame],
                    pbcs[frame]), {}


# ---------------------------------------------------------------- information gap

def frame_rows(store: DescriptorStore, frames) -> np.ndarray:
    """Environment rows of the given frames, in their order."""
    frames = np.asarray(frames, dtype=np.int64)
    if len(frames) == 0 or frames.min() < 0 or frames.max() >= store.n_frames:
        raise InputError(f"frame indices must be a non-empty list of frames 0..{store.n_frames - 1}", path=store.path)
    starts, counts = store.array("frame_start")[frames], store.array("frame_n_atoms")[frames]
    return np.concatenate([np.arange(start, start + count) for start, count in zip(starts, counts)])


def information_gap_summary(store: DescriptorStore, *, subset: DescriptorStore | None = None, frames=None,
                            bandwidth=KernelParams.bandwidth, overlap_eps: float = KernelParams.overlap_eps,
                            results: str = "information_gap") -> dict:
    """H of the store and of a subset (another store, or frames of this one), their gap, and
    dH(x | subset) of every environment of the store (written to results/{results}/dh)."""
    started = time.perf_counter()
    _non_empty(store)
    if (subset is None) == (frames is None):
        raise InputError("give the subset as exactly one of a dataset and frame indices")
    bandwidths, scalar = _bandwidths(bandwidth)
    if subset is not None:
        check_comparable(store, [subset])
    x = store.read_descriptors()
    subset_x = _non_empty(subset).read_descriptors() if subset is not None else x[frame_rows(store, frames)]
    with _options_checked():
        gap = information_gap(x, subset_x, bandwidths, overlap_eps)
    prepare_results(store, results, len(bandwidths), {"kind": "information_gap", "bandwidth": bandwidths.tolist(),
                                                      "method": "exact", "references": []})
    store.group[f"results/{results}/dh"][:] = gap.dh
    store.group[f"results/{results}"].update_attributes({"complete": True})
    return {
        "kind": "information_gap",
        **_described(store),
        "subset": str(subset.path) if subset is not None else {"frames": np.asarray(frames).tolist()},
        "n_environments": len(x),
        "subset_environments": len(subset_x),
        "bandwidth": _listed(bandwidth),
        **{name: _listed(_per_bandwidth(getattr(gap, name), scalar))
           for name in ("entropy", "subset_entropy", "gap", "dh_mean", "dh_max", "novelty", "overlap")},
        "overlap_eps": overlap_eps,
        "seconds": round(time.perf_counter() - started, 3),
    }


# ---------------------------------------------------------------- bandwidth

def bandwidth_summary(store: DescriptorStore | None = None, *, volume: float | None = None) -> dict:
    """quests' bandwidth rule (spec §3) for an atomic volume in Å^3/atom, or for the mean volume
    per atom of the store's frames."""
    if (store is None) == (volume is None):
        raise InputError("give exactly one of an atomic volume and a dataset")
    if store is not None:
        with _options_checked(store.path):
            volume = mean_volume_per_atom(store.array("frame_cell"), store.array("frame_n_atoms"))
    with _options_checked():
        h = bandwidth_from_volume(volume)
    return {"kind": "bandwidth", "bandwidth": h, "volume_per_atom": float(volume),
            "store": str(store.path) if store is not None else None}
