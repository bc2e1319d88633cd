"""Checks of user input at the public boundary of quests_core; each error names its argument."""

import numpy as np


def as_positions(positions) -> np.ndarray:
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must have shape (n_atoms, 3), got {positions.shape}")
    if not np.isfinite(positions).all():  # whole-array test first: a per-row reduction costs 13x more
        bad = ~np.isfinite(positions).all(axis=1)
        raise ValueError(f"positions contain NaN or inf (atom {int(np.argmax(bad))})")
    return positions


def as_cell_and_pbc(cell, pbc) -> tuple[np.ndarray, np.ndarray]:
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
    if cell is None:
        if pbc.any():
            raise ValueError("cell is required when pbc is true on any axis")
        return np.zeros((3, 3)), pbc
    cell = np.asarray(cell, dtype=np.float64)
    if cell.shape != (3, 3):
        raise ValueError(f"cell must have shape (3, 3), got {cell.shape}")
    if not np.isfinite(cell).all():
        raise ValueError("cell contains NaN or inf")
    periodic = cell[pbc]
    lengths = np.sqrt((periodic * periodic).sum(axis=1))
    for axis, length in zip(np.flatnonzero(pbc), lengths):
        if length == 0.0:
            raise ValueError(f"cell vector {axis} has zero length on a periodic axis")
    # the Gram determinant over the squared lengths is the squared sine of the angle (two
    # vectors) or the squared volume of the unit-edged cell (three); ~0 means dependent.
    # Cheaper than a rank by SVD, which cost a fifth of the set-up of a small frame.
    if len(periodic) > 1:
        unit = periodic / lengths[:, None]
        if np.linalg.det(unit @ unit.T) <= 1e-20:
            raise ValueError("cell vectors of the periodic axes are linearly dependent")
    return cell, pbc


def check_k(k) -> int:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    return int(k)


def check_cutoff(cutoff) -> float:
    if not np.isfinite(cutoff) or cutoff <= 0:
        raise ValueError(f"cutoff must be > 0, got {cutoff!r}")
    return float(cutoff)


def as_bandwidths(bandwidth) -> tuple[np.ndarray, bool]:
    """Bandwidths as a 1-D float64 array, and whether the caller gave a single value."""
    values = np.asarray(bandwidth, dtype=np.float64)
    scalar = values.ndim == 0
    values = np.atleast_1d(values)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"bandwidth must be a number or a 1-D list of numbers, got shape {values.shape}")
    if not (np.isfinite(values) & (values > 0)).all():
        raise ValueError(f"bandwidth must be > 0, got {bandwidth!r}")
    return values, scalar


def as_descriptors(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n_environments, n_features) array, got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} has no environments")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return np.ascontiguousarray(x)


def as_descriptor_pair(y, x) -> tuple[np.ndarray, np.ndarray]:
    """Query and reference descriptors of one common width and dtype (float64 if they differ)."""
    y = as_descriptors(y, "y")
    x = as_descriptors(x, "x")
    if y.shape[1] != x.shape[1]:
        raise ValueError(f"descriptor widths differ: y has {y.shape[1]} columns, x has {x.shape[1]}")
    if y.dtype != x.dtype:
        y, x = y.astype(np.float64), x.astype(np.float64)
    return y, x
