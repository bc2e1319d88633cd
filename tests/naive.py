"""Slow, obviously correct references written straight from shared/spec/method.md.

No neighbour lists, no tiling, no cleverness: explicit periodic images from a loop over
lattice shifts, full distance matrices, float64 throughout. Every fast path of quests_core
is compared with these.
"""

import itertools

import numpy as np

DISTANCE_EPS = 1e-16  # spec §1: added to r_ij before dividing
PAIR_DISTANCE_EPS = 1e-15  # spec §1: added to r_jl before dividing


def weight(r, cutoff):
    """w(r) = (1 - (min(r, r_c) / r_c)^2)^2."""
    return (1.0 - (np.minimum(r, cutoff) / cutoff) ** 2) ** 2


def periodic_images(positions, cell, pbc, cutoff):
    """Atoms wrapped into the cell along periodic axes, and every copy shifted by an integer
    lattice vector along periodic axes that can come within cutoff of an atom of the cell.

    Returns (images, source, shift_is_zero): positions (n_images, 3), the atom each image
    copies, and whether the image is the atom itself (zero shift).
    """
    positions = np.asarray(positions, dtype=np.float64)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    n_atoms = len(positions)
    if not pbc.any():
        return positions, np.arange(n_atoms), np.ones(n_atoms, dtype=bool)
    cell = np.asarray(cell, dtype=np.float64)
    inverse = np.linalg.inv(cell)  # the tests always give a full-rank cell
    fractional = positions @ inverse
    fractional[:, pbc] -= np.floor(fractional[:, pbc])
    wrapped = fractional @ cell
    # |inverse[:, a]| is 1 / (spacing of the lattice planes normal to axis a)
    n_shifts = [int(np.ceil(cutoff * np.linalg.norm(inverse[:, a]))) + 1 if pbc[a] else 0 for a in range(3)]
    images, source, zero = [], [], []
    for shift in itertools.product(*(range(-n, n + 1) for n in n_shifts)):
        images.append(wrapped + np.asarray(shift, dtype=np.float64) @ cell)
        source.append(np.arange(n_atoms))
        zero.append(np.full(n_atoms, shift == (0, 0, 0)))
    return np.concatenate(images), np.concatenate(source), np.concatenate(zero)


def descriptors(positions, cell, pbc, k, cutoff):
    """(n_atoms, 2k - 1) descriptors of spec §1, one atom at a time."""
    images, source, zero = periodic_images(positions, cell, pbc, cutoff)
    n_atoms = len(positions)
    centres = images[zero][np.argsort(source[zero])]
    out = np.zeros((n_atoms, 2 * k - 1))
    for i in range(n_atoms):
        is_self = zero & (source == i)
        others = images[~is_self]
        r_all = np.linalg.norm(others - centres[i], axis=1)
        nearest = np.argsort(r_all)[:k]
        r = r_all[nearest]
        neighbours = others[nearest]
        w = weight(r, cutoff)
        x1 = np.zeros(k)
        x1[: len(r)] = w / (r + DISTANCE_EPS)
        # pair matrix over the k slots; empty slots (fewer than k neighbours) stay zero
        v = np.zeros((k, k))
        r_pairs = np.linalg.norm(neighbours[:, None, :] - neighbours[None, :, :], axis=-1)
        v[: len(r), : len(r)] = np.sqrt(np.outer(w, w)) / (r_pairs + PAIR_DISTANCE_EPS)
        np.fill_diagonal(v, 0.0)
        column_means = np.sort(v, axis=1).sum(axis=0) / k
        x2 = column_means[1:][::-1]
        out[i] = np.concatenate([x1, x2])
    return out


def log_kernel_sum(y, x, bandwidth):
    """log sum_j exp(-|y_i - x_j|^2 / 2h^2) with the full distance matrix, shifted by the
    largest term (log-sum-exp), in float64. (n_y,) for a scalar bandwidth, else (n_y, n_h)."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    h = np.atleast_1d(np.asarray(bandwidth, dtype=np.float64))
    d2 = ((y[:, None, :] - x[None, :, :]) ** 2).sum(axis=-1)  # (n_y, n_x)
    exponent = -d2[:, :, None] / (2.0 * h**2)  # (n_y, n_x, n_h)
    top = exponent.max(axis=1)
    log_p = top + np.log(np.exp(exponent - top[:, None, :]).sum(axis=1))
    return log_p[:, 0] if np.ndim(bandwidth) == 0 else log_p


def entropy(x, bandwidth):
    """H(X) = -(1/N) sum_i log(p(x_i|X) / N)."""
    log_p = log_kernel_sum(x, x, bandwidth)
    return -(log_p - np.log(len(x))).mean(axis=0)


def diversity(x, bandwidth):
    """D(X) = log sum_i 1 / p(x_i|X), as a log-sum-exp of -log p."""
    minus_log_p = -log_kernel_sum(x, x, bandwidth)
    top = minus_log_p.max(axis=0)
    return top + np.log(np.exp(minus_log_p - top).sum(axis=0))


def delta_entropy(y, x, bandwidth):
    """dH(y|X) = -log p(y|X)."""
    return -log_kernel_sum(y, x, bandwidth)
