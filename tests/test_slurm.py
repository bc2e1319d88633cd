"""The batch-queue path for real: Dask workers as jobs of a running SLURM.

Run by .ci/run after `scripts/slurm_local.sh start` (pytest -m slurm tests/test_slurm.py); the
default test run deselects these. Without SLURM they fail, never skip: they are only run where
SLURM is meant to be up. What the tests send to the workers is os.getenv (read in the job's own
environment): a worker job cannot import this test module."""

import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import dask.config
import numpy as np
import pytest
import yaml
from ase.io import write

from pipeline.analysis import entropy_summary
from pipeline.cli import main
from pipeline.cluster import open_client
from pipeline.ingest import IngestRequest, ingest
from pipeline.store import StoreParams
from structures import thermal_fcc_cu

pytestmark = pytest.mark.slurm

# job logs outside the checkout (sbatch writes them to the working directory otherwise)
SLURM = {"kind": "slurm", "cores": 1, "processes": 1, "memory": "2GB", "queue": "debug", "walltime": "00:10:00",
         "interface": "lo", "log_directory": str(Path(tempfile.gettempdir()) / "quests-pipeline-slurm-logs")}
BANDWIDTHS = [0.015, 0.03]


def squeue_jobs(*options: str) -> set[str]:
    return set(subprocess.run(["squeue", "-h", "-o", "%i", *options], capture_output=True, text=True,
                              check=True).stdout.split())


@pytest.fixture(scope="module", autouse=True)
def slurm_is_up():
    assert shutil.which("sbatch"), \
        "no sbatch: run `bash scripts/slurm_local.sh install && bash scripts/slurm_local.sh start`"
    states = subprocess.run(["sinfo", "-h", "-p", "debug", "-o", "%a %t"], capture_output=True, text=True)
    assert states.returncode == 0 and "up" in states.stdout, \
        f"SLURM is not running ({states.stderr.strip()}): run `bash scripts/slurm_local.sh start`"


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """A small store, and its summary on the local cluster."""
    root = tmp_path_factory.mktemp("slurm")
    write(root / "cu.extxyz", [thermal_fcc_cu(repeat=3, sigma=0.1, seed=seed) for seed in (1, 2)])
    with open_client({"kind": "local"}) as client:
        store = ingest(IngestRequest(paths=(root / "cu.extxyz",), params=StoreParams(k=32, cutoff=5.0, dtype="float64"),
                                     chunk_rows=27), root / "cu.zarr", client)
        return store, entropy_summary(client, store, BANDWIDTHS, block_rows=54)


def test_workers_are_slurm_jobs_and_the_summary_equals_the_local_one(local):
    store, local_summary = local
    with open_client({**SLURM, "jobs": 2}) as client:
        client.wait_for_workers(2, timeout=60)
        job_ids = client.run(os.getenv, "SLURM_JOB_ID")
        assert len(set(job_ids.values())) == 2  # two workers, each its own job
        assert set(job_ids.values()) <= squeue_jobs()
        assert set(client.run(os.getenv, "NUMBA_NUM_THREADS").values()) == {"1"}
        # the cluster settings the job script exports reached the worker processes
        assert set(client.run(os.getenv, "MALLOC_MMAP_MAX_").values()) == {"0"}
        assert set(client.run(dask.config.get, "distributed.worker.profile.enabled").values()) == {False}
        assert [worker["nthreads"] for worker in client.scheduler_info()["workers"].values()] == [1, 1]
        summary = entropy_summary(client, store, BANDWIDTHS, block_rows=54)
        ran_in = client.gather([client.submit(os.getenv, "SLURM_JOB_ID", pure=False, workers=[address])
                                for address in job_ids])
        assert set(ran_in) == set(job_ids.values())
    assert summary["n_environments"] == local_summary["n_environments"] == 216
    for key in ("entropy", "diversity"):
        np.testing.assert_allclose(summary[key], local_summary[key], rtol=1e-12)
    deadline = time.monotonic() + 30  # closing the client cancels the jobs
    while set(job_ids.values()) & squeue_jobs() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not set(job_ids.values()) & squeue_jobs()


def test_adapt_keeps_the_minimum_of_jobs(local):
    store, local_summary = local
    with open_client({**SLURM, "adapt": {"minimum_jobs": 1, "maximum_jobs": 2}}) as client:
        assert set(client.run(os.getenv, "SLURM_JOB_ID").values()) <= squeue_jobs()
        summary = entropy_summary(client, store, BANDWIDTHS, block_rows=54)
    np.testing.assert_allclose(summary["entropy"], local_summary["entropy"], rtol=1e-12)


def test_a_refused_submission_fails_at_once():
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"^cluster\.kind slurm: submitting a worker job failed"), \
            open_client({**SLURM, "queue": "no-such-partition", "start_timeout": 120}):
        pass
    assert time.monotonic() - started < 60


def figures(value):
    """The numbers of a summary.json, without its timings and run name."""
    if isinstance(value, dict):
        return {key: figures(item) for key, item in value.items() if key not in ("seconds", "timings", "name")}
    if isinstance(value, list):
        return [figures(item) for item in value]
    return value


def assert_same_figures(actual, expected):
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys()
        for key in expected:
            assert_same_figures(actual[key], expected[key])
    elif isinstance(expected, list):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_same_figures(a, e)
    elif isinstance(expected, float):
        np.testing.assert_allclose(actual, expected, rtol=1e-12)
    else:
        assert actual == expected


def test_an_audit_on_slurm_equals_the_local_audit(tmp_path):
    write(tmp_path / "cold.extxyz", [thermal_fcc_cu(repeat=3, sigma=0.05, seed=seed) for seed in (1, 2)])
    write(tmp_path / "hot.extxyz", [thermal_fcc_cu(repeat=3, sigma=0.2, seed=3)])
    summaries = {}
    for name, cluster in [("local", {"kind": "local"}), ("slurm", {**SLURM, "jobs": 2})]:
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump({
            "name": f"audit-{name}",
            "datasets": {dataset: {"paths": [str(tmp_path / f"{dataset}.extxyz")]} for dataset in ("cold", "hot")},
            "kernel": {"bandwidth": [0.015, 0.03]},
            "analyses": [{"kind": "entropy", "dataset": "cold"}, {"kind": "dh", "dataset": "hot", "reference": "cold"}],
            "cluster": cluster,
            "output": {"dir": str(tmp_path / name), "plots": False},
        }))
        jobs_before = squeue_jobs("--states=all")
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["run", str(config)]) == 0
        # finished jobs stay listed for MinJobAge (300 s)
        jobs = squeue_jobs("--states=all", "--name=dask-worker") - jobs_before
        assert len(jobs) == (2 if name == "slurm" else 0)
        summaries[name] = json.loads((tmp_path / name / "summary.json").read_text())
    assert "slurm cluster: 2 job(s)" in (tmp_path / "slurm" / "run.log").read_text()
    assert_same_figures(figures(summaries["slurm"]), figures(summaries["local"]))
