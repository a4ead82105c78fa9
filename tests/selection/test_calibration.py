"""Tests of the trust-level calibration kernel on synthetic deviations with a known relation."""

import numpy as np
import pytest

from aiida_sianode.selection import calibration as cal


def synthetic_pairs(scale=2.5, n=200, noise=0.05, seed=0):
    """Deviations uniform in [0.05, 0.5] eV/Å and errors = scale * d with multiplicative noise."""
    rng = np.random.default_rng(seed)
    deviations = rng.uniform(0.05, 0.5, n)
    errors = scale * deviations * (1 + noise * rng.standard_normal(n))
    return deviations, errors


def test_scale_factor_recovers_the_known_scale():
    deviations, errors = synthetic_pairs(scale=2.5)
    fit = cal.fit_calibration(deviations, errors)
    assert fit.n_pairs == 200
    assert fit.scale == pytest.approx(2.5, rel=0.01)
    assert fit.predict([0.1, 0.4]) == pytest.approx([0.25, 1.0], rel=0.01)


def test_isotonic_fit_is_monotone_and_close_to_the_truth():
    deviations, errors = synthetic_pairs(scale=2.5)
    fit = cal.fit_calibration(deviations, errors)
    assert np.all(np.diff(fit.isotonic_x) > 0)
    assert np.all(np.diff(fit.isotonic_y) >= 0)
    grid = np.linspace(0.1, 0.45, 8)
    assert fit.predict(grid, method='isotonic') == pytest.approx(2.5 * grid, rel=0.1)
    # outside the fitted deviations the isotonic prediction falls back to the scale factor
    assert fit.predict([0.01], method='isotonic')[0] == pytest.approx(fit.scale * 0.01)


@pytest.mark.parametrize('method', cal.METHODS)
def test_inverting_gives_the_deviation_of_a_target_error(method):
    deviations, errors = synthetic_pairs(scale=2.5)
    fit = cal.fit_calibration(deviations, errors)
    assert fit.deviation_for_error(0.5, method) == pytest.approx(0.2, rel=0.06)
    assert fit.predict([fit.deviation_for_error(0.5, method)], method)[0] == pytest.approx(0.5, rel=0.06)


def test_auto_trust_levels_from_the_calibration():
    deviations, errors = synthetic_pairs(scale=4.0)
    fit = cal.fit_calibration(deviations, errors)
    lower, upper = cal.auto_trust_levels(fit, target_force_error=0.2, max_force_error=1.6)
    assert lower == pytest.approx(0.05, rel=0.01)
    assert upper == pytest.approx(0.4, rel=0.01)
    with pytest.raises(ValueError, match='target_force_error < max_force_error'):
        cal.auto_trust_levels(fit, target_force_error=1.0, max_force_error=0.5)


def test_true_max_force_error_is_the_largest_atomic_error():
    label = np.zeros((3, 3))
    predicted = np.array([[0.3, 0.4, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, -0.2]])
    assert cal.true_max_force_error(predicted, label) == pytest.approx(0.5)
    with pytest.raises(ValueError, match='same shape'):
        cal.true_max_force_error(predicted, np.zeros((2, 3)))


def test_bad_pairs_are_refused_with_the_reason():
    with pytest.raises(ValueError, match='at least 3 finite'):
        cal.fit_calibration([0.1, np.nan, 0.2], [0.2, 0.3, np.inf])
    with pytest.raises(ValueError, match='cannot be negative'):
        cal.fit_calibration([0.1, 0.2, -0.3], [0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match='every deviation is zero'):
        cal.fit_calibration([0, 0, 0], [0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match='unknown calibration method'):
        cal.fit_calibration([0.1, 0.2, 0.3], [0.2, 0.3, 0.4]).predict([0.1], method='linear')


def test_unreachable_lower_level_is_named():
    note = cal.unreachable_lower_level([0.08, 0.12, np.nan, 0.3], lower=0.05)
    assert note is not None and 'smallest 0.08 eV/Å' in note and '3 frames' in note
    assert cal.unreachable_lower_level([0.04, 0.12], lower=0.05) is None
    assert cal.unreachable_lower_level([np.nan], lower=0.05) is None
