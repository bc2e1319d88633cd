"""The audit configuration: a YAML file read into frozen dataclasses and validated before
anything runs.

YAML keys are the field names below and every default is a field default here (reusing
quests_core.params and pipeline.ingest); docs/config.md documents the schema and
configs/default.yaml lists every key with its default. A problem is reported as one line
naming the file and the key path, e.g.
    audit.yaml: analyses[1].reference: no dataset named 'trian' (did you mean 'train'?)
and the command exits with code 2.
"""

import dataclasses
import difflib
import glob
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from quests_core import COMPRESSION_METHODS, ApproxParams, DescriptorParams, KernelParams, ToolParams

from . import readers
from .ase_io import atomic_numbers
from .cluster import DEFAULT_KIND, KINDS, check_spec
from .errors import InputError
from .examples import EXAMPLES
from .ingest import DEFAULT_REGION_ROWS, DEFAULT_SPLIT_ATOMS
from .store import StoreParams

DTYPES = ("float64", "float32")
METHODS = ("exact", "approx")
EXPORT_FORMATS = (readers.EXTXYZ, readers.LAMMPS_DUMP)
RUNS_DIR = "runs"  # output.dir defaults to runs/<name>
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # run and dataset names (they name files)


def _field(default=dataclasses.MISSING, **rules):
    """A dataclass field with validation rules: gt / min (numbers), choices, min_items
    (lists), dataset (names a dataset of the config)."""
    return field(default=default, metadata=rules)


@dataclass(frozen=True)
class DatasetConfig:
    """A named input: structure files (globs allowed) or an example generated on the fly."""

    paths: tuple[str, ...] = ()
    generate: str | None = _field(None, choices=tuple(EXAMPLES))
    format: str | None = None  # an ASE format name or lammps-dump-text; default: guessed per file
    frames: str | None = None  # START:STOP:STEP of each file; default: all
    species: dict[int, str] | None = None  # LAMMPS atom type -> element
    skip_bad: bool = False
    split_atoms: int = _field(DEFAULT_SPLIT_ATOMS, min=1)


@dataclass(frozen=True)
class DescriptorConfig:
    k: int = _field(DescriptorParams.k, min=1)
    cutoff: float = _field(DescriptorParams.cutoff, gt=0)
    dtype: str = _field(DTYPES[0], choices=DTYPES)
    multicomponent: tuple[str, ...] | None = None  # elements of the multicomponent descriptor
    chunk_rows: int | None = _field(None, min=1)  # None: one ingest task's rows, at most DEFAULT_CHUNK_ROWS
    region_rows: int = _field(DEFAULT_REGION_ROWS, min=1)

    def store_params(self) -> StoreParams:
        species = tuple(sorted(atomic_numbers[name] for name in self.multicomponent)) if self.multicomponent else None
        return StoreParams(k=self.k, cutoff=self.cutoff, dtype=self.dtype, species=species)


@dataclass(frozen=True)
class KernelConfig:
    bandwidth: float | tuple[float, ...] = _field(KernelParams.bandwidth, gt=0, min_items=1)
    method: str = _field(METHODS[0], choices=METHODS)
    n_neighbors: int = _field(ApproxParams.n_neighbors, min=1)  # approx: nearest references, always summed exactly
    tolerance: float = _field(ApproxParams.tolerance, gt=0)  # approx: wanted width of dH's error interval, nats


@dataclass(frozen=True)
class AnalysisConfig:
    """One entry of `analyses`; `kind` picks the class (ANALYSIS_KINDS)."""

    kind: str

    def dataset_names(self) -> dict[str, tuple[str, ...]]:
        """Key -> the dataset names it gives, for every key that names datasets."""
        return {f.name: (value,) if isinstance(value, str) else tuple(value)
                for f in dataclasses.fields(self) if f.metadata.get("dataset")
                for value in [getattr(self, f.name)]}


@dataclass(frozen=True)
class EntropyAnalysis(AnalysisConfig):
    """H and D of a dataset."""

    dataset: str = _field(dataset=True)


@dataclass(frozen=True)
class DhAnalysis(AnalysisConfig):
    """dH of every environment of `dataset` against the `reference` datasets merged."""

    dataset: str = _field(dataset=True)
    reference: tuple[str, ...] = _field(dataset=True, min_items=1)
    eps: float = KernelParams.overlap_eps  # overlap counts environments with dH < eps


@dataclass(frozen=True)
class OverlapAnalysis(DhAnalysis):
    """The fraction of `dataset` covered by `reference` (the same keys as dh)."""


@dataclass(frozen=True)
class NoveltyAnalysis(AnalysisConfig):
    """Each generation against all the generations before it."""

    datasets: tuple[str, ...] = _field(dataset=True, min_items=2)
    eps: float = KernelParams.overlap_eps


@dataclass(frozen=True)
class LearningCurveAnalysis(AnalysisConfig):
    """H of random fractions (in (0, 1]) of a dataset, `runs` samples each."""

    dataset: str = _field(dataset=True)
    fractions: tuple[float, ...] = _field(ToolParams.learning_curve_fractions, gt=0, min_items=1)
    runs: int = _field(ToolParams.learning_curve_runs, min=1)
    seed: int = ToolParams.seed


@dataclass(frozen=True)
class EntropySamplerAnalysis(AnalysisConfig):
    """H of `runs` random samples of sample_size environments."""

    dataset: str = _field(dataset=True)
    sample_size: int = _field(ToolParams.sampler_sample_size, min=1)
    runs: int = _field(ToolParams.sampler_runs, min=1)
    seed: int = ToolParams.seed


@dataclass(frozen=True)
class BandwidthAnalysis(AnalysisConfig):
    """quests' bandwidth rule for the dataset's mean volume per atom."""

    dataset: str = _field(dataset=True)


@dataclass(frozen=True)
class TrajectoryAnalysis(AnalysisConfig):
    """dH of each frame against itself, and against `reference` (datasets merged) if given."""

    dataset: str = _field(dataset=True)
    reference: tuple[str, ...] = _field((), dataset=True)
    eps: float = KernelParams.overlap_eps


@dataclass(frozen=True)
class CompressAnalysis(AnalysisConfig):
    """Keep `size` structures (or a `fraction` in (0, 1]) of a dataset; msc is conditional on
    `reference` datasets if given."""

    dataset: str = _field(dataset=True)
    method: str = _field(ToolParams.compression_method, choices=COMPRESSION_METHODS)
    size: int | None = _field(None, min=1)
    fraction: float | None = _field(None, gt=0)
    reference: tuple[str, ...] = _field((), dataset=True)
    seed: int = ToolParams.seed
    eps: float = KernelParams.overlap_eps


@dataclass(frozen=True)
class InformationGapAnalysis(AnalysisConfig):
    """H(dataset) - H(subset), and dH of every environment of dataset given the subset."""

    dataset: str = _field(dataset=True)
    subset: str = _field(dataset=True)
    eps: float = KernelParams.overlap_eps


ANALYSIS_KINDS = {"entropy": EntropyAnalysis, "dh": DhAnalysis, "overlap": OverlapAnalysis,
                  "novelty": NoveltyAnalysis, "learning-curve": LearningCurveAnalysis,
                  "entropy-sampler": EntropySamplerAnalysis, "bandwidth": BandwidthAnalysis,
                  "trajectory": TrajectoryAnalysis, "compress": CompressAnalysis,
                  "information-gap": InformationGapAnalysis}


@dataclass(frozen=True)
class ClusterConfig:
    """`kind` and, beside it in the YAML, the options of that kind of cluster (checked at load
    by pipeline.cluster.check_spec, with the rules open_client applies)."""

    kind: str = _field(DEFAULT_KIND, choices=KINDS)
    options: dict = field(default_factory=dict)

    @property
    def spec(self) -> dict:
        """The cluster as one flat mapping, as written in the config."""
        return {"kind": self.kind, **self.options}


@dataclass(frozen=True)
class OutputConfig:
    dir: str | None = None  # default runs/<name>
    exports: tuple[str, ...] = _field((), choices=EXPORT_FORMATS)  # per-atom dH of every dh analysis
    plots: bool = True


@dataclass(frozen=True)
class AuditConfig:
    name: str
    datasets: dict[str, DatasetConfig] = _field(min_items=1)
    analyses: tuple[AnalysisConfig, ...] = _field(min_items=1)
    descriptor: DescriptorConfig = field(default_factory=DescriptorConfig)
    kernel: KernelConfig = field(default_factory=KernelConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


class _Invalid(Exception):
    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}" if where else message)


# ---- loading ---------------------------------------------------------------------------
def load_config(path, overrides=()) -> AuditConfig:
    """Read, override (`key.path=value`, the value read as YAML) and validate a config."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such config file", path=path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise InputError(f"not valid YAML: {' '.join(str(error).split())}", path=path) from None
    try:
        if not isinstance(raw, dict):
            raise _Invalid("", f"expected a mapping of keys (name, datasets, analyses, ...), got {_show(raw)}")
        for override in overrides:
            apply_override(raw, override)
        return _check(_build(AuditConfig, raw, ""))
    except _Invalid as error:
        raise InputError(str(error), path=path) from None


_KEY = re.compile(r"[^.\[\]=]+(?:\.[^.\[\]=]+|\[\d+\])*")
_KEY_PART = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def apply_override(raw: dict, text: str) -> None:
    """Set `a.b[2].c=value` in the raw config mapping (missing mappings are created)."""
    key, equals, value = text.partition("=")
    where = f"--set {text}"
    if not equals or not _KEY.fullmatch(key):
        raise _Invalid(where, "expected KEY.PATH=VALUE, e.g. kernel.bandwidth=0.03 or analyses[0].dataset=md")
    parts = [(name, int(index) if index else None) for name, index in _KEY_PART.findall(key)]
    node = raw
    for i, (name, index) in enumerate(parts):
        last = i == len(parts) - 1
        if index is None:
            if not isinstance(node, dict):
                raise _Invalid(where, f"{_path(parts[:i])} is not a mapping")
            if last:
                node[name] = yaml.safe_load(value)
            else:
                node = node.setdefault(name, {})
        else:
            if not isinstance(node, list) or not 0 <= index < len(node):
                count = f"has {len(node)} entries" if isinstance(node, list) else "is not a list"
                raise _Invalid(where, f"{_path(parts[:i])} {count}")
            if last:
                node[index] = yaml.safe_load(value)
            else:
                node = node[index]


def _path(parts) -> str:
    return "".join(f"[{index}]" if index is not None else f".{name}" for name, index in parts).lstrip(".")


# ---- structure and types ---------------------------------------------------------------
def _join(where: str, key) -> str:
    return f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key)


def _build(cls, raw, where: str):
    if cls is AnalysisConfig:
        return _build_analysis(raw, where)
    if cls is ClusterConfig:
        return _build_cluster(raw, where)
    if not isinstance(raw, dict):
        raise _Invalid(where, f"expected a mapping, got {_show(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in raw.items():
        if key not in fields:
            raise _Invalid(_join(where, key), f"unknown key{_suggest(str(key), fields)}")
        values[key] = _convert(value, hints[key], _join(where, key), fields[key].metadata)
    for name, f in fields.items():
        if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _Invalid(_join(where, name), "required key missing")
    return cls(**values)


def _build_analysis(raw, where: str) -> AnalysisConfig:
    if not isinstance(raw, dict):
        raise _Invalid(where, f"expected a mapping with a kind, e.g. {{kind: entropy, dataset: train}}, got {_show(raw)}")
    if "kind" not in raw:
        raise _Invalid(_join(where, "kind"), f"required key missing (one of {', '.join(ANALYSIS_KINDS)})")
    kind = raw["kind"]
    if kind not in ANALYSIS_KINDS:
        raise _Invalid(_join(where, "kind"), f"unknown analysis {_show(kind)}{_suggest(str(kind), ANALYSIS_KINDS)}")
    return _build(ANALYSIS_KINDS[kind], raw, where)


def _build_cluster(raw, where: str) -> ClusterConfig:
    if not isinstance(raw, dict):
        raise _Invalid(where, f"expected a mapping, e.g. {{kind: local}}, got {_show(raw)}")
    kind = _convert(raw.get("kind", DEFAULT_KIND), str, _join(where, "kind"), {"choices": KINDS})
    try:
        check_spec(raw)
    except InputError as error:
        raise _Invalid("", str(error)) from None
    return ClusterConfig(kind, {key: value for key, value in raw.items() if key != "kind"})


_DESCRIBE = {int: ("an integer", "integers"), float: ("a number", "numbers"), str: ("a string", "strings"),
             bool: ("true or false", "booleans")}


def _describe(annotation, plural: bool = False) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(member, plural) for member in typing.get_args(annotation)
                           if member is not type(None))
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(annotation)[0], plural=True)}"
    if origin is dict or dataclasses.is_dataclass(annotation):
        return "mappings" if plural else "a mapping"
    return _DESCRIBE[annotation][plural]


def _show(value) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, (dict, list)):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    return repr(value)


def _is(value, annotation) -> bool:
    """Whether value has the shape of annotation (checked in depth by _convert)."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return isinstance(value, list) or _is(value, typing.get_args(annotation)[0])
    if origin is dict or dataclasses.is_dataclass(annotation):
        return isinstance(value, dict)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _convert(value, annotation, where: str, rules):
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        if value is None and type(None) in members:
            return None
        for member in members:
            if member is not type(None) and _is(value, member):
                return _convert(value, member, where, rules)
        raise _Invalid(where, _type_error(value, annotation))
    if origin is tuple:
        item = typing.get_args(annotation)[0]
        items = value if isinstance(value, list) else [value]
        converted = tuple(_convert(v, item, _join(where, i), rules) for i, v in enumerate(items))
        _check_count(converted, rules, where)
        return converted
    if origin is dict:
        if not isinstance(value, dict):
            raise _Invalid(where, _type_error(value, annotation))
        keys, values = typing.get_args(annotation)
        converted = {_convert(k, keys, where, {}): _convert(v, values, _join(where, k), {}) for k, v in value.items()}
        _check_count(converted, rules, where)
        return converted
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, value, where)
    if not _is(value, annotation):
        raise _Invalid(where, _type_error(value, annotation))
    if annotation is float:
        value = float(value)
        if not math.isfinite(value):
            raise _Invalid(where, f"must be finite, got {value}")
    _check_value(value, rules, where)
    return value


def _type_error(value, annotation) -> str:
    message = f"expected {_describe(annotation)}, got {_show(value)}"
    if isinstance(value, str) and float in _leaves(annotation):
        try:
            float(value)
            message += " (YAML reads a number with an exponent but no decimal point as text: write e.g. 1.0e-5)"
        except ValueError:
            pass
    return message


def _leaves(annotation) -> set:
    args = typing.get_args(annotation)
    return set().union(*map(_leaves, args)) if args else {annotation}


def _check_count(values, rules, where: str) -> None:
    if len(values) < rules.get("min_items", 0):
        raise _Invalid(where, f"needs at least {rules['min_items']} entr{'y' if rules['min_items'] == 1 else 'ies'}, "
                              f"got {len(values)}")


def _check_value(value, rules, where: str) -> None:
    if "gt" in rules and not value > rules["gt"]:
        raise _Invalid(where, f"must be > {rules['gt']}, got {value}")
    if "min" in rules and value < rules["min"]:
        raise _Invalid(where, f"must be >= {rules['min']}, got {value}")
    if "choices" in rules and value not in rules["choices"]:
        raise _Invalid(where, f"must be one of {', '.join(rules['choices'])}, got {_show(value)}"
                              f"{_suggest(str(value), rules['choices'])}")


def _suggest(word: str, valid) -> str:
    close = difflib.get_close_matches(word, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (valid: {', '.join(valid)})"


# ---- meaning -----------------------------------------------------------------------------
def _check(config: AuditConfig) -> AuditConfig:
    """What types cannot say: names, files, formats, elements and the datasets analyses name.
    Returns the config with globs expanded and output.dir filled in."""
    if not NAME.fullmatch(config.name):
        raise _Invalid("name", f"{config.name!r} is not a name of letters, digits, '.', '_' and '-'")
    datasets = {}
    for name, dataset in config.datasets.items():
        where = _join("datasets", name)
        if not NAME.fullmatch(str(name)):
            raise _Invalid(where, f"{name!r} is not a name of letters, digits, '.', '_' and '-'")
        datasets[name] = _check_dataset(dataset, where)
    for element in config.descriptor.multicomponent or ():
        if element not in atomic_numbers:
            raise _Invalid("descriptor.multicomponent", f"unknown element {element!r}")
    for i, analysis in enumerate(config.analyses):
        for key, names in analysis.dataset_names().items():
            for name in names:
                if name not in datasets:
                    raise _Invalid(_join(_join("analyses", i), key),
                                   f"no dataset named {name!r}{_suggest(name, datasets)}")
    output = dataclasses.replace(config.output, dir=config.output.dir or f"{RUNS_DIR}/{config.name}")
    return dataclasses.replace(config, datasets=datasets, output=output)


def _check_dataset(dataset: DatasetConfig, where: str) -> DatasetConfig:
    if dataset.paths and dataset.generate:
        raise _Invalid(where, "give either paths or generate, not both")
    if not dataset.paths and not dataset.generate:
        raise _Invalid(where, f"give paths (structure files) or generate (an example: {', '.join(EXAMPLES)})")
    try:
        readers.FrameSelection.parse(dataset.frames)
    except InputError as error:
        raise _Invalid(_join(where, "frames"), str(error)) from None
    for type_, element in (dataset.species or {}).items():
        if element not in atomic_numbers:
            raise _Invalid(_join(_join(where, "species"), type_), f"unknown element {element!r}")
    if dataset.generate:
        return dataset
    files = []
    for i, pattern in enumerate(dataset.paths):
        found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not found:
            raise _Invalid(_join(_join(where, "paths"), i), f"{pattern!r} matches no file")
        for path in found:
            try:
                fmt = readers.resolve_format(Path(path), dataset.format)
            except InputError as error:
                key = "format" if dataset.format and Path(path).is_file() else f"paths[{i}]"
                raise _Invalid(f"{where}.{key}", str(error)) from None
            if fmt == readers.LAMMPS_DUMP and not dataset.species:
                raise _Invalid(_join(where, "species"), f"{path} is a LAMMPS dump, which names atom types, not "
                                                        "elements: map each type to its element, e.g. species: {1: Cu}")
            files.append(path)
    return dataclasses.replace(dataset, paths=tuple(files))


# ---- writing ---------------------------------------------------------------------------
def config_dict(config) -> dict:
    """A (resolved) config as the plain mapping its YAML would hold."""
    def plain(value):
        if isinstance(value, ClusterConfig):
            return plain(value.spec)
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(config)


def config_yaml(config: AuditConfig) -> str:
    return yaml.safe_dump(config_dict(config), sort_keys=False)
