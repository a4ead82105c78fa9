"""``aiida-sianode select``: options become selection parameters, the JSON document and the table are right."""

from __future__ import annotations

import json

import numpy as np
import pytest
from aiida import orm
from aiida.engine import calcfunction, run_get_node
from ase.build import bulk
from click.testing import CliRunner

from aiida_sianode.cli.select import cmd_select

DEVIATIONS = [0.01, 0.10, 0.30, 0.20, 0.02, 0.06, 0.15]  # candidates 1, 3, 5, 6; failed 2


@calcfunction
def synthetic_exploration(deviations: orm.List):
    """A process node with the exploration calculation's ``trajectory`` and ``deviations`` outputs."""
    rng = np.random.default_rng(0)
    values = np.asarray(deviations.get_list(), dtype=float)
    base = bulk('Si', 'diamond', a=5.43, cubic=True)
    positions = np.array([base.positions + rng.normal(scale=0.05, size=(8, 3)) for _ in values])
    trajectory = orm.TrajectoryData()
    trajectory.set_trajectory(
        symbols=base.get_chemical_symbols(),
        positions=positions,
        cells=np.array([base.cell.array] * len(values)),
        stepids=np.arange(len(values)),
        pbc=(True, True, True),
    )
    arrays = orm.ArrayData()
    arrays.set_array('max_force_deviation', values)
    arrays.set_array('energy_std_per_atom', values / 10)
    return {'trajectory': trajectory, 'deviations': arrays}


@pytest.fixture
def exploration(aiida_profile):
    _, node = run_get_node(synthetic_exploration, deviations=orm.List(DEVIATIONS))
    return node


def invoke(*args):
    return CliRunner().invoke(cmd_select, [str(arg) for arg in args], catch_exceptions=False)


def test_json_document_of_a_trust_selection(exploration):
    result = invoke(exploration.pk, '--max-total', 3, '--upper', 0.25, '--json')
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document['strategy'] == 'trust'
    assert document['counts'] == {'accurate': 2, 'candidate': 4, 'failed': 1}
    assert document['n_selected'] == 3
    frames = [entry['frame'] for entry in document['structures'].values()]
    assert frames == [3, 6, 1]
    first = next(iter(document['structures'].values()))
    assert orm.load_node(first['pk']).base.attributes.get('source_trajectory_uuid') == (
        exploration.outputs.trajectory.uuid
    )
    assert orm.load_node(document['select_pk']).outputs.report['parameters']['max_total'] == 3


def test_table_output_and_extra_parameters(exploration):
    result = invoke(exploration.pk, '--strategy', 'random', '--seed', 4, '-p', 'include_accurate=false')
    assert result.exit_code == 0, result.output
    assert 'selected 4 of 4 pool frames with `random`' in result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ['run', 'frames', 'accurate', 'candidate', 'failed', 'selected']
    assert lines[3].split() == [f'run_{exploration.pk}', '7', '2', '4', '1', '4']


def test_bad_input_is_refused(exploration):
    result = invoke(exploration.pk, '--lower', 0.3, '--upper', 0.2, '--json')
    assert result.exit_code == 1
    assert 'must be below the upper one' in json.loads(result.stdout)['error']
    result = invoke(exploration.pk, '-p', 'colour=red', '--json')
    assert 'unknown selection parameters: colour' in json.loads(result.stdout)['error']
    result = invoke(exploration.pk, '--seed', 1, '-p', 'seed=2', '--json')
    assert 'given both' in json.loads(result.stdout)['error']
    result = invoke(exploration.outputs.trajectory.pk, '--json')
    assert 'not an exploration process' in json.loads(result.stdout)['error']
    result = invoke(999999, '--json')
    assert 'cannot load the exploration' in json.loads(result.stdout)['error']
