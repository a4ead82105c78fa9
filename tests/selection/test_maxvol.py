"""maxvol (D-optimality) and extrapolation grades on matrices whose answers are known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from aiida_sianode.selection.maxvol import (
    TRAINING,
    VIRTUAL,
    extrapolation_grades,
    frame_grades,
    maxvol,
    select_maxvol,
)


def volume(matrix, rows):
    return abs(np.linalg.det(matrix[list(rows)]))


def test_scaled_identity_block_is_found_from_any_start():
    rng = np.random.default_rng(0)
    matrix = rng.uniform(-1, 1, size=(50, 4))
    block = [7, 19, 23, 41]
    matrix[block] = 10 * np.eye(4)
    for start in (None, [0, 1, 2, 3], [10, 20, 30, 40]):
        result = maxvol(matrix, tol=0.0, start=start)
        assert sorted(result.indices.tolist()) == block
        # the block rows are the basis: their coefficients form a permutation matrix, every other row is A / 10
        np.testing.assert_allclose(np.abs(result.coefficients[block]).sum(axis=0), np.ones(4), atol=1e-12)
        np.testing.assert_allclose(result.coefficients @ matrix[result.indices], matrix, atol=1e-12)
        assert np.abs(result.coefficients).max() == pytest.approx(1.0)
    assert maxvol(matrix, start=[0, 1, 2, 3]).n_swaps >= 4


def test_global_maximum_volume_on_a_brute_forceable_case():
    matrix = np.random.default_rng(0).normal(size=(8, 3))
    result = maxvol(matrix, tol=0.0)
    best = max(volume(matrix, rows) for rows in itertools.combinations(range(8), 3))
    assert volume(matrix, result.indices) == pytest.approx(best, rel=1e-12)
    assert volume(matrix, result.indices) >= max(
        volume(matrix, rows) for rows in itertools.combinations(range(8), 3) if set(rows) != set(result.indices)
    )


def test_dominance_and_hadamard_bound_over_many_small_matrices():
    """maxvol gives a dominant submatrix: no single swap grows the volume by more than 1 + tol, and the volume is
    within ((1 + tol)^2 r)^(r/2) of the global maximum. Usually it is the global maximum itself."""
    tol, rank, hits = 0.05, 3, 0
    for seed in range(200):
        matrix = np.random.default_rng(seed).normal(size=(8, rank))
        result = maxvol(matrix, tol=tol)
        chosen = volume(matrix, result.indices)
        assert np.abs(result.coefficients).max() <= 1 + tol + 1e-12
        for position, row in itertools.product(range(rank), range(8)):
            swapped = result.indices.copy()
            swapped[position] = row
            assert volume(matrix, swapped) <= (1 + tol) * chosen * (1 + 1e-12)
        best = max(volume(matrix, rows) for rows in itertools.combinations(range(8), rank))
        assert chosen >= best / ((1 + tol) ** 2 * rank) ** (rank / 2)
        hits += chosen >= best * (1 - 1e-9)
    assert hits >= 180


def test_rank_deficient_matrix_and_bad_start_are_refused():
    matrix = np.ones((6, 2))
    with pytest.raises(ValueError, match='rank 1 < 2'):
        maxvol(matrix)
    with pytest.raises(ValueError, match='distinct row indices'):
        maxvol(np.eye(3), start=[0, 0, 1])
    with pytest.raises(ValueError, match='at least as many rows'):
        maxvol(np.ones((2, 3)))


def test_extrapolation_grades_inside_on_and_outside_the_active_set():
    basis = 2 * np.eye(3)
    rows = np.array([[1.0, -1.0, 0.5], [2.0, 0.0, 0.0], [0.0, 0.0, -2.0], [6.0, 0.0, 0.0], [1.0, 1.0, 3.0]])
    np.testing.assert_allclose(extrapolation_grades(rows, basis), [0.5, 1.0, 1.0, 3.0, 1.5])
    # a general (non-orthogonal) active set from a point cloud: the cloud is interpolated, an outlier is not
    cloud = np.random.default_rng(2).normal(size=(400, 4))
    result = maxvol(cloud, tol=0.0)
    grades = extrapolation_grades(cloud, cloud[result.indices])
    assert grades.max() == pytest.approx(1.0)
    assert np.sort(grades)[-4:] == pytest.approx(np.ones(4))  # the active rows themselves
    outlier = 5 * cloud[result.indices[0]] + 0.1 * cloud[result.indices[1]]
    assert extrapolation_grades(outlier[None], cloud[result.indices])[0] == pytest.approx(5.0)
    convex = 0.3 * cloud[result.indices[0]] - 0.6 * cloud[result.indices[2]]
    assert extrapolation_grades(convex[None], cloud[result.indices])[0] == pytest.approx(0.6)


def test_frame_grade_is_the_largest_atom_grade():
    assert frame_grades(np.array([0.5, 2.0, 1.0, 0.7, 0.2]), [2, 3]).tolist() == [2.0, 1.0]
    with pytest.raises(ValueError, match='add up'):
        frame_grades(np.ones(4), [2, 3])


@pytest.fixture
def environments():
    """Training environments (a 3-d cloud) and candidate frames with known novelty."""
    rng = np.random.default_rng(3)
    training = [rng.normal(size=(10, 3)) for _ in range(30)]
    inside = 0.1 * rng.normal(size=(4, 3))
    far_x = np.vstack([inside, [[12.0, 0.0, 0.0]]])
    near_copy_far_x = np.vstack([inside + 1e-3, [[12.01, 0.0, 0.0]]])
    far_z = np.vstack([inside, [[0.0, 0.5, -15.0]]])
    candidates = [inside, far_x, near_copy_far_x, far_z]
    return training, candidates


def test_select_maxvol_picks_novel_frames_once(environments):
    training, candidates = environments
    result = select_maxvol(candidates, training, threshold=2.0)
    assert result.grades[0] <= 1.05  # environments like the training set's
    assert min(result.grades[1:]) > 2.0  # three frames reach far outside
    # frames 1 and 2 are near copies: only the more extreme one (2, reaching 12.01 along x) is picked, because
    # frame 1 is no longer novel once frame 2 is in the active set
    assert result.grades[2] > result.grades[1]
    assert sorted(result.selected.tolist()) == [2, 3]
    assert result.selected[0] == np.argmax(result.grades)  # the largest grade first
    assert result.grades_at_selection[0] == pytest.approx(result.grades.max())
    assert set(result.active_set.owners.tolist()) >= {2, 3}
    assert TRAINING in result.active_set.owners and VIRTUAL not in result.active_set.owners
    np.testing.assert_array_less(extrapolation_grades(np.vstack(candidates), result.active_set.basis), 2.0)


def test_select_maxvol_caps_and_threshold(environments):
    training, candidates = environments
    first = int(np.argmax(select_maxvol(candidates, training, max_frames=0, threshold=1.0).grades))
    assert select_maxvol(candidates, training, max_frames=1).selected.tolist() == [first]
    assert select_maxvol(candidates, training, groups=[0, 0, 0, 0], max_per_group=1).selected.tolist() == [first]
    assert select_maxvol(candidates, training, groups=[0, 1, 1, 0], max_per_group=1).selected.tolist() == [2, 3]
    assert select_maxvol(candidates, training, groups=[0, 1, 0, 1], max_per_group=1).selected.tolist() == [2, 3]
    assert select_maxvol(candidates, training, threshold=100.0).selected.size == 0


def test_select_maxvol_without_training_set_is_d_optimal_in_the_pool():
    rng = np.random.default_rng(4)
    candidates = [rng.normal(size=(3, 2)) for _ in range(6)]
    candidates[2] = np.array([[9.0, 0.0], [0.0, 0.1], [0.1, 0.1]])
    candidates[5] = np.array([[0.0, 9.0], [0.1, 0.0], [0.0, 0.0]])
    result = select_maxvol(candidates, None, threshold=1.05)
    assert sorted(result.selected.tolist()) == [2, 5]
    assert VIRTUAL not in result.active_set.owners
    with pytest.raises(ValueError, match='no candidate frames'):
        select_maxvol([], None)
    with pytest.raises(ValueError, match='columns'):
        select_maxvol(candidates, [np.ones((3, 5))])
