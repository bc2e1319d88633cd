"""`quests-pipeline run` end to end on a real LocalCluster: the figures equal the in-memory
quests_core ones; the run directory (summary, per-analysis results, exports, plots, log);
store reuse on a second run; --resume after a SIGKILL; --dry-run; the quick-start example."""

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.io import read, write
from distributed import Client, LocalCluster

from pipeline.cli import main
from pipeline.config import config_dict, load_config
from quests_core import delta_entropy, diversity, entropy, get_descriptors
from structures import thermal_fcc_frames

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
EPS = 0.5  # overlap threshold of the overlap analysis


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit-data")
    write(root / "cold.extxyz", thermal_fcc_frames(6, 0.05, 1))
    write(root / "warm.extxyz", thermal_fcc_frames(4, 0.1, 2))
    write(root / "hot.extxyz", thermal_fcc_frames(4, 0.2, 3))
    return root


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        yield client


def write_config(path: Path, data: Path, client, **sections) -> Path:
    raw = {
        "name": "audit-test",
        "datasets": {"cold": {"paths": [str(data / "cold.extxyz")]}, "warm": {"paths": [str(data / "warm.extxyz")]},
                     "hot": {"paths": [str(data / "h*.extxyz")]}},
        "analyses": [{"kind": "dh", "dataset": "hot", "reference": ["cold", "warm"]},
                     {"kind": "entropy", "dataset": "cold"},
                     {"kind": "overlap", "dataset": "warm", "reference": "cold", "eps": EPS},
                     {"kind": "novelty", "datasets": ["cold", "warm", "hot"]}],
        "cluster": {"kind": "address", "address": client.scheduler.address},
        "output": {"dir": str(path.parent / "run"), "exports": ["extxyz", "lammps-dump-text"]},
        **sections,
    }
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run(*args) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["run", *map(str, args)])
    return code, out.getvalue()


def last_run_log(directory: Path) -> str:
    """The log of the last run in a run directory (run.log is appended to by every run)."""
    text = (directory / "run.log").read_text()
    starts = [m.start() for m in re.finditer(r"INFO run \S+( \(resume\))? in ", text)]
    return text[starts[-1]:]


def figures(summary):
    """A summary without its timings."""
    if isinstance(summary, dict):
        return {key: figures(value) for key, value in summary.items() if key not in ("seconds", "timings")}
    if isinstance(summary, list):
        return [figures(value) for value in summary]
    return summary


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, data, client):
    config = write_config(tmp_path_factory.mktemp("first") / "audit.yaml", data, client)
    code, out = run(config)
    assert code == 0
    return config, config.parent / "run", out


def x_of(data, *names):
    return np.concatenate([get_descriptors(read(data / f"{name}.extxyz", index=":")) for name in names])


def test_run_gives_the_in_memory_figures(first_run, data):
    config, directory, out = first_run
    summary = json.loads((directory / "summary.json").read_text())
    assert [entry["kind"] for entry in summary["analyses"]] == ["dh", "entropy", "overlap", "novelty"]
    assert summary["bandwidth"] == 0.015 and summary["method"] == "exact"
    assert {name: d["n_environments"] for name, d in summary["datasets"].items()} == {"cold": 648, "warm": 432, "hot": 432}
    dh, H, overlap, novelty = summary["analyses"]

    expected = delta_entropy(x_of(data, "hot"), x_of(data, "cold", "warm"), 0.015)
    assert dh["dataset"] == "hot" and dh["reference"] == ["cold", "warm"]
    np.testing.assert_allclose([dh["dh_mean"], dh["dh_max"]], [expected.mean(), expected.max()], rtol=1e-12)
    assert dh["novelty"] == pytest.approx((expected > 0).mean()) and 0 < dh["novelty"] < 1
    assert dh["overlap"] == pytest.approx((expected < 1e-5).mean())
    per_frame = json.loads((directory / "analyses" / "0-dh.json").read_text())["result"]["frames"]
    np.testing.assert_allclose([f["dh_max"] for f in per_frame], expected.reshape(4, 108).max(axis=1), rtol=1e-12)

    x = x_of(data, "cold")
    np.testing.assert_allclose([H["entropy"], H["diversity"]], [entropy(x, 0.015), diversity(x, 0.015)], rtol=1e-12)
    assert H["n_environments"] == 648

    warm = delta_entropy(x_of(data, "warm"), x, 0.015)
    assert overlap == {**overlap, "kind": "overlap", "dataset": "warm", "reference": ["cold"], "overlap_eps": EPS}
    assert overlap["overlap"] == pytest.approx((warm < EPS).mean())

    hot = delta_entropy(x_of(data, "hot"), x_of(data, "cold", "warm"), 0.015)
    assert novelty["datasets"] == ["cold", "warm", "hot"]
    assert novelty["novelty"] == pytest.approx([(warm > 0).mean(), (hot > 0).mean()])
    assert [g["reference"] for g in novelty["generations"]] == [["cold"], ["cold", "warm"]]

    # printed: H, D and the dH summary
    assert f"H = {H['entropy']:.4g} nats, D = {H['diversity']:.4g} nats (648 environments of cold)" in out
    assert f"dH(hot | cold + warm): mean {dh['dh_mean']:.4g}, max {dh['dh_max']:.4g}" in out
    assert f"overlap of warm with cold: {overlap['overlap']:.4g} (dH < 0.5)" in out


def test_run_directory(first_run, data):
    config, directory, _ = first_run
    assert load_config(directory / "config.yaml") == load_config(config)  # the resolved config
    assert yaml.safe_load((directory / "config.yaml").read_text()) == config_dict(load_config(config))
    assert sorted(p.name for p in (directory / "analyses").iterdir()) == ["0-dh.json", "1-entropy.json",
                                                                          "2-overlap.json", "3-novelty.json"]
    frames = read(directory / "exports" / "0-dh-hot.extxyz", index=":")
    expected = delta_entropy(x_of(data, "hot"), x_of(data, "cold", "warm"), 0.015)
    # extended XYZ holds 8 decimals
    np.testing.assert_allclose(np.concatenate([atoms.arrays["dH"] for atoms in frames]), expected, rtol=0, atol=1e-8)
    np.testing.assert_allclose(frames[2].positions, read(data / "hot.extxyz", index=2).positions)
    dump = read(directory / "exports" / "0-dh-hot.lammpstrj", index=":", format="lammps-dump-text")
    assert len(dump) == 4 and len(dump[0]) == 108
    for name in ("0-dh-histogram.png", "0-dh-per-frame.png", "3-novelty.png"):
        content = (directory / "plots" / name).read_bytes()
        assert content.startswith(PNG) and len(content) > 10_000, name
    log = last_run_log(directory)
    assert re.search(r"dashboard http://\S+/status", log)
    assert re.search(r"descriptors: 648/648 environments", log)  # progress, logged when not on a terminal
    assert re.search(r"kernel sums: 432/432 environments", log)
    assert log.count("computing descriptors into") == 3


def _descriptor_files(directory: Path) -> dict:
    return {path: (path.stat().st_mtime_ns, path.read_bytes()) for store in (directory / "stores").iterdir()
            for path in (store / "descriptors").rglob("*") if path.is_file()}


def test_second_run_reuses_the_stores(first_run):
    config, directory, _ = first_run
    before = json.loads((directory / "summary.json").read_text())
    stored = _descriptor_files(directory)
    code, _ = run(config)
    assert code == 0
    log = last_run_log(directory)
    assert sorted(re.findall(r"dataset (\w+): reusing the descriptors in \S+ \(nothing recomputed\)", log)) == \
        ["cold", "hot", "warm"]
    assert "computing descriptors" not in log and "descriptors:" not in log
    assert "analysis 0 (dh): started" in log  # without --resume the analyses run again
    assert _descriptor_files(directory) == stored
    assert figures(json.loads((directory / "summary.json").read_text())) == figures(before)


def test_bad_cluster_option_stops_before_anything_changes(first_run, capsys):
    config, directory, _ = first_run
    before = {path: path.stat().st_mtime_ns for path in directory.rglob("*") if path.is_file() and path.name != "run.log"}
    assert main(["run", str(config), "--set", "cluster={kind: local, wokers: 2}"]) == 2
    assert "cluster.wokers: unknown key for kind local" in capsys.readouterr().err
    assert {path: path.stat().st_mtime_ns for path in directory.rglob("*")
            if path.is_file() and path.name != "run.log"} == before


def _wait_until_idle(client) -> None:
    """Until the scheduler forgets the tasks of a client that was killed."""
    deadline = time.monotonic() + 60
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) and time.monotonic() < deadline:
        time.sleep(0.1)


def test_resume_after_sigkill_keeps_finished_analyses(first_run, data, client, tmp_path):
    config = write_config(tmp_path / "audit.yaml", data, client)
    directory = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", str(config)], cwd=ROOT,
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = directory / "analyses" / "0-dh.json"
    deadline = time.monotonic() + 120
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert first.exists(), "the first analysis did not finish"
    assert not (directory / "summary.json").exists() and not (directory / "analyses" / "3-novelty.json").exists()
    finished = first.stat().st_mtime_ns
    _wait_until_idle(client)

    code, _ = run(config, "--resume")
    assert code == 0
    log = last_run_log(directory)
    assert "analysis 0 (dh): finished in an earlier run; kept" in log
    assert "analysis 0 (dh): started" not in log and "analysis 3 (novelty): started" in log
    assert "computing descriptors" not in log  # analysis 0 had made every store
    assert first.stat().st_mtime_ns == finished
    resumed = json.loads((directory / "summary.json").read_text())
    assert figures(resumed) == figures(json.loads((first_run[1] / "summary.json").read_text()))


def test_dry_run_prints_the_plan_and_computes_nothing(first_run, data, client, tmp_path, capsys):
    config = write_config(tmp_path / "audit.yaml", data, client)
    assert main(["run", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("plan of run audit-test (dry run: nothing is computed)\n")
    assert len(re.findall(r"descriptors computed into \S+/run/stores/\w+-\w{12}\.zarr", out)) == 3
    assert "  [0] dh (dataset hot; reference cold, warm): computed\n" in out
    assert "  [3] novelty (datasets cold, warm, hot): computed" in out
    assert not (tmp_path / "run").exists()

    finished = first_run[0]
    assert main(["run", str(finished), "--dry-run", "--resume"]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"descriptors reused from \S+ \(\d+ environments, nothing recomputed\)", out)) == 3
    assert out.count("kept (finished in an earlier run)") == 4
    assert main(["run", str(finished), "--dry-run", "--set", "kernel.bandwidth=0.03"]) == 0
    assert capsys.readouterr().out.count(": computed\n") == 4  # new settings: every analysis computed again

    slurm = "cluster={kind: slurm, cores: 2, processes: 2, memory: 2GB, walltime: '00:10:00', queue: debug}"
    assert main(["run", str(config), "--dry-run", "--set", slurm]) == 0
    out = capsys.readouterr().out
    assert "job script (not submitted)\n#!/usr/bin/env bash" in out and "#SBATCH -p debug" in out
    assert not (tmp_path / "run").exists()


def test_set_several_bandwidths(data, client, tmp_path):
    config = write_config(tmp_path / "audit.yaml", data, client)
    code, out = run(config, "--set", "kernel.bandwidth=[0.015, 0.03]", "--set", "analyses=[{kind: entropy, dataset: warm}]")
    assert code == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["bandwidth"] == [0.015, 0.03]
    (H,) = summary["analyses"]
    np.testing.assert_allclose(H["entropy"], entropy(x_of(data, "warm"), [0.015, 0.03]), rtol=1e-12)
    assert f"H = [{H['entropy'][0]:.4g}, {H['entropy'][1]:.4g}] nats" in out


@pytest.mark.slow
def test_approx_method(data, client, tmp_path):
    """method approx end to end: the bracket holds the exact dH, and the exports carry it."""
    config = write_config(tmp_path / "audit.yaml", data, client)
    code, _ = run(config, "--set", "kernel.method=approx", "--set", "analyses=[{kind: dh, dataset: hot, reference: cold}]",
                  "--set", "output.exports=[extxyz]")
    assert code == 0
    (dh,) = json.loads((tmp_path / "run" / "summary.json").read_text())["analyses"]
    assert dh["method"] == "approx" and dh["tolerance"] == 0.1 and dh["dh_error_mean"] >= 0
    frames = read(tmp_path / "run" / "exports" / "0-dh-hot.extxyz", index=":")
    low, high = (np.concatenate([atoms.arrays[name] for atoms in frames]) for name in ("dH_min", "dH_max"))
    exact = delta_entropy(x_of(data, "hot"), x_of(data, "cold"), 0.015)
    assert np.all(low <= exact + 1e-7) and np.all(exact <= high + 1e-7)


def test_quick_start_example(client, tmp_path):
    """configs/example.yaml: three EMT datasets generated on the fly, every kind of analysis."""
    code, out = run(ROOT / "configs" / "example.yaml", "--set", f"output.dir={tmp_path}", "--set",
                    f"cluster={{kind: address, address: '{client.scheduler.address}'}}")
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {name: d["n_environments"] for name, d in summary["datasets"].items()} == {"train": 432, "warm": 432,
                                                                                      "hot": 432}
    H, dh, overlap, novelty = summary["analyses"]
    assert 0 < H["entropy"] < np.log(432)
    assert dh["dh_max"] > 0 and 0 < dh["novelty"] <= 1
    assert 0 <= overlap["overlap"] < 1
    assert len(novelty["novelty"]) == 2
    assert [line.split()[1] for line in out.splitlines()[:4]] == ["entropy", "dh", "overlap", "novelty"]
    assert len(list((tmp_path / "data").glob("cu-*.extxyz"))) == 3
    assert len(list((tmp_path / "plots").glob("*.png"))) == 3


def test_dataset_tools_as_audit_analyses(tmp_path, data, client):
    # each tool of issue 6 as an analysis kind gives the figures of the tool itself
    from quests_core import bandwidth_from_volume, compress, entropy_sampler, learning_curve

    config = write_config(tmp_path / "audit.yaml", data, client, analyses=[
        {"kind": "learning-curve", "dataset": "cold", "fractions": [0.5, 1.0], "runs": 2, "seed": 3},
        {"kind": "entropy-sampler", "dataset": "cold", "sample_size": 100, "runs": 3, "seed": 4},
        {"kind": "bandwidth", "dataset": "cold"},
        {"kind": "trajectory", "dataset": "hot", "reference": "cold"},
        {"kind": "compress", "dataset": "cold", "method": "msc", "size": 3},
        {"kind": "information-gap", "dataset": "cold", "subset": "warm"},
    ])
    code, _ = run(config)
    assert code == 0
    curve, sampler, bandwidth, trajectory, compressed, gap = json.loads(
        (tmp_path / "run" / "summary.json").read_text())["analyses"]
    x = x_of(data, "cold")
    assert [entry["kind"] for entry in (curve, sampler, compressed)] == ["learning_curve", "entropy_sampler", "compress"]
    expected = learning_curve(x, [0.5, 1.0], 2, 0.015, seed=3)
    np.testing.assert_allclose([p["entropy_mean"] for p in curve["points"]], [e.mean for e in expected], rtol=1e-12)
    np.testing.assert_allclose(sampler["entropy_mean"], entropy_sampler(x, 100, 3, 0.015, seed=4).mean, rtol=1e-12)
    assert bandwidth["bandwidth"] == pytest.approx(bandwidth_from_volume(3.61**3 / 4), rel=1e-6)
    assert trajectory["dataset"] == "hot" and trajectory["reference"] == ["cold"]
    assert compressed["indices"] == compress(x, np.full(6, 108), 3, "msc", 0.015).tolist()
    assert gap["dataset"] == "cold" and gap["subset"] == "warm"
    assert gap["entropy"] == pytest.approx(entropy(x, 0.015), rel=1e-12)
    assert (tmp_path / "run" / "plots" / "0-learning-curve.png").read_bytes().startswith(PNG)
