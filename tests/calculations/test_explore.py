"""ExploreCalculation: input validation before anything runs, and a real run through the local code."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_sianode.calculations.explore import ExploreCalculation
from aiida_sianode.engines.committee import save_untrained_mace

SMALL = {'num_channels': 8, 'max_L': 0, 'r_max': 4.0, 'num_interactions': 1}


@pytest.fixture(scope='module')
def model_files(tmp_path_factory):
    """Two untrained Si models (different seeds) and one Si-Li model of another cutoff."""
    directory = tmp_path_factory.mktemp('explore-calc')
    silicon = [save_untrained_mace(directory / f'si{seed}.model', [14], seed=seed, **SMALL) for seed in range(2)]
    other = save_untrained_mace(directory / 'lisi.model', [3, 14], seed=5, **{**SMALL, 'r_max': 4.5})
    return silicon, other


@pytest.fixture
def potentials(aiida_profile, model_files):
    """The two Si models as stored PotentialData."""
    from aiida_sianode.data.potential import PotentialData

    silicon, _ = model_files
    return {f'member_{index}': PotentialData.from_model_file(path).store() for index, path in enumerate(silicon)}


def _structure(rattle=0.05):
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(rattle, seed=2)
    return orm.StructureData(ase=atoms)


def _inputs(code, potentials, parameters, structure=None):
    return {
        'code': code,
        'structure': structure or _structure(),
        'potentials': potentials,
        'parameters': orm.Dict(parameters),
        'metadata': {'options': {'max_wallclock_seconds': 600}},
    }


@pytest.mark.parametrize(
    ('parameters', 'message'),
    [
        ({'ensemble': 'npt_isotropic', 'pressure_gpa': 12.0}, '100 kbar'),
        ({'temperature': -10}, '`temperature` must be in'),
        ({'ensemble': 'nve'}, 'unknown ensemble'),
        ({'tstep': 1.0}, 'unknown parameter'),
    ],
)
def test_bad_parameters_refused(explore_code, potentials, parameters, message):
    """Bad parameters are refused by the spec before anything is submitted."""
    with pytest.raises(ValueError, match=message):
        run_get_node(ExploreCalculation, **_inputs(explore_code, potentials, parameters))


def test_committee_and_structure_checked(explore_code, potentials, model_files):
    """An empty committee, members of different cutoffs, an unknown element and NPT on a slab are refused."""
    from aiida_sianode.data.potential import PotentialData

    with pytest.raises(ValueError, match='at least one potential'):
        run_get_node(ExploreCalculation, **_inputs(explore_code, {}, {}))
    mixed = {**potentials, 'member_2': PotentialData.from_model_file(model_files[1]).store()}
    with pytest.raises(ValueError, match='different elements'):
        run_get_node(ExploreCalculation, **_inputs(explore_code, mixed, {}))
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms[0].symbol = 'Li'
    with pytest.raises(ValueError, match='also has Li'):
        run_get_node(ExploreCalculation, **_inputs(explore_code, potentials, {}, orm.StructureData(ase=atoms)))
    slab = bulk('Si', 'diamond', a=5.43, cubic=True)
    slab.pbc = [True, True, False]
    with pytest.raises(ValueError, match='periodic in x, y and z'):
        run_get_node(
            ExploreCalculation,
            **_inputs(explore_code, potentials, {'ensemble': 'npt'}, orm.StructureData(ase=slab)),
        )


def test_run_gives_one_trajectory_and_deviations(explore_code, potentials):
    """A real run: one TrajectoryData with every sampled frame, the deviation arrays, the stop reason, a summary."""
    parameters = {'steps': 20, 'sample_interval': 5, 'temperature': 600, 'force_deviation_lower': 0.001}
    results, node = run_get_node(ExploreCalculation, **_inputs(explore_code, potentials, parameters))
    assert node.is_finished_ok, node.exit_message
    trajectory = results['trajectory']
    assert trajectory.numsteps == 5
    assert trajectory.get_stepids().tolist() == [0, 5, 10, 15, 20]
    assert trajectory.get_times().tolist() == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert trajectory.get_positions().shape == (5, 8, 3)
    assert trajectory.get_cells().shape == (5, 3, 3)
    assert list(trajectory.symbols) == ['Si'] * 8
    assert trajectory.get_array('forces').shape == (5, 8, 3)
    assert trajectory.get_array('atomic_force_deviation').shape == (5, 8)
    deviations = results['deviations']
    names = {'max_force_deviation', 'energy_std_per_atom', 'temperature', 'pressure_gpa', 'volume', 'time_fs', 'step'}
    assert set(deviations.get_arraynames()) == names | {'physically_broken'}
    assert deviations.get_array('physically_broken').tolist() == [0] * 5
    assert deviations.get_array('step').tolist() == [0, 5, 10, 15, 20]
    assert deviations.get_array('temperature')[0] == pytest.approx(600.0)
    assert np.allclose(deviations.get_array('volume'), 5.43**3)
    assert np.all(deviations.get_array('max_force_deviation') > 0)
    assert results['stop_reason'].value == 'completed'
    summary = results['summary'].get_dict()
    assert summary['frames'] == 5
    assert summary['n_steps'] == 20
    assert summary['n_members'] == 2
    assert summary['accurate'] + summary['candidate'] + summary['failed'] == 5
    assert summary['steps_per_second'] > 0
    # the frames file is not kept twice: it was retrieved temporarily
    assert 'frames.extxyz' not in node.outputs.retrieved.base.repository.list_object_names()


def test_stop_for_uncertainty_is_not_a_failure(explore_code, potentials):
    """Stopping on the upper trust level finishes ok, with the reason and the frames up to the stop."""
    parameters = {
        'steps': 200,
        'sample_interval': 2,
        'force_deviation_lower': 1e-6,
        'force_deviation_upper': 1e-5,
        'uncertainty_patience': 2,
    }
    results, node = run_get_node(ExploreCalculation, **_inputs(explore_code, potentials, parameters))
    assert node.is_finished_ok
    assert results['stop_reason'].value == 'uncertainty'
    assert results['deviations'].get_array('step').tolist() == [0, 2]
    assert results['summary']['failed'] == 2
