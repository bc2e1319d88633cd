"""Dask clusters: the one module that creates or connects to them."""

import contextlib
import logging
import os

from distributed import Client, LocalCluster

log = logging.getLogger("quests_pipeline")

THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def worker_environment(cores: int) -> dict:
    """One level of parallelism per worker process: numba and BLAS get the worker's cores."""
    return {name: str(cores) for name in THREAD_VARIABLES}


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
        log.info("local cluster: %d worker(s) x %d core(s), dashboard %s", workers, cores, client.dashboard_link)
        yield client
