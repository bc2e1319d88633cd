"""The dataset-tool commands end to end: small generated datasets, stores ingested by the
`descriptors` command, tools run on a real LocalCluster of worker processes (through
--scheduler), results compared with quests_core called in this process, and bad input
answered with one line and exit code 2."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read, write
from distributed import LocalCluster

import quests_core
from pipeline.cli import main
from pipeline.store import DescriptorStore, StoreParams

H = 0.015


def cells(n_structures, seed, element="Cu", lattice=3.61):
    """Small FCC cells (8 or 16 atoms), strained and displaced, with EMT energies and forces
    (properties a compressed extxyz must keep)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_structures):
        atoms = bulk(element, "fcc", a=lattice * (1 + rng.uniform(-0.02, 0.02)), cubic=True).repeat(
            [(1, 1, 2), (1, 2, 2)][rng.integers(2)])
        atoms.positions += rng.normal(0.0, rng.uniform(0.03, 0.12), atoms.positions.shape)
        atoms.calc = EMT()
        atoms.get_forces()
        frames.append(atoms)
    return frames


@pytest.fixture(scope="module")
def scheduler():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def data(tmp_path_factory, scheduler):
    """data.extxyz (14 Cu cells) and ref.extxyz (3 Ni cells), and their stores."""
    root = tmp_path_factory.mktemp("tools")
    write(root / "data.extxyz", cells(14, seed=1))
    write(root / "ref.extxyz", cells(3, seed=2, element="Ni", lattice=3.52))
    for name in ("data", "ref"):
        assert main(["descriptors", str(root / f"{name}.extxyz"), "-o", str(root / f"{name}.zarr"),
                     "--scheduler", scheduler]) == 0
    return root


@pytest.fixture(scope="module")
def arrays(data):
    """(descriptors, atoms per frame) of data.zarr and the descriptors of ref.zarr."""
    store = DescriptorStore.open(data / "data.zarr")
    return store.read_descriptors(), store.array("frame_n_atoms"), DescriptorStore.open(data / "ref.zarr").read_descriptors()


def run_json(capsys, argv):
    """The JSON summary a command prints (after any 'wrote PLOT' line)."""
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out[out.index("{"):])


# ---------------------------------------------------------------- compress

def test_compress_json_is_quests_core_msc(data, arrays, capsys):
    x, n_atoms, _ = arrays
    result = run_json(capsys, ["compress", str(data / "data.zarr"), "-s", "5"])
    expected = quests_core.msc(x, n_atoms, 5, H)
    assert result["indices"] == expected.tolist() and result["method"] == "msc" and result["size"] == 5
    summary = quests_core.compression_summary(x, n_atoms, expected, H)
    assert result["summary"]["entropy"] == pytest.approx(summary.entropy, rel=1e-12)
    assert result["summary"]["diversity"] == pytest.approx(summary.diversity, rel=1e-12)
    assert result["summary"]["overlap"] == pytest.approx(summary.overlap)
    assert (result["summary"]["n_structures"], result["summary"]["original_structures"]) == (5, 14)
    assert result["summary"]["original_environments"] == len(x)


def test_compress_fraction_methods_and_reference(data, arrays, capsys):
    x, n_atoms, reference = arrays
    half = run_json(capsys, ["compress", str(data / "data.zarr")])  # default: half of the structures
    assert len(half["indices"]) == 7
    for method in ("fps", "mean-fps", "k-means", "random"):
        result = run_json(capsys, ["compress", str(data / "data.zarr"), "-f", "0.25", "-m", method, "--seed", "4"])
        assert result["indices"] == quests_core.compress(x, n_atoms, 4, method, H, seed=4).tolist()
    conditional = run_json(capsys, ["compress", str(data / "data.zarr"), "-s", "4", "-r", str(data / "ref.zarr")])
    assert conditional["indices"] == quests_core.msc(x, n_atoms, 4, H, reference=reference).tolist()
    assert conditional["references"] == [str(data / "ref.zarr")]


def test_compress_extxyz_copies_the_selected_frames(data, scheduler, tmp_path):
    output = tmp_path / "selected.extxyz"
    assert main(["compress", str(data / "data.extxyz"), "-s", "4", "-m", "fps", "-o", str(output),
                 "--scheduler", scheduler]) == 0  # a structure file: ingested beside the output
    selection = tmp_path / "selected.json"
    assert main(["compress", str(data / "data.extxyz"), "-s", "4", "-m", "fps", "-o", str(selection),
                 "--scheduler", scheduler]) == 0
    indices = json.loads(selection.read_text())["indices"]
    original, selected = read(data / "data.extxyz", ":"), read(output, ":")
    assert len(selected) == 4
    for index, atoms in zip(indices, selected):
        np.testing.assert_array_equal(atoms.positions, original[index].positions)
        np.testing.assert_array_equal(atoms.get_forces(), original[index].get_forces())
        assert atoms.get_potential_energy() == original[index].get_potential_energy()


def test_compress_extxyz_rebuilds_frames_from_other_formats(data, scheduler, tmp_path):
    trajectory = tmp_path / "data.traj"
    write(trajectory, read(data / "data.extxyz", ":"))
    output = tmp_path / "selected.extxyz"
    assert main(["compress", str(trajectory), "-s", "3", "-o", str(output), "--scheduler", scheduler]) == 0
    store = DescriptorStore.open(next(tmp_path.glob("data.traj.*.zarr")))  # ingested beside the output
    indices = quests_core.msc(store.read_descriptors(), store.array("frame_n_atoms"), 3, H)
    original, selected = read(trajectory, ":"), read(output, ":")
    for index, atoms in zip(indices, selected):
        np.testing.assert_allclose(atoms.positions, original[index].positions, atol=1e-8)
        np.testing.assert_array_equal(atoms.numbers, original[index].numbers)
        np.testing.assert_allclose(atoms.cell.array, original[index].cell.array, atol=1e-8)
        assert atoms.calc is None  # geometry only


def test_compress_refuses_to_copy_from_a_changed_file(data, scheduler, tmp_path, capsys):
    source = tmp_path / "data.extxyz"
    source.write_bytes((data / "data.extxyz").read_bytes())
    assert main(["descriptors", str(source), "-o", str(tmp_path / "copy.zarr"), "--scheduler", scheduler]) == 0
    with open(source, "a") as handle:
        handle.write("\n")
    capsys.readouterr()
    assert main(["compress", str(tmp_path / "copy.zarr"), "-s", "2", "-o", str(tmp_path / "out.extxyz")]) == 2
    assert "data.extxyz: changed since its descriptors were computed" in capsys.readouterr().err
    assert not (tmp_path / "out.extxyz").exists()


# ---------------------------------------------------------------- sampling

def test_learning_curve_on_the_cluster_equals_in_process(data, arrays, scheduler, tmp_path, capsys):
    x, _, _ = arrays
    plot = tmp_path / "curve.png"
    summary = run_json(capsys, ["learning-curve", str(data / "data.zarr"), "-f", "0.3", "1.0", "--runs", "3",
                                "--seed", "7", "-b", "0.015", "0.05", "--plot", str(plot), "--scheduler", scheduler])
    expected = quests_core.learning_curve(x, [0.3, 1.0], 3, [H, 0.05], seed=7)
    assert summary["kind"] == "learning_curve" and summary["n_environments"] == len(x)
    for point, sampled in zip(summary["points"], expected):
        assert point["sample_size"] == sampled.sample_size
        np.testing.assert_allclose(point["entropies"], sampled.entropies, rtol=1e-12)
        np.testing.assert_allclose(point["entropy_mean"], sampled.mean, rtol=1e-12)
        np.testing.assert_allclose(point["entropy_std"], sampled.std, atol=1e-12)
    np.testing.assert_allclose(summary["points"][1]["entropy_mean"], quests_core.entropy(x, [H, 0.05]), rtol=1e-12)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_entropy_sampler_on_the_cluster_equals_in_process(data, arrays, scheduler, capsys):
    x, _, _ = arrays
    summary = run_json(capsys, ["entropy-sampler", str(data / "data.zarr"), "-s", "50", "--runs", "4", "--replace",
                                "--scheduler", scheduler])
    expected = quests_core.entropy_sampler(x, 50, 4, H, seed=0, replace=True)
    np.testing.assert_allclose(summary["entropies"], expected.entropies, rtol=1e-12)
    assert summary["entropy_mean"] == pytest.approx(expected.mean, rel=1e-12)
    assert summary["max_entropy"] == pytest.approx(np.log(50))


# ---------------------------------------------------------------- bandwidth, trajectory, gap

def test_bandwidth_from_a_volume_and_from_a_dataset(data, capsys):
    assert run_json(capsys, ["bandwidth", "11.8"])["bandwidth"] == quests_core.bandwidth_from_volume(11.8)
    frames = read(data / "data.extxyz", ":")
    volume = np.mean([atoms.get_volume() / len(atoms) for atoms in frames])
    summary = run_json(capsys, ["bandwidth", str(data / "data.zarr")])
    assert summary["volume_per_atom"] == pytest.approx(volume, rel=1e-12)
    assert summary["bandwidth"] == pytest.approx(quests_core.bandwidth_from_volume(volume), rel=1e-12)


def test_trajectory_self_and_reference_dh(data, arrays, scheduler, tmp_path, capsys):
    x, n_atoms, reference = arrays
    summary = run_json(capsys, ["trajectory", str(data / "data.zarr"), str(data / "ref.zarr"), "--scheduler", scheduler])
    self_dh = quests_core.structure_delta_entropy(x, n_atoms, H)
    against = quests_core.delta_entropy(x, reference, H)
    starts = np.cumsum(n_atoms) - n_atoms
    assert [frame["frame"] for frame in summary["frames"]] == list(range(14))
    for frame, start, n in zip(summary["frames"], starts, n_atoms):
        rows = slice(start, start + n)
        assert frame["dh_self_mean"] == pytest.approx(self_dh[rows].mean(), rel=1e-10, abs=1e-14)
        assert frame["dh_self_max"] == pytest.approx(self_dh[rows].max(), rel=1e-10, abs=1e-14)
        assert frame["entropy"] == pytest.approx(quests_core.entropy(x[rows], H), rel=1e-10)
        assert frame["dh_mean"] == pytest.approx(against[rows].mean(), rel=1e-10)
    output = tmp_path / "trajectory.extxyz"
    assert main(["trajectory", str(data / "data.zarr"), str(data / "ref.zarr"), "-o", str(output),
                 "--scheduler", scheduler]) == 0
    frames = read(output, ":")  # extxyz holds 8 decimals
    np.testing.assert_allclose(np.concatenate([atoms.arrays["dH_self"] for atoms in frames]), self_dh, atol=1e-8)
    np.testing.assert_allclose(np.concatenate([atoms.arrays["dH"] for atoms in frames]), against, atol=1e-8)


def test_information_gap_of_a_compressed_selection_and_of_a_dataset(data, arrays, tmp_path, capsys):
    x, n_atoms, reference = arrays
    selection = tmp_path / "selection.json"
    assert main(["compress", str(data / "data.zarr"), "-s", "4", "-o", str(selection)]) == 0
    indices = json.loads(selection.read_text())["indices"]
    summary = run_json(capsys, ["information-gap", str(data / "data.zarr"), "--indices", str(selection)])
    starts = np.cumsum(n_atoms) - n_atoms
    subset = np.concatenate([x[starts[i]:starts[i] + n_atoms[i]] for i in indices])
    expected = quests_core.information_gap(x, subset, H)
    for name in ("entropy", "subset_entropy", "gap", "novelty", "overlap", "dh_max"):
        assert summary[name] == pytest.approx(getattr(expected, name), rel=1e-12), name
    assert summary["subset_environments"] == len(subset)
    compressed = json.loads(selection.read_text())["summary"]
    assert summary["subset_entropy"] == pytest.approx(compressed["entropy"], rel=1e-12)
    assert summary["overlap"] == pytest.approx(compressed["overlap"])
    other = run_json(capsys, ["information-gap", str(data / "data.zarr"), str(data / "ref.zarr")])
    against_nickel = quests_core.information_gap(x, reference, H)
    assert other["subset_environments"] == len(reference)
    assert other["novelty"] == pytest.approx(against_nickel.novelty) and other["novelty"] > 0.9  # Ni misses most Cu


# ---------------------------------------------------------------- errors

@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    store = DescriptorStore.create(tmp_path_factory.mktemp("empty") / "empty.zarr",
                                   StoreParams(k=32, cutoff=5.0, dtype="float64"), chunk_rows=64)
    store.mark_complete()
    return store.path


@pytest.mark.parametrize(("arguments", "message"), [
    (["compress", "{data}", "-s", "15"], r"size 15 is larger than the dataset \(14 structures\)"),
    (["compress", "{data}", "-f", "0"], r"fraction must be in \(0, 1\], got 0.0"),
    (["compress", "{data}", "-f", "1.5"], r"fraction must be in \(0, 1\], got 1.5"),
    (["compress", "{data}", "-s", "3", "-m", "kmeans"], "unknown compression method 'kmeans'; choose one of msc, fps"),
    (["compress", "{data}", "-s", "3", "-m", "fps", "-r", "{data}"], "method 'fps' takes none"),
    (["compress", "{data}", "-s", "3", "--method", "approx"], "compress computes exact kernel sums"),
    (["compress", "{empty}", "-s", "1"], "empty.zarr: the dataset has no environments"),
    (["learning-curve", "{data}", "-f", "0.5", "2"], r"fraction must be in \(0, 1\], got 2.0"),
    (["entropy-sampler", "{data}", "-s", "100000"], r"sample size 100000 is larger than the dataset \(\d+ environments\)"),
    (["entropy-sampler", "{empty}"], "the dataset has no environments"),
    (["bandwidth", "-2"], "volume must be > 0"),
    (["bandwidth", "{empty}"], "no structures to take a volume from"),
    (["information-gap", "{data}"], "give either SUBSET or --indices"),
    (["trajectory", "{data}", "-o", "out.lammpstrj"], "the output must end in one of .json, .xyz, .extxyz"),
    (["compress", "{missing}", "-s", "1"], "missing.extxyz: no such file"),
])
def test_bad_input_is_one_line_and_exit_code_2(data, empty_store, scheduler, capsys, arguments, message):
    paths = {"data": str(data / "data.zarr"), "empty": str(empty_store), "missing": str(data / "missing.extxyz")}
    argv = [argument.format(**paths) for argument in arguments] + ["--scheduler", scheduler] * (
        arguments[0] in ("learning-curve", "entropy-sampler"))
    capsys.readouterr()
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("quests-pipeline: error: ")
    assert re.search(message, error), error


def test_an_empty_structure_file_exits_2_from_the_shell(tmp_path):
    empty = tmp_path / "empty.extxyz"
    empty.write_text("")
    # in tmp_path: without -o, a structure file is ingested into the working directory
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "compress", str(empty), "--format", "extxyz",
                             "-s", "1", "--workers", "1"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("quests-pipeline: error:")]
    assert errors == [f"quests-pipeline: error: {empty}: no frames: the file is empty"]
