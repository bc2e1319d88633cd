"""Ingest into zarr stores on a real LocalCluster (processes): equality with in-memory
descriptors, chunk and worker invariance, domain splitting, append, refusal, resume after
SIGKILL, and bad inputs."""

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import zarr
from ase.build import bulk
from ase.io import read, write
from distributed import Client, LocalCluster

from lammps_dumps import dump_text
from pipeline import lammps, readers
from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.ingest import FrameTask, IngestRequest, RegionRows, _worker_store, compute_region, ingest, write_region
from pipeline.readers import FrameSelection
from pipeline.store import DOMAIN, FRAMES, DescriptorStore, Region, StoreParams
from quests_core import compute_descriptors

PARAMS = StoreParams(k=32, cutoff=5.0, dtype="float64")


def perturbed(size, seed, a=3.61, sigma=0.08, pbc=True):
    atoms = bulk("Cu", "fcc", a=a, cubic=True) * size
    atoms.positions += np.random.default_rng(seed).normal(0, sigma, atoms.positions.shape)
    atoms.pbc = pbc
    return atoms


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    md = [perturbed((3, 3, 3), seed) for seed in range(12)]
    write(root / "md.extxyz", md)
    slabs = [perturbed((3, 3, 4), 100 + seed, pbc=(True, True, False)) for seed in range(3)]
    write(root / "slab.extxyz", slabs)
    write(root / "big.extxyz", perturbed((8, 7, 6), 200))
    write(root / "big.traj", perturbed((8, 7, 6), 200))  # read through ASE: every piece reads it whole
    write(root / "cluster.extxyz", perturbed((7, 6, 6), 300, pbc=False))
    write(root / "thin.extxyz", perturbed((4, 4, 4), 400))  # two slab layers: each domain's halo is the other
    return root


@pytest.fixture(scope="module")
def clients():
    clusters = {n: LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
                for n in (1, 2)}
    handles = {n: Client(cluster) for n, cluster in clusters.items()}
    yield handles
    for n in handles:
        handles[n].close()
        clusters[n].close()


def expected(path):
    frames = read(path, index=":")
    return np.concatenate([compute_descriptors(f.positions, f.cell.array, f.pbc) for f in frames])


def stored(store):
    """Descriptors back in (frame, atom) order, whatever order the store holds them in."""
    order = np.lexsort((store.array("env_atom"), store.array("env_frame")))
    return store.read_descriptors()[order]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("chunk_rows", [7, 1000, 10**6])
def test_store_equals_in_memory_descriptors(data, clients, tmp_path, workers, chunk_rows):
    request = IngestRequest(paths=(data / "md.extxyz", data / "slab.extxyz"), params=PARAMS,
                            chunk_rows=chunk_rows, region_rows=500)
    store = ingest(request, tmp_path / "s.zarr", clients[workers])
    reference = np.concatenate([expected(data / "md.extxyz"), expected(data / "slab.extxyz")])
    assert store.complete and store.n_environments == len(reference)
    np.testing.assert_array_equal(store.read_descriptors(), reference)
    assert store.n_frames == 15
    np.testing.assert_array_equal(store.array("frame_n_atoms"), [108] * 12 + [144] * 3)
    np.testing.assert_array_equal(store.array("frame_pbc")[-1], [True, True, False])
    np.testing.assert_array_equal(store.array("env_number"), 29)


def test_default_chunks_are_one_task_so_tasks_share_no_chunk(data, clients, tmp_path):
    store = ingest(IngestRequest(paths=(data / "md.extxyz",), params=PARAMS, region_rows=500), tmp_path / "s.zarr",
                   clients[2])
    regions = store.regions()
    assert store.chunk_rows == 540  # five frames of 108 atoms: the first task's rows
    assert [(region.start, region.stop) for region in regions] == [(0, 540), (540, 1080), (1080, 1296)]
    np.testing.assert_array_equal(store.read_descriptors(), expected(data / "md.extxyz"))
    big = ingest(IngestRequest(paths=(data / "md.extxyz",), params=PARAMS, region_rows=10**6), tmp_path / "b.zarr",
                 clients[1])
    assert big.chunk_rows == 1080  # tasks of at least MIN_REGION_ROWS (1024): ten frames


@pytest.mark.parametrize("name,split_atoms,at_chunks", [("big.extxyz", 400, True), ("big.traj", 400, True),
                                                      ("cluster.extxyz", 400, True), ("thin.extxyz", 100, False)])
def test_split_frames_equal_unsplit(data, clients, tmp_path, name, split_atoms, at_chunks):
    """Domains are cut at chunk boundaries, or at layer boundaries where a chunk-aligned domain
    would touch every layer (thin: two layers, so each domain's halo is the other layer)."""
    request = IngestRequest(paths=(data / name,), params=PARAMS, chunk_rows=97, split_atoms=split_atoms)
    store = ingest(request, tmp_path / "s.zarr", clients[2])
    starts = [region.start for region in store.regions() if region.kind == DOMAIN]
    assert len(starts) >= 2
    assert all(start % 97 == 0 for start in starts) == at_chunks
    np.testing.assert_array_equal(stored(store), expected(data / name))
    positions = read(data / name).positions
    np.testing.assert_array_equal(store.array("env_position"), positions[store.array("env_atom")])


def test_split_frame_domains_end_with_halves_on_two_workers(data, clients, tmp_path):
    """Parts of at most split_atoms, a multiple of the workers, the last part of each worker cut
    in two: submitted in row order, the halves run last, so the workers finish close together."""
    split_atoms, chunk_rows = 400, 16
    request = IngestRequest(paths=(data / "big.extxyz",), params=PARAMS, chunk_rows=chunk_rows, split_atoms=split_atoms)
    sizes = {}
    for n_workers in (1, 2):
        store = ingest(request, tmp_path / f"{n_workers}.zarr", clients[n_workers])
        sizes[n_workers] = [region.n_rows for region in store.regions() if region.kind == DOMAIN]
        np.testing.assert_array_equal(stored(store), expected(data / "big.extxyz"))
    n_atoms = len(read(data / "big.extxyz"))  # 1344: 4 parts of 336
    assert sum(sizes[1]) == sum(sizes[2]) == n_atoms
    assert len(sizes[1]) == 4 and max(sizes[1]) - min(sizes[1]) <= chunk_rows
    assert len(sizes[2]) == 6
    np.testing.assert_allclose(sizes[2], [336, 336, 168, 168, 168, 168], atol=chunk_rows)


def tilted_dump_frame(ids_from: int = 1, id_step: int = 1) -> dict:
    """A triclinic frame of 384 atoms (Cu fcc, perturbed, sheared), ids_from, ids_from +
    id_step, ... shuffled, two types."""
    rng = np.random.default_rng(7)
    fractional = perturbed((6, 4, 4), 7).get_scaled_positions()  # 21.66 x 14.44 x 14.44 A, sheared below
    cell = np.array([[21.66, 0, 0], [1.8, 14.44, 0], [-1.2, 0.9, 14.44]])
    n_atoms = len(fractional)
    return dict(timestep=0, cell=cell, origin=np.array([-3.0, 1.5, 0.25]), fractional=fractional,
                ids=rng.permutation(n_atoms) * id_step + ids_from, types=rng.integers(1, 3, n_atoms))


@pytest.mark.parametrize("flags,pbc,ids_from,id_step", [("pp pp pp", [True, True, True], 1, 1),
                                                        ("pp pp ff", [True, True, False], 1, 1),
                                                        ("pp pp pp", [True, True, True], 10**6, 7)],
                         ids=["periodic", "slab", "sparse ids"])
def test_split_lammps_dump_equals_unsplit(clients, tmp_path, flags, pbc, ids_from, id_step):
    """A triclinic dump in scaled coordinates, ids shuffled (1..N, or with gaps from 10**6),
    two elements, periodic or a slab: read in pieces and split into domains, its rows hold each
    atom (its index: its place in id order) with the descriptors of the frame as the reader
    reads it whole."""
    frame = tilted_dump_frame(ids_from, id_step)
    n_atoms = len(frame["ids"])
    dump = tmp_path / "tilted.lammpstrj"
    dump.write_text(dump_text([frame], style="xs", flags=flags, triclinic=True))
    species = {1: "Cu", 2: "Ni"}
    whole = lammps.read_frame(dump, 0, species)
    assert whole.pbc.tolist() == pbc

    store = ingest(IngestRequest(paths=(dump,), params=PARAMS, species=species, chunk_rows=97, split_atoms=100),
                   tmp_path / "s.zarr", clients[2])
    assert sum(region.kind == DOMAIN for region in store.regions()) >= 2
    np.testing.assert_array_equal(stored(store), compute_descriptors(whole.positions, whole.cell, whole.pbc))
    atoms = store.array("env_atom")
    np.testing.assert_array_equal(store.array("env_position"), whole.positions[atoms])
    np.testing.assert_array_equal(store.array("env_number"), whole.numbers[atoms])
    assert sorted(atoms.tolist()) == list(range(n_atoms))
    layer_start = store.split_frames[0]["layer_start"]
    for first, stop in zip(layer_start[:-1], layer_start[1:]):  # slab-layer order, then atom order
        assert (np.diff(atoms[first:stop]) > 0).all()


def test_multicomponent_frame_above_split_atoms_is_computed_whole(clients, tmp_path):
    """Multicomponent descriptors are not split into domains: the frame is planned as one
    region of whole frames and computed whole, in id order."""
    frame = tilted_dump_frame()
    dump = tmp_path / "alloy.lammpstrj"
    dump.write_text(dump_text([frame], style="xs", triclinic=True))
    species = {1: "Cu", 2: "Ni"}
    whole = lammps.read_frame(dump, 0, species)
    params = StoreParams(k=32, cutoff=5.0, dtype="float64", species=(28, 29))
    store = ingest(IngestRequest(paths=(dump,), params=params, species=species, chunk_rows=97, split_atoms=100),
                   tmp_path / "s.zarr", clients[2])
    regions = store.regions()
    assert [region.kind for region in regions] == [FRAMES] and not store.split_frames
    np.testing.assert_array_equal(store.read_descriptors(), compute_descriptors(
        whole.positions, whole.cell, whole.pbc, species=whole.numbers, species_list=(28, 29)))
    np.testing.assert_array_equal(store.array("env_atom"), np.arange(len(whole)))


@pytest.mark.parametrize("where", ["apart", "adjacent"])
def test_an_id_twice_in_a_split_frame_is_refused(clients, tmp_path, capsys, where):
    """An id repeated in two pieces of the frame (first and last line) or in one piece."""
    frame = tilted_dump_frame()
    ids = frame["ids"]
    ids[-1 if where == "apart" else 1] = ids[0]
    dump = tmp_path / "repeated.lammpstrj"
    dump.write_text(dump_text([frame], style="xs", triclinic=True))
    output = tmp_path / "s.zarr"
    assert _run_cli(clients, dump, "-o", output, "--species", "1=Cu,2=Ni", "--split-atoms", "100") == 2
    error, = [line for line in capsys.readouterr().err.splitlines() if line.startswith("quests-pipeline: error: ")]
    assert error.endswith(f"repeated.lammpstrj, frame 0: atom id {ids[0]} appears more than once"), error
    assert not zarr.open_group(str(output), mode="r").attrs["complete"]


def test_frame_selection_and_float32(data, clients, tmp_path):
    request = IngestRequest(paths=(data / "md.extxyz",), params=StoreParams(32, 5.0, "float32"),
                            frames=FrameSelection.parse("2:9:3"))
    store = ingest(request, tmp_path / "s.zarr", clients[2])
    frames = read(data / "md.extxyz", index="2:9:3")
    reference = np.concatenate([compute_descriptors(f.positions, f.cell.array, f.pbc) for f in frames])
    assert store.descriptors.dtype == np.float32
    np.testing.assert_array_equal(store.read_descriptors(), reference.astype(np.float32))
    np.testing.assert_array_equal(store.array("frame_index"), [2, 5, 8])


def test_append_then_same_source_not_added_twice(data, clients, tmp_path):
    path = tmp_path / "s.zarr"
    ingest(IngestRequest(paths=(data / "md.extxyz",), params=PARAMS, chunk_rows=100), path, clients[2])
    store = ingest(IngestRequest(paths=(data / "slab.extxyz", data / "md.extxyz"), params=PARAMS, chunk_rows=100),
                   path, clients[2])
    reference = np.concatenate([expected(data / "md.extxyz"), expected(data / "slab.extxyz")])
    np.testing.assert_array_equal(store.read_descriptors(), reference)
    assert [Path(s["path"]).name for s in store.sources] == ["md.extxyz", "slab.extxyz"]


def _planned_store(path: Path, n_atoms: int) -> DescriptorStore:
    store = DescriptorStore.create(path, PARAMS, 10, reserve={"n_environments": n_atoms})
    store.add_frames(0, [0], [n_atoms], [0], [0])
    store.commit_plan()
    return store


def test_worker_store_handle_is_renewed_with_a_new_store_or_plan(tmp_path):
    """A worker reuses the store it opened only under the same token, its plan committed: a store
    made again at the same path, or grown by a new plan, is opened afresh (a stale handle would
    write past its old shape, or into the deleted store's metadata)."""
    path = tmp_path / "s.zarr"
    first = _planned_store(path, 30)
    kept = _worker_store(str(path), first.token)
    assert _worker_store(str(path), first.token) is kept
    shutil.rmtree(path)
    second = _planned_store(path, 30)
    assert second.token != first.token
    renewed = _worker_store(str(path), second.token)
    assert renewed is not kept and renewed.token == second.token
    second.begin_plan()
    second.add_frames(0, [0], [20], [0], [0])
    second.commit_plan()
    grown = _worker_store(str(path), second.token)
    assert grown is not renewed and grown.n_environments == 50
    grown.write_rows(40, {"env_atom": np.arange(10)})
    np.testing.assert_array_equal(DescriptorStore.open(path, allow_incomplete=True).array("env_atom")[40:], np.arange(10))


def test_compute_task_writes_its_rows_only_once_the_plan_is_committed(data, tmp_path):
    """A compute task hands its rows on (for its write task) while the store does not exist or
    its plan is not committed, arrays already grown or not; once committed, it writes them
    itself, and its write task passes on the same record."""
    path = tmp_path / "s.zarr"
    (ref,) = readers.scan(data / "md.extxyz", "extxyz", readers.FrameSelection(0, 1, 1))
    task = FrameTask(0, str(data / "md.extxyz"), "extxyz", None, ref, 0)
    region = Region(0, FRAMES, 0, ref.n_atoms, 0, 1)
    store_id = uuid.uuid4().hex
    planned = (store_id, ref.n_atoms)
    assert isinstance(compute_region(region, [task], PARAMS, str(path), planned), RegionRows)
    store = DescriptorStore.create(path, PARAMS, 10, store_id, reserve={"n_environments": ref.n_atoms, "n_frames": 1,
                                                                          "n_regions": 1})
    assert store.token == planned
    assert isinstance(compute_region(region, [task], PARAMS, str(path), planned), RegionRows)
    store.add_frames(0, [0], [ref.n_atoms], [ref.offset], [ref.size])
    store.add_regions([region])
    store.commit_plan()
    written = compute_region(region, [task], PARAMS, str(path), planned)
    assert not isinstance(written, RegionRows)
    assert write_region(str(path), planned, written) is written
    atoms = read(data / "md.extxyz", index=0)
    assert written[2] == []  # the region covers the store's every chunk: none is shared
    np.testing.assert_array_equal(DescriptorStore.open(path, allow_incomplete=True).read_descriptors(),
                                  compute_descriptors(atoms.positions, atoms.cell.array, atoms.pbc))


def test_parameter_mismatch_is_refused_and_nothing_written(data, clients, tmp_path):
    path = tmp_path / "s.zarr"
    ingest(IngestRequest(paths=(data / "md.extxyz",), params=PARAMS), path, clients[2])
    before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    for other in (StoreParams(12, 5.0, "float64"), StoreParams(32, 4.0, "float64"), StoreParams(32, 5.0, "float32"),
                  StoreParams(32, 5.0, "float64", (29,))):
        with pytest.raises(InputError, match="store was made with .* this run asks for"):
            ingest(IngestRequest(paths=(data / "slab.extxyz",), params=other), path, clients[2])
    after = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    assert after == before


def test_incomplete_store_is_refused_by_readers(data, tmp_path):
    path = tmp_path / "s.zarr"
    store = DescriptorStore.create(path, PARAMS, 100)
    store.begin_plan()
    store.add_frames(0, [0], [10], [-1], [-1])
    store.commit_plan([{"path": "x"}])
    with pytest.raises(InputError, match="store is incomplete"):
        DescriptorStore.open(path)
    assert DescriptorStore.open(path, allow_incomplete=True).n_environments == 10


def _store_arrays(path):
    group = zarr.open_group(str(path), mode="r")
    return {name: group[name][:] for name in group.array_keys()}


@pytest.mark.parametrize("kill_after_regions", [0, 3])
def test_sigkilled_ingest_resumes_to_identical_store(data, tmp_path, kill_after_regions):
    command = [sys.executable, "-m", "pipeline.cli", "descriptors", str(data / "md.extxyz"), str(data / "big.extxyz"),
               "--workers", "2", "--chunk-rows", "50", "--region-rows", "200", "--split-atoms", "500"]
    reference, resumed = tmp_path / "reference.zarr", tmp_path / "resumed.zarr"
    subprocess.run(command + ["-o", str(reference)], check=True, capture_output=True)

    process = subprocess.Popen(command + ["-o", str(resumed)], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if kill_after_regions == 0 and (resumed / "zarr.json").exists():
            break
        try:
            done = zarr.open_group(str(resumed), mode="r")["region_done"][:]
            if done.sum() >= kill_after_regions and not done.all():
                break
        except Exception:
            pass
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    if kill_after_regions:
        assert not zarr.open_group(str(resumed), mode="r").attrs["complete"]

    subprocess.run(command + ["-o", str(resumed)], check=True, capture_output=True)
    assert zarr.open_group(str(resumed), mode="r").attrs["complete"]
    want, got = _store_arrays(reference), _store_arrays(resumed)
    assert want.keys() == got.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_ingest_crashed_at_any_metadata_write_resumes_to_identical_store(data, clients, tmp_path, monkeypatch, caplog):
    """A crash in the client between any two metadata writes of the store (as a kill would
    leave it), then a rerun: the store ends identical to an uninterrupted one. Catches
    attribute updates that take several writes (zarr's attrs.update writes once per key), and
    a crash that breaks the client's link to the scheduler (a rerun planned while the client
    reconnects saw no workers and cut the split frame into other regions)."""
    request = IngestRequest(paths=(data / "md.extxyz", data / "big.extxyz"), params=PARAMS, chunk_rows=50,
                            region_rows=200, split_atoms=500)
    want = _store_arrays(ingest(request, tmp_path / "reference.zarr", clients[2]).path)
    set_value = zarr.storage.LocalStore.set
    crash = {"at": 0, "seen": 0}

    class Crash(BaseException):
        pass

    async def crashing_set(self, key, value):
        if key.endswith("zarr.json") and Path(str(self.root)).name == "resumed.zarr":
            crash["seen"] += 1
            if crash["seen"] == crash["at"]:
                raise Crash(key)
        await set_value(self, key, value)

    monkeypatch.setattr(zarr.storage.LocalStore, "set", crashing_set)
    crash["at"] = 10**9
    ingest(request, tmp_path / "resumed.zarr", clients[2])
    writes = crash["seen"]
    assert writes >= 5
    for at in range(1, writes + 1):
        resumed = tmp_path / "resumed.zarr"
        shutil.rmtree(resumed)
        crash.update(at=at, seen=0)
        with pytest.raises(Crash):
            ingest(request, resumed, clients[2])
        scheduler_errors = [r.getMessage() for r in caplog.records
                            if r.name.startswith("distributed") and r.levelno >= logging.ERROR]
        assert not scheduler_errors, f"crash at metadata write {at}"
        assert clients[2].status == "running"
        crash["at"] = 10**9
        got = _store_arrays(ingest(request, resumed, clients[2]).path)
        assert got.keys() == want.keys()
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"crash at metadata write {at}: {name}")


def _run_cli(clients, *args):
    return main(["descriptors", *map(str, args), "--scheduler", clients[2].scheduler.address])


def test_bad_inputs_exit_2_with_file_and_frame(data, clients, tmp_path, capsys):
    good = read(data / "md.extxyz", index=":")
    cases = []

    nan = [atoms.copy() for atoms in good[:3]]
    nan[1].positions[4, 0] = np.nan
    write(tmp_path / "nan.extxyz", nan)
    cases.append(("nan.extxyz", r"nan\.extxyz, frame 1: positions contain NaN or inf"))

    zero_cell = [atoms.copy() for atoms in good[:2]]
    zero_cell[1].cell[2] = 0.0
    write(tmp_path / "zero_cell.extxyz", zero_cell)
    cases.append(("zero_cell.extxyz", r"zero_cell\.extxyz, frame 1: .*cell vector 2 has zero length on a periodic axis"))

    (tmp_path / "empty_frame.extxyz").write_text((data / "md.extxyz").read_text() + '0\nLattice="3 0 0 0 3 0 0 0 3" pbc="T T T"\n')
    cases.append(("empty_frame.extxyz", r"empty_frame\.extxyz, frame 12: frame has no atoms"))

    text = (data / "md.extxyz").read_text().splitlines(keepends=True)
    (tmp_path / "truncated.extxyz").write_text("".join(text[: 110 * 2 + 50]))
    cases.append(("truncated.extxyz", r"truncated\.extxyz, frame 2: .*truncated"))

    (tmp_path / "mystery.bin").write_bytes(b"\x00\x01garbage\xff" * 10)
    cases.append(("mystery.bin", r"mystery\.bin: cannot tell the file format"))
    cases.append(("missing.extxyz", r"missing\.extxyz: no such file"))

    for name, message in cases:
        output = tmp_path / f"{name}.zarr"
        assert _run_cli(clients, tmp_path / name if name != "missing.extxyz" else tmp_path / name, "-o", output) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        errors = [line for line in lines if line.startswith("quests-pipeline: error: ")]
        assert len(errors) == 1 and lines[-1] == errors[0], lines
        assert re.search(message, errors[0]), errors[0]
        if (output / "zarr.json").exists():
            assert not zarr.open_group(str(output), mode="r").attrs["complete"]

    assert _run_cli(clients, data / "md.extxyz", "--format", "no-such-format", "-o", tmp_path / "f.zarr") == 2
    assert "unknown format 'no-such-format'" in capsys.readouterr().err

    dump = tmp_path / "two_types.lammpstrj"
    dump.write_text("".join(f"ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n2\nITEM: BOX BOUNDS pp pp pp\n"
                            "0 10\n0 10\n0 10\nITEM: ATOMS id type x y z\n1 1 1 1 1\n2 2 5 5 5\n" for step in range(3)))
    for options, message in (((), r"two_types\.lammpstrj: a LAMMPS dump names atom types, not elements"),
                             (("--species", "1=Cu"), r"two_types\.lammpstrj, frame 0: type 2 has no element")):
        output = tmp_path / f"lammps{len(options)}.zarr"
        assert _run_cli(clients, dump, "-o", output, *options) == 2
        error, = [line for line in capsys.readouterr().err.splitlines() if line.startswith("quests-pipeline: error: ")]
        assert re.search(message, error), error
        assert not (output / "zarr.json").exists() or not zarr.open_group(str(output), mode="r").attrs["complete"]


def test_skip_bad_reports_and_records(data, clients, tmp_path, caplog):
    frames = read(data / "md.extxyz", index=":4")
    frames[2].positions[0, 1] = np.inf
    write(tmp_path / "some_bad.extxyz", frames)
    assert _run_cli(clients, tmp_path / "some_bad.extxyz", "-o", tmp_path / "s.zarr", "--skip-bad") == 0
    store = DescriptorStore.open(tmp_path / "s.zarr")
    assert store.n_frames == 3
    np.testing.assert_array_equal(store.array("frame_index"), [0, 1, 3])
    assert store.skipped_frames == [{"path": str((tmp_path / "some_bad.extxyz").resolve()), "frame": 2,
                                     "reason": "positions contain NaN or inf (atom 0)"}]
    assert "skipped" in caplog.text and "frame 2" in caplog.text


def test_inspect_prints_everything(data, clients, tmp_path, capsys):
    assert _run_cli(clients, data / "md.extxyz", "-o", tmp_path / "s.zarr") == 0
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "s.zarr")]) == 0
    text = capsys.readouterr().out
    for expected_text in ("environments 1296", "frames       12", "k=32 cutoff=5.0 dtype=float64", "md.extxyz"):
        assert expected_text in text
    assert re.search(r"complete     True \((\d+)/\1 regions written\)", text), text


def test_store_readable_by_plain_zarr_and_xarray(data, clients, tmp_path):
    import xarray

    store = ingest(IngestRequest(paths=(data / "md.extxyz",), params=PARAMS, chunk_rows=100), tmp_path / "s.zarr",
                   clients[2])
    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    assert group.attrs["format"] == "quests-store/2" and group.attrs["complete"]
    assert group.attrs["descriptor"] == {"k": 32, "cutoff": 5.0, "dtype": "float64", "species": None}
    assert {"quests-pipeline", "numpy", "numba", "zarr", "ase"} <= set(group.attrs["versions"])
    source = group.attrs["sources"][0]
    assert source["size"] == (data / "md.extxyz").stat().st_size and len(source["sha256"]) == 64
    dataset = xarray.open_zarr(str(tmp_path / "s.zarr"), consolidated=False)
    assert dataset["descriptors"].dims == ("environment", "feature")
    assert dataset["frame_cell"].dims == ("frame", "vector", "xyz")
    np.testing.assert_array_equal(dataset["descriptors"].values, store.read_descriptors())


def test_back_to_back_ingests_into_stores_of_the_same_name(data, clients, tmp_path):
    # task keys once named only the store's file name and region: the second ingest could be
    # handed the first one's finished tasks (a complete store of NaNs) or wait forever
    for folder in ("a", "b", "c"):
        store = ingest(IngestRequest(paths=(data / "md.extxyz",), params=PARAMS, chunk_rows=7, region_rows=500),
                       tmp_path / folder / "s.zarr", clients[1])
        assert store.complete
        np.testing.assert_array_equal(store.read_descriptors(), expected(data / "md.extxyz"))
