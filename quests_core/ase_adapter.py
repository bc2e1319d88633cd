"""ASE adapter: the quests-style entry point that takes ase.Atoms. The numerics never see an
Atoms; only positions, cell, pbc and atomic numbers are read here."""

import numpy as np

from .descriptors import compute_descriptors_many
from .params import DescriptorParams


def _frames(dataset) -> list:
    from ase import Atoms

    frames = [dataset] if isinstance(dataset, Atoms) else list(dataset)
    for position, frame in enumerate(frames):
        if not isinstance(frame, Atoms):
            raise ValueError(f"dataset item {position} is a {type(frame).__name__}, not ase.Atoms")
    return frames


def get_descriptors(dataset, k: int = DescriptorParams.k, cutoff: float = DescriptorParams.cutoff,
                    concat: bool = True, dtype: str = "float64"):
    """Descriptors of every atom of every frame, stacked: (n_atoms_total, 2k - 1).

    Same call as quests.descriptor.get_descriptors. Differs on purpose for mixed periodicity:
    a (T, T, F) slab is periodic in-plane here, fully open in quests.
    """
    x = _stacked(compute_descriptors_many(((frame.positions, frame.cell.array, frame.pbc) for frame in _frames(dataset)),
                                          k=k, cutoff=cutoff), dtype)
    return x if concat else (x[:, :k], x[:, k:])


def get_descriptors_multicomponent(dataset, k: int = DescriptorParams.k, cutoff: float = DescriptorParams.cutoff,
                                   species=None, dtype: str = "float64") -> np.ndarray:
    """Multicomponent descriptors (spec §1): per atom, [x1, x2] of all species, then [x1, x2]
    of each species' sub-lattice (chemical symbols sorted), width (S + 1)(2k - 1).

    quests orders the same columns as all x1 blocks then all x2 blocks (and fails on a
    single-species dataset); here every block keeps x1 next to x2 and S = 1 adds its block.
    """
    frames = _frames(dataset)
    symbols = sorted(set(species) if species is not None else
                     {symbol for frame in frames for symbol in frame.get_chemical_symbols()})
    return _stacked(compute_descriptors_many(
        ((frame.positions, frame.cell.array, frame.pbc, np.array(frame.get_chemical_symbols())) for frame in frames),
        k=k, cutoff=cutoff, species_list=symbols), dtype)


def _stacked(blocks: list[np.ndarray], dtype: str) -> np.ndarray:
    """The blocks stacked and cast without a copy that is not needed: fresh memory is slow to
    touch (a 1M-atom result is 0.5 GB), and one frame needs no concatenation."""
    x = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return x.astype(dtype, copy=False)
