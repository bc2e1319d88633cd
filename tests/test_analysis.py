"""Distributed kernel sums and the reducer on a real LocalCluster: exact results equal the
in-memory quests_core ones for every chunking and worker count; per-frame aggregates; the
entropy/dh/overlap commands and their exports."""

import json

import numpy as np
import pytest
from ase.io import read, write
from distributed import Client, LocalCluster

from pipeline.analysis import dh_summary, entropy_summary
from pipeline.cli import main
from pipeline.ingest import IngestRequest, ingest
from pipeline.store import StoreParams
from quests_core import delta_entropy, diversity, entropy, get_descriptors
from structures import thermal_fcc_frames

PARAMS = StoreParams(k=32, cutoff=5.0, dtype="float64")
BANDWIDTHS = [0.015, 0.03]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis")
    write(root / "cold.extxyz", thermal_fcc_frames(8, 0.05, 1))
    write(root / "hot.extxyz", thermal_fcc_frames(6, 0.15, 2))
    return root


@pytest.fixture(scope="module")
def clients():
    clusters = {n: LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) for n in (1, 2)}
    handles = {n: Client(cluster) for n, cluster in clusters.items()}
    yield handles
    for n in handles:
        handles[n].close()
        clusters[n].close()


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("chunk_rows", [7, 1000, 10**6])
def test_exact_distributed_equals_in_memory(data, clients, tmp_path, workers, chunk_rows):
    client = clients[workers]
    block_rows = max(chunk_rows, 200)  # blocks are whole chunks: 7-row chunks give 196-row blocks
    cold = ingest(IngestRequest(paths=(data / "cold.extxyz",), params=PARAMS, chunk_rows=chunk_rows), tmp_path / "c.zarr",
                  client)
    hot = ingest(IngestRequest(paths=(data / "hot.extxyz",), params=PARAMS, chunk_rows=chunk_rows), tmp_path / "h.zarr",
                 client)
    x, y = get_descriptors(read(data / "cold.extxyz", index=":")), get_descriptors(read(data / "hot.extxyz", index=":"))

    summary = entropy_summary(client, cold, BANDWIDTHS, block_rows=block_rows)
    np.testing.assert_allclose(summary["entropy"], entropy(x, BANDWIDTHS), rtol=1e-12)
    np.testing.assert_allclose(summary["diversity"], diversity(x, BANDWIDTHS), rtol=1e-12)
    assert summary["n_environments"] == len(x)

    summary = dh_summary(client, hot, [cold], BANDWIDTHS, block_rows=block_rows)
    dh = delta_entropy(y, x, BANDWIDTHS)
    np.testing.assert_allclose(hot.group["results/dh/dh"][:], dh, rtol=1e-12)
    np.testing.assert_allclose(summary["dh_mean"], dh.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(summary["dh_max"], dh.max(axis=0), rtol=1e-12)
    np.testing.assert_allclose(summary["novelty"], (dh > 0).mean(axis=0))
    np.testing.assert_allclose(summary["overlap"], (dh < 1e-5).mean(axis=0))
    per_frame = dh.reshape(6, 108, 2)
    assert [f["frame"] for f in summary["frames"]] == list(range(6))
    np.testing.assert_allclose([f["dh_mean"] for f in summary["frames"]], per_frame.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose([f["dh_max"] for f in summary["frames"]], per_frame.max(axis=1), rtol=1e-12)
    np.testing.assert_allclose([f["novelty"] for f in summary["frames"]], (per_frame > 0).mean(axis=1))


def test_several_references_are_merged(data, clients, tmp_path):
    client = clients[2]
    stores = [ingest(IngestRequest(paths=(data / name,), params=PARAMS, chunk_rows=100), tmp_path / f"{name}.zarr", client)
              for name in ("cold.extxyz", "hot.extxyz")]
    x, y = (get_descriptors(read(data / name, index=":")) for name in ("cold.extxyz", "hot.extxyz"))
    summary = dh_summary(client, stores[1], stores, 0.015)
    # dH near 0 (self terms dominate): compare log p to rounding in absolute terms as well
    np.testing.assert_allclose(stores[1].group["results/dh/dh"][:, 0], delta_entropy(y, np.concatenate([x, y]), 0.015),
                               rtol=1e-12, atol=1e-13)
    assert summary["novelty"] == 0.0  # a dataset is never novel to a reference that contains it


def _scheduler(clients):
    return ["--scheduler", clients[2].scheduler.address]


def test_cli_entropy_and_dh_json(data, clients, tmp_path, capsys):
    x, y = (get_descriptors(read(data / name, index=":")) for name in ("cold.extxyz", "hot.extxyz"))
    assert main(["entropy", str(data / "cold.extxyz"), "-b", "0.015", "0.03", "-o", str(tmp_path / "h.json"),
                 *_scheduler(clients)]) == 0
    summary = json.loads((tmp_path / "h.json").read_text())
    for key in ("entropy", "diversity", "n_environments", "bandwidth", "method", "k", "cutoff"):
        assert key in summary
    np.testing.assert_allclose(summary["entropy"], entropy(x, BANDWIDTHS), rtol=1e-12)
    assert summary["bandwidth"] == BANDWIDTHS and summary["method"] == "exact" and summary["k"] == 32

    assert main(["dh", str(data / "hot.extxyz"), str(data / "cold.extxyz"), "-o", str(tmp_path / "dh.json"),
                 *_scheduler(clients)]) == 0
    summary = json.loads((tmp_path / "dh.json").read_text())
    dh = delta_entropy(y, x, 0.015)
    for key in ("dh_mean", "dh_max", "novelty", "overlap", "n_environments", "frames"):
        assert key in summary
    np.testing.assert_allclose(summary["dh_mean"], dh.mean(), rtol=1e-12)
    assert summary["n_environments"] == len(y) and len(summary["frames"]) == 6
    reused = sorted(p.name for p in tmp_path.glob("*.zarr"))
    assert len(reused) == 2  # one store per input file, beside the output

    assert main(["overlap", str(data / "hot.extxyz"), str(data / "cold.extxyz"), "--eps", "0.5", "-o",
                 str(tmp_path / "o.json"), *_scheduler(clients)]) == 0
    summary = json.loads((tmp_path / "o.json").read_text())
    assert summary["kind"] == "overlap" and summary["overlap"] == pytest.approx((dh < 0.5).mean())
    assert sorted(p.name for p in tmp_path.glob("*.zarr")) == reused  # stores reused, not made again


def test_exports_read_back_by_ase(data, clients, tmp_path):
    y = get_descriptors(read(data / "hot.extxyz", index=":"))
    x = get_descriptors(read(data / "cold.extxyz", index=":"))
    dh = delta_entropy(y, x, 0.015).reshape(6, 108)
    source = read(data / "hot.extxyz", index=":")
    assert main(["dh", str(data / "hot.extxyz"), str(data / "cold.extxyz"), "-o", str(tmp_path / "dh.extxyz"),
                 *_scheduler(clients)]) == 0
    frames = read(tmp_path / "dh.extxyz", index=":")
    assert len(frames) == 6
    for frame, original, expected in zip(frames, source, dh):  # ASE's extxyz keeps 8 decimals
        np.testing.assert_allclose(frame.arrays["dH"], expected, rtol=0, atol=1e-8)
        np.testing.assert_allclose(frame.positions, original.positions, rtol=0, atol=1e-8)
        np.testing.assert_allclose(frame.cell.array, original.cell.array)

    assert main(["dh", str(data / "hot.extxyz"), str(data / "cold.extxyz"), "-o", str(tmp_path / "dh.lammpstrj"),
                 *_scheduler(clients)]) == 0
    frames = read(tmp_path / "dh.lammpstrj", index=":", format="lammps-dump-text")
    assert len(frames) == 6
    for frame, original, expected in zip(frames, source, dh):
        np.testing.assert_allclose(frame.arrays["d_dH"], expected, rtol=1e-9)
        np.testing.assert_allclose(frame.get_scaled_positions(wrap=False), original.get_scaled_positions(wrap=False),
                                   atol=1e-8)

    # OVITO (a test extra) reads the same dump: one frame per snapshot, the dH column intact
    from ovito.io import import_file

    pipeline = import_file(str(tmp_path / "dh.lammpstrj"))
    assert pipeline.source.num_frames == 6
    for index, expected in enumerate(dh):
        particles = pipeline.compute(index).particles
        order = np.argsort(particles["Particle Identifier"][...])
        column = next(name for name in particles.keys() if name.lower() == "d_dh")  # OVITO lower-cases it
        np.testing.assert_allclose(np.asarray(particles[column][...])[order], expected, rtol=1e-9)


def test_approximate_distributed_dh_and_entropy(data, clients, tmp_path):
    # the adaptive approximate path on workers (index built once, replicated): every exact dH
    # inside its bracket, close to exact, and H inside its rigorous bounds
    client = clients[2]
    cold = ingest(IngestRequest(paths=(data / "cold.extxyz",), params=PARAMS, chunk_rows=100), tmp_path / "c.zarr",
                  client)
    hot = ingest(IngestRequest(paths=(data / "hot.extxyz",), params=PARAMS, chunk_rows=100), tmp_path / "h.zarr",
                 client)
    x, y = get_descriptors(read(data / "cold.extxyz", index=":")), get_descriptors(read(data / "hot.extxyz", index=":"))

    summary = dh_summary(client, hot, [cold], 0.015, method="approx", block_rows=200)
    exact = delta_entropy(y, x, 0.015)
    results = hot.group["results/dh"]
    dh, dh_min, dh_max, dh_error = (results[name][:, 0] for name in ("dh", "dh_min", "dh_max", "dh_error"))
    assert np.all((dh_min <= exact + 1e-9) & (exact <= dh_max + 1e-9))
    assert np.median(np.abs(dh - exact)) < 0.05
    assert summary["method"] == "approx" and summary["tolerance"] == 0.1
    assert summary["n_uncertain"] == int((4 * dh_error > 0.1).sum())
    assert summary["dh_error_mean"] == pytest.approx(dh_error.mean(), rel=1e-12)
    assert summary["dh_mean"] == pytest.approx(dh.mean(), rel=1e-12)

    summary = entropy_summary(client, cold, 0.015, method="approx", block_rows=200)
    slack = 1e-12  # the bounds meet the exact value where everything was summed
    low, high = summary["entropy_bounds"]
    assert low - slack <= entropy(x, 0.015) <= high + slack
    assert abs(summary["entropy"] - entropy(x, 0.015)) < 0.02
    low, high = summary["diversity_bounds"]
    assert low - slack <= diversity(x, 0.015) <= high + slack
