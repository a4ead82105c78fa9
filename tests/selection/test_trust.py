"""Trust levels (DP-GEN): classification at the boundaries, fractions, and caps per run and per iteration."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_sianode.selection.trust import (
    ACCURATE,
    CANDIDATE,
    FAILED,
    cap_selection,
    class_counts,
    class_fractions,
    classify_frames,
    select_by_trust,
)

RUN_A = [0.01, 0.06, 0.30, 0.12, 0.05, np.nan, 0.249, 0.25]
RUN_B = [0.20, 0.10, 0.07, 0.00]


def test_classification_boundaries_and_nan():
    classes = classify_frames(RUN_A, lower=0.05, upper=0.25)
    # lower is inclusive for candidates, upper is inclusive for failures; NaN (a blown-up committee) fails.
    assert classes.tolist() == [ACCURATE, CANDIDATE, FAILED, CANDIDATE, CANDIDATE, FAILED, CANDIDATE, FAILED]
    assert class_counts(classes) == {'accurate': 1, 'candidate': 4, 'failed': 3}
    assert class_fractions(classes) == {'accurate': 0.125, 'candidate': 0.5, 'failed': 0.375}


def test_no_upper_level_means_nothing_fails_but_nan():
    classes = classify_frames(RUN_A, lower=0.05, upper=None)
    assert class_counts(classes) == {'accurate': 1, 'candidate': 6, 'failed': 1}


def test_candidates_most_uncertain_first_without_caps():
    result = select_by_trust([RUN_A, RUN_B], lower=0.05, upper=0.25)
    assert result.selected[0].tolist() == [6, 3, 1, 4]
    assert result.selected[1].tolist() == [0, 1, 2]
    assert result.counts == [{'accurate': 1, 'candidate': 4, 'failed': 3}, {'accurate': 1, 'candidate': 3, 'failed': 0}]
    assert result.total_fractions == {'accurate': 2 / 12, 'candidate': 7 / 12, 'failed': 3 / 12}


def test_caps_per_run_and_per_iteration():
    result = select_by_trust([RUN_A, RUN_B], lower=0.05, upper=0.25, max_per_run=2, max_total=3)
    # per run the two most uncertain (A: 0.249, 0.12; B: 0.20, 0.10), then the three largest over both runs
    assert result.selected[0].tolist() == [6, 3]
    assert result.selected[1].tolist() == [0]
    assert result.order == [(0, 6), (1, 0), (0, 3)]
    assert [len(s) for s in select_by_trust([RUN_A, RUN_B], 0.05, 0.25, max_total=0).selected] == [0, 0]
    assert [len(s) for s in select_by_trust([RUN_A, RUN_B], 0.05, 0.25, max_per_run=1).selected] == [1, 1]


def test_random_order_is_seeded():
    first = select_by_trust([RUN_A, RUN_B], 0.05, 0.25, max_total=4, order='random', seed=3)
    again = select_by_trust([RUN_A, RUN_B], 0.05, 0.25, max_total=4, order='random', seed=3)
    assert first.order == again.order
    assert len(first.order) == 4
    picked = {(run, frame) for run, frame in first.order}
    assert picked <= {(0, 1), (0, 3), (0, 4), (0, 6), (1, 0), (1, 1), (1, 2)}
    orders = {tuple(select_by_trust([RUN_A, RUN_B], 0.05, 0.25, order='random', seed=s).order) for s in range(6)}
    assert len(orders) > 1


def test_cap_selection_walks_the_order():
    kept = cap_selection([5, 4, 3, 2, 1, 0], groups=[0, 0, 1, 1, 2, 2], max_per_group=1, max_total=2)
    assert kept.tolist() == [5, 3]


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'lower': 0.3, 'upper': 0.2}, 'upper trust level'),
        ({'lower': -0.1, 'upper': 0.2}, 'lower trust level'),
        ({'lower': 0.05, 'upper': 0.2, 'max_per_run': -1}, 'max_per_run'),
        ({'lower': 0.05, 'upper': 0.2, 'max_total': 1.5}, 'max_total'),
        ({'lower': 0.05, 'upper': 0.2, 'order': 'ascending'}, 'unknown order'),
    ],
)
def test_bad_input_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_by_trust([RUN_A], **kwargs)
