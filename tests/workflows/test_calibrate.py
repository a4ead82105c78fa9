"""Tests of the campaign's calibration calcfunction and of ``trust: auto`` on synthetic labels with a known scale."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk

from aiida_sianode.data.label import LabelData
from aiida_sianode.workflows import calibrate

SCALE = 3.0
DEVIATIONS = [0.05, 0.1, 0.15, 0.2, 0.3]
TRUST = {'trust': 'auto', 'target_force_error': 0.15, 'max_force_error': 1.2, 'calibration_method': 'scale'}


def _nodes(deviations=DEVIATIONS, scale=SCALE):
    """Frames of one trajectory whose committee-mean forces miss the label by ``scale * deviation`` on one atom."""
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    natoms = len(atoms)
    rng = np.random.default_rng(0)
    positions = np.array([atoms.positions + rng.normal(0, 0.05, (natoms, 3)) for _ in deviations])
    cells = np.array([atoms.cell.array] * len(deviations))
    label_forces = rng.normal(0, 0.5, (len(deviations), natoms, 3))
    mean_forces = label_forces.copy()
    mean_forces[:, 3, 0] += scale * np.asarray(deviations)  # the largest atomic error, on atom 3
    trajectory = orm.TrajectoryData()
    trajectory.set_trajectory(symbols=atoms.get_chemical_symbols(), positions=positions, cells=cells)
    trajectory.set_array('forces', mean_forces)
    trajectory.store()
    nodes = {f'trajectory_{trajectory.uuid.replace("-", "_")}': trajectory}
    for frame, deviation in enumerate(deviations):
        structure = orm.StructureData(ase=trajectory.get_step_structure(frame).get_ase())
        structure.base.attributes.set_many(
            {'source_trajectory_uuid': trajectory.uuid, 'source_frame_index': frame, 'max_force_deviation': deviation}
        )
        frame_atoms = structure.get_ase()
        nodes[f'structure_f{frame}'] = structure.store()
        nodes[f'label_f{frame}'] = LabelData(
            frame_atoms, energy=-10.0, forces=label_forces[frame], level_of_theory={'code': 'xtb'}
        ).store()
    return nodes


def test_calibration_node_holds_the_pairs_and_recovers_the_scale(aiida_profile):
    node = calibrate.calibrate_committee(**_nodes())
    assert node.is_stored
    assert node.get_array('deviations') == pytest.approx(DEVIATIONS)
    assert node.get_array('errors') == pytest.approx(SCALE * np.asarray(DEVIATIONS), rel=1e-9)
    assert node.base.attributes.get('scale') == pytest.approx(SCALE)
    assert node.base.attributes.get('n_pairs') == 5
    summary = calibrate.calibration_summary(node)
    assert summary['mean_predicted_error'] == pytest.approx(summary['mean_true_error'])
    assert summary['max_true_error'] == pytest.approx(SCALE * 0.3)


def test_trust_auto_sets_the_levels_from_the_calibration(aiida_profile):
    node = calibrate.calibrate_committee(**_nodes())
    lower, upper = calibrate.trust_levels(TRUST, node, fixed=(0.05, 0.5))
    assert lower == pytest.approx(0.15 / SCALE)
    assert upper == pytest.approx(1.2 / SCALE)
    # fixed trust, or no calibration yet, keeps the given levels
    assert calibrate.trust_levels({**TRUST, 'trust': 'fixed'}, node, fixed=(0.05, 0.5)) == (0.05, 0.5)
    assert calibrate.trust_levels(TRUST, None, fixed=(0.05, 0.5)) == (0.05, 0.5)


def test_too_few_pairs_give_no_fit_and_keep_the_fixed_levels(aiida_profile):
    node = calibrate.calibrate_committee(**_nodes(deviations=[0.1, 0.2]))
    assert node.base.attributes.get('scale') is None
    assert 'at least 3' in node.base.attributes.get('note')
    assert calibrate.trust_levels(TRUST, node, fixed=(0.05, 0.5)) == (0.05, 0.5)


@pytest.mark.parametrize(
    ('settings', 'message'),
    [
        ({'trust': 'sometimes'}, 'unknown trust mode'),
        ({'calibration_method': 'spline'}, 'unknown calibration_method'),
        ({'target_force_error': 2.0, 'max_force_error': 1.0}, 'need 0 < target_force_error < max_force_error'),
        ({'target_force_error': 'small'}, '`target_force_error` must be a number'),
    ],
)
def test_bad_trust_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        calibrate.split_trust_settings({'strategy': 'trust', **settings})


def test_split_leaves_the_selection_settings():
    trust, rest = calibrate.split_trust_settings({'strategy': 'trust', 'lower': 0.1, 'trust': 'auto'})
    assert rest == {'strategy': 'trust', 'lower': 0.1}
    assert trust == {**calibrate.trust_defaults(), 'trust': 'auto'}


def test_trust_defaults_are_the_campaign_protocols(monkeypatch):
    """The defaults come from protocols/active_learning.yaml, nowhere else: changing the file changes them."""
    from aiida_sianode import campaign_spec
    from aiida_sianode.protocols import load_protocol_file

    assert calibrate.trust_defaults() == {
        'trust': 'fixed',
        'target_force_error': 0.1,
        'max_force_error': 1.0,
        'calibration_method': 'scale',
    }
    data = load_protocol_file('active_learning')
    data['default_inputs']['selection']['target_force_error'] = 0.2
    monkeypatch.setattr(campaign_spec, '_protocol_data', lambda: data)
    trust, _ = calibrate.split_trust_settings({'strategy': 'trust'})
    assert trust['target_force_error'] == 0.2
