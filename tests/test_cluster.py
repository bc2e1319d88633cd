"""Cluster sections: batch-queue job scripts rendered as text without a queue (as dask-jobqueue's
own tests do), the in-process kinds computing the same summary on real clusters, and the errors
a bad section gets. The real SLURM run is in test_slurm.py."""

import json
import os
import pathlib
import re
import subprocess
import sys

import dask.config
import numpy as np
import pytest
from ase.io import write
from distributed import Client, LocalCluster

import pipeline
from pipeline.analysis import entropy_summary
from pipeline.cluster import DEFAULT_PROCESSES, JOBQUEUE_CLUSTERS, dask_environment, job_script, open_client
from pipeline.errors import InputError
from pipeline.ingest import IngestRequest, ingest
from pipeline.store import StoreParams
from structures import thermal_fcc_cu

SLURM = {"kind": "slurm", "cores": 4, "processes": 2, "memory": "8GB", "queue": "short", "walltime": "00:10:00",
         "account": "chem42", "jobs": 3}
BANDWIDTHS = [0.015, 0.03]


def worker_command(script: str) -> str:
    return next(line for line in script.splitlines() if "distributed.cli.dask_worker" in line)


def test_slurm_job_script_carries_the_section_keys():
    script = job_script({**SLURM, "job_script_prologue": ["module load chemistry"],
                         "job_extra_directives": ["--constraint=avx512"]})
    header = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert {"#SBATCH -p short", "#SBATCH -A chem42", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=8G",
            "#SBATCH -t 00:10:00", "#SBATCH --constraint=avx512"} <= set(header)
    lines = script.splitlines()
    # the user's prologue first, then one level of parallelism: 4 cores / 2 processes
    exports = ["export NUMBA_NUM_THREADS=2", "export OMP_NUM_THREADS=2", "export OPENBLAS_NUM_THREADS=2",
               "export MKL_NUM_THREADS=2"]
    start = lines.index("module load chemistry")
    assert lines[start + 1:start + 5] == exports
    dask_exports = lines[start + 5:lines.index(worker_command(script))]
    assert [line.split("=")[0] for line in dask_exports] == [f"export {name}" for name in dask_environment()]
    command = worker_command(script)
    assert " --nthreads 1 " in command and command.count("--nthreads") == 1
    assert " --nworkers 2 " in command
    assert " --memory-limit 3.73GiB " in command  # 8 GB over 2 processes


def test_job_script_exports_give_dask_processes_the_cluster_settings():
    """The job's exports, sourced by a shell as a batch job does, set dask's configuration in the
    processes it starts: no profiler, slow ticks, and malloc settings added to dask's own
    pre-spawn environment."""
    script = job_script(SLURM)
    exports = "\n".join(line for line in script.splitlines() if line.startswith("export DASK_"))
    probe = ("import dask, distributed, json; print(json.dumps([dask.config.get(key) for key in ("
             "'distributed.worker.profile.enabled', 'distributed.admin.tick.interval', "
             "'distributed.admin.system-monitor.interval', 'distributed.nanny.pre-spawn-environ')]))")
    env = {name: value for name, value in os.environ.items() if not name.startswith("DASK_")}
    result = subprocess.run(["bash", "-c", f"{exports}\n{sys.executable} -c \"{probe}\""], env=env, check=True,
                            capture_output=True, text=True)
    profile, tick, monitor, pre_spawn = json.loads(result.stdout.splitlines()[-1])
    assert (profile, tick, monitor) == (False, "1s", "2s")
    assert pre_spawn["MALLOC_MMAP_MAX_"] == 0 and pre_spawn["MALLOC_TRIM_THRESHOLD_"] == 2**30
    assert pre_spawn["OMP_NUM_THREADS"] == 1  # dask's own entries stay


def resident_growth_after_freeing(megabytes: int) -> int:
    import psutil

    process = psutil.Process()
    before = process.memory_info().rss
    block = np.ones(megabytes * 2**20 // 8)
    del block
    return (process.memory_info().rss - before) // 2**20


def test_local_workers_keep_freed_memory_and_run_no_profiler(monkeypatch):
    """Workers of a local cluster keep the memory a task frees for the next (dask's defaults
    hand a large array's memory straight back), and do not sample their tasks; also where this
    process's environment holds the trim threshold an earlier Dask cluster leaves there, and
    that environment is as it was afterwards."""
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.delenv("MALLOC_MMAP_MAX_", raising=False)
    with open_client({"kind": "local", "workers": 1}) as client:
        (kept,) = client.run(resident_growth_after_freeing, 200).values()
        (profile,) = client.run(lambda: dask.config.get("distributed.worker.profile.enabled")).values()
    assert kept >= 150 and profile is False
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536" and "MALLOC_MMAP_MAX_" not in os.environ
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        (kept,) = client.run(resident_growth_after_freeing, 200).values()
    assert kept < 50  # the same with dask's defaults


def test_pbs_job_script_carries_the_section_keys():
    script = job_script({"kind": "pbs", "cores": 6, "memory": "12GB", "queue": "workq", "walltime": "01:30:00",
                         "account": "chem42", "resource_spec": "select=1:ncpus=6:mem=12GB"})
    header = [line for line in script.splitlines() if line.startswith("#PBS")]
    assert {"#PBS -q workq", "#PBS -A chem42", "#PBS -l select=1:ncpus=6:mem=12GB",
            "#PBS -l walltime=01:30:00"} <= set(header)
    # processes per job defaults to one: the worker process gets all 6 cores, for numba and BLAS
    assert DEFAULT_PROCESSES == 1
    assert "export NUMBA_NUM_THREADS=6\nexport OMP_NUM_THREADS=6" in script
    command = worker_command(script)
    assert " --nthreads 1 " in command and "--nworkers" not in command


@pytest.mark.parametrize("kind", ["sge", "lsf", "htcondor"])
def test_every_batch_kind_renders_one_thread_workers(kind):
    script = job_script({"kind": kind, "cores": 4, "memory": "8GB", "disk": "1GB"} if kind == "htcondor"
                        else {"kind": kind, "cores": 4, "memory": "8GB"})
    assert "export NUMBA_NUM_THREADS=4" in script
    assert " --nthreads 1 " in worker_command(script)


@pytest.fixture
def jobqueue_yaml(tmp_path):
    """A user's ~/.config/dask/jobqueue.yaml, read the way dask reads it (dask.config.refresh)."""
    (tmp_path / "jobqueue.yaml").write_text(
        "jobqueue:\n  slurm:\n    cores: 8\n    memory: 16GB\n    queue: from-yaml\n    walltime: '02:00:00'\n"
        "    job-script-prologue: ['source /opt/env.sh']\n")
    dask.config.refresh(paths=[str(tmp_path)])
    yield
    dask.config.refresh()


def test_jobqueue_yaml_gives_the_keys_the_section_leaves_out(jobqueue_yaml):
    script = job_script({"kind": "slurm", "walltime": "00:05:00"})
    assert "#SBATCH -p from-yaml" in script
    assert "#SBATCH --cpus-per-task=8" in script
    assert "#SBATCH --mem=15G" in script  # 16 GB in GiB, as dask-jobqueue writes it
    assert "#SBATCH -t 00:05:00" in script  # the section wins over the file
    assert script.index("source /opt/env.sh") < script.index("export NUMBA_NUM_THREADS=8")


@pytest.mark.parametrize("spec, match", [
    ({"kind": "kubernetes"}, r"^cluster\.kind: unknown kind 'kubernetes'; one of local, address, synchronous, slurm"),
    (["slurm"], r"^cluster: must be a mapping with a kind"),
    ({"kind": "slurm", "cores": 1, "memory": "1GB", "cpus": 4},
     r"^cluster\.cpus: unknown key for kind slurm \(its keys: .*\bwalltime\b"),
    ({"kind": "slurm", "memory": "1GB"}, r"^cluster\.cores: the cores of one job are needed, here or in "
                                         r"~/\.config/dask/jobqueue\.yaml \(e\.g\. cluster: \{kind: slurm"),
    ({"kind": "slurm", "cores": 2, "processes": 3, "memory": "1GB"},
     r"^cluster\.processes: 3 worker processes cannot share 2 core\(s\) of a job"),
    ({"kind": "slurm", "cores": 0, "memory": "1GB"}, r"^cluster\.cores: must be a whole number >= 1, got 0"),
    ({"kind": "pbs", "cores": 1, "memory": "1GB", "n_workers": 2}, r"^cluster\.n_workers: unknown key for kind pbs"),
    ({"kind": "slurm", "cores": 1, "memory": "1GB", "jobs": 2, "adapt": {"maximum_jobs": 4}},
     r"^cluster\.adapt: give jobs \(a fixed number\) or adapt \(a range\), not both"),
    ({"kind": "slurm", "cores": 1, "memory": "1GB", "adapt": {"minimum_jobs": 2}},
     r"^cluster\.adapt: must be a mapping like \{minimum_jobs: 1, maximum_jobs: 8\}"),
    ({"kind": "slurm", "cores": 1, "memory": "1GB", "adapt": {"maximum_jobs": 4, "idle": 60}},
     r"^cluster\.adapt\.idle: unknown key \(adapt's keys: minimum_jobs, maximum_jobs\)"),
    ({"kind": "slurm", "cores": 1, "memory": "1GB", "adapt": {"minimum_jobs": 3, "maximum_jobs": 2}},
     r"^cluster\.adapt\.maximum_jobs: is below minimum_jobs \(3\)"),
    ({"kind": "slurm", "cores": 1, "memory": "1GB", "jobs": 0}, r"^cluster\.jobs: must be a whole number >= 1, got 0"),
    ({"kind": "slurm", "cores": 1, "memory": "1GB", "start_timeout": -1},
     r"^cluster\.start_timeout: must be a number of seconds > 0, got -1"),
    ({"kind": "slurm", "cores": 1, "memory": "1GB", "job_script_prologue": "module load x"},
     r"^cluster\.job_script_prologue: must be a list of shell lines"),
    ({"kind": "htcondor", "cores": 1, "memory": "1GB"}, r"^cluster: HTCondorCluster refused it: .*disk"),
    ({"kind": "local"}, r"^cluster\.kind: kind local submits no job script; only slurm, pbs, sge, lsf, htcondor do"),
])
def test_bad_batch_sections_name_the_key(spec, match):
    with pytest.raises(InputError, match=match):
        job_script(spec)


@pytest.mark.parametrize("spec, match", [
    ({"kind": "local", "cores": 2}, r"^cluster\.cores: unknown key for kind local \(did you mean 'workers'\?\)"),
    ({"workers": 0}, r"^cluster\.workers: must be a whole number >= 1, got 0"),
    ({"kind": "synchronous", "workers": 2},
     r"^cluster\.workers: unknown key for kind synchronous \(it takes no other key\)"),
    ({"kind": "address"}, r"^cluster\.address: the scheduler's address is needed, e\.g\. cluster: \{kind: address"),
    ({"kind": "address", "address": "tcp://127.0.0.1:1", "jobs": 2},
     r"^cluster\.jobs: unknown key for kind address \(its keys: address, start_timeout\)"),
    ({"kind": "slurm", "cores": 1, "memory": "1GB", "queue": "debug", "jobs": True},
     r"^cluster\.jobs: must be a whole number >= 1, got True"),
])
def test_bad_sections_fail_before_any_cluster_starts(spec, match):
    with pytest.raises(InputError, match=match), open_client(spec):
        pass


def test_only_the_cluster_module_imports_dask_jobqueue():
    package = pathlib.Path(pipeline.__file__).parent
    importers = {path.name for path in package.rglob("*.py") if re.search(r"\bdask_jobqueue\b", path.read_text())}
    assert importers == {"cluster.py"}
    assert set(JOBQUEUE_CLUSTERS) == {"slurm", "pbs", "sge", "lsf", "htcondor"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    write(root / "cu.extxyz", [thermal_fcc_cu(repeat=3, sigma=0.1, seed=seed) for seed in (1, 2)])
    with open_client({"kind": "synchronous"}) as client:
        return ingest(IngestRequest(paths=(root / "cu.extxyz",), params=StoreParams(k=32, cutoff=5.0, dtype="float64"),
                                    chunk_rows=27), root / "cu.zarr", client)


@pytest.fixture(scope="module")
def synchronous_summary(store):
    with open_client({"kind": "synchronous"}) as client:
        return entropy_summary(client, store, BANDWIDTHS, block_rows=54)


def assert_same_figures(summary, expected):
    assert summary["n_environments"] == expected["n_environments"] == 216
    for key in ("entropy", "diversity"):
        np.testing.assert_allclose(summary[key], expected[key], rtol=1e-12)


def test_synchronous_kind_runs_in_this_process(store, synchronous_summary):
    with open_client({"kind": "synchronous"}) as client:
        assert list(client.run(os.getpid).values()) == [os.getpid()]
    assert np.all(np.isfinite(synchronous_summary["entropy"]))


def test_local_kind_equals_synchronous(store, synchronous_summary):
    with open_client({"kind": "local", "workers": 2}) as client:
        workers = client.scheduler_info()["workers"].values()
        assert [worker["nthreads"] for worker in workers] == [1, 1]
        assert_same_figures(entropy_summary(client, store, BANDWIDTHS, block_rows=54), synchronous_summary)


def test_address_kind_uses_a_running_scheduler(store, synchronous_summary):
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            open_client({"kind": "address", "address": cluster.scheduler_address}) as client:
        assert client.scheduler.address == cluster.scheduler_address
        assert_same_figures(entropy_summary(client, store, BANDWIDTHS, block_rows=54), synchronous_summary)


def test_address_kind_without_workers_times_out_clearly():
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster, \
            pytest.raises(TimeoutError, match=r"^cluster\.kind address: no Dask worker connected within 1 s: the "
                                              r"scheduler has no workers; cluster\.start_timeout sets how long"), \
            open_client({"kind": "address", "address": cluster.scheduler_address, "start_timeout": 1}):
        pass


def test_dashboard_link_is_logged(caplog):
    with caplog.at_level("INFO", logger="quests_pipeline"), open_client({"kind": "synchronous"}) as client:
        assert client.dashboard_link in caplog.text
