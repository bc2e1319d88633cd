"""Dask clusters: the one module that creates or connects to them."""

import contextlib
import logging
import os

from distributed import Client, LocalCluster, WorkerPlugin

log = logging.getLogger("quests_pipeline")

BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def worker_environment(cores: int) -> dict:
    """BLAS threads of a worker process = its cores (numba's are set by NumbaThreads: numba
    refuses a changed NUMBA_NUM_THREADS once it has started threads)."""
    return {name: str(cores) for name in BLAS_THREAD_VARIABLES}


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


@contextlib.contextmanager
def local_client(workers: int | None = None, scheduler: str | None = None):
    """A client on a running scheduler (scheduler address) or on a LocalCluster of worker
    processes sized to the machine (one Dask thread each; cores split between workers)."""
    if scheduler:
        with Client(scheduler) as client:
            log.info("connected to scheduler %s (dashboard %s)", scheduler, client.dashboard_link)
            yield client
        return
    n_cores = os.cpu_count() or 1
    workers = workers or n_cores
    cores = max(1, n_cores // workers)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      env=worker_environment(cores)) as cluster, Client(cluster) as client:
        client.register_plugin(NumbaThreads(cores))
        log.info("local cluster: %d worker(s) x %d core(s), dashboard %s", workers, cores, client.dashboard_link)
        yield client
