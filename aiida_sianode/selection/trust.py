"""Committee trust levels (DP-GEN): sort MD frames into accurate, candidate and failed, and pick candidates.

A frame's deviation ``d`` (by default the committee's max atomic force deviation, eV/Å; see
:mod:`aiida_sianode.engines.committee`) is compared with two trust levels:

* ``d < lower``: *accurate* -- the committee agrees, the frame teaches nothing new;
* ``lower <= d < upper``: *candidate* -- worth labelling;
* ``d >= upper`` (or ``d`` not finite): *failed* -- so far from the training data that the frame is probably
  unphysical; it is not labelled.

Candidates are picked most uncertain first (or in a seeded random order, DP-GEN's own choice), at most
``max_per_run`` from each MD run and ``max_total`` over all runs of one iteration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

ACCURATE = 0
CANDIDATE = 1
FAILED = 2
CLASS_NAMES = ('accurate', 'candidate', 'failed')
ORDERS = ('descending', 'random')


def validate_trust_levels(lower: float, upper: float | None) -> None:
    """Raise ``ValueError`` unless ``0 <= lower < upper`` (``upper=None`` means no upper trust level)."""
    if lower is None or not np.isfinite(lower) or lower < 0:
        raise ValueError(f'the lower trust level must be a finite number >= 0, got {lower!r}')
    if upper is not None and (not np.isfinite(upper) or upper <= lower):
        raise ValueError(f'the upper trust level must be a finite number above the lower one ({lower}), got {upper!r}')


def validate_cap(value: int | None, name: str) -> None:
    """Raise ``ValueError`` unless ``value`` is ``None`` or an integer >= 0."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f'`{name}` must be a whole number >= 0 or None, got {value!r}')


def classify_frames(deviations: Sequence[float] | np.ndarray, lower: float, upper: float | None) -> np.ndarray:
    """Return one class per frame: :data:`ACCURATE` (0), :data:`CANDIDATE` (1) or :data:`FAILED` (2).

    ``deviations`` is one value per frame (eV/Å for force deviations). A frame whose deviation is NaN or infinite
    counts as failed: the committee blew up on it. ``upper=None`` means no frame fails on its deviation.
    """
    validate_trust_levels(lower, upper)
    values = np.asarray(deviations, dtype=float)
    if values.ndim != 1:
        raise ValueError(f'deviations must be one value per frame (1-d), got shape {values.shape}')
    classes = np.full(values.shape, FAILED, dtype=np.int8)
    finite = np.isfinite(values)
    classes[finite & (values < lower)] = ACCURATE
    candidate = finite & (values >= lower)
    if upper is not None:
        candidate &= values < upper
    classes[candidate] = CANDIDATE
    return classes


def class_counts(classes: np.ndarray) -> dict[str, int]:
    """Return ``{'accurate': n, 'candidate': n, 'failed': n}`` for an array of frame classes."""
    classes = np.asarray(classes)
    return {name: int(np.count_nonzero(classes == code)) for code, name in enumerate(CLASS_NAMES)}


def class_fractions(classes: np.ndarray) -> dict[str, float]:
    """Return the fraction of frames in each class (all zero for an empty run)."""
    counts = class_counts(classes)
    total = sum(counts.values())
    return {name: (count / total if total else 0.0) for name, count in counts.items()}


def cap_selection(
    order: Sequence[int] | np.ndarray,
    groups: Sequence[int] | np.ndarray,
    max_per_group: int | None = None,
    max_total: int | None = None,
) -> np.ndarray:
    """Walk ``order`` (frame indices, best first) and keep each frame while its group and the total are under cap.

    ``groups[i]`` is the group (the MD run) of frame ``i``. Returns the kept frame indices in their order.
    """
    validate_cap(max_per_group, 'max_per_group')
    validate_cap(max_total, 'max_total')
    groups = np.asarray(groups)
    kept: list[int] = []
    per_group: dict[int, int] = {}
    for index in np.asarray(order, dtype=int):
        if max_total is not None and len(kept) >= max_total:
            break
        group = int(groups[index])
        if max_per_group is not None and per_group.get(group, 0) >= max_per_group:
            continue
        per_group[group] = per_group.get(group, 0) + 1
        kept.append(int(index))
    return np.asarray(kept, dtype=int)


def uncertainty_order(deviations: np.ndarray, indices: np.ndarray, order: str = 'descending', seed: int = 0):
    """Return ``indices`` sorted most uncertain first (ties: lower index first), or shuffled with ``seed``."""
    indices = np.asarray(indices, dtype=int)
    if order == 'descending':
        return indices[np.lexsort((indices, -np.asarray(deviations, dtype=float)[indices]))]
    if order == 'random':
        return np.random.default_rng(seed).permutation(indices)
    raise ValueError(f'unknown order {order!r}; choose one of: {", ".join(ORDERS)}')


@dataclass
class TrustSelection:
    """The result of :func:`select_by_trust` over several MD runs."""

    classes: list[np.ndarray]
    """Per run, the class of every frame (0 accurate, 1 candidate, 2 failed)."""
    selected: list[np.ndarray]
    """Per run, the picked frame indices, most uncertain first."""
    counts: list[dict[str, int]] = field(default_factory=list)
    fractions: list[dict[str, float]] = field(default_factory=list)
    order: list[tuple[int, int]] = field(default_factory=list)
    """All picks over all runs as ``(run, frame)``, in the order they were picked."""

    @property
    def total_fractions(self) -> dict[str, float]:
        """Class fractions over all frames of all runs."""
        return class_fractions(np.concatenate(self.classes) if self.classes else np.zeros(0))


def select_by_trust(
    deviations: Sequence[Sequence[float] | np.ndarray],
    lower: float,
    upper: float | None,
    max_per_run: int | None = None,
    max_total: int | None = None,
    order: str = 'descending',
    seed: int = 0,
) -> TrustSelection:
    """Classify the frames of every run and pick candidates, most uncertain first.

    :param deviations: one array of per-frame deviations per MD run.
    :param lower: the lower trust level (same unit as the deviations).
    :param upper: the upper trust level, or ``None`` for none.
    :param max_per_run: at most this many picks from one run.
    :param max_total: at most this many picks over all runs; the most uncertain of the per-run picks win.
    :param order: ``'descending'`` (most uncertain first) or ``'random'`` (a permutation seeded by ``seed``).
    :param seed: the seed of the ``'random'`` order.
    """
    validate_trust_levels(lower, upper)
    validate_cap(max_per_run, 'max_per_run')
    validate_cap(max_total, 'max_total')
    if order not in ORDERS:
        raise ValueError(f'unknown order {order!r}; choose one of: {", ".join(ORDERS)}')
    arrays = [np.asarray(values, dtype=float) for values in deviations]
    classes = [classify_frames(values, lower, upper) for values in arrays]
    flat = np.concatenate(arrays) if arrays else np.zeros(0)
    runs = np.concatenate([np.full(len(values), run) for run, values in enumerate(arrays)]) if arrays else np.zeros(0)
    frames = np.concatenate([np.arange(len(values)) for values in arrays]) if arrays else np.zeros(0, dtype=int)
    is_candidate = np.concatenate(classes) == CANDIDATE if classes else np.zeros(0, dtype=bool)
    ranked = uncertainty_order(flat, np.flatnonzero(is_candidate), order=order, seed=seed)
    kept = cap_selection(ranked, runs, max_per_group=max_per_run, max_total=max_total)
    selected = [frames[kept[runs[kept] == run]].astype(int) for run in range(len(arrays))]
    return TrustSelection(
        classes=classes,
        selected=selected,
        counts=[class_counts(run_classes) for run_classes in classes],
        fractions=[class_fractions(run_classes) for run_classes in classes],
        order=[(int(runs[index]), int(frames[index])) for index in kept],
    )
