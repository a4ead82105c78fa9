"""The selection strategies as one table: each orders a pool of frames and says why.

A *pool* is every frame that may be picked, flattened over the MD runs of one selection: its deviations, the run
each frame comes from, and lazily computed descriptors. A strategy (``trust``, ``random``, ``maxvol``, ``direct``)
takes the pool and the validated settings and returns a :class:`Picks`: the pool positions in the order to take
them (best first), optionally per-frame extrapolation grades or cluster labels, pooled frame features that
de-duplication may reuse, and the details of the run for the report. Caps and de-duplication are applied
afterwards by the caller, walking that order.

Plain numpy / scikit-learn, no AiiDA (the calcfunction is :func:`aiida_sianode.workflows.select.select_frames`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from aiida_sianode.selection.trust import uncertainty_order


@dataclass
class Pool:
    """The frames a strategy chooses from, flattened over runs; descriptors are computed only when asked for."""

    deviation: np.ndarray
    """The chosen deviation of every pool frame (eV/Å for the max force deviation)."""
    groups: np.ndarray
    """The run (index) of every pool frame."""
    per_atom: Callable[[], list[np.ndarray]]
    """Per-atom descriptors of every pool frame, one ``(natoms, n_features)`` array each (cached by the caller)."""
    numbers: Callable[[], list[np.ndarray]]
    """The atomic numbers of every pool frame."""
    element_numbers: list[int]
    """Every element of the runs (and the training set), as sorted atomic numbers."""
    training_per_atom: Callable[[], list[np.ndarray]] = list
    """Per-atom descriptors of the training frames (maxvol's starting active set); empty without a training set."""

    def __len__(self) -> int:
        return len(self.deviation)


@dataclass
class Picks:
    """What a strategy returns."""

    order: np.ndarray
    """Pool positions, best first (caps and de-duplication walk it)."""
    grades: np.ndarray | None = None
    """maxvol: the extrapolation grade of every pool frame."""
    clusters: np.ndarray | None = None
    """direct: the cluster of every pool frame."""
    features: np.ndarray | None = None
    """direct: the pooled (per-frame) descriptors, reused by de-duplication."""
    details: dict = field(default_factory=dict)
    """Strategy-specific numbers for the report (JSON-serialisable; pool positions as ints)."""


def pick_trust(pool: Pool, settings: dict) -> Picks:
    """DP-GEN: candidates most uncertain first (or in a seeded random order)."""
    order = uncertainty_order(pool.deviation, np.arange(len(pool)), settings['order'], settings['seed'])
    return Picks(order=order)


def pick_random(pool: Pool, settings: dict) -> Picks:
    """The seeded random baseline."""
    from aiida_sianode.selection.random import random_sample

    return Picks(order=random_sample(len(pool), None, seed=settings['seed']))


def pick_maxvol(pool: Pool, settings: dict) -> Picks:
    """D-optimality (MTP): the frames whose atomic environments extend the active set most, graded."""
    from aiida_sianode.selection.maxvol import select_maxvol

    training = pool.training_per_atom() or None
    result = select_maxvol(
        pool.per_atom(),
        training,
        threshold=settings['grade_threshold'],
        max_frames=settings['max_total'] if settings['dedup_threshold'] is None else None,
        groups=pool.groups,
        max_per_group=settings['max_per_run'],
        tol=settings['maxvol_tol'],
        regularization=settings['regularization'],
    )
    details = {
        'n_training_frames': len(training) if training else 0,
        'n_training_environments': int(sum(len(block) for block in training)) if training else 0,
        'n_swaps': result.n_swaps,
        'grade_at_selection': {int(f): float(g) for f, g in zip(result.selected, result.grades_at_selection)},
    }
    return Picks(order=result.selected, grades=result.grades, details=details)


def pick_direct(pool: Pool, settings: dict) -> Picks:
    """DIRECT: stratified picks from BIRCH clusters of the encoded, pooled frame descriptors."""
    from aiida_sianode.selection.descriptors import mean_descriptors
    from aiida_sianode.selection.direct import direct_sample

    numbers = elements = None
    if settings['per_element']:
        numbers, elements = pool.numbers(), pool.element_numbers
    features = mean_descriptors(pool.per_atom(), numbers=numbers, elements=elements)
    n_clusters = settings['n_clusters']
    if n_clusters is None and settings['birch_threshold'] is None:
        n_clusters = math.ceil(settings['max_total'] / settings['k_per_cluster'])
    result = direct_sample(
        features,
        n_clusters=n_clusters,
        threshold=settings['birch_threshold'] if n_clusters is None else None,
        k=settings['k_per_cluster'],
        explained_variance=settings['explained_variance'],
    )
    details = {
        'n_clusters': result.n_clusters,
        'n_components': result.encoding.n_components,
        'explained_variance': result.encoding.explained_variance,
        'birch_threshold': result.threshold,
    }
    return Picks(order=result.selected, clusters=result.labels, features=features, details=details)


#: Every strategy by name: ``(pool, settings) -> Picks``.
STRATEGIES: dict[str, Callable[[Pool, dict], Picks]] = {
    'trust': pick_trust,
    'maxvol': pick_maxvol,
    'direct': pick_direct,
    'random': pick_random,
}


def pick(strategy: str, pool: Pool, settings: dict) -> Picks:
    """Run ``strategy`` on ``pool``; an empty pool gives an empty order."""
    if strategy not in STRATEGIES:
        raise ValueError(f'unknown strategy {strategy!r}; choose one of: {", ".join(STRATEGIES)}')
    if len(pool) == 0:
        return Picks(order=np.zeros(0, dtype=int))
    return STRATEGIES[strategy](pool, settings)
