"""Test structures built with ASE, with seeded Gaussian displacements so no neighbour ties.

Every builder takes a seed (or a numpy Generator) and returns a fresh ase.Atoms.
"""

import numpy as np
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.cluster import Icosahedron, Octahedron


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def perturb(atoms: Atoms, sigma: float, seed) -> Atoms:
    """A copy of atoms with every position displaced by N(0, sigma^2) per Cartesian axis (Å)."""
    atoms = atoms.copy()
    atoms.positions = atoms.positions + _rng(seed).normal(0.0, sigma, atoms.positions.shape)
    return atoms


def thermal_fcc_cu(repeat: int = 3, sigma: float = 0.07, seed=0) -> Atoms:
    """Periodic FCC Cu cubic supercell (repeat**3 * 4 atoms), thermally perturbed."""
    return perturb(bulk("Cu", "fcc", a=3.61, cubic=True).repeat(repeat), sigma, seed)


def thermal_fcc_frames(n_frames: int, sigma: float, seed, repeat: int = 3) -> list[Atoms]:
    """n_frames thermal_fcc_cu supercells drawn one after the other from one generator: a
    trajectory-like file's worth of frames."""
    rng = _rng(seed)
    return [thermal_fcc_cu(repeat, sigma, rng) for _ in range(n_frames)]


def thermal_bcc_fe(repeat: int = 3, sigma: float = 0.07, seed=0) -> Atoms:
    return perturb(bulk("Fe", "bcc", a=2.87, cubic=True).repeat(repeat), sigma, seed)


def nanoparticle(kind: str = "icosahedron", sigma: float = 0.05, seed=0) -> Atoms:
    """Non-periodic Cu nanoparticle (55-atom icosahedron or 79-atom truncated octahedron)."""
    if kind == "icosahedron":
        cluster = Icosahedron("Cu", noshells=3)
    elif kind == "octahedron":
        cluster = Octahedron("Cu", length=5, cutoff=1)
    else:
        raise ValueError(kind)
    atoms = Atoms(cluster.get_chemical_symbols(), positions=cluster.positions, pbc=False)
    return perturb(atoms, sigma, seed)


def small_molecule(name: str, sigma: float = 0.02, seed=0) -> Atoms:
    """ase.build.molecule (no cell, no pbc), slightly perturbed."""
    return perturb(molecule(name), sigma, seed)


def binary_alloy(repeat: int = 3, fraction: float = 0.35, sigma: float = 0.07, seed=0) -> Atoms:
    """Periodic random Cu(1-f)Au(f) FCC solid solution, thermally perturbed."""
    rng = _rng(seed)
    atoms = bulk("Cu", "fcc", a=3.75, cubic=True).repeat(repeat)
    symbols = np.array(atoms.get_chemical_symbols())
    symbols[rng.permutation(len(atoms))[: int(round(fraction * len(atoms)))]] = "Au"
    atoms.set_chemical_symbols(symbols.tolist())
    return perturb(atoms, sigma, rng)


def cu111_slab(size=(3, 3, 4), vacuum: float = 6.0, sigma: float = 0.05, seed=0) -> Atoms:
    """Cu(111) slab, pbc = (T, T, F), vacuum on both sides along z, perturbed."""
    return perturb(fcc111("Cu", size=size, a=3.61, vacuum=vacuum), sigma, seed)


def cu_wire(length: int = 4, sigma: float = 0.05, seed=0) -> Atoms:
    """An FCC Cu rod, periodic along x only: pbc = (T, F, F), a 2x2 cross-section of cubic cells."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((length, 2, 2))
    atoms.cell[1] = [0.0, 30.0, 0.0]
    atoms.cell[2] = [0.0, 0.0, 30.0]
    atoms.positions += [0.0, 10.0, 10.0]
    atoms.pbc = (True, False, False)
    return perturb(atoms, sigma, seed)


def triclinic_cell(seed=0, n_atoms: int = 3) -> Atoms:
    """A small periodic triclinic cell (skewed lattice vectors) with well-separated atoms."""
    rng = _rng(seed)
    cell = np.array([[3.1, 0.0, 0.0], [0.9, 2.9, 0.0], [0.6, 0.7, 3.3]])
    fractional = np.array([[0.0, 0.0, 0.0], [0.5, 0.4, 0.5], [0.2, 0.7, 0.25], [0.75, 0.2, 0.8]])[:n_atoms]
    fractional = fractional + rng.normal(0.0, 0.01, fractional.shape)
    return Atoms(["Cu"] * n_atoms, scaled_positions=fractional, cell=cell, pbc=True)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random proper rotation matrix (det = +1)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q
