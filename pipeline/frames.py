"""One structure as plain arrays: what readers produce and descriptor tasks consume."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    positions: np.ndarray  # (n_atoms, 3) float64, Å
    numbers: np.ndarray  # (n_atoms,) int64 atomic numbers
    cell: np.ndarray  # (3, 3) float64, lattice vectors as rows
    pbc: np.ndarray  # (3,) bool

    def __len__(self) -> int:
        return len(self.positions)
