"""The audit runner behind `quests-pipeline run CONFIG`: datasets into descriptor stores, the
analyses in order (ANALYSES: kind -> function), their results, exports and plots, and a summary.

Everything goes to the run directory (output.dir; the layout is in docs/config.md). Stores are
named by a hash of what their descriptors depend on, so every analysis and every later run that
asks for the same descriptors opens the store as it is. Each analysis writes its result file
last, once its exports and plots are written; `--resume` keeps the results whose settings are
unchanged, and summary.json is written when every analysis is done.
"""

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from . import LOG_FORMAT, plots, tool_plots, tools
from .analysis import APPROX_ARRAYS, dh_summary, entropy_summary
from .cluster import JOBQUEUE_CLUSTERS, job_script, open_client
from .config import AuditConfig, config_dict, config_yaml
from .errors import InputError
from .examples import EXAMPLES, generate
from .exports import write_atomically, write_extxyz, write_lammps_dump
from .ingest import IngestRequest, ingest
from .inputs import is_store
from .readers import EXTXYZ, LAMMPS_DUMP, FrameSelection
from .store import DescriptorStore

log = logging.getLogger("quests_pipeline")

EXPORTS = {EXTXYZ: (".extxyz", write_extxyz), LAMMPS_DUMP: (".lammpstrj", write_lammps_dump)}
OVERLAP_KEYS = ("dataset", "reference", "overlap", "overlap_eps", "n_environments", "bandwidth", "method", "k",
                "cutoff", "seconds")
GENERATION_KEYS = ("dataset", "reference", "novelty", "overlap", "dh_mean", "dh_max", "n_environments")
# run-directory entries of one run's results, cleared when a run starts without --resume
RESULTS = ("analyses", "plots", "exports", "summary.json")


# ---- where things go ---------------------------------------------------------------------
def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def data_path(config: AuditConfig, example: str) -> Path:
    """Where an example dataset is generated, named by its recipe."""
    return Path(config.output.dir) / "data" / f"{example}-{_digest(EXAMPLES[example])}.extxyz"


def store_path(config: AuditConfig, name: str) -> Path:
    """The store of a dataset, named by a hash of what its descriptors depend on."""
    dataset = config.datasets[name]
    if dataset.generate:
        sources = [{"generate": dataset.generate, "recipe": EXAMPLES[dataset.generate]}]
        stem = dataset.generate
    else:
        sources = [{"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
                   for path in dataset.paths for stat in [Path(path).stat()]]
        stem = Path(dataset.paths[0]).stem
    key = {"descriptor": config.descriptor.store_params().to_attrs(), "format": dataset.format,
           "frames": str(FrameSelection.parse(dataset.frames)), "species": dataset.species, "skip_bad": dataset.skip_bad,
           "sources": sources}
    return Path(config.output.dir) / "stores" / f"{stem}-{_digest(key)}.zarr"


def _result_path(config: AuditConfig, index: int) -> Path:
    return Path(config.output.dir) / "analyses" / f"{index}-{config.analyses[index].kind}.json"


def _fingerprint(config: AuditConfig, index: int) -> str:
    """What an analysis's result depends on: its entry, the kernel, the outputs it writes and
    the stores of its datasets (whose names hash the descriptor settings and sources)."""
    analysis = config.analyses[index]
    names = sorted({name for names in analysis.dataset_names().values() for name in names})
    key = {"analysis": config_dict(analysis), "kernel": config_dict(config.kernel),
           "exports": list(config.output.exports), "plots": config.output.plots,
           "stores": {name: store_path(config, name).name for name in names}}
    return _digest(key)


def _finished(config: AuditConfig, index: int) -> dict | None:
    """The result of analysis `index` from an earlier run, if its settings are unchanged."""
    path = _result_path(config, index)
    if not path.is_file():
        return None
    done = json.loads(path.read_text())
    return done["result"] if done["fingerprint"] == _fingerprint(config, index) else None


def _datasets_used(config: AuditConfig) -> list[str]:
    used = {name for analysis in config.analyses for names in analysis.dataset_names().values() for name in names}
    return [name for name in config.datasets if name in used]


# ---- one run -----------------------------------------------------------------------------
class Audit:
    """A run in progress: its config, client and the stores opened so far."""

    def __init__(self, config: AuditConfig, client):
        self.config = config
        self.client = client
        self.directory = Path(config.output.dir)
        self.stores: dict[str, DescriptorStore] = {}
        self.store_seconds: dict[str, float] = {}

    def store(self, name: str) -> DescriptorStore:
        """The descriptor store of a dataset: reused when complete, else computed (or finished)."""
        if name not in self.stores:
            started = time.perf_counter()
            self.stores[name] = self._open_or_ingest(name)
            self.store_seconds[name] = round(time.perf_counter() - started, 3)
        return self.stores[name]

    def _open_or_ingest(self, name: str) -> DescriptorStore:
        path = store_path(self.config, name)
        if is_store(path) and DescriptorStore.open(path, allow_incomplete=True).complete:
            log.info("dataset %s: reusing the descriptors in %s (nothing recomputed)", name, path)
            return DescriptorStore.open(path, mode="r+")
        dataset = self.config.datasets[name]
        files = dataset.paths or (generate(dataset.generate, data_path(self.config, dataset.generate)),)
        log.info("dataset %s: computing descriptors into %s", name, path)
        descriptor = self.config.descriptor
        request = IngestRequest(paths=tuple(Path(file) for file in files), params=descriptor.store_params(),
                                fmt=dataset.format, frames=FrameSelection.parse(dataset.frames), species=dataset.species,
                                chunk_rows=descriptor.chunk_rows, region_rows=descriptor.region_rows,
                                split_atoms=dataset.split_atoms, skip_bad=dataset.skip_bad)
        return ingest(request, path, self.client)

    def results_name(self, index: int) -> str:
        """The results group of analysis `index` in its query store."""
        return f"audit-{index}-{self.config.analyses[index].kind}"

    def dh(self, dataset: str, references, eps: float, results: str) -> dict:
        kernel = self.config.kernel
        summary = dh_summary(self.client, self.store(dataset), [self.store(name) for name in references],
                             kernel.bandwidth, method=kernel.method, n_neighbors=kernel.n_neighbors,
                             tolerance=kernel.tolerance, results=results, overlap_eps=eps)
        return _named(summary, dataset=dataset, reference=list(references))

    def output(self, folder: str, index: int, name: str) -> Path:
        path = self.directory / folder / f"{index}-{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def analyse(self, index: int, resume: bool) -> dict:
        analysis = self.config.analyses[index]
        label = f"analysis {index} ({analysis.kind})"
        if resume:
            result = _finished(self.config, index)
            if result is not None:
                log.info("%s: finished in an earlier run; kept", label)
                return result
        log.info("%s: started", label)
        result = ANALYSES[analysis.kind](self, index, analysis)
        text = json.dumps({"fingerprint": _fingerprint(self.config, index), "config": config_dict(analysis),
                           "result": result}, indent=2)
        path = _result_path(self.config, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda target: target.write_text(text + "\n"))
        log.info("%s: finished, wrote %s", label, path)
        return result


def _named(summary: dict, **names) -> dict:
    """An analysis summary with dataset names in place of store paths."""
    rest = {key: value for key, value in summary.items() if key not in ("kind", "store", "references", *names)}
    return {"kind": summary["kind"], **names, **rest}


def _columns(values) -> np.ndarray:
    """Per-item figures (a number, or a list per bandwidth) as (n_items, n_bandwidths)."""
    return np.array([np.atleast_1d(value) for value in values], dtype=np.float64)


def _bandwidths(config: AuditConfig) -> list[float]:
    return list(np.atleast_1d(config.kernel.bandwidth))


# ---- the analyses ------------------------------------------------------------------------
def _entropy(audit: Audit, index: int, analysis) -> dict:
    kernel = audit.config.kernel
    summary = entropy_summary(audit.client, audit.store(analysis.dataset), kernel.bandwidth, method=kernel.method,
                              n_neighbors=kernel.n_neighbors, tolerance=kernel.tolerance,
                              results=audit.results_name(index))
    return _named(summary, dataset=analysis.dataset)


def _dh(audit: Audit, index: int, analysis) -> dict:
    results = audit.results_name(index)
    summary = audit.dh(analysis.dataset, analysis.reference, analysis.eps, results)
    store = audit.store(analysis.dataset)
    group = store.group[f"results/{results}"]
    values = {}
    for name in APPROX_ARRAYS:  # dh alone for the exact method
        if name in group:
            array = group[name][:]
            label = name.replace("dh", "dH", 1)
            values.update({label: array[:, 0]} if array.shape[1] == 1 else
                          {f"{label}_{j}": array[:, j] for j in range(array.shape[1])})
    for fmt in audit.config.output.exports:
        suffix, write = EXPORTS[fmt]
        write(audit.output("exports", index, f"dh-{analysis.dataset}{suffix}"), store, values)
    if audit.config.output.plots:
        title = f"dH({analysis.dataset} | {' + '.join(analysis.reference)})"
        bandwidths = _bandwidths(audit.config)
        plots.dh_histogram(audit.output("plots", index, "dh-histogram.png"), group["dh"][:], bandwidths, title)
        frames = summary["frames"]
        plots.dh_per_frame(audit.output("plots", index, "dh-per-frame.png"), [f["frame"] for f in frames],
                           _columns(f["dh_mean"] for f in frames), _columns(f["dh_max"] for f in frames), bandwidths,
                           title)
    return summary


def _overlap(audit: Audit, index: int, analysis) -> dict:
    summary = audit.dh(analysis.dataset, analysis.reference, analysis.eps, audit.results_name(index))
    return {"kind": "overlap", **{key: summary[key] for key in OVERLAP_KEYS}}


def _novelty(audit: Audit, index: int, analysis) -> dict:
    started = time.perf_counter()
    names = analysis.datasets
    generations = [audit.dh(names[i], names[:i], analysis.eps, f"{audit.results_name(index)}-{i}")
                   for i in range(1, len(names))]
    if audit.config.output.plots:
        plots.novelty_per_generation(audit.output("plots", index, "novelty.png"), list(names[1:]),
                                     _columns(g["novelty"] for g in generations), _bandwidths(audit.config),
                                     "novelty of each generation against all before it")
    return {"kind": "novelty", "datasets": list(names), "novelty": [g["novelty"] for g in generations],
            "generations": [{key: g[key] for key in GENERATION_KEYS} for g in generations],
            "bandwidth": generations[0]["bandwidth"], "method": generations[0]["method"],
            "seconds": round(time.perf_counter() - started, 3)}


def _learning_curve(audit: Audit, index: int, analysis) -> dict:
    summary = tools.learning_curve_summary(audit.client, audit.store(analysis.dataset),
                                           bandwidth=audit.config.kernel.bandwidth, fractions=analysis.fractions,
                                           runs=analysis.runs, seed=analysis.seed)
    if audit.config.output.plots:
        tool_plots.plot_learning_curve(summary, audit.output("plots", index, "learning-curve.png"))
    return _named(summary, dataset=analysis.dataset)


def _entropy_sampler(audit: Audit, index: int, analysis) -> dict:
    summary = tools.entropy_sampler_summary(audit.client, audit.store(analysis.dataset),
                                            bandwidth=audit.config.kernel.bandwidth, sample_size=analysis.sample_size,
                                            runs=analysis.runs, seed=analysis.seed)
    return _named(summary, dataset=analysis.dataset)


def _bandwidth(audit: Audit, index: int, analysis) -> dict:
    return _named(tools.bandwidth_summary(audit.store(analysis.dataset)), dataset=analysis.dataset)


def _trajectory(audit: Audit, index: int, analysis) -> dict:
    kernel = audit.config.kernel
    summary = tools.trajectory_summary(audit.client, audit.store(analysis.dataset),
                                       [audit.store(name) for name in analysis.reference], bandwidth=kernel.bandwidth,
                                       method=kernel.method, n_neighbors=kernel.n_neighbors,
                                       tolerance=kernel.tolerance, overlap_eps=analysis.eps,
                                       results=audit.results_name(index))
    return _named(summary, dataset=analysis.dataset, reference=list(analysis.reference))


def _single_bandwidth(audit: Audit, analysis) -> float:
    bandwidths = _bandwidths(audit.config)
    if len(bandwidths) > 1:
        raise InputError(f"analysis {analysis.kind} takes one bandwidth; kernel.bandwidth has {len(bandwidths)}")
    return bandwidths[0]


def _compress(audit: Audit, index: int, analysis) -> dict:
    summary = tools.compression_result(audit.store(analysis.dataset), size=analysis.size, fraction=analysis.fraction,
                                       method=analysis.method, bandwidth=_single_bandwidth(audit, analysis),
                                       references=[audit.store(name) for name in analysis.reference],
                                       seed=analysis.seed, overlap_eps=analysis.eps)
    return _named(summary, dataset=analysis.dataset, reference=list(analysis.reference))


def _information_gap(audit: Audit, index: int, analysis) -> dict:
    summary = tools.information_gap_summary(audit.store(analysis.dataset), subset=audit.store(analysis.subset),
                                            bandwidth=audit.config.kernel.bandwidth, overlap_eps=analysis.eps,
                                            results=audit.results_name(index))
    return _named(summary, dataset=analysis.dataset, subset=analysis.subset)


# kind -> function(audit, index, analysis) returning the analysis's summary (with "kind")
ANALYSES = {"entropy": _entropy, "dh": _dh, "overlap": _overlap, "novelty": _novelty,
            "learning-curve": _learning_curve, "entropy-sampler": _entropy_sampler, "bandwidth": _bandwidth,
            "trajectory": _trajectory, "compress": _compress, "information-gap": _information_gap}


# ---- the run -----------------------------------------------------------------------------
def run_audit(config: AuditConfig, *, resume: bool = False) -> dict:
    """Run every analysis of a config (keeping finished ones with resume); returns the summary."""
    started = time.perf_counter()
    directory = Path(config.output.dir)
    directory.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(directory / "run.log")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log.addHandler(handler)
    level = log.level
    log.setLevel(min(log.getEffectiveLevel(), logging.INFO))  # run.log has every INFO line, whatever the console shows
    try:
        log.info("run %s%s in %s", config.name, " (resume)" if resume else "", directory)
        with open_client(config.cluster.spec) as client:  # checks the cluster options before anything changes
            if not resume:
                for name in RESULTS:
                    target = directory / name
                    if target.is_dir():
                        shutil.rmtree(target)
                    else:
                        target.unlink(missing_ok=True)
            write_atomically(directory / "config.yaml", lambda target: target.write_text(config_yaml(config)))
            audit = Audit(config, client)
            entries = [audit.analyse(index, resume) for index in range(len(config.analyses))]
            stores = {name: audit.store(name) for name in _datasets_used(config)}
        summary = {
            "name": config.name,
            "bandwidth": config_dict(config.kernel)["bandwidth"],
            "method": config.kernel.method,
            "descriptor": {key: config_dict(config.descriptor)[key] for key in ("k", "cutoff", "dtype")},
            "datasets": {name: {"store": str(store.path.relative_to(directory)), "n_environments": store.n_environments,
                                "n_frames": store.n_frames} for name, store in stores.items()},
            "analyses": [{key: value for key, value in entry.items() if key != "frames"} for entry in entries],
            "timings": {"descriptors": audit.store_seconds, "total": round(time.perf_counter() - started, 3)},
        }
        text = json.dumps(summary, indent=2)
        write_atomically(directory / "summary.json", lambda target: target.write_text(text + "\n"))
        log.info("run %s: finished in %.1f s, wrote %s", config.name, time.perf_counter() - started,
                 directory / "summary.json")
        return summary
    finally:
        log.setLevel(level)
        log.removeHandler(handler)
        handler.close()


# ---- text for the terminal ---------------------------------------------------------------
def _number(value) -> str:
    return f"[{', '.join(_number(v) for v in value)}]" if isinstance(value, list) else f"{value:.4g}"


_LINES = {
    "entropy": lambda e: f"H = {_number(e['entropy'])} nats, D = {_number(e['diversity'])} nats "
                         f"({e['n_environments']} environments of {e['dataset']})",
    "dh": lambda e: f"dH({e['dataset']} | {' + '.join(e['reference'])}): mean {_number(e['dh_mean'])}, "
                    f"max {_number(e['dh_max'])}, novelty {_number(e['novelty'])}, overlap {_number(e['overlap'])}",
    "overlap": lambda e: f"overlap of {e['dataset']} with {' + '.join(e['reference'])}: {_number(e['overlap'])} "
                         f"(dH < {e['overlap_eps']:g})",
    "novelty": lambda e: "novelty " + ", ".join(f"{g['dataset']} {_number(g['novelty'])}" for g in e["generations"]),
}


def summary_text(summary: dict, directory) -> str:
    """What a finished run prints: one line per analysis, then where everything is."""
    lines = [f"[{i}] {entry['kind']:8} {_LINES[entry['kind']](entry)}" if entry["kind"] in _LINES
             else f"[{i}] {entry['kind']:8} see analyses/{i}-{entry['kind']}.json"
             for i, entry in enumerate(summary["analyses"])]
    lines.append(f"wrote {directory} (summary.json, analyses/, plots/, exports/, run.log)")
    return "\n".join(lines)


def plan_text(config: AuditConfig, *, resume: bool = False) -> str:
    """What a run would do, computing nothing: datasets and their stores (reused or computed),
    analyses (kept or computed) and, for a batch queue, the job script."""
    lines = [f"plan of run {config.name} (dry run: nothing is computed)", f"run directory  {config.output.dir}",
             f"cluster        {', '.join(f'{key}: {value}' for key, value in config.cluster.spec.items())}",
             "datasets"]
    for name in _datasets_used(config):
        dataset = config.datasets[name]
        if dataset.generate:
            where = data_path(config, dataset.generate)
            source = f"example {dataset.generate} ({where}{'' if where.exists() else ', generated first'})"
        else:
            source = ", ".join(dataset.paths[:3]) + (f" and {len(dataset.paths) - 3} more" if len(dataset.paths) > 3 else "")
        path = store_path(config, name)
        if not is_store(path):
            plan = f"computed into {path}"
        else:
            store = DescriptorStore.open(path, allow_incomplete=True)
            plan = (f"reused from {path} ({store.n_environments} environments, nothing recomputed)" if store.complete
                    else f"finished in {path} ({store.n_regions - len(store.pending_regions())} of {store.n_regions} "
                         f"regions already written)")
        lines.append(f"  {name}: {source}; descriptors {plan}")
    lines.append("analyses")
    for index, analysis in enumerate(config.analyses):
        named = "; ".join(f"{key} {', '.join(names)}" for key, names in analysis.dataset_names().items())
        finished = _finished(config, index) is not None
        status = ("kept (finished in an earlier run)" if resume else "computed again (--resume would keep it)") \
            if finished else "computed"
        lines.append(f"  [{index}] {analysis.kind} ({named}): {status}")
    if config.cluster.kind in JOBQUEUE_CLUSTERS:
        lines += ["job script (not submitted)", job_script(config.cluster.spec)]
    return "\n".join(lines)
