"""pipeline: Dask orchestration, the zarr descriptor store, configuration and the CLI of
quests-pipeline. Contains no formula: the numerics live in quests_core."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("quests-pipeline")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"  # console and run.log alike
