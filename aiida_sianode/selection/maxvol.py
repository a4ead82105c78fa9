"""D-optimal frame selection with the maxvol algorithm (the active learning of MTP / MLIP-3).

Every atomic environment is a row ``x`` (its descriptor, length ``r``). An *active set* is ``r`` rows whose
``r x r`` matrix ``A`` has (locally) maximal ``|det A|``: the most spread-out environments. Any environment can
be written in the active set's basis, ``x = c A``; its **extrapolation grade** is ``gamma = max_j |c_j|``.
``gamma <= 1`` means the environment lies inside the parallelotope spanned by the active set (interpolation);
``gamma > 1`` means that swapping it into the active set would multiply ``|det A|`` by ``gamma``: it extends
what the training set covers. A frame's grade is the largest grade of its atoms (Podryabinkin & Shapeev,
Comput. Mater. Sci. 140, 171 (2017); Podryabinkin et al., J. Chem. Phys. 159, 084112 (2023)).

:func:`maxvol` is the algorithm of Goreinov, Oseledets, Savostyanov, Tyrtyshnikov, Zamarashkin ("How to find a
good submatrix", 2010): start from ``r`` independent rows, then swap in the row/column pair with the largest
``|c|`` (a rank-one update of the coefficient matrix) until every ``|c| <= 1 + tol``. The result is a
*dominant* submatrix: no single row swap raises its volume by more than ``1 + tol``, and its volume is within
``((1 + tol)^2 r)^(r/2)`` of the global maximum (Hadamard's inequality), usually equal to it on small problems.
There is no maintained library for this on PyPI that fits our needs, so it is written here on numpy/scipy.

:func:`select_maxvol` builds the active set from the training set's environments, then picks candidate frames
greedily: the frame with the highest grade first, its environments swapped into the active set, every grade
updated, and again, until no frame's grade exceeds ``threshold`` (or a cap is reached). A near-copy of a frame
already picked has a grade close to 1 afterwards, so the greedy picks are naturally diverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg

#: Rows handled at once in the rank-one updates and the grade evaluation (bounds the temporary memory).
CHUNK_ROWS = 32768
#: Recompute the coefficient matrix from scratch after this many rank-one updates (bounds round-off drift).
REFRESH_SWAPS = 64

VIRTUAL = -1
"""Owner of a regularisation row (no frame) in an active set."""
TRAINING = -2
"""Owner of a training-set environment in an active set."""


def _as_matrix(matrix: np.ndarray, name: str = 'matrix') -> np.ndarray:
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f'{name} must be 2-d (rows x columns), got shape {matrix.shape}')
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f'{name} contains NaN or infinite values')
    return matrix


def _check_tol(tol: float) -> None:
    if not np.isfinite(tol) or tol < 0:
        raise ValueError(f'tol must be a finite number >= 0, got {tol!r}')


def _solve_right(rows: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Return ``rows @ inv(basis)`` (one small inverse, then a matrix product: fast for many rows)."""
    inverse = scipy.linalg.inv(basis, check_finite=False)
    return rows @ inverse


def _update_coefficients(coefficients: np.ndarray, row: int, column: int) -> None:
    """Rank-one update of ``B = A inv(A_I)`` in place after row ``row`` of ``A`` replaced active position ``column``.

    With ``b = B[row]`` the new ``B`` is ``B - B[:, column] (b - e_column)^T / b[column]`` (Sherman-Morrison).
    """
    pivot_row = coefficients[row].copy()
    pivot = pivot_row[column]
    pivot_row[column] -= 1.0
    pivot_row /= pivot
    pivot_column = coefficients[:, column].copy()
    for start in range(0, coefficients.shape[0], CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        coefficients[start:stop] -= np.outer(pivot_column[start:stop], pivot_row)


def _grades_with_inverse(rows: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Return ``max_j |(rows @ inverse)_ij|`` per row, chunk by chunk (never holds all coefficients)."""
    out = np.empty(rows.shape[0])
    for start in range(0, rows.shape[0], CHUNK_ROWS):
        out[start : start + CHUNK_ROWS] = np.abs(rows[start : start + CHUNK_ROWS] @ inverse).max(axis=1)
    return out


def initial_rows(matrix: np.ndarray) -> np.ndarray:
    """Return ``r`` well-conditioned starting rows of an ``n x r`` matrix (QR with column pivoting of its transpose).

    :raises ValueError: when the matrix has rank below ``r`` (no ``r`` independent rows exist).
    """
    matrix = _as_matrix(matrix)
    n_rows, rank = matrix.shape
    if n_rows < rank:
        raise ValueError(f'maxvol needs at least as many rows as columns, got {n_rows} rows and {rank} columns')
    _, triangle, pivots = scipy.linalg.qr(matrix.T, mode='economic', pivoting=True, check_finite=False)
    diagonal = np.abs(np.diag(triangle))
    if rank and (diagonal[0] == 0 or diagonal[rank - 1] <= diagonal[0] * max(matrix.shape) * np.finfo(float).eps):
        numerical_rank = int(np.count_nonzero(diagonal > diagonal[0] * max(matrix.shape) * np.finfo(float).eps))
        raise ValueError(f'the matrix has rank {numerical_rank} < {rank} columns: no {rank} independent rows exist')
    return np.sort(pivots[:rank])


@dataclass
class MaxvolResult:
    """The result of :func:`maxvol`."""

    indices: np.ndarray
    """The ``r`` chosen rows; position ``j`` of the active set is row ``indices[j]``."""
    coefficients: np.ndarray
    """``B = A @ inv(A[indices])`` (``n x r``); every ``|B| <= 1 + tol``."""
    n_swaps: int


def maxvol(matrix: np.ndarray, tol: float = 0.05, max_swaps: int | None = None, start=None) -> MaxvolResult:
    """Find ``r`` rows of the ``n x r`` matrix ``A`` that form a dominant (locally maximum-volume) submatrix.

    :param matrix: ``n x r`` with ``n >= r`` and rank ``r``.
    :param tol: stop when every coefficient ``|B_ij| <= 1 + tol``; each swap multiplies the volume by more than
        ``1 + tol``, so the loop ends.
    :param max_swaps: safety limit on the number of swaps (default ``100 r``); reaching it raises ``RuntimeError``.
    :param start: ``r`` distinct starting rows (default: :func:`initial_rows`).
    """
    matrix = _as_matrix(matrix)
    _check_tol(tol)
    n_rows, rank = matrix.shape
    if rank == 0:
        raise ValueError('the matrix has no columns')
    if start is None:
        indices = initial_rows(matrix)
    else:
        indices = np.asarray(start, dtype=int).copy()
        if (
            indices.shape != (rank,)
            or len(set(indices.tolist())) != rank
            or indices.min() < 0
            or indices.max() >= n_rows
        ):
            raise ValueError(f'start must be {rank} distinct row indices in [0, {n_rows}), got {start!r}')
        if np.linalg.matrix_rank(matrix[indices]) < rank:
            raise ValueError('the starting rows are linearly dependent')
    limit = 100 * rank if max_swaps is None else int(max_swaps)
    coefficients = _solve_right(matrix, matrix[indices])
    n_swaps = 0
    while True:
        flat = int(np.argmax(np.abs(coefficients)))
        row, column = divmod(flat, rank)
        if abs(coefficients[row, column]) <= 1.0 + tol:
            break
        if n_swaps >= limit:
            raise RuntimeError(
                f'maxvol did not converge in {limit} swaps (largest coefficient {coefficients[row, column]})'
            )
        _update_coefficients(coefficients, row, column)
        indices[column] = row
        n_swaps += 1
        if n_swaps % REFRESH_SWAPS == 0:
            coefficients = _solve_right(matrix, matrix[indices])
    return MaxvolResult(indices=indices, coefficients=coefficients, n_swaps=n_swaps)


def extrapolation_grades(rows: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Return the extrapolation grade ``max_j |c_j|`` of every row, where ``row = c @ basis``.

    ``basis`` is the ``r x r`` active-set matrix; ``rows`` is ``n x r``.
    """
    rows = _as_matrix(rows, 'rows')
    basis = _as_matrix(basis, 'basis')
    if basis.shape[0] != basis.shape[1] or rows.shape[1] != basis.shape[0]:
        raise ValueError(f'need rows (n x r) and a square basis (r x r), got {rows.shape} and {basis.shape}')
    return _grades_with_inverse(rows, scipy.linalg.inv(basis, check_finite=False))


def frame_grades(atom_grades: np.ndarray, frame_sizes: Sequence[int]) -> np.ndarray:
    """Return the grade of each frame: the largest grade of its atoms (rows are stacked frame after frame)."""
    sizes = np.asarray(frame_sizes, dtype=int)
    if np.any(sizes <= 0):
        raise ValueError('every frame needs at least one atom')
    if sizes.sum() != len(atom_grades):
        raise ValueError(f'frame sizes add up to {sizes.sum()} rows, but there are {len(atom_grades)} atom grades')
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.maximum.reduceat(np.asarray(atom_grades, dtype=float), offsets)


def _stack(frames: Sequence[np.ndarray] | np.ndarray | None, name: str, width: int | None = None):
    if frames is None:
        return np.zeros((0, width or 0)), np.zeros(0, dtype=int)
    if isinstance(frames, np.ndarray) and frames.ndim == 2:
        blocks = [_as_matrix(frames, name)]
    else:
        blocks = [_as_matrix(block, f'{name} frame {index}') for index, block in enumerate(frames)]
    if not blocks:
        return np.zeros((0, width or 0)), np.zeros(0, dtype=int)
    widths = {block.shape[1] for block in blocks}
    if len(widths) != 1 or (width is not None and widths != {width}):
        raise ValueError(f'{name} descriptors have {sorted(widths)} columns, expected {width or "one width"}')
    return np.concatenate(blocks), np.array([len(block) for block in blocks], dtype=int)


@dataclass
class ActiveSet:
    """``r`` descriptor rows (the basis) and who owns each: a frame index, :data:`TRAINING` or :data:`VIRTUAL`."""

    basis: np.ndarray
    owners: np.ndarray

    def grades(self, rows: np.ndarray) -> np.ndarray:
        """Return the extrapolation grade of every row with respect to this active set."""
        return extrapolation_grades(rows, self.basis)


def build_active_set(
    training: np.ndarray | None, scale: np.ndarray, tol: float = 0.05, regularization: float = 1e-3
) -> ActiveSet:
    """Return the maxvol active set of the training environments ``training`` (``n x r``).

    ``r`` regularisation rows ``regularization * diag(scale)`` are added first, so that an active set exists even
    when the training set is empty or spans fewer than ``r`` directions; a direction that no training row covers
    keeps its regularisation row, and a candidate reaching into it gets a grade of about ``1 / regularization``.
    """
    _check_tol(tol)
    if not np.isfinite(regularization) or regularization <= 0:
        raise ValueError(f'regularization must be a finite number > 0, got {regularization!r}')
    scale = np.asarray(scale, dtype=float)
    rank = len(scale)
    virtual = regularization * np.diag(scale)
    rows = virtual if training is None or len(training) == 0 else np.vstack([virtual, training])
    result = maxvol(rows, tol=tol, start=np.arange(rank))
    owners = np.where(result.indices < rank, VIRTUAL, TRAINING)
    return ActiveSet(basis=rows[result.indices].copy(), owners=owners)


@dataclass
class MaxvolSelection:
    """The result of :func:`select_maxvol`."""

    selected: np.ndarray
    """Picked candidate frames, in the order they were picked."""
    grades: np.ndarray
    """Every candidate frame's grade with respect to the training set's active set."""
    grades_at_selection: np.ndarray
    """The grade each picked frame had when it was picked (after the earlier picks joined the active set)."""
    active_set: ActiveSet
    """The active set after the picks (training environments, picked frames' environments, regularisation rows)."""
    n_swaps: int


def select_maxvol(
    candidates: Sequence[np.ndarray],
    training: Sequence[np.ndarray] | np.ndarray | None = None,
    threshold: float = 2.0,
    max_frames: int | None = None,
    groups: Sequence[int] | np.ndarray | None = None,
    max_per_group: int | None = None,
    tol: float = 0.05,
    regularization: float = 1e-3,
) -> MaxvolSelection:
    """Pick the candidate frames whose atomic environments extend the training set's active set most.

    :param candidates: per candidate frame, its per-atom descriptors ``(n_atoms, r)``.
    :param training: per training frame its per-atom descriptors, or all training rows stacked ``(n, r)``;
        ``None`` or empty: pure D-optimal design within the candidates.
    :param threshold: pick frames while the best remaining grade exceeds this (MTP practice: 2; a value
        ``<= 1 + tol`` picks until every candidate environment is interpolated).
    :param max_frames: at most this many picks.
    :param groups: the group (MD run) of each candidate frame, for ``max_per_group``.
    :param max_per_group: at most this many picks from one group.
    :param tol: maxvol's tolerance: environments with ``|c| <= 1 + tol`` do not enter the active set.
    :param regularization: size of the regularisation rows relative to the columns' RMS (see
        :func:`build_active_set`).
    """
    from aiida_sianode.selection.trust import validate_cap

    _check_tol(tol)
    if not np.isfinite(threshold) or threshold < 1:
        raise ValueError(f'threshold must be a finite number >= 1, got {threshold!r}')
    validate_cap(max_frames, 'max_frames')
    validate_cap(max_per_group, 'max_per_group')
    if len(candidates) == 0:
        raise ValueError('there are no candidate frames to select from')
    rows, sizes = _stack(candidates, 'candidate')
    if np.any(sizes == 0):
        raise ValueError('every candidate frame needs at least one atom')
    train_rows, _ = _stack(training, 'training', width=rows.shape[1])
    n_frames = len(sizes)
    groups = np.zeros(n_frames, dtype=int) if groups is None else np.asarray(groups)
    if groups.shape != (n_frames,):
        raise ValueError(f'groups must have one entry per candidate frame ({n_frames}), got shape {groups.shape}')

    squares = np.einsum('ij,ij->j', rows, rows) + np.einsum('ij,ij->j', train_rows, train_rows)
    scale = np.sqrt(squares / (len(rows) + len(train_rows)))
    scale[scale == 0] = 1.0
    active = build_active_set(train_rows, scale, tol=tol, regularization=regularization)
    basis, owners = active.basis.copy(), active.owners.copy()

    offsets = np.concatenate([[0], np.cumsum(sizes)])
    inverse = scipy.linalg.inv(basis, check_finite=False)
    initial = frame_grades(_grades_with_inverse(rows, inverse), sizes)
    current = initial.copy()
    available = np.ones(n_frames, dtype=bool)
    per_group: dict = {}
    picked: list[int] = []
    picked_grades: list[float] = []
    n_swaps = 0
    while max_frames is None or len(picked) < max_frames:
        masked = np.where(available, current, -np.inf)
        frame = int(np.argmax(masked))
        if not available[frame] or masked[frame] <= threshold:
            break
        picked.append(frame)
        picked_grades.append(float(current[frame]))
        available[frame] = False
        group = groups[frame]
        per_group[group] = per_group.get(group, 0) + 1
        if max_per_group is not None and per_group[group] >= max_per_group:
            available[groups == group] = False
        # Swap the frame's environments into the active set; only its own coefficients are needed for that.
        start, stop = offsets[frame], offsets[frame + 1]
        local = rows[start:stop] @ inverse
        swapped = False
        while True:
            local_row, column = divmod(int(np.argmax(np.abs(local))), basis.shape[0])
            if abs(local[local_row, column]) <= 1.0 + tol:
                break
            _update_coefficients(local, local_row, column)
            basis[column] = rows[start + local_row]
            owners[column] = frame
            swapped = True
            n_swaps += 1
        if swapped:
            inverse = scipy.linalg.inv(basis, check_finite=False)
            current = frame_grades(_grades_with_inverse(rows, inverse), sizes)
    return MaxvolSelection(
        selected=np.asarray(picked, dtype=int),
        grades=initial,
        grades_at_selection=np.asarray(picked_grades),
        active_set=ActiveSet(basis=basis, owners=owners),
        n_swaps=n_swaps,
    )
