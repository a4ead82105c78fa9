"""Tests of the campaign convergence criteria beside the accurate fraction."""

import numpy as np
import pytest

from aiida_sianode.analysis import convergence as criteria


def test_test_set_rmse_below_target_stops_the_campaign():
    rows = [{'test_force_rmse_mev_a': 180.0}, {'test_force_rmse_mev_a': 95.0}]
    assert criteria.convergence_reason(rows, {'test_force_rmse': 100.0}) == 'test_rmse'
    assert criteria.convergence_reason(rows[:1], {'test_force_rmse': 100.0}) is None
    assert criteria.convergence_reason(rows, {'test_force_rmse': None}) is None


def test_property_moving_less_than_its_spread_stops_the_campaign():
    settings = {'property': 'density', 'property_iterations': 2}
    rows = [
        {'property': {'value': 2.10, 'spread': 0.02}},
        {'property': {'value': 2.25, 'spread': 0.03}},  # moved 0.15 > spread: not yet
        {'property': {'value': 2.27, 'spread': 0.03}},
    ]
    assert criteria.convergence_reason(rows, settings) is None
    rows.append({'property': {'value': 2.28, 'spread': 0.02}})  # two small moves in a row
    assert criteria.convergence_reason(rows, settings) == 'property'
    assert criteria.convergence_reason(rows, {**settings, 'property_iterations': 3}) is None


def test_property_needs_enough_history_and_matching_spreads():
    assert not criteria.property_moves_less_than_spread([2.0, 2.0], [0.1, 0.1], iterations=2)
    with pytest.raises(ValueError, match='one spread per value'):
        criteria.property_moves_less_than_spread([2.0, 2.0, 2.0], [0.1], iterations=2)


def test_mass_density_of_diamond_silicon():
    cells = np.array([np.eye(3) * 5.431])
    density = criteria.mass_density(np.full(8, 28.0855), cells)
    assert density[0] == pytest.approx(2.329, abs=0.002)
    assert criteria.property_over_runs([2.0, 2.2]) == pytest.approx(
        {'value': 2.1, 'spread': 0.1414, 'n_runs': 2}, rel=1e-3
    )


@pytest.mark.parametrize(
    ('settings', 'message'),
    [
        ({'test_force_rmse': -1}, 'test_force_rmse must be a positive number'),
        ({'property': 'viscosity'}, 'unknown convergence property'),
        ({'property_iterations': 0}, 'property_iterations must be a whole number'),
    ],
)
def test_bad_criteria_are_named(settings, message):
    assert message in criteria.validate_criteria(settings)


def test_criteria_defaults_are_the_campaign_protocols(monkeypatch):
    """Missing settings take protocols/active_learning.yaml's values: a window of 2 unless the file says otherwise."""
    from aiida_sianode import campaign_spec
    from aiida_sianode.protocols import load_protocol_file

    assert criteria.criteria_defaults() == {'test_force_rmse': None, 'property': None, 'property_iterations': 2}
    rows = [{'property': {'value': value, 'spread': 0.05}} for value in (2.0, 2.3, 2.31, 2.32)]
    assert criteria.convergence_reason(rows, {'property': 'density'}) == 'property'
    data = load_protocol_file('active_learning')
    data['default_inputs']['convergence']['property_iterations'] = 3
    monkeypatch.setattr(campaign_spec, '_protocol_data', lambda: data)
    assert criteria.convergence_reason(rows, {'property': 'density'}) is None
    assert criteria.validate_criteria({}) is None
