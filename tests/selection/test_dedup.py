"""De-duplication: exact and near copies go, distinct frames stay, the most informative of a group survives."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_sianode.selection.dedup import deduplicate, select_distinct


@pytest.fixture
def features():
    rng = np.random.default_rng(1)
    distinct = rng.normal(size=(6, 8))  # pairwise distances about 4
    exact_copy = distinct[2]
    near_copy = distinct[4] + 1e-5 * rng.normal(size=8)
    return np.vstack([distinct, exact_copy, near_copy])  # frames 6 (copy of 2) and 7 (near copy of 4)


def test_exact_and_near_copies_removed_distinct_frames_kept(features):
    assert deduplicate(features, threshold=1e-3).tolist() == [0, 1, 2, 3, 4, 5]
    walk = select_distinct(features, threshold=1e-3)
    assert walk.duplicates == {6: 2, 7: 4}


def test_zero_threshold_removes_only_exact_copies(features):
    assert deduplicate(features, threshold=0.0).tolist() == [0, 1, 2, 3, 4, 5, 7]


def test_the_most_informative_of_a_group_is_kept(features):
    priority = np.zeros(len(features))
    priority[7] = 5.0  # the near copy is the most uncertain: it is kept, frame 4 goes
    kept = deduplicate(features, threshold=1e-3, priority=priority)
    assert sorted(kept.tolist()) == [0, 1, 2, 3, 5, 7]
    assert kept[0] == 7


def test_large_threshold_merges_everything_and_caps_apply(features):
    assert deduplicate(features, threshold=100.0).tolist() == [0]
    walk = select_distinct(features, 1e-3, groups=[0, 0, 0, 1, 1, 1, 0, 1], max_per_group=2, max_total=3)
    assert walk.kept.tolist() == [0, 1, 3]


def test_descriptor_function_is_called_only_for_frames_reached(features):
    calls = []

    def describe(index):
        calls.append(index)
        return features[index]

    walk = select_distinct(describe, 1e-3, order=[6, 2, 0, 1], groups=np.zeros(8), max_total=2)
    assert walk.kept.tolist() == [6, 0]
    assert walk.duplicates == {2: 6}
    assert calls == [6, 2, 0]


def test_bad_input_is_refused(features):
    with pytest.raises(ValueError, match='threshold'):
        deduplicate(features, threshold=-1)
    with pytest.raises(ValueError, match='priority'):
        deduplicate(features, threshold=0.1, priority=[1.0, 2.0])
    with pytest.raises(ValueError, match='2-d'):
        deduplicate(features[0], threshold=0.1)
