"""Dask clusters: the one module that creates or connects to them (and the one that imports
dask-jobqueue).

A cluster is described by a mapping, the `cluster` section of a configuration:

- `{kind: local, workers: N}` (the default kind): a LocalCluster of worker processes sized to
  the machine;
- `{kind: address, address: tcp://HOST:PORT}`: a running scheduler;
- `{kind: synchronous}`: one worker thread in this process, for debugging;
- `{kind: slurm | pbs | sge | lsf | htcondor, ...}`: worker jobs through dask-jobqueue; every key
  but `kind`, `jobs`, `adapt` and `start_timeout` goes straight to the cluster class, and
  dask-jobqueue takes the keys not given from the user's ~/.config/dask/jobqueue.yaml.

One level of parallelism everywhere: each worker process runs one Dask thread, and numba and
BLAS get the process's cores.
"""

import contextlib
import difflib
import inspect
import json
import logging
import os
import shlex
import time
from collections.abc import Mapping

from distributed import Client, LocalCluster, WorkerPlugin
from distributed.core import Status

from .errors import InputError

log = logging.getLogger("quests_pipeline")

BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

DEFAULT_KIND = "local"
JOBQUEUE_CLUSTERS = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster",
                     "htcondor": "HTCondorCluster"}
KINDS = ("local", "address", "synchronous", *JOBQUEUE_CLUSTERS)
DEFAULT_JOBS = 1  # jobs started when the section has neither jobs nor adapt; adapt's default minimum_jobs
DEFAULT_PROCESSES = 1  # worker processes per job when neither the section nor jobqueue.yaml says
DEFAULT_START_TIMEOUT = 600.0  # seconds to wait for the first worker of a batch queue or a running scheduler
JOBQUEUE_OWN_KEYS = ("jobs", "adapt", "start_timeout")  # a batch-queue section's keys that are not dask-jobqueue's
JOBQUEUE_RESERVED_KEYS = ("job_cls", "asynchronous", "loop", "n_workers")  # set by open_client (n_workers: by jobs)
EXAMPLE = "e.g. cluster: {kind: slurm, cores: 8, memory: 32GB, walltime: '01:00:00', jobs: 4}"


# dask settings of our clusters, for batch throughput on every core:
# - worker processes keep the heap memory they free for their next task, rather than mapping
#   each large array afresh and handing freed memory straight back (dask trims at 64 KiB):
#   memory handed back costs a page fault per 4 KiB when touched again, about 4 ms per MB on
#   virtual machines that return free memory to their host (docs/benchmarks.md); a worker
#   then holds about its largest task's memory, which the tasks bound. glibc reads these as a
#   process starts, so they go in dask's pre-spawn environment;
# - no statistical profiler sampling task threads every 10 ms, and event-loop ticks and
#   system monitors at 1 s and 2 s rather than 20 ms and 0.5 s: an idle 2-worker cluster
#   took 15 % of a core with Dask's defaults, 4 % with ours (scripts/bench_cluster_settings.py).
WORKER_MALLOC = {"MALLOC_MMAP_MAX_": 0, "MALLOC_TRIM_THRESHOLD_": 1 << 30}
CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    **{f"distributed.nanny.pre-spawn-environ.{name}": value for name, value in WORKER_MALLOC.items()},
}


def dask_environment() -> dict:
    """CLUSTER_CONFIG as the DASK_* variables a batch job exports for the dask processes it
    starts (a pre-spawn environment as one dict literal: dask lower-cases nested names)."""
    variables = {"DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON": json.dumps(WORKER_MALLOC)}
    for key, value in CLUSTER_CONFIG.items():
        if not key.startswith("distributed.nanny.pre-spawn-environ."):
            variables["DASK_" + key.upper().replace(".", "__").replace("-", "_")] = \
                value if isinstance(value, str) else repr(value)
    return variables


def worker_environment(cores: int) -> dict:
    """BLAS threads of a worker process = its cores (numba's are set by NumbaThreads: numba
    refuses a changed NUMBA_NUM_THREADS once it has started threads)."""
    return {name: str(cores) for name in BLAS_THREAD_VARIABLES}


def job_environment(cores: int) -> dict:
    """The environment a batch job exports before its worker processes start: numba's pool and
    BLAS sized to the cores of one worker process, and CLUSTER_CONFIG."""
    return {"NUMBA_NUM_THREADS": str(cores), **worker_environment(cores), **dask_environment()}


_worker_cores: int | None = None  # set in each worker process by NumbaThreads


class NumbaThreads(WorkerPlugin):
    """One level of parallelism per worker process: numba gets the worker's cores. numba's
    thread count is per calling thread, so tasks apply it with use_worker_cores()."""

    def __init__(self, cores: int):
        self.cores = cores

    def setup(self, worker) -> None:
        global _worker_cores
        _worker_cores = self.cores


def use_worker_cores() -> None:
    """In a task: let numba use this worker's cores, no more (a no-op outside such workers)."""
    if _worker_cores is not None:
        import numba

        numba.set_num_threads(max(1, min(_worker_cores, numba.config.NUMBA_NUM_THREADS)))


def worker_count(client: Client) -> int:
    """The workers connected now, asked of the scheduler. The client's cached identity is not
    used: while the client reconnects it can hold a count without workers, and a plan made
    from it would differ from the one an uninterrupted run makes."""
    return max(len(client.nthreads()), 1)


def release(futures) -> None:
    """Drop this client's claim on futures, so that the scheduler forgets tasks nobody else
    needs. Not Client.cancel: the scheduler's cancel asserts that every dependent of a key is
    wanted by a client, and a task graph whose inner tasks no client holds (a split frame's)
    broke the client's connection to the scheduler (distributed 2026.8)."""
    for future in futures:
        future.release()


@contextlib.contextmanager
def _spawn_environment(variables: dict):
    """This process's environment with `variables` while worker processes start, then as it was.
    Dask gives a worker its pre-spawn environment, in which a variable already set in this
    process wins over Dask's configuration, and leaves that environment set here after
    starting workers: without this, an earlier cluster's trim threshold would be used."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update({name: str(value) for name, value in variables.items()})
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def local_client(workers: int | None = None, scheduler: str | None = None, cores: int | None = None):
    """A client on a running scheduler (scheduler address) or on a LocalCluster of worker
    processes sized to the machine (one Dask thread each; cores split between workers, unless
    cores per worker is given)."""
    import dask

    if scheduler:
        with Client(scheduler) as client:
            log.info("connected to scheduler %s (dashboard %s)", scheduler, client.dashboard_link)
            yield client
        return
    n_cores = os.cpu_count() or 1
    workers = workers or n_cores
    cores = cores or max(1, n_cores // workers)
    with dask.config.set(CLUSTER_CONFIG), _spawn_environment(WORKER_MALLOC):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                               env=worker_environment(cores))
    with cluster, Client(cluster) as client:
        client.register_plugin(NumbaThreads(cores))
        log.info("local cluster: %d worker(s) x %d core(s), dashboard %s", workers, cores, client.dashboard_link)
        yield client


@contextlib.contextmanager
def open_client(spec: Mapping | None = None):
    """A Dask client on the cluster the `cluster` section `spec` describes (None or {} means
    {kind: local}); the cluster is closed (its jobs cancelled) on exit. Returns once at least
    one worker is connected. Raises InputError naming the key (`cluster.<key>`) for a bad
    section, TimeoutError when no worker connects within start_timeout seconds."""
    kind, options = _kind(spec)
    if kind == "local":
        _check_keys(kind, options, {"workers"})
        workers = _positive_int(options, "workers") if "workers" in options else None
        with local_client(workers) as client:
            yield client
    elif kind == "synchronous":
        _check_keys(kind, options, set())
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            log.info("synchronous: one worker thread in this process, dashboard %s", client.dashboard_link)
            yield client
    elif kind == "address":
        _check_keys(kind, options, {"address", "start_timeout"})
        address = options.get("address")
        if not isinstance(address, str) or not address:
            raise InputError("the scheduler's address is needed, e.g. cluster: {kind: address, address: "
                             "'tcp://10.0.0.1:8786'}", path="cluster.address")
        timeout = _start_timeout(options)
        with local_client(scheduler=address) as client:
            _wait_for_a_worker(client, kind, timeout)
            yield client
    else:
        with _jobqueue_client(kind, options) as client:
            yield client


def job_script(spec: Mapping) -> str:
    """The job script a batch-queue cluster section would submit for each job, rendered without
    submitting anything (the scheduler address in it is this dry run's own)."""
    kind, options = _kind(spec)
    if kind not in JOBQUEUE_CLUSTERS:
        raise InputError(f"kind {kind} submits no job script; only {', '.join(JOBQUEUE_CLUSTERS)} do",
                         path="cluster.kind")
    _scaling(options)
    _start_timeout(options)
    cluster, _, _ = _jobqueue_cluster(kind, options)
    with cluster:
        return cluster.job_script()


def _kind(spec: Mapping | None) -> tuple[str, dict]:
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise InputError(f"must be a mapping with a kind, e.g. cluster: {{kind: local}}; got {spec!r}", path="cluster")
    options = dict(spec)
    kind = options.pop("kind", DEFAULT_KIND)
    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}", path="cluster.kind")
    return kind, options


def _check_keys(kind: str, options: dict, allowed: set) -> None:
    for key in options:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            known = (f"did you mean {close[0]!r}?" if close else f"its keys: {', '.join(sorted(allowed))}"
                     if allowed else "it takes no other key")
            raise InputError(f"unknown key for kind {kind} ({known})", path=f"cluster.{key}")


def _positive_int(options: dict, key: str, path: str = "cluster") -> int:
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"must be a whole number >= 1, got {value!r}", path=f"{path}.{key}")
    return value


def _start_timeout(options: dict) -> float:
    value = options.get("start_timeout", DEFAULT_START_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(f"must be a number of seconds > 0, got {value!r}", path="cluster.start_timeout")
    return float(value)


def _wait_for_a_worker(client: Client, kind: str, timeout: float, cluster=None) -> None:
    """Return once a worker is connected. A job whose submission failed (dask-jobqueue logs the
    queue's error) ends the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.wait_for_workers(1, timeout=min(1.0, max(deadline - time.monotonic(), 0.1)))
            return
        except TimeoutError:
            failed = [job for job in (cluster.workers.values() if cluster is not None else ()) if job.job_id is None]
            if failed:  # cluster.workers holds a job once its submission has returned; a job id means it was accepted
                for job in failed:  # dask-jobqueue leaves them "created", which closing the cluster asserts against
                    job.status = Status.failed
                raise RuntimeError(f"cluster.kind {kind}: submitting a worker job failed (the queue's error is "
                                   f"logged above); a dry run prints the job script to check") from None
            if time.monotonic() >= deadline:
                waiting = "the worker jobs may still be queued or failed to start (their logs: log_directory)" \
                    if cluster is not None else "the scheduler has no workers"
                raise TimeoutError(f"cluster.kind {kind}: no Dask worker connected within {timeout:g} s: {waiting}; "
                                   f"cluster.start_timeout sets how long to wait") from None


def _jobqueue_keys(cluster_cls) -> set:
    """Every keyword a dask-jobqueue cluster class and its job class take (theirs and their
    dask-jobqueue bases')."""
    from dask_jobqueue.core import Job, JobQueueCluster

    keys = set()
    for cls in (*cluster_cls.__mro__, *cluster_cls.job_cls.__mro__):
        if issubclass(cls, (JobQueueCluster, Job)) and "__init__" in vars(cls):
            keys.update(name for name, parameter in inspect.signature(cls.__init__).parameters.items()
                        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD))
    return keys - {"self", "scheduler"}


def _one_thread_job(job_cls):
    """dask-jobqueue's job class with one Dask thread per worker process (the cores of the
    process go to numba and BLAS instead)."""
    return type(job_cls.__name__, (job_cls,), {"worker_process_threads": 1, "__module__": __name__})


def _jobqueue_arguments(kind: str, options: dict):
    """(the dask-jobqueue class, its keyword arguments, worker processes per job, cores per
    worker process) of a batch-queue section, checked; nothing is started."""
    import dask
    import dask_jobqueue

    cluster_cls = getattr(dask_jobqueue, JOBQUEUE_CLUSTERS[kind])
    _check_keys(kind, options, _jobqueue_keys(cluster_cls) - set(JOBQUEUE_RESERVED_KEYS) | set(JOBQUEUE_OWN_KEYS))
    kwargs = {key: value for key, value in options.items() if key not in JOBQUEUE_OWN_KEYS}
    config = f"jobqueue.{kwargs.get('config_name', kind)}"
    layout = {key: kwargs.get(key, dask.config.get(f"{config}.{key}", None)) for key in ("cores", "processes")}
    if layout["processes"] is None:
        layout["processes"] = DEFAULT_PROCESSES
    if layout["cores"] is None:
        raise InputError(f"the cores of one job are needed, here or in ~/.config/dask/jobqueue.yaml ({EXAMPLE})",
                         path="cluster.cores")
    cores, processes = _positive_int(layout, "cores"), _positive_int(layout, "processes")
    if processes > cores:
        raise InputError(f"{processes} worker processes cannot share {cores} core(s) of a job",
                         path="cluster.processes")
    prologue = kwargs.get("job_script_prologue", dask.config.get(f"{config}.job-script-prologue", None)) or []
    if isinstance(prologue, str) or not all(isinstance(line, str) for line in prologue):
        raise InputError(f"must be a list of shell lines, got {prologue!r}", path="cluster.job_script_prologue")
    per_process = cores // processes
    exports = [f"export {name}={shlex.quote(value)}" for name, value in job_environment(per_process).items()]
    kwargs.update(cores=cores, processes=processes, job_script_prologue=[*prologue, *exports],
                  job_cls=_one_thread_job(cluster_cls.job_cls))
    return cluster_cls, kwargs, processes, per_process


def _jobqueue_cluster(kind: str, options: dict):
    """(the dask-jobqueue cluster of a section, worker processes per job, cores per worker
    process). Starts its scheduler in this process and no job."""
    cluster_cls, kwargs, processes, per_process = _jobqueue_arguments(kind, options)
    try:
        cluster = cluster_cls(**kwargs)
    except (ValueError, TypeError) as error:
        raise InputError(f"{cluster_cls.__name__} refused it: {error}", path="cluster") from error
    return cluster, processes, per_process


def check_spec(spec: Mapping | None) -> None:
    """Raise InputError (naming `cluster.<key>`) for what open_client would refuse in a
    section, without starting anything: keys, kinds, numbers, jobs or adapt."""
    kind, options = _kind(spec)
    if kind == "local":
        _check_keys(kind, options, {"workers"})
        if "workers" in options:
            _positive_int(options, "workers")
    elif kind == "synchronous":
        _check_keys(kind, options, set())
    elif kind == "address":
        _check_keys(kind, options, {"address", "start_timeout"})
        _start_timeout(options)
    else:
        _scaling(options)
        _start_timeout(options)
        _jobqueue_arguments(kind, options)


def _scaling(options: dict) -> dict:
    """cluster.scale/adapt arguments from the section's jobs or adapt."""
    if "jobs" in options and "adapt" in options:
        raise InputError("give jobs (a fixed number) or adapt (a range), not both", path="cluster.adapt")
    if "adapt" not in options:
        return {"jobs": _positive_int(options, "jobs") if "jobs" in options else DEFAULT_JOBS}
    adapt = options["adapt"]
    if not isinstance(adapt, Mapping) or "maximum_jobs" not in adapt:
        raise InputError(f"must be a mapping like {{minimum_jobs: 1, maximum_jobs: 8}}, got {adapt!r}",
                         path="cluster.adapt")
    for key in adapt:
        if key not in ("minimum_jobs", "maximum_jobs"):
            raise InputError("unknown key (adapt's keys: minimum_jobs, maximum_jobs)", path=f"cluster.adapt.{key}")
    adapt = {"minimum_jobs": DEFAULT_JOBS, **adapt}
    minimum, maximum = (_positive_int(adapt, key, "cluster.adapt") for key in ("minimum_jobs", "maximum_jobs"))
    if maximum < minimum:
        raise InputError(f"is below minimum_jobs ({minimum})", path="cluster.adapt.maximum_jobs")
    return {"minimum_jobs": minimum, "maximum_jobs": maximum}


@contextlib.contextmanager
def _jobqueue_client(kind: str, options: dict):
    scaling = _scaling(options)
    timeout = _start_timeout(options)
    cluster, processes, per_process = _jobqueue_cluster(kind, options)
    with cluster, Client(cluster) as client:
        client.register_plugin(NumbaThreads(per_process))
        if "jobs" in scaling:
            cluster.scale(jobs=scaling["jobs"])
            jobs = f"{scaling['jobs']} job(s)"
        else:
            cluster.adapt(**scaling)
            jobs = f"{scaling['minimum_jobs']} to {scaling['maximum_jobs']} job(s)"
        log.info("%s cluster: %s of %d worker process(es) x %d core(s), dashboard %s", kind, jobs, processes,
                 per_process, client.dashboard_link)
        _wait_for_a_worker(client, kind, timeout, cluster)
        yield client
