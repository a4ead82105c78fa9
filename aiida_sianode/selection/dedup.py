"""Removal of near-identical frames by the distance between their descriptors.

MD frames close in time are often near copies; labelling both wastes DFT time. Given the frames in order of
preference (most informative first), a frame is dropped when its descriptor lies within ``threshold`` (Euclidean
distance, in the descriptor's own units) of a frame already kept, so each near-duplicate group keeps its most
informative member. ``threshold=0`` drops exact copies only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Deduplication:
    """The result of :func:`select_distinct`."""

    kept: np.ndarray
    """Kept frame indices, in the order they were accepted."""
    duplicates: dict[int, int]
    """``{dropped frame: the kept frame it is a near copy of}`` for every frame dropped as a duplicate."""


def select_distinct(
    features: np.ndarray | Callable[[int], np.ndarray],
    threshold: float,
    order: Sequence[int] | np.ndarray | None = None,
    groups: Sequence[int] | np.ndarray | None = None,
    max_per_group: int | None = None,
    max_total: int | None = None,
) -> Deduplication:
    """Walk ``order`` (default: all frames in index order) and keep frames that are not near copies of a kept one.

    :param features: ``(n_frames, d)`` frame descriptors, or a function returning frame ``i``'s descriptor (then
        only the frames the walk reaches are described; ``order`` and ``groups`` are required).
    :param threshold: frames at a Euclidean distance ``<= threshold`` from a kept frame are dropped.
    :param groups: the group (MD run) of each frame, for ``max_per_group``.
    :param max_per_group: at most this many kept frames per group (a frame of a full group is skipped, not
        counted as a duplicate).
    :param max_total: stop once this many frames are kept.
    """
    from aiida_sianode.selection.trust import validate_cap

    if callable(features):
        if order is None or groups is None:
            raise ValueError('with a descriptor function, give both order and groups')
        describe = features
        n_frames = len(groups)
    else:
        features = np.asarray(features, dtype=float)
        if features.ndim != 2:
            raise ValueError(f'frame features must be 2-d (n_frames x d), got shape {features.shape}')
        n_frames = len(features)

        def describe(index):
            return features[index]

    if threshold is None or not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f'the de-duplication threshold must be a finite number >= 0, got {threshold!r}')
    validate_cap(max_per_group, 'max_per_group')
    validate_cap(max_total, 'max_total')
    order = np.arange(n_frames) if order is None else np.asarray(order, dtype=int)
    if len(order) and (order.min() < 0 or order.max() >= n_frames):
        raise ValueError(f'order refers to frames outside [0, {n_frames})')
    groups = np.zeros(n_frames, dtype=int) if groups is None else np.asarray(groups)
    if groups.shape != (n_frames,):
        raise ValueError(f'groups must have one entry per frame ({n_frames}), got shape {groups.shape}')
    kept: list[int] = []
    buffer = np.empty((0, 0))  # descriptors of the kept frames, grown by doubling
    per_group: dict = {}
    duplicates: dict[int, int] = {}
    for index in order:
        if max_total is not None and len(kept) >= max_total:
            break
        group = groups[index]
        if max_per_group is not None and per_group.get(group, 0) >= max_per_group:
            continue
        vector = np.asarray(describe(int(index)), dtype=float).ravel()
        if kept:
            if vector.size != buffer.shape[1]:
                raise ValueError(f'frame {index} has a descriptor of length {vector.size}, others {buffer.shape[1]}')
            distances = np.linalg.norm(buffer[: len(kept)] - vector, axis=1)
            nearest = int(np.argmin(distances))
            if distances[nearest] <= threshold:
                duplicates[int(index)] = kept[nearest]
                continue
        if len(kept) == len(buffer):
            buffer = (
                np.vstack([buffer, np.empty((max(len(buffer), 16), vector.size))])
                if kept
                else np.empty((16, vector.size))
            )
        buffer[len(kept)] = vector
        kept.append(int(index))
        per_group[group] = per_group.get(group, 0) + 1
    return Deduplication(kept=np.asarray(kept, dtype=int), duplicates=duplicates)


def deduplicate(features: np.ndarray, threshold: float, priority: Sequence[float] | np.ndarray | None = None):
    """Return the indices of the frames kept after removing near copies, most informative first.

    ``priority`` (one value per frame, higher = more informative, e.g. the deviation or the extrapolation grade)
    decides which member of a near-duplicate group survives; without it the earlier frame does.
    """
    features = np.asarray(features, dtype=float)
    if priority is None:
        order = np.arange(len(features))
    else:
        priority = np.asarray(priority, dtype=float)
        if priority.shape != (len(features),):
            raise ValueError(f'priority must have one value per frame ({len(features)}), got shape {priority.shape}')
        order = np.lexsort((np.arange(len(features)), -priority))
    return select_distinct(features, threshold, order=order).kept
