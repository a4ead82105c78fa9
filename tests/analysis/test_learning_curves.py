"""Tests of the learning-curve arithmetic of the learning-efficiency benchmark, on synthetic curves."""

import numpy as np
import pytest

from aiida_sianode.analysis.learning_curves import label_ratio, labels_to_target, mean_curve


def test_labels_to_target_interpolates_between_the_straddling_trainings():
    # 0.30 at 10 labels, 0.20 at 20: the target 0.25 is crossed half-way, at 15 labels
    assert labels_to_target([10, 20, 30], [0.30, 0.20, 0.10], 0.25) == pytest.approx(15.0)
    # exactly on a point: that point's label count
    assert labels_to_target([10, 20, 30], [0.30, 0.20, 0.10], 0.20) == pytest.approx(20.0)


def test_labels_to_target_first_point_never_reached_and_bumps():
    assert labels_to_target([10, 20], [0.05, 0.04], 0.1) == 10.0
    assert labels_to_target([10, 20, 30], [0.5, 0.4, 0.3], 0.1) is None
    # a curve that dips below the target, rises and dips again: the first crossing counts
    assert labels_to_target([10, 20, 30, 40], [0.4, 0.2, 0.5, 0.1], 0.3) == pytest.approx(15.0)
    # a failed training (NaN) before the crossing: the crossing point itself is taken
    assert labels_to_target([10, 20, 30], [0.4, np.nan, 0.1], 0.3) == 30.0


def test_labels_to_target_refuses_bad_curves():
    with pytest.raises(ValueError, match='target'):
        labels_to_target([10, 20], [0.3, 0.2], 0.0)
    with pytest.raises(ValueError, match='one error per label count'):
        labels_to_target([10, 20], [0.3], 0.1)
    with pytest.raises(ValueError, match='must not decrease'):
        labels_to_target([20, 10], [0.3, 0.2], 0.1)


def test_mean_curve_over_seeds():
    curve = mean_curve([([6, 12, 18], [0.4, 0.3, 0.2]), ([6, 12, 17], [0.6, 0.5, np.nan])])
    assert curve.n_labels == pytest.approx([6, 12, 17.5])
    assert curve.mean[:2] == pytest.approx([0.5, 0.4])
    assert curve.spread[:2] == pytest.approx([0.1, 0.1])
    # the failed third training of seed 1 leaves seed 0 alone there
    assert curve.mean[2] == pytest.approx(0.2)
    assert curve.spread[2] == pytest.approx(0.0)
    assert curve.n_seeds.tolist() == [2, 2, 1]
    with pytest.raises(ValueError, match='different numbers of trainings'):
        mean_curve([([6, 12], [0.4, 0.3]), ([6], [0.5])])


def test_ratio_of_synthetic_curves_with_a_known_answer():
    # active learning reaches every error with a third of random's labels: rmse = 1 / sqrt(n) against 1 / sqrt(n / 3)
    labels = np.arange(6, 61, 6, dtype=float)
    random_curve = 1 / np.sqrt(labels)
    active_curve = 1 / np.sqrt(3 * labels)
    target = float(random_curve[-1])  # random's error at the full budget (60 labels)
    random_need = labels_to_target(labels, random_curve, target)
    active_need = labels_to_target(labels, active_curve, target)
    assert random_need == pytest.approx(60.0)
    assert active_need == pytest.approx(20.0, rel=0.02)  # linear interpolation of a 1/sqrt curve between 18 and 24
    ratio = label_ratio(active_need, random_need, budget=60)
    assert ratio.qualifier == '='
    assert ratio.value == pytest.approx(1 / 3, rel=0.02)
    assert str(ratio) == f'{ratio.value:.2f}'


def test_ratio_bounds_when_a_curve_misses_the_target():
    assert (label_ratio(20.0, None, 60).value, label_ratio(20.0, None, 60).qualifier) == (pytest.approx(1 / 3), '<')
    assert (label_ratio(None, 30.0, 60).value, label_ratio(None, 30.0, 60).qualifier) == (pytest.approx(2.0), '>')
    assert str(label_ratio(None, 30.0, 60)) == '> 2.00'
    neither = label_ratio(None, None, 60)
    assert neither.value is None and neither.qualifier == '?'
    with pytest.raises(ValueError, match='budget'):
        label_ratio(10.0, 20.0, 0)
    with pytest.raises(ValueError, match='strategy label count'):
        label_ratio(-1.0, 20.0, 60)
