"""The report of one selection: what was in the pool, what was picked, why, and what was dropped.

Plain Python on the outcome of a selection (no AiiDA): :func:`selection_report` turns the runs' frame classes, the
pool, the strategy's :class:`~aiida_sianode.selection.strategies.Picks` and the kept / duplicate positions into the
JSON document that ``select_frames`` stores as its ``report`` output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aiida_sianode.selection.strategies import Picks
from aiida_sianode.selection.trust import class_counts, class_fractions


@dataclass
class RunRecord:
    """What the report needs of one MD run."""

    label: str
    trajectory_uuid: str
    n_frames: int
    deviations: Mapping[str, np.ndarray]
    classes: np.ndarray


def finite_or_none(value) -> float | None:
    """Return ``value`` as a float, or ``None`` when it is NaN or infinite (JSON has neither)."""
    value = float(value)
    return value if math.isfinite(value) else None


def frame_key(run_label: str, frame: int) -> str:
    """The name of a selected frame: ``<run>_<frame, six digits>``."""
    return f'{run_label}_{int(frame):06d}'


def selection_report(
    runs: Sequence[RunRecord],
    pool_run: np.ndarray,
    pool_frame: np.ndarray,
    picks: Picks,
    kept: Sequence[int],
    duplicates: Mapping[int, int],
    settings: dict,
    header: dict,
) -> dict:
    """Return the report of a selection.

    :param runs: the MD runs, in pool order.
    :param pool_run: the run index of every pool frame; ``pool_frame``: its frame index in that run.
    :param picks: what the strategy returned.
    :param kept: the pool positions kept after caps and de-duplication, in selection order.
    :param duplicates: ``{dropped position: the kept position it duplicates}``.
    :param settings: the validated selection settings.
    :param header: extra top-level entries (descriptor, potential and training-set UUIDs).
    """
    strategy = settings['strategy']
    deviation = settings['deviation']

    def key(position) -> str:
        return frame_key(runs[pool_run[position]].label, pool_frame[position])

    selected = {index: [] for index in range(len(runs))}
    for position in kept:
        selected[int(pool_run[position])].append(int(pool_frame[position]))
    report_runs = {}
    for index, run in enumerate(runs):
        in_run = pool_run == index
        entry = {
            'trajectory_uuid': run.trajectory_uuid,
            'n_frames': run.n_frames,
            'counts': class_counts(run.classes),
            'fractions': class_fractions(run.classes),
            'n_pool': int(np.count_nonzero(in_run)),
            'selected': selected[index],
            'selected_deviations': [finite_or_none(run.deviations[deviation][frame]) for frame in selected[index]],
        }
        if picks.grades is not None:
            grades = [None] * run.n_frames
            for frame, grade in zip(pool_frame[in_run], picks.grades[in_run], strict=True):
                grades[int(frame)] = finite_or_none(grade)
            entry['grades'] = grades
            entry['selected_grades'] = [grades[frame] for frame in selected[index]]
        report_runs[run.label] = entry

    details = dict(picks.details)
    if 'grade_at_selection' in details:
        details['grade_at_selection'] = {
            key(position): grade for position, grade in details['grade_at_selection'].items()
        }
    all_classes = np.concatenate([run.classes for run in runs]) if runs else np.zeros(0)
    return {
        'strategy': strategy,
        'parameters': settings,
        **header,
        'counts': class_counts(all_classes),
        'fractions': class_fractions(all_classes),
        'n_pool': len(pool_frame),
        'n_selected': len(kept),
        'n_duplicates_removed': len(duplicates),
        'duplicates': {key(dropped): key(original) for dropped, original in duplicates.items()},
        'selection': [key(position) for position in kept],
        'runs': report_runs,
        strategy: details,
    }
