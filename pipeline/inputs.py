"""Analysis inputs: a descriptor store as it is, or a structure file ingested into a store
beside the output (named by file and settings, so the next call with the same settings
reuses it and computes nothing)."""

import hashlib
import json
import logging
from pathlib import Path

from .errors import InputError
from .ingest import IngestRequest, ingest
from .store import DescriptorStore

log = logging.getLogger("quests_pipeline")


def is_store(path: Path) -> bool:
    return (Path(path) / "zarr.json").is_file()


def open_or_ingest(path: Path, request: IngestRequest, store_dir: Path, client) -> DescriptorStore:
    path = Path(path)
    if is_store(path):
        return DescriptorStore.open(path, mode="r+")
    settings = json.dumps([request.params.to_attrs(), request.fmt, str(request.frames), request.species], sort_keys=True,
                          default=str)
    store_path = Path(store_dir) / f"{path.name}.{hashlib.sha256(settings.encode()).hexdigest()[:10]}.zarr"
    if is_store(store_path) and DescriptorStore.open(store_path, allow_incomplete=True).complete:
        log.info("%s: reusing descriptors in %s", path, store_path)
    return ingest(IngestRequest(paths=(path,), params=request.params, fmt=request.fmt, frames=request.frames,
                                species=request.species, chunk_rows=request.chunk_rows), store_path, client)


def check_comparable(query: DescriptorStore, references: list[DescriptorStore]) -> None:
    for reference in references:
        if reference.params.k != query.params.k or reference.params.cutoff != query.params.cutoff \
                or reference.params.species != query.params.species:
            raise InputError(f"descriptors of {reference.path} ({reference.params.to_attrs()}) and {query.path} "
                             f"({query.params.to_attrs()}) are not comparable")
