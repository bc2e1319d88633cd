"""ChunkFileStore: large chunk files written with O_DIRECT, read back as written."""

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import zarr

from pipeline import store as store_module
from pipeline.store import DIRECT_WRITE_BYTES, ChunkFileStore

ROWS, WIDTH = 5000, 63
CHUNK_ROWS = 2101  # 1,058,904 B per chunk: above DIRECT_WRITE_BYTES, not a multiple of the 4096 B alignment


def write_array(root: Path, rows: int = ROWS) -> tuple[ChunkFileStore, np.ndarray]:
    values = np.random.default_rng(0).normal(size=(rows, WIDTH))
    chunk_store = ChunkFileStore(root)
    group = zarr.open_group(store=chunk_store, mode="w")
    array = group.create_array("x", shape=values.shape, chunks=(CHUNK_ROWS, WIDTH), dtype="float64", compressors=None)
    array[:] = values
    return chunk_store, values


def files_under(root: Path) -> list[Path]:
    return [Path(top) / name for top, _, names in os.walk(root) for name in names]


def supports_direct_io(directory: Path) -> bool:
    probe = directory / "probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644))
    except OSError:
        return False
    probe.unlink()
    return True


def test_large_chunks_are_written_direct_and_read_back_exactly(tmp_path):
    assert CHUNK_ROWS * WIDTH * 8 >= DIRECT_WRITE_BYTES
    chunk_store, values = write_array(tmp_path / "s.zarr")
    assert chunk_store.direct_writes == supports_direct_io(tmp_path)
    np.testing.assert_array_equal(zarr.open_group(str(tmp_path / "s.zarr"), mode="r")["x"][:], values)
    chunks = [path for path in files_under(tmp_path / "s.zarr" / "x" / "c")]
    assert len(chunks) == 3
    assert {path.stat().st_size for path in chunks} == {CHUNK_ROWS * WIDTH * 8}  # the alignment padding is cut off
    assert not [path for path in files_under(tmp_path) if path.name.endswith(".partial")]


def test_a_file_system_refusing_o_direct_gets_buffered_writes(tmp_path, monkeypatch):
    """As tmpfs before Linux 6.6 and some network file systems do: open fails with EINVAL."""
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(store_module.os, "open", refusing_open)
    chunk_store, values = write_array(tmp_path / "s.zarr")
    assert not chunk_store.direct_writes
    np.testing.assert_array_equal(zarr.open_group(str(tmp_path / "s.zarr"), mode="r")["x"][:], values)
    assert not [path for path in files_under(tmp_path) if path.name.endswith(".partial")]


def test_a_failed_direct_write_raises_and_leaves_no_file(tmp_path, monkeypatch):
    if not supports_direct_io(tmp_path):
        pytest.fail(f"{tmp_path} does not take O_DIRECT: this test needs a file system that does")

    def full_disk(handle, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_array(tmp_path / "s.zarr", rows=CHUNK_ROWS)  # one chunk: no other write still running after the raise
    assert not [path for path in files_under(tmp_path / "s.zarr") if "/c/" in str(path)]


def test_a_short_direct_write_raises_and_leaves_no_file(tmp_path, monkeypatch):
    """A write that takes fewer bytes than asked (a full disk can do that) must not be followed
    by a write at an unaligned offset, nor leave a chunk file behind."""
    if not supports_direct_io(tmp_path):
        pytest.fail(f"{tmp_path} does not take O_DIRECT: this test needs a file system that does")
    real_write = os.write
    monkeypatch.setattr(store_module.os, "write", lambda handle, data: real_write(handle, data[:4096]))
    with pytest.raises(OSError, match="4096 of"):
        write_array(tmp_path / "s.zarr", rows=CHUNK_ROWS)
    assert not [path for path in files_under(tmp_path / "s.zarr") if "/c/" in str(path)]


def test_row_pieces_in_any_order_and_batches_land_where_they_belong(tmp_path):
    """Regions hand the client the rows they share a chunk with a neighbour, in whatever
    order regions finish; joined, batched and written in rounds, every row ends where it
    belongs, and rows no piece covered keep the fill value."""
    from pipeline.store import DescriptorStore, StoreParams

    rng = np.random.default_rng(3)
    params = StoreParams(k=4, cutoff=4.0, dtype="float64")
    n_rows, chunk_rows = 100, 7
    want = {"descriptors": rng.normal(size=(n_rows, params.width)), "env_atom": np.arange(n_rows, dtype=np.int64) * 3,
            "env_position": rng.normal(size=(n_rows, 3))}
    for trial in range(12):
        store = DescriptorStore.create(tmp_path / f"s{trial}.zarr", params, chunk_rows, reserve={"n_environments": n_rows})
        edges = np.unique(np.concatenate([[0, n_rows], rng.integers(1, n_rows, size=rng.integers(1, 30))]))
        pieces = [(int(a), {name: values[a:b] for name, values in want.items()}) for a, b in zip(edges[:-1], edges[1:])]
        missing = pieces.pop(int(rng.integers(len(pieces)))) if trial % 3 == 0 else None
        order = rng.permutation(len(pieces))
        for batch in np.array_split(order, rng.integers(1, 4)):
            store.write_row_pieces([pieces[i] for i in batch])
        for name, values in want.items():
            got = store.array(name)[:]
            if missing is not None:
                start, columns = missing
                hole = slice(start, start + len(columns[name]))
                fill = np.nan if got.dtype.kind == "f" else -1
                np.testing.assert_array_equal(got[hole], np.full_like(got[hole], fill), err_msg=f"trial {trial}: {name}")
                got[hole] = values[hole]
            np.testing.assert_array_equal(got, values, err_msg=f"trial {trial}: {name}")


def document(metadata) -> bytes:
    from zarr.core.buffer import default_buffer_prototype

    return metadata.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes()


def test_a_created_store_is_bound_to_the_documents_it_wrote(tmp_path):
    """create writes zarr's documents itself and binds the store to the metadata it made:
    each array as plain zarr reads it from disk has that metadata, the attributes match, and
    what is written through the new store reads back from a fresh open."""
    from pipeline.store import DescriptorStore, StoreParams

    params = StoreParams(k=3, cutoff=4.5, dtype="float32", species=(28, 29))
    path = tmp_path / "s.zarr"
    store = DescriptorStore.create(path, params, 4, "abc", reserve={"n_environments": 10, "n_frames": 2, "n_regions": 1})
    assert not path.with_name("s.zarr.creating").exists()
    on_disk = zarr.open_group(str(path), mode="r")
    assert dict(on_disk.attrs) == dict(store.group.attrs) and on_disk.attrs["store_id"] == "abc"
    assert sorted(name for name, _ in on_disk.arrays()) == sorted(store._handles)
    for name, array in on_disk.arrays():  # as documents: a NaN fill value is unequal to itself
        assert document(array.metadata) == document(store._handle(name).metadata), name
    assert on_disk["descriptors"].shape == (10, params.width) and on_disk["descriptors"].dtype == np.float32
    rows = np.arange(10 * params.width, dtype=np.float32).reshape(10, params.width)
    store.add_frames(0, [0, 1], [6, 4], [0, 100], [100, 80])
    store.commit_plan([{"path": "x"}])
    assert store.write_rows(0, {"descriptors": rows}) == []
    reopened = DescriptorStore.open(path, allow_incomplete=True)
    np.testing.assert_array_equal(reopened.read_descriptors(), rows)
    np.testing.assert_array_equal(reopened.array("frame_start"), [0, 6])
    assert reopened.params == params and reopened.sources == [{"path": "x"}] and reopened.committed_environments == 10
