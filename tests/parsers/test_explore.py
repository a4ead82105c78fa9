"""ExploreParser on engine outputs: normal ends, physical stops, engine errors, and a run killed mid-frame."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.plugins import ParserFactory
from ase.build import bulk

from aiida_sianode.calculations.explore import ExploreCalculation
from aiida_sianode.engines import explore as engine
from aiida_sianode.engines.committee import save_untrained_mace

EXIT = ExploreCalculation.exit_codes


@pytest.fixture(scope='module')
def engine_run(tmp_path_factory):
    """A real 10-step engine run sampled every 2 steps (6 frames): its folder and the model file."""
    directory = tmp_path_factory.mktemp('explore-parser')
    model = save_untrained_mace(
        directory / 'si.model', [14], seed=0, num_channels=8, max_L=0, r_max=4.0, num_interactions=1
    )
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(0.05, seed=1)
    run = directory / 'run'
    run.mkdir()
    parameters = {'steps': 10, 'sample_interval': 2, 'force_deviation_lower': 0.01, 'force_deviation_upper': 0.2}
    engine.run_exploration(atoms, [model, model], parameters, run)
    return run, model, parameters


def _parse(computer, tmp_path, engine_run, *, results=None, frames_text=None, keep_results=True):
    """Make a stored CalcJobNode with the run's inputs, a retrieved folder with ``results`` (a dict, a string written
    as it is, or the run's own results.json), a temporary folder with ``frames_text`` (or the run's frames); parse."""
    from aiida_sianode.data.potential import PotentialData

    run, model, parameters = engine_run
    node = orm.CalcJobNode(computer=computer, process_type='aiida.calculations:sianode.explore')
    node.set_option('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
    node.base.links.add_incoming(orm.Dict(parameters).store(), LinkType.INPUT_CALC, 'parameters')
    for index in range(2):
        potential = PotentialData.from_model_file(model).store()
        node.base.links.add_incoming(potential, LinkType.INPUT_CALC, f'potentials__member_{index}')
    node.store()
    retrieved = orm.FolderData()
    if keep_results:
        if results is None:
            content = (run / engine.RESULTS_FILENAME).read_text()
        else:
            content = results if isinstance(results, str) else json.dumps(results)
        retrieved.base.repository.put_object_from_bytes(content.encode(), engine.RESULTS_FILENAME)
    retrieved.base.links.add_incoming(node, LinkType.CREATE, 'retrieved')
    retrieved.store()
    temporary = tmp_path / 'temporary'
    temporary.mkdir()
    if frames_text is None:
        shutil.copy(run / engine.FRAMES_FILENAME, temporary / engine.FRAMES_FILENAME)
    elif frames_text:
        (temporary / engine.FRAMES_FILENAME).write_text(frames_text)
    outputs, call = ParserFactory('sianode.explore').parse_from_node(
        node, store_provenance=False, retrieved_temporary_folder=str(temporary)
    )
    return outputs, call


def test_completed_run(aiida_localhost, tmp_path, engine_run):
    """A completed run: finished ok, the six frames and the deviation arrays with their values from the file."""
    from ase.io import read

    outputs, call = _parse(aiida_localhost, tmp_path, engine_run)
    assert call.exit_status == 0
    frames = read(engine_run[0] / engine.FRAMES_FILENAME, ':')
    deviations = outputs['deviations']
    assert deviations.get_array('step').tolist() == [0, 2, 4, 6, 8, 10]
    assert deviations.get_array('time_fs').tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    expected = [atoms.info['max_force_deviation'] for atoms in frames]
    assert deviations.get_array('max_force_deviation') == pytest.approx(expected)
    assert deviations.get_array('temperature') == pytest.approx([atoms.info['temperature'] for atoms in frames])
    trajectory = outputs['trajectory']
    assert trajectory.get_positions() == pytest.approx(np.array([atoms.positions for atoms in frames]))
    assert trajectory.get_array('energy') == pytest.approx([atoms.get_potential_energy() for atoms in frames])
    assert outputs['stop_reason'].value == 'completed'
    summary = outputs['summary'].get_dict()
    assert summary['frames'] == 6
    assert summary['accurate'] == 6  # twin members: zero deviation
    assert summary['n_members'] == 2
    assert 'parameters' not in summary


def test_killed_run_mid_frame(aiida_localhost, tmp_path, engine_run):
    """No results.json and a last frame cut in half: the complete frames are outputs, exit code 302 says so."""
    text = (engine_run[0] / engine.FRAMES_FILENAME).read_text()
    lines = text.splitlines(keepends=True)
    frame_length = 8 + 2
    cut = ''.join(lines[: 4 * frame_length + 5])  # four frames and half of the fifth
    outputs, call = _parse(aiida_localhost, tmp_path, engine_run, frames_text=cut, keep_results=False)
    assert call.exit_status == EXIT.ERROR_INTERRUPTED.status
    assert 'after 4 frames' in call.exit_message
    assert outputs['trajectory'].numsteps == 4
    assert outputs['stop_reason'].value == 'interrupted'
    assert outputs['summary']['last_step'] == 6


@pytest.mark.parametrize(
    ('status', 'exit_code', 'words'),
    [
        ('min_distance', 'ERROR_MIN_DISTANCE', 'two atoms came'),
        ('temperature', 'ERROR_TEMPERATURE', 'limit'),
        ('nan', 'ERROR_NAN', 'not finite'),
    ],
)
def test_physical_stops_keep_frames(aiida_localhost, tmp_path, engine_run, status, exit_code, words):
    """A physically broken run: its exit code, its message, and still all frames as outputs."""
    results = json.loads((engine_run[0] / engine.RESULTS_FILENAME).read_text())
    results.update({'status': status, 'stop_reason': status, 'message': f'{words} at step 10'})
    outputs, call = _parse(aiida_localhost, tmp_path, engine_run, results=results)
    assert call.exit_status == getattr(EXIT, exit_code).status
    assert words in call.exit_message
    assert outputs['stop_reason'].value == status
    assert outputs['trajectory'].numsteps == 6
    assert outputs['deviations'].get_array('physically_broken').tolist() == [0, 0, 0, 0, 0, 1]


def test_engine_error_keeps_frames(aiida_localhost, tmp_path, engine_run):
    """The engine raised after writing frames: exit code 400 with the exception, frames kept."""
    results = {'status': 'error', 'stop_reason': 'error', 'message': 'RuntimeError: out of memory'}
    outputs, call = _parse(aiida_localhost, tmp_path, engine_run, results=results)
    assert call.exit_status == EXIT.ERROR_ENGINE_FAILED.status
    assert 'RuntimeError: out of memory' in call.exit_message
    assert outputs['stop_reason'].value == 'error'
    assert outputs['deviations'].get_array('physically_broken').tolist() == [0] * 6
    assert outputs['deviations'].get_array('step').size == 6


def test_invalid_input_and_nothing_written(aiida_localhost, tmp_path, engine_run):
    """The engine refused the input: 202 and no outputs; nothing at all written: 300."""
    refused = {'status': 'invalid_input', 'message': 'unknown ensemble'}
    outputs, call = _parse(aiida_localhost, tmp_path, engine_run, results=refused, frames_text='')
    assert call.exit_status == EXIT.ERROR_INVALID_INPUT.status
    assert 'unknown ensemble' in call.exit_message
    assert outputs == {}
    other = tmp_path / 'second'
    other.mkdir()
    outputs, call = _parse(aiida_localhost, other, engine_run, frames_text='', keep_results=False)
    assert call.exit_status == EXIT.ERROR_NO_FRAMES.status
    assert outputs == {}


def test_unreadable_results(aiida_localhost, tmp_path, engine_run):
    """A broken results.json: exit code 301, but the frames are still outputs."""
    outputs, call = _parse(aiida_localhost, tmp_path, engine_run, results='{"status": "ok", ')
    assert call.exit_status == EXIT.ERROR_UNREADABLE_RESULTS.status
    assert outputs['trajectory'].numsteps == 6
