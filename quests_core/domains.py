"""Splitting a large structure into slab domains with a halo, for bounded memory per task.

A frame is cut into layers normal to one axis, each at least one cutoff thick, so every
neighbour of an atom lies in its own layer or the two beside it. A domain is a run of
consecutive layers; with the layers on either side (shifted by one lattice vector where
they wrap around) its atoms get exactly the descriptors of the whole frame, bit for bit,
because the same per-atom coordinates and images are built (see descriptors.Lattice).
"""

from dataclasses import dataclass

import numpy as np

from .descriptors import Lattice, _descriptors_of_points, bounding_box
from .params import DescriptorParams
from .validation import as_cell_and_pbc, as_positions, check_cutoff, check_k


@dataclass(frozen=True)
class SlabLayers:
    axis: int  # lattice axis (periodic) or Cartesian axis (open structures)
    periodic: bool
    n_layers: int
    origin: float  # open axis: the coordinate where layer 0 starts
    thickness: float

    def layer_of(self, positions, cell, pbc) -> np.ndarray:
        if self.periodic:
            coordinate = Lattice.of(np.asarray(cell, dtype=np.float64), np.asarray(pbc, dtype=bool)).wrapped_fractional(
                np.asarray(positions, dtype=np.float64))[:, self.axis] * self.n_layers
        else:
            coordinate = (np.asarray(positions)[:, self.axis] - self.origin) / self.thickness
        return np.clip(np.floor(coordinate).astype(np.int64), 0, self.n_layers - 1)


def slab_layers(positions, cell, pbc, cutoff: float = DescriptorParams.cutoff) -> SlabLayers:
    """The axis with the most layers of thickness >= cutoff (periodic axes first)."""
    positions = as_positions(positions)
    return slab_layers_of_bounds(*bounding_box(positions), cell, pbc, cutoff)


def slab_layers_of_bounds(low, high, cell, pbc, cutoff: float = DescriptorParams.cutoff) -> SlabLayers:
    """slab_layers of atoms whose positions lie in the box [low, high] (their minimum and
    maximum on each axis): what the pieces of a frame read apart can find together."""
    cell, pbc = as_cell_and_pbc(cell, pbc)
    cutoff = check_cutoff(cutoff)
    if pbc.any():
        lattice = Lattice.of(cell, pbc)
        spacing = {axis: lattice.plane_spacing(axis) for axis in np.flatnonzero(pbc)}
        axis = max(spacing, key=spacing.get)
        n_layers = max(int(spacing[axis] // cutoff), 1)
        return SlabLayers(int(axis), True, n_layers, 0.0, spacing[axis] / n_layers)
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    axis = int(np.argmax(high - low))
    extent = (high[axis] - low[axis]) * (1 + 1e-12) + 1e-12
    n_layers = max(int(extent // cutoff), 1)
    return SlabLayers(axis, False, n_layers, float(low[axis]), extent / n_layers)


def halo_layers(slabs: SlabLayers, first: int, last: int) -> list[tuple[int, int]]:
    """(layer, shift) of the layers a domain [first, last) needs beside its own: shift is
    the lattice translation (-1, 0, +1) along the split axis applied to that layer."""
    halo = []
    if first > 0:
        halo.append((first - 1, 0))
    elif slabs.periodic:
        halo.append((slabs.n_layers - 1, -1))
    if last < slabs.n_layers:
        halo.append((last, 0))
    elif slabs.periodic:
        halo.append((0, 1))
    return halo


def domain_descriptors(positions, layer, cell, pbc, slabs: SlabLayers, first: int, last: int,
                       k: int = DescriptorParams.k, cutoff: float = DescriptorParams.cutoff,
                       centres=None) -> np.ndarray:
    """Descriptors of the domain's atoms: those whose layer is in [first, last), in their
    input order, or only the rows `centres` of positions (in that order), which must lie in
    those layers, so a domain may begin and end inside a layer.

    positions and layer hold the atoms of layers [first, last) and of its halo layers, each
    atom once (any order; other atoms are ignored): where the two halo layers are one layer,
    its atoms serve with both shifts. A domain must leave at least one layer out.
    """
    positions = as_positions(positions)
    cell, pbc = as_cell_and_pbc(cell, pbc)
    k, cutoff = check_k(k), check_cutoff(cutoff)
    layer = np.asarray(layer, dtype=np.int64)
    if not 0 <= first < last <= slabs.n_layers or last - first == slabs.n_layers:
        raise ValueError(f"domain layers [{first}, {last}) must be a proper part of 0..{slabs.n_layers}")
    own = (layer >= first) & (layer < last)
    if centres is None:
        centres, neighbours = np.flatnonzero(own), np.empty(0, dtype=np.int64)
    else:
        centres = np.asarray(centres, dtype=np.int64)
        if not own[centres].all():
            raise ValueError(f"centres must be atoms of layers [{first}, {last})")
        own[centres] = False
        neighbours = np.flatnonzero(own)  # the domain's other atoms: neighbours only, unshifted
    halo = [(np.flatnonzero(layer == halo_layer), shift) for halo_layer, shift in halo_layers(slabs, first, last)]
    rows = np.concatenate([centres, neighbours] + [members for members, _ in halo])
    if not pbc.any():
        points = positions[rows]
        return _descriptors_of_points(points, len(centres), rows, k, cutoff)
    lattice = Lattice.of(cell, pbc)
    fractional = lattice.wrapped_fractional(positions[rows])
    offset = len(centres) + len(neighbours)
    for members, shift in halo:
        fractional[offset : offset + len(members), slabs.axis] += shift
        offset += len(members)
    source = rows
    for axis in np.flatnonzero(pbc):
        if axis != slabs.axis:
            fractional, source = lattice.add_images(fractional, source, axis, cutoff)
    return _descriptors_of_points(lattice.cartesian(fractional), len(centres), source, k, cutoff)
