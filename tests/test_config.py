"""Audit configs: every validation error is one line naming the key path (exit code 2),
--set overrides, and the shipped configs are valid and list every default."""

import copy
import dataclasses

import pytest
import yaml
from ase.build import bulk
from ase.io import write

from pipeline.cli import main
from pipeline.config import (
    ANALYSIS_KINDS,
    DatasetConfig,
    DescriptorConfig,
    KernelConfig,
    OutputConfig,
    config_dict,
    load_config,
)
from pipeline.errors import InputError
from quests_core import KernelParams

CONFIGS = "configs"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("config")
    for name in ("a.extxyz", "b.extxyz"):
        write(root / name, [bulk("Cu", "fcc", a=3.61, cubic=True)])
    (root / "md.lammpstrj").write_text("")
    return root


@pytest.fixture
def raw(files):
    return {
        "name": "test",
        "datasets": {"train": {"paths": [str(files / "*.extxyz")]},
                     "md": {"paths": [str(files / "md.lammpstrj")], "species": {1: "Cu"}, "frames": "::10"}},
        "kernel": {"bandwidth": 0.015},
        "analyses": [{"kind": "entropy", "dataset": "train"},
                     {"kind": "dh", "dataset": "md", "reference": "train"},
                     {"kind": "novelty", "datasets": ["train", "md"]}],
    }


def load(tmp_path, raw, overrides=()):
    path = tmp_path / "audit.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_config(path, overrides)


def test_valid_config_is_resolved(tmp_path, raw, files):
    config = load(tmp_path, raw)
    assert config.datasets["train"].paths == (str(files / "a.extxyz"), str(files / "b.extxyz"))  # glob, sorted
    assert config.datasets["md"].species == {1: "Cu"}
    assert config.analyses[1].reference == ("train",)  # one name or a list
    assert config.analyses[1].eps == KernelParams.overlap_eps
    assert config.kernel == KernelConfig()
    assert config.output.dir == "runs/test"
    assert config.cluster.spec == {"kind": "local"}
    # the resolved config reads back as itself
    assert load(tmp_path, config_dict(config)) == config


def test_set_overrides(tmp_path, raw):
    config = load(tmp_path, raw, ["kernel.bandwidth=[0.01, 0.02]", "analyses[0].dataset=md", "cluster.workers=2",
                                  "output.dir=elsewhere", "datasets.md.frames=::5", "descriptor.dtype=float32"])
    assert config.kernel.bandwidth == (0.01, 0.02)
    assert config.analyses[0].dataset == "md"
    assert config.cluster.spec == {"kind": "local", "workers": 2}
    assert config.output.dir == "elsewhere"
    assert config.datasets["md"].frames == "::5"
    assert config.descriptor.store_params().dtype == "float32"
    config = load(tmp_path, raw, ["analyses=[{kind: entropy, dataset: md}]"])
    assert [a.kind for a in config.analyses] == ["entropy"]


@pytest.mark.parametrize("override, message", [
    ("kernel.bandwidth", r"--set kernel\.bandwidth: expected KEY\.PATH=VALUE"),
    ("analyses[3].dataset=md", r"--set analyses\[3\]\.dataset=md: analyses has 3 entries"),
    ("name.first=x", r"--set name\.first=x: name is not a mapping"),
    ("kernel[0]=1", r"--set kernel\[0\]=1: kernel is not a list"),
])
def test_set_errors(tmp_path, raw, override, message):
    with pytest.raises(InputError, match=message):
        load(tmp_path, raw, [override])


DELETE = object()


def _edit(raw, path, value):
    node = raw
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value

ERRORS = [
    # unknown keys, with the closest valid key
    (("analysis",), [], r"audit\.yaml: analysis: unknown key \(did you mean 'analyses'\?\)"),
    (("kernel", "bandwith"), 0.03, r"kernel\.bandwith: unknown key \(did you mean 'bandwidth'\?\)"),
    (("zzz",), 1, r"zzz: unknown key \(valid: name, datasets, analyses, descriptor, kernel, cluster, output\)"),
    (("datasets", "md", "specie"), {1: "Cu"}, r"datasets\.md\.specie: unknown key \(did you mean 'species'\?\)"),
    (("analyses", 1, "references"), "train", r"analyses\[1\]\.references: unknown key \(did you mean 'reference'\?\)"),
    (("analyses", 0, "kind"), "entropie", r"analyses\[0\]\.kind: unknown analysis 'entropie' \(did you mean 'entropy'\?\)"),
    (("cluster",), {"kind": "slrum"}, r"cluster\.kind: must be one of .*slurm.*, got 'slrum' \(did you mean 'slurm'\?\)"),
    (("kernel", "method"), "aprox", r"kernel\.method: must be one of exact, approx, got 'aprox' \(did you mean 'approx'\?\)"),
    (("output", ), {"exports": ["xyz"]}, r"output\.exports\[0\]: must be one of extxyz, lammps-dump-text, got 'xyz'"),
    (("datasets", "x"), {"generate": "cu-300k"}, r"datasets\.x\.generate: .*got 'cu-300k' \(did you mean 'cu-300K'\?\)"),
    # wrong types
    (("descriptor",), {"k": "32"}, r"descriptor\.k: expected an integer, got '32'"),
    (("descriptor",), {"k": True}, r"descriptor\.k: expected an integer, got True"),
    (("descriptor",), {"cutoff": [5.0]}, r"descriptor\.cutoff: expected a number, got a list"),
    (("kernel", "bandwidth"), "1e-5", r"kernel\.bandwidth: expected a number or a list of numbers, got '1e-5' "
                                      r"\(YAML reads a number with an exponent but no decimal point as text"),
    (("kernel", "bandwidth"), [0.01, "x"], r"kernel\.bandwidth\[1\]: expected a number, got 'x'"),
    (("datasets", "train"), "a.extxyz", r"datasets\.train: expected a mapping, got 'a\.extxyz'"),
    (("datasets", "md", "species"), {"1": "Cu"}, r"datasets\.md\.species: expected an integer, got '1'"),
    (("output", "plots"), "yes", r"output\.plots: expected true or false, got 'yes'"),
    (("analyses",), {"kind": "entropy"}, r"analyses\[0\]\.dataset: required key missing"),
    (("analyses", 0), "entropy", r"analyses\[0\]: expected a mapping with a kind"),
    (("kernel",), None, r"kernel: expected a mapping, got nothing \(null\)"),
    # required keys and counts
    (("name",), DELETE, r"name: required key missing"),
    (("analyses",), [], r"analyses: needs at least 1 entry, got 0"),
    (("datasets",), {}, r"datasets: needs at least 1 entry, got 0"),
    (("analyses", 0), {"dataset": "train"}, r"analyses\[0\]\.kind: required key missing \(one of entropy, dh"),
    (("analyses", 2, "datasets"), ["train"], r"analyses\[2\]\.datasets: needs at least 2 entries, got 1"),
    # cluster sections are checked at load too, with open_client's rules (nothing started)
    (("cluster",), {"kind": "slurm", "cores": 1, "memory": "2GB", "queue_name": "debug"},
     r"cluster\.queue_name: unknown key for kind slurm \(did you mean 'queue'\?\)"),
    (("cluster",), {"kind": "pbs", "cores": 2, "memory": "2GB", "adapt": {"maximum_jobs": 0}},
     r"cluster\.adapt\.maximum_jobs: must be a whole number >= 1, got 0"),
    # the dataset tools as analyses
    (("analyses", 0), {"kind": "compress", "dataset": "train", "method": "msk"},
     r"analyses\[0\]\.method: must be one of msc, fps, mean-fps, k-means, random, got 'msk' \(did you mean 'msc'\?\)"),
    (("analyses", 0), {"kind": "learning-curve", "dataset": "train", "fractions": [0.5, 0.0]},
     r"analyses\[0\]\.fractions\[1\]: must be > 0, got 0\.0"),
    (("analyses", 0), {"kind": "information-gap", "dataset": "train", "subset": "trian"},
     r"analyses\[0\]\.subset: no dataset named 'trian' \(did you mean 'train'\?\)"),
    (("datasets", "x"), {}, r"datasets\.x: give paths \(structure files\) or generate \(an example: cu-300K"),
    (("datasets", "x"), {"paths": ["a"], "generate": "cu-300K"}, r"datasets\.x: give either paths or generate, not both"),
    # files
    (("datasets", "train", "paths"), ["/no/such/dir/*.extxyz"], r"datasets\.train\.paths\[0\]: '/no/such/dir/\*\.extxyz' "
                                                                  r"matches no file"),
    (("datasets", "train", "paths"), ["/no/such/file.extxyz"], r"datasets\.train\.paths\[0\]: /no/such/file\.extxyz: no such "
                                                                 r"file"),
    (("datasets", "md", "species"), DELETE, r"datasets\.md\.species: .*md\.lammpstrj is a LAMMPS dump, which names atom "
                                            r"types, not elements: map each type to its element, e\.g\. species: \{1: Cu\}"),
    (("datasets", "md", "format"), "nonsense", r"datasets\.md\.format: unknown format 'nonsense'"),
    (("datasets", "md", "frames"), "a:b", r"datasets\.md\.frames: frames 'a:b' is not START:STOP:STEP"),
    (("datasets", "md", "species"), {1: "Cx"}, r"datasets\.md\.species\[1\]: unknown element 'Cx'"),
    # out of range
    (("kernel", "bandwidth"), -0.1, r"kernel\.bandwidth: must be > 0, got -0\.1"),
    (("kernel", "bandwidth"), [0.01, 0.0], r"kernel\.bandwidth\[1\]: must be > 0, got 0\.0"),
    (("kernel", "bandwidth"), [], r"kernel\.bandwidth: needs at least 1 entry, got 0"),
    (("kernel", "n_neighbors"), 0, r"kernel\.n_neighbors: must be >= 1, got 0"),
    (("descriptor",), {"k": 0}, r"descriptor\.k: must be >= 1, got 0"),
    (("descriptor",), {"cutoff": float("inf")}, r"descriptor\.cutoff: must be finite, got inf"),
    (("descriptor",), {"multicomponent": ["Cu", "Xx"]}, r"descriptor\.multicomponent: unknown element 'Xx'"),
    (("name",), "a b", r"name: 'a b' is not a name of letters, digits"),
    # analyses naming undefined datasets
    (("analyses", 1, "reference"), "trian", r"analyses\[1\]\.reference: no dataset named 'trian' \(did you mean 'train'\?\)"),
    (("analyses", 1, "reference"), ["train", "mdd"], r"analyses\[1\]\.reference: no dataset named 'mdd' \(did you mean 'md'\?\)"),
    (("analyses", 0, "dataset"), "zzz", r"analyses\[0\]\.dataset: no dataset named 'zzz' \(valid: train, md\)"),
    (("analyses", 2, "datasets"), ["train", "gen1"], r"analyses\[2\]\.datasets: no dataset named 'gen1'"),
]


@pytest.mark.parametrize("path, value, message", ERRORS, ids=[f"{i}-{'.'.join(map(str, e[0]))}" for i, e in
                                                              enumerate(ERRORS)])
def test_validation_errors_name_the_key(tmp_path, raw, path, value, message):
    raw = copy.deepcopy(raw)
    _edit(raw, path, value)
    with pytest.raises(InputError, match=message):
        load(tmp_path, raw)


def test_unreadable_configs(tmp_path):
    with pytest.raises(InputError, match=r"nothing\.yaml: no such config file"):
        load_config(tmp_path / "nothing.yaml")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(InputError, match=r"broken\.yaml: not valid YAML: .*line 2"):
        load_config(tmp_path / "broken.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(InputError, match=r"list\.yaml: expected a mapping of keys \(name, datasets, analyses, \.\.\.\), "
                                         r"got a list"):
        load_config(tmp_path / "list.yaml")


def test_validate_command_exit_codes(tmp_path, raw, capsys):
    path = tmp_path / "audit.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: valid (2 datasets, 3 analyses, output in runs/test)"
    assert main(["validate", str(path), "--set", "analyses[1].reference=trian"]) == 2
    assert capsys.readouterr().err.strip() == (f"quests-pipeline: error: {path}: analyses[1].reference: no dataset "
                                               f"named 'trian' (did you mean 'train'?)")
    assert main(["run", str(path), "--set", "kernel.bandwith=1"]) == 2
    assert "kernel.bandwith: unknown key (did you mean 'bandwidth'?)" in capsys.readouterr().err


def test_default_yaml_lists_every_key_with_its_default():
    raw = yaml.safe_load(open(f"{CONFIGS}/default.yaml"))
    load_config(f"{CONFIGS}/default.yaml")
    for section, cls in (("descriptor", DescriptorConfig), ("kernel", KernelConfig), ("output", OutputConfig)):
        assert raw[section] == config_dict(cls()), section
    assert raw["cluster"] == {"kind": "local"}
    example = raw["datasets"]["train"]
    assert set(example) == {f.name for f in dataclasses.fields(DatasetConfig)}
    assert {**example, "generate": None} == config_dict(DatasetConfig())
    assert [entry["kind"] for entry in raw["analyses"]] == list(ANALYSIS_KINDS)
    for entry in raw["analyses"]:
        fields = {f.name: f for f in dataclasses.fields(ANALYSIS_KINDS[entry["kind"]])}
        assert set(entry) == set(fields)
        defaults = {name: list(f.default) if isinstance(f.default, tuple) else f.default  # YAML has lists
                    for name, f in fields.items() if f.default is not dataclasses.MISSING}
        assert all(entry[name] == default for name, default in defaults.items()), entry["kind"]


@pytest.mark.parametrize("name, datasets", [
    ("example", None),
    ("slurm", "{train: {generate: cu-300K}, md: {generate: cu-1500K}}"),
    ("snapshot-32m", "{train: {generate: cu-300K}, snapshot: {generate: cu-1500K}}"),
])
def test_shipped_configs_are_valid(name, datasets):
    """The batch-queue examples name files of a real project: validated with generated data in their place."""
    config = load_config(f"{CONFIGS}/{name}.yaml", [f"datasets={datasets}"] if datasets else [])
    assert config.name in (name, "cu-md-slurm")
    if name == "snapshot-32m":
        assert config.kernel.method == "approx" and config.descriptor.dtype == "float32"
        assert config.datasets["snapshot"].split_atoms < 32_000_000
