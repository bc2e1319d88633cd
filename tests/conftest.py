"""Shared structures and descriptors, built once per test session."""

import numpy as np
import pytest

import quests_core
import structures


def descriptors_of(atoms, k=32, cutoff=5.0):
    """quests_core descriptors of one ase.Atoms through the array API (no adapter)."""
    return quests_core.compute_descriptors(atoms.positions, atoms.cell.array, atoms.pbc, k=k, cutoff=cutoff)


def gemm_tolerance(y, x, bandwidth, dtype):
    """Rounding bound of distances obtained from dot products, in units of log p.

    |y - x|^2 = |y_c|^2 + |x_c|^2 - 2 y_c.x_c for rows centred on a tile mean c loses about
    n_features * eps * (|y_c| + |x_c|)^2; log p moves by that over 2h^2. |y_c| + |x_c| is
    bounded via the distance to the mean of x (a tile mean is within its reach of it); a
    factor 4 is the margin. Any real defect (a lost tile, a wrong term) is orders larger.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    centre = x.mean(axis=0)
    reach = np.linalg.norm(y - centre, axis=1).max() + 2 * np.linalg.norm(x - centre, axis=1).max()
    h = np.atleast_1d(bandwidth)
    tolerance = 4 * x.shape[1] * np.finfo(dtype).eps * reach**2 / (2 * h**2)
    return tolerance[0] if np.ndim(bandwidth) == 0 else tolerance


@pytest.fixture(scope="session", autouse=True)
def kernels_compiled(tmp_path_factory):
    """Compile, in this process and before any cluster starts, the numba kernels that worker
    processes run (reader, descriptors, slab domains, kernel sums): the workers then load them
    from numba's on-disk cache instead of several processes compiling and caching the same
    parallel functions at once, which numba does not guard (numba issues 4807, 5890: crashes
    and hangs). On a fresh clone this is where the compiling happens; later it loads."""
    from pipeline import readers
    from quests_core.domains import domain_descriptors, slab_layers

    atoms = structures.thermal_fcc_cu(repeat=4, sigma=0.05, seed=0)  # at least two slab layers
    path = tmp_path_factory.mktemp("kernels") / "frame.extxyz"
    atoms.write(path)
    fmt = readers.resolve_format(path, None)
    (ref,) = readers.scan(path, fmt, readers.FrameSelection(0, 1, 1))
    for _, frame in readers.read(path, fmt, [ref], None):
        x = quests_core.compute_descriptors(frame.positions, frame.cell, frame.pbc)
    slabs = slab_layers(atoms.positions, atoms.cell.array, atoms.pbc)
    domain_descriptors(atoms.positions, slabs.layer_of(atoms.positions, atoms.cell.array, atoms.pbc),
                       atoms.cell.array, atoms.pbc, slabs, 0, 1)
    quests_core.log_kernel_sum(x, x, [0.015, 0.03])
    quests_core.entropy(x, [0.015])
    quests_core.delta_entropy(x, x, [0.015])


@pytest.fixture(scope="session")
def cu_bulk():
    """108-atom thermally perturbed FCC Cu (3x3x3 cubic supercell, sigma 0.07 Å)."""
    return structures.thermal_fcc_cu(repeat=3, sigma=0.07, seed=0)


@pytest.fixture(scope="session")
def cu_bulk_x(cu_bulk):
    return descriptors_of(cu_bulk)


@pytest.fixture(scope="session")
def mixed_x():
    """~400 environments of several kinds (hot and cold bulk, nanoparticle, slab, molecule):
    a realistic reference set with both dense and sparse regions of descriptor space."""
    frames = [
        structures.thermal_fcc_cu(repeat=3, sigma=0.03, seed=1),
        structures.thermal_fcc_cu(repeat=3, sigma=0.15, seed=2),
        structures.nanoparticle("icosahedron", sigma=0.05, seed=3),
        structures.cu111_slab(sigma=0.05, seed=4),
        structures.thermal_bcc_fe(repeat=3, sigma=0.07, seed=5),
        structures.small_molecule("C6H6", seed=6),
    ]
    return np.concatenate([descriptors_of(frame) for frame in frames])
