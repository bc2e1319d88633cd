"""Atom-centred QUESTS descriptors (spec §1) from plain arrays: positions, cell, pbc.

Only neighbours inside the cutoff change a descriptor (their weight is zero beyond it), so
the neighbour search is a cell list over the atoms plus their periodic images within one
cutoff of the cell; the k nearest of those fill the descriptor and empty slots stay zero.
"""

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba as nb
import numpy as np

from ._numba import JIT, PARALLEL_JIT
from .params import DescriptorParams
from .validation import as_cell_and_pbc, as_positions, check_cutoff, check_k

DISTANCE_EPS = 1e-16  # added to r_ij before dividing (spec §1)
PAIR_DISTANCE_EPS = 1e-15  # added to r_jl before dividing (spec §1)
COINCIDENT_DISTANCE = 1e-8  # Å; closer atoms are reported as sitting at the same position
MIN_PLANE_SPACING = 0.1  # Å; thinner periodic cells would need millions of images per atom
SMALL_STRUCTURE_ATOMS = 4096  # below this, a structure's kernel is too short to share between threads


def descriptor_width(k: int) -> int:
    return 2 * k - 1


def compute_descriptors(
    positions,
    cell=None,
    pbc=False,
    k: int = DescriptorParams.k,
    cutoff: float = DescriptorParams.cutoff,
    species=None,
    species_list=None,
) -> np.ndarray:
    """QUESTS descriptors of every atom of one structure, shape (n_atoms, 2k - 1), float64.

    positions: (n_atoms, 3) in Å. cell: (3, 3) lattice vectors as rows (only the rows of
    periodic axes are used). pbc: one bool or three, periodic per axis; any subset works.
    species: optional per-atom labels (e.g. atomic numbers) for the multicomponent variant:
    the result is then the all-species descriptor followed by the descriptor of each
    species' sub-lattice alone (species sorted; zeros for atoms of other species), width
    (S + 1)(2k - 1). species_list fixes S across structures that lack some species.
    """
    positions = as_positions(positions)
    cell, pbc = as_cell_and_pbc(cell, pbc)
    k = check_k(k)
    cutoff = check_cutoff(cutoff)
    if species is None:
        if species_list is not None:
            raise ValueError("species_list is given but species is not")
        return _descriptors_single(positions, cell, pbc, k, cutoff)

    species = np.asarray(species)
    if species.shape != (len(positions),):
        raise ValueError(f"species must have one label per atom ({len(positions)}), got shape {species.shape}")
    present = np.unique(species)
    species_list = present if species_list is None else np.unique(np.asarray(species_list))
    missing = np.setdiff1d(present, species_list)
    if missing.size:
        raise ValueError(f"species {missing.tolist()} are not in species_list {species_list.tolist()}")

    blocks = [_descriptors_single(positions, cell, pbc, k, cutoff)]
    for label in species_list:
        members = species == label
        block = np.zeros((len(positions), descriptor_width(k)))
        if members.any():
            block[members] = _descriptors_single(positions[members], cell, pbc, k, cutoff)
        blocks.append(block)
    return np.concatenate(blocks, axis=1)


def compute_descriptors_many(structures, k: int = DescriptorParams.k, cutoff: float = DescriptorParams.cutoff,
                             species_list=None) -> list[np.ndarray]:
    """compute_descriptors of each structure, in order: structures yields (positions, cell,
    pbc) or (positions, cell, pbc, species) tuples.

    Small structures go one per thread, each on one numba thread, so the Python work around
    one (checks, set-up calls, the result) overlaps the kernels of the others; a large one
    gets every thread to itself. The first bad structure in input order
    raises its ValueError.
    """
    def one(structure) -> np.ndarray:
        positions, cell, pbc, *species = structure
        return compute_descriptors(positions, cell, pbc, k=k, cutoff=cutoff, species=species[0] if species else None,
                                   species_list=species_list)

    def one_on_one_thread(structure) -> np.ndarray:
        nb.set_num_threads(1)  # numba's thread count belongs to the calling thread
        return one(structure)

    n_threads = nb.get_num_threads()
    results, small = [], []
    with ThreadPoolExecutor(n_threads) as pool:
        for structure in structures:
            if n_threads > 1 and len(structure[0]) < SMALL_STRUCTURE_ATOMS:
                small.append(structure)
                continue
            results += pool.map(one_on_one_thread, small)
            small = []
            results.append(one(structure))
        results += pool.map(one_on_one_thread, small)
    return results


def _descriptors_single(positions, cell, pbc, k, cutoff) -> np.ndarray:
    if len(positions) == 0:
        return np.zeros((0, descriptor_width(k)))
    if not pbc.any():
        return _descriptors_of_points(positions, len(positions), np.arange(len(positions)), k, cutoff)
    lattice = Lattice.of(cell, pbc)
    for axis in np.flatnonzero(pbc):
        if lattice.plane_spacing(axis) < MIN_PLANE_SPACING:
            raise ValueError(f"cell is {lattice.plane_spacing(axis):.3g} Å thin along periodic axis {axis}: "
                             f"below {MIN_PLANE_SPACING} Å no structure is physical (is the cell in Å?)")
    fractional = lattice.wrapped_fractional(positions)
    source = np.arange(len(positions))
    for axis in np.flatnonzero(pbc):
        fractional, source = lattice.add_images(fractional, source, axis, cutoff)
    return _descriptors_of_points(lattice.cartesian(fractional), len(positions), source, k, cutoff)


def _descriptors_of_points(points, n_centres, source, k, cutoff) -> np.ndarray:
    """Descriptors of points[:n_centres], whose neighbours are searched among all points
    (centres, then halo atoms and periodic images); source maps points to input atoms."""
    out = np.zeros((n_centres, descriptor_width(k)))
    order, bin_start, atom_bins, n_bins = _cell_list(points, cutoff)
    coincident = np.full(n_centres, -1, dtype=np.int64)
    n_threads = nb.get_num_threads()
    if n_threads == 1:
        # no parallel launch at all: compute_descriptors_many calls this from several threads,
        # which not every numba threading layer allows (workqueue aborts)
        _descriptor_rows(points, 0, n_centres, order, bin_start, atom_bins, n_bins, k, cutoff, _sorting_network(k),
                         out, coincident)
    else:
        _descriptor_kernel(points, n_centres, order, bin_start, atom_bins, n_bins, k, cutoff, _sorting_network(k),
                           min(n_centres, 8 * n_threads), out, coincident)
    clashing = np.flatnonzero(coincident >= 0)
    if clashing.size:
        i = int(clashing[0])
        j = int(source[coincident[i]])
        where = "its own periodic image" if j == source[i] else f"atom {j}"
        raise ValueError(f"positions: atom {int(source[i])} is at the same position as {where} "
                         f"(closer than {COINCIDENT_DISTANCE} Å)")
    return out


@dataclass(frozen=True)
class Lattice:
    """Periodic axes of a cell, with open axes completed by an orthonormal complement so
    fractional coordinates along periodic axes are defined whatever the open rows hold.

    Conversions are written element by element, so an atom's coordinates come out the same
    bits whichever other atoms are converted with it: a domain of a split frame then sees
    exactly the points the whole frame sees.
    """

    basis: np.ndarray
    to_fractional: np.ndarray
    pbc: np.ndarray

    @classmethod
    def of(cls, cell: np.ndarray, pbc: np.ndarray) -> "Lattice":
        basis = cell.copy()
        periodic = np.flatnonzero(pbc)
        open_axes = np.flatnonzero(~pbc)
        if len(periodic) == 2:
            normal = np.cross(cell[periodic[0]], cell[periodic[1]])
            basis[open_axes[0]] = normal / np.linalg.norm(normal)
        elif len(periodic) == 1:
            a = cell[periodic[0]] / np.linalg.norm(cell[periodic[0]])
            helper = np.eye(3)[np.argmin(np.abs(a))]
            u = np.cross(a, helper)
            u /= np.linalg.norm(u)
            basis[open_axes[0]] = u
            basis[open_axes[1]] = np.cross(a, u)
        elif len(periodic) == 0:
            basis = np.eye(3)
        return cls(basis, np.linalg.inv(basis), pbc.copy())

    def plane_spacing(self, axis: int) -> float:
        """Distance between the lattice planes normal to a periodic axis."""
        return 1.0 / np.linalg.norm(self.to_fractional[:, axis])

    def wrapped_fractional(self, positions: np.ndarray) -> np.ndarray:
        return _wrapped_fractional(np.ascontiguousarray(positions, dtype=np.float64), self.to_fractional, self.pbc)

    def cartesian(self, fractional: np.ndarray) -> np.ndarray:
        return _cartesian(fractional, self.basis)

    def add_images(self, fractional, source, axis: int, cutoff: float):
        """Append the images along one periodic axis that lie within cutoff of the cell."""
        reach = cutoff / self.plane_spacing(axis)
        return _append_images(fractional, source, axis, reach, int(np.ceil(reach)))


# The set-up of a structure in numba: as numpy calls (a few dozen per frame, each on a
# fresh temporary) it took 40 % of a 256-atom frame. No fastmath anywhere here, so the
# coordinates keep the exact bits of the element-by-element formulas (a domain of a split
# frame must see the same points as the whole frame).
@nb.njit(nogil=True, cache=True)
def _cartesian(fractional, basis):
    points = np.empty_like(fractional)
    for i in range(fractional.shape[0]):
        for c in range(3):
            points[i, c] = fractional[i, 0] * basis[0, c] + fractional[i, 1] * basis[1, c] + fractional[i, 2] * basis[2, c]
    return points


@nb.njit(nogil=True, cache=True)
def _append_images(fractional, source, axis, reach, n_shifts):
    """fractional and source, then the images shifted by -n_shifts..n_shifts (not 0) along
    axis that land within reach of the cell, shift by shift, each in point order."""
    n = fractional.shape[0]
    count = n
    for shift in range(-n_shifts, n_shifts + 1):
        for i in range(n):
            shifted = fractional[i, axis] + shift
            count += shift != 0 and shifted > -reach and shifted < 1.0 + reach
    points = np.empty((count, 3))
    points_source = np.empty(count, dtype=np.int64)
    points[:n] = fractional
    points_source[:n] = source
    m = n
    for shift in range(-n_shifts, n_shifts + 1):
        if shift == 0:
            continue
        for i in range(n):
            shifted = fractional[i, axis] + shift
            if shifted > -reach and shifted < 1.0 + reach:
                points[m] = fractional[i]
                points[m, axis] = shifted
                points_source[m] = source[i]
                m += 1
    return points, points_source


@nb.njit(nogil=True, cache=True)  # no fastmath: a domain and its whole frame must get the same bits
def _wrapped_fractional(positions, to_fractional, pbc):
    """positions @ to_fractional, element by element in a fixed order, wrapped into [0, 1)
    along periodic axes; one pass, no temporaries (numpy's took a fifth of a split frame's
    layering, at 1M atoms)."""
    fractional = np.empty_like(positions)
    for i in range(positions.shape[0]):
        for c in range(3):
            value = (positions[i, 0] * to_fractional[0, c] + positions[i, 1] * to_fractional[1, c]
                     + positions[i, 2] * to_fractional[2, c])
            if pbc[c]:
                value -= np.floor(value)
            fractional[i, c] = value
    return fractional


def bounding_box(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each axis's minimum and maximum over (n, d) points (n > 0), one column at a time:
    numpy reduces a C-ordered (n, 3) array over axis 0 with a 3-element inner loop per row,
    about 20x slower (4.8 ms against 0.2 ms for 167k points here)."""
    columns = [points[:, axis] for axis in range(points.shape[1])]
    return np.array([column.min() for column in columns]), np.array([column.max() for column in columns])


def _cell_list(points: np.ndarray, cutoff: float):
    """Bins of edge >= cutoff, so every neighbour within cutoff is in one of the 27 bins
    around a point; sparse systems get larger bins so the bin count stays O(n_points)."""
    low, high = bounding_box(points)
    extent = high - low
    n_bins = np.maximum(np.floor(extent / cutoff), 1).astype(np.int64)
    max_bins = 4 * len(points) + 64
    while np.prod(n_bins) > max_bins:
        n_bins = np.maximum(n_bins // 2, 1)
    edge = np.maximum(extent / n_bins, cutoff)
    order, bin_start, atom_bins = _bin_points(points, low, edge, n_bins)
    return order, bin_start, atom_bins, n_bins


@nb.njit(nogil=True, cache=True)
def _bin_points(points, low, edge, n_bins):
    """Each point's bin, and the points in bin order (a stable counting sort): order,
    bin_start (each bin's first place in order) and atom_bins."""
    n = points.shape[0]
    atom_bins = np.empty((n, 3), dtype=np.int64)
    flat = np.empty(n, dtype=np.int64)
    bin_start = np.zeros(n_bins[0] * n_bins[1] * n_bins[2] + 1, dtype=np.int64)
    for i in range(n):
        for c in range(3):
            atom_bins[i, c] = min(np.int64((points[i, c] - low[c]) / edge[c]), n_bins[c] - 1)
        flat[i] = (atom_bins[i, 0] * n_bins[1] + atom_bins[i, 1]) * n_bins[2] + atom_bins[i, 2]
        bin_start[flat[i] + 1] += 1
    for b in range(1, bin_start.shape[0]):
        bin_start[b] += bin_start[b - 1]
    filled = bin_start[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[filled[flat[i]]] = i
        filled[flat[i]] += 1
    return order, bin_start, atom_bins


@nb.njit(**JIT)
def _descriptor_rows(points, first, last, order, bin_start, atom_bins, n_bins, k, cutoff, network, out, coincident):
    """Descriptors of points first..last - 1, with scratch of their own. Serial: one thread
    calls it directly, and the parallel kernel calls it per block."""
    network_size = 1
    while network_size < k:
        network_size *= 2
    nearest_r = np.empty(k)
    nearest_j = np.empty(k, dtype=np.int64)
    root_weights = np.empty(k)
    xyz = np.empty((3, k))
    v = np.empty((network_size, network_size))
    for i in range(first, last):
        n_found = _k_nearest_within_cutoff(i, points, order, bin_start, atom_bins[i], n_bins, k,
                                           cutoff * cutoff, COINCIDENT_DISTANCE**2, nearest_r, nearest_j, coincident)
        _atom_descriptor(points, nearest_r, nearest_j, n_found, k, cutoff, network, root_weights, xyz, v, out[i])


@nb.njit(**PARALLEL_JIT)
def _descriptor_kernel(points, n_atoms, order, bin_start, atom_bins, n_bins, k, cutoff, network, n_blocks, out,
                       coincident):
    """Atoms go to threads in n_blocks blocks."""
    for block in nb.prange(n_blocks):
        _descriptor_rows(points, block * n_atoms // n_blocks, (block + 1) * n_atoms // n_blocks, order, bin_start,
                         atom_bins, n_bins, k, cutoff, network, out, coincident)


@nb.njit(**JIT)
def _atom_descriptor(points, nearest_r, nearest_j, n_found, k, cutoff, network, root_weights, xyz, v, out):
    """x1 and x2 of one atom from its n_found nearest neighbours (ascending distance)."""
    for a in range(n_found):
        r = nearest_r[a]
        s = r / cutoff
        w = (1.0 - s * s) ** 2
        root_weights[a] = np.sqrt(w)
        out[a] = w / (r + DISTANCE_EPS)
    # Pair matrix V (zero diagonal, zero rows and columns for empty slots, -1 in the rows
    # that pad k up to the sorting network's size). V is symmetric, so sorting each column
    # with the network sorts each row; x2_m is then the mean of the (m + 1)-th largest row.
    # Every column goes through the network, not just the n_found filled ones: the fixed
    # trip count lets the compare-exchanges vectorise (the empty columns are zeros).
    v[:, :] = 0.0
    v[k:, :n_found] = -1.0
    for a in range(n_found):
        for d in range(3):
            xyz[d, a] = points[nearest_j[a], d]
    for a in range(n_found):
        xa, ya, za, wa = xyz[0, a], xyz[1, a], xyz[2, a], root_weights[a]
        for b in range(a + 1, n_found):
            r_ab = np.sqrt((xa - xyz[0, b]) ** 2 + (ya - xyz[1, b]) ** 2 + (za - xyz[2, b]) ** 2)
            value = wa * root_weights[b] / (r_ab + PAIR_DISTANCE_EPS)
            v[a, b] = value
            v[b, a] = value
    for c in range(network.shape[0]):
        upper = v[network[c, 0]]
        lower = v[network[c, 1]]
        for a in range(v.shape[1]):
            x = upper[a]
            y = lower[a]
            upper[a] = min(x, y)
            lower[a] = max(x, y)
    size = v.shape[0]
    for m in range(k - 1):
        total = 0.0
        for a in range(n_found):
            total += v[size - 1 - m, a]
        out[k + m] = total / k


@nb.njit(**JIT)
def _k_nearest_within_cutoff(i, points, order, bin_start, home, n_bins, k, cutoff2, coincident2,
                             nearest_r, nearest_j, coincident):
    """Fill nearest_r/nearest_j with the (up to k) nearest points to point i inside the
    cutoff, ascending by distance; returns how many were found."""
    n_found = 0
    xi, yi, zi = points[i, 0], points[i, 1], points[i, 2]
    for bx in range(max(home[0] - 1, 0), min(home[0] + 2, n_bins[0])):
        for by in range(max(home[1] - 1, 0), min(home[1] + 2, n_bins[1])):
            for bz in range(max(home[2] - 1, 0), min(home[2] + 2, n_bins[2])):
                b = (bx * n_bins[1] + by) * n_bins[2] + bz
                for s in range(bin_start[b], bin_start[b + 1]):
                    j = order[s]
                    if j == i:
                        continue
                    d2 = (points[j, 0] - xi) ** 2 + (points[j, 1] - yi) ** 2 + (points[j, 2] - zi) ** 2
                    if d2 >= cutoff2:
                        continue
                    if d2 < coincident2:
                        coincident[i] = j
                    if n_found == k and d2 >= nearest_r[k - 1] ** 2:
                        continue
                    r = np.sqrt(d2)
                    slot = min(n_found, k - 1)
                    while slot > 0 and nearest_r[slot - 1] > r:
                        nearest_r[slot] = nearest_r[slot - 1]
                        nearest_j[slot] = nearest_j[slot - 1]
                        slot -= 1
                    nearest_r[slot] = r
                    nearest_j[slot] = j
                    if n_found < k:
                        n_found += 1
    return n_found


@functools.cache
def _sorting_network(k: int) -> np.ndarray:
    """Compare-exchange pairs of Batcher's odd-even merge sort for the next power of two >= k."""
    size = 1 << (k - 1).bit_length()
    pairs = []
    span = 1
    while span < size:
        step = span
        while step >= 1:
            for start in range(step % span, size - step, 2 * step):
                for offset in range(min(step, size - start - step)):
                    lo, hi = start + offset, start + offset + step
                    if lo // (2 * span) == hi // (2 * span):
                        pairs.append((lo, hi))
            step //= 2
        span *= 2
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)
