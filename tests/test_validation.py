"""Bad input raises ValueError at the public boundary, with a message naming the problem."""

import re

import numpy as np
import pytest

import quests_core
from quests_core import DeltaEntropyPartial

CELL = np.diag([4.0, 4.0, 4.0])
TWO_ATOMS = np.array([[0.0, 0.0, 0.0], [1.5, 0.2, 0.1]])


# ---------------------------------------------------------------------------------------
# structures


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_positions(bad):
    positions = np.array([[0.0, 0.0, 0.0], [1.5, 0.0, 0.0], [0.0, 1.5, 0.0], [0.0, 0.0, 1.5]])
    positions[2, 1] = bad
    with pytest.raises(ValueError, match=re.escape("positions contain NaN or inf (atom 2)")):
        quests_core.compute_descriptors(positions)
    with pytest.raises(ValueError, match=re.escape("positions contain NaN or inf (atom 2)")):
        quests_core.compute_descriptors(positions, CELL, True)


def test_positions_shape():
    with pytest.raises(ValueError, match=re.escape("positions must have shape (n_atoms, 3), got (4, 2)")):
        quests_core.compute_descriptors(np.zeros((4, 2)))


@pytest.mark.parametrize(("pbc", "axis"), [(True, 1), ((True, True, False), 1), ((False, False, True), 2)])
def test_zero_length_cell_vector_on_a_periodic_axis(pbc, axis):
    cell = CELL.copy()
    cell[axis] = 0.0
    with pytest.raises(ValueError, match=f"cell vector {axis} has zero length on a periodic axis"):
        quests_core.compute_descriptors(TWO_ATOMS, cell, pbc)


def test_zero_length_cell_vector_on_an_open_axis_is_fine():
    cell = CELL.copy()
    cell[2] = 0.0
    x = quests_core.compute_descriptors(TWO_ATOMS, cell, (True, True, False), k=4)
    assert x.shape == (2, 7) and x[0, 0] > 0


def test_other_cell_errors():
    with pytest.raises(ValueError, match="cell is required when pbc is true on any axis"):
        quests_core.compute_descriptors(TWO_ATOMS, None, (False, True, False))
    with pytest.raises(ValueError, match=re.escape("cell must have shape (3, 3), got (2, 3)")):
        quests_core.compute_descriptors(TWO_ATOMS, CELL[:2], True)
    with pytest.raises(ValueError, match="cell contains NaN or inf"):
        quests_core.compute_descriptors(TWO_ATOMS, np.where(np.eye(3) > 0, np.nan, 0.0), True)
    dependent = np.array([[4.0, 0.0, 0.0], [8.0, 0.0, 0.0], [0.0, 0.0, 4.0]])
    with pytest.raises(ValueError, match="cell vectors of the periodic axes are linearly dependent"):
        quests_core.compute_descriptors(TWO_ATOMS, dependent, True)


@pytest.mark.parametrize(("third", "cell", "pbc"), [
    ([0.0, 0.0, 0.0], None, False),  # literally the same position
    ([1e-9, 0.0, 0.0], None, False),  # within 1e-8 Å
    ([4.0, 0.0, 0.0], CELL, True),  # the same site one lattice vector away
    ([8.0, -4.0, 4.0], CELL, True),
    ([4.0, 0.0, 0.0], CELL, (True, False, False)),
])
def test_two_atoms_at_the_same_position(third, cell, pbc):
    positions = np.array([[0.0, 0.0, 0.0], [1.5, 0.0, 0.0], third])
    with pytest.raises(ValueError, match=re.escape("positions: atom 0 is at the same position as atom 2")):
        quests_core.compute_descriptors(positions, cell, pbc)


def test_atoms_a_lattice_vector_apart_along_an_open_axis_are_distinct():
    positions = np.array([[0.0, 0.0, 0.0], [1.5, 0.0, 0.0], [0.0, 4.0, 0.0]])
    x = quests_core.compute_descriptors(positions, CELL, (True, False, False), k=4)
    assert np.isfinite(x).all() and x.max() < 1.0


@pytest.mark.parametrize("k", [0, -1, 2.5])
def test_bad_k(k):
    with pytest.raises(ValueError, match=re.escape(f"k must be an integer >= 1, got {k!r}")):
        quests_core.compute_descriptors(TWO_ATOMS, k=k)


@pytest.mark.parametrize("cutoff", [0, 0.0, -1.0, np.nan])
def test_bad_cutoff(cutoff):
    with pytest.raises(ValueError, match="cutoff must be > 0, got"):
        quests_core.compute_descriptors(TWO_ATOMS, cutoff=cutoff)


def test_bad_species():
    with pytest.raises(ValueError, match=re.escape("species must have one label per atom (2), got shape (3,)")):
        quests_core.compute_descriptors(TWO_ATOMS, species=[1, 1, 2])
    with pytest.raises(ValueError, match=re.escape("species [8] are not in species_list [1]")):
        quests_core.compute_descriptors(TWO_ATOMS, species=[1, 8], species_list=[1])
    with pytest.raises(ValueError, match="species_list is given but species is not"):
        quests_core.compute_descriptors(TWO_ATOMS, species_list=[1])


def test_adapter_rejects_non_atoms():
    from ase import Atoms

    with pytest.raises(ValueError, match="dataset item 1 is a ndarray, not ase.Atoms"):
        quests_core.get_descriptors([Atoms("H2", positions=TWO_ATOMS), TWO_ATOMS])


# ---------------------------------------------------------------------------------------
# descriptors and bandwidths given to the estimators

X = np.random.default_rng(0).normal(0.0, 0.05, (12, 7))


def _estimator_calls(h):
    return {
        "log_kernel_sum": lambda: quests_core.log_kernel_sum(X[:3], X, h),
        "kernel_sum": lambda: quests_core.kernel_sum(X[:3], X, h),
        "entropy": lambda: quests_core.entropy(X, h),
        "diversity": lambda: quests_core.diversity(X, h),
        "delta_entropy": lambda: quests_core.delta_entropy(X[:3], X, h),
        "novelty": lambda: quests_core.novelty(X[:3], X, h),
        "overlap": lambda: quests_core.overlap(X[:3], X, h),
    }


ESTIMATORS = sorted(_estimator_calls(0.1))


@pytest.mark.parametrize("function", ESTIMATORS)
@pytest.mark.parametrize("h", [0, 0.0, -0.015, [0.01, 0.0], [0.01, -0.2, 0.3], np.nan, [0.01, np.inf]])
def test_bandwidth_must_be_positive(function, h):
    with pytest.raises(ValueError, match=re.escape(f"bandwidth must be > 0, got {h!r}")):
        _estimator_calls(h)[function]()


@pytest.mark.parametrize("function", ESTIMATORS)
@pytest.mark.parametrize("h", [[], [[0.01, 0.02]]])
def test_bandwidth_must_be_a_number_or_a_list(function, h):
    with pytest.raises(ValueError, match="bandwidth must be a number or a 1-D list of numbers, got shape"):
        _estimator_calls(h)[function]()


@pytest.mark.parametrize("function", [quests_core.log_kernel_sum, quests_core.kernel_sum, quests_core.delta_entropy,
                                      quests_core.novelty, quests_core.overlap])
def test_descriptor_widths_must_match(function):
    y = np.zeros((4, 63))
    x = np.zeros((9, 31))
    with pytest.raises(ValueError, match="descriptor widths differ: y has 63 columns, x has 31"):
        function(y, x, 0.015)
    with pytest.raises(ValueError, match="descriptor widths differ: y has 31 columns, x has 63"):
        function(x.astype(np.float32), y, 0.015)


@pytest.mark.parametrize("function", [quests_core.log_kernel_sum, quests_core.delta_entropy])
def test_bad_query_or_reference_descriptors(function):
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="y contains NaN or inf"):
        function(bad, X, 0.1)
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        function(X, np.where(bad == bad, bad, np.inf), 0.1)
    message = "x must be a 2-D (n_environments, n_features) array, got shape (7,)"
    with pytest.raises(ValueError, match=re.escape(message)):
        function(X, X[0], 0.1)
    with pytest.raises(ValueError, match="y has no environments"):
        function(X[:0], X, 0.1)


@pytest.mark.parametrize("function", [quests_core.entropy, quests_core.diversity])
def test_bad_dataset_descriptors_name_x(function):
    # entropy(x) and diversity(x) take only x: their errors must name x, not an internal y
    bad = X.copy()
    bad[3, 2] = np.inf
    with pytest.raises(ValueError, match="^x contains NaN or inf"):
        function(bad, 0.1)
    with pytest.raises(ValueError, match=re.escape("x must be a 2-D (n_environments, n_features) array")):
        function(X[0], 0.1)
    with pytest.raises(ValueError, match="^x has no environments"):
        function(X[:0], 0.1)


def test_block_size_must_be_positive():
    with pytest.raises(ValueError, match="block_size must be >= 1, got 0"):
        quests_core.log_kernel_sum(X, X, 0.1, block_size=0)
    with pytest.raises(ValueError, match="block_size must be >= 1, got -5"):
        quests_core.entropy(X, 0.1, block_size=-5)


def test_partials_with_different_overlap_eps_do_not_add():
    a = DeltaEntropyPartial.from_dh([0.1, -0.2], overlap_eps=1e-5)
    b = DeltaEntropyPartial.from_dh([0.3], overlap_eps=1e-3)
    with pytest.raises(ValueError, match="overlap_eps differs: 1e-05 vs 0.001"):
        a + b
