"""Slab domains of a split frame: a domain's descriptors, computed from its layers and the halo
layers beside them, equal the whole frame's bit for bit, whether the domain is whole layers or
a run of atoms that begins and ends inside a layer."""

import numpy as np
import pytest
from ase.build import bulk

import structures
from quests_core import compute_descriptors
from quests_core.domains import domain_descriptors, halo_layers, slab_layers

K, CUTOFF = 32, 5.0


def triclinic_cu(seed=3):
    atoms = bulk("Cu", "fcc", a=3.61) * (9, 4, 4)  # primitive fcc cell: oblique axes
    return structures.perturb(atoms, 0.08, seed)


def open_cluster(seed=4):
    atoms = structures.thermal_fcc_cu(repeat=6, sigma=0.05, seed=seed)
    atoms.pbc = False
    return atoms


def slab(seed=5):
    atoms = structures.thermal_fcc_cu(repeat=5, sigma=0.05, seed=seed)
    atoms.pbc = (True, True, False)
    return atoms


STRUCTURES = {
    "bulk": lambda: structures.thermal_fcc_cu(repeat=6, sigma=0.08, seed=2),
    "triclinic": triclinic_cu,
    "slab": slab,
    "cluster": open_cluster,
}


def layered(atoms):
    """The atoms in slab-layer order (as a split frame stores them), their layers, the slab
    layers, the whole frame's descriptors in that order, and each layer's first row."""
    cell, pbc = atoms.cell.array, atoms.pbc
    slabs = slab_layers(atoms.positions, cell, pbc, CUTOFF)
    order = np.argsort(slabs.layer_of(atoms.positions, cell, pbc), kind="stable")
    positions = atoms.positions[order]
    layer = slabs.layer_of(positions, cell, pbc)
    whole = compute_descriptors(atoms.positions, cell, pbc, k=K, cutoff=CUTOFF)[order]
    layer_start = np.concatenate([[0], np.cumsum(np.bincount(layer, minlength=slabs.n_layers))])
    return positions, layer, slabs, whole, layer_start


def domain_input(positions, layer, slabs, first, last, layer_start):
    """What a domain task reads: its layers' atoms, then each halo layer's, once (both halo
    layers are one layer when the domain leaves out only that one)."""
    halo = sorted({halo for halo, _ in halo_layers(slabs, first, last)})
    wanted = [(first, last)] + [(layer, layer + 1) for layer in halo]
    rows = np.concatenate([np.arange(layer_start[a], layer_start[b]) for a, b in wanted])
    return positions[rows], layer[rows]


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_whole_layer_domains_equal_the_whole_frame(name):
    atoms = STRUCTURES[name]()
    positions, layer, slabs, whole, layer_start = layered(atoms)
    assert slabs.n_layers >= 3
    for first in range(slabs.n_layers - 1):
        last = first + 1 + (first % 2)  # domains of one and of two layers
        last = min(last, slabs.n_layers - 1 if first == 0 else slabs.n_layers)
        points, own_layer = domain_input(positions, layer, slabs, first, last, layer_start)
        x = domain_descriptors(points, own_layer, atoms.cell.array, atoms.pbc, slabs, first, last, k=K,
                               cutoff=CUTOFF)
        np.testing.assert_array_equal(x, whole[layer_start[first]:layer_start[last]])


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_domains_that_begin_and_end_inside_layers_equal_the_whole_frame(name):
    atoms = STRUCTURES[name]()
    positions, layer, slabs, whole, layer_start = layered(atoms)
    rng = np.random.default_rng(7)
    n_atoms = len(atoms)
    cuts = np.sort(rng.choice(np.arange(1, n_atoms), size=5, replace=False))
    for start, stop in zip([0, *cuts], [*cuts, n_atoms]):
        first = int(np.searchsorted(layer_start, start, side="right") - 1)
        last = int(np.searchsorted(layer_start, stop - 1, side="right"))
        if last - first == slabs.n_layers:
            continue  # a run of every layer has no halo; the ingest plans none
        points, own_layer = domain_input(positions, layer, slabs, first, last, layer_start)
        centres = np.arange(start - layer_start[first], stop - layer_start[first])
        x = domain_descriptors(points, own_layer, atoms.cell.array, atoms.pbc, slabs, first, last, k=K,
                               cutoff=CUTOFF, centres=centres)
        np.testing.assert_array_equal(x, whole[start:stop])


def test_centres_outside_the_domain_layers_are_refused():
    atoms = STRUCTURES["bulk"]()
    positions, layer, slabs, _, layer_start = layered(atoms)
    points, own_layer = domain_input(positions, layer, slabs, 1, 2, layer_start)
    outside = np.flatnonzero(own_layer != 1)[:1]
    with pytest.raises(ValueError, match=r"centres must be atoms of layers \[1, 2\)"):
        domain_descriptors(points, own_layer, atoms.cell.array, atoms.pbc, slabs, 1, 2, k=K, cutoff=CUTOFF,
                           centres=outside)


def test_a_domain_of_every_layer_is_refused():
    atoms = STRUCTURES["bulk"]()
    positions, layer, slabs, _, _ = layered(atoms)
    with pytest.raises(ValueError, match="must be a proper part"):
        domain_descriptors(positions, layer, atoms.cell.array, atoms.pbc, slabs, 0, slabs.n_layers, k=K,
                           cutoff=CUTOFF)
