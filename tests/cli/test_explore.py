"""Tests of ``aiida-sianode explore``: a real run with --json, the plot, and refusals before anything runs."""

from __future__ import annotations

import json

import ase.io
import pytest
from aiida import orm
from ase.build import bulk
from click.testing import CliRunner

from aiida_sianode.cli import cmd_root
from aiida_sianode.engines.committee import save_untrained_mace


def invoke(*args):
    return CliRunner().invoke(cmd_root, [str(arg) for arg in args], catch_exceptions=False)


@pytest.fixture(scope='module')
def model_files(tmp_path_factory):
    """Two untrained Si models of different seeds."""
    directory = tmp_path_factory.mktemp('explore-cli')
    return [
        save_untrained_mace(
            directory / f'si{seed}.model', [14], seed=seed, num_channels=8, max_L=0, r_max=4.0, num_interactions=1
        )
        for seed in range(2)
    ]


@pytest.fixture
def committee(aiida_profile, model_files):
    """PKs of the committee's PotentialData."""
    from aiida_sianode.data.potential import PotentialData

    return [PotentialData.from_model_file(path).store().pk for path in model_files]


@pytest.fixture
def structure_file(tmp_path):
    """An 8-atom rattled Si cell in an extended XYZ file."""
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(0.05, seed=4)
    path = tmp_path / 'si8.extxyz'
    ase.io.write(path, atoms)
    return path


def _processes():
    return orm.QueryBuilder().append(orm.ProcessNode).count()


def test_run_and_plot(explore_code, committee, structure_file, tmp_path):
    """`explore --committee A --committee B si8.extxyz -T 300 --steps 10 --json` (``run`` left out): one run whose
    numbers match its nodes; then `explore plot` of the calculation and of the work chain."""
    result = invoke(
        'explore',
        '--committee',
        committee[0],
        '--committee',
        committee[1],
        structure_file,
        '-T',
        300,
        '--steps',
        10,
        '--sample-interval',
        5,
        '--lower',
        0.001,
        '--upper',
        1.0,
        '--protocol',
        'fast',
        '--json',
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document['status'] == 'finished'
    assert document['exit_status'] == 0
    runs = document['summary']['runs']
    assert list(runs) == ['run_000']
    run = runs['run_000']
    assert (run['structure'], run['ensemble'], run['temperature'], run['steps']) == ('si8', 'nvt_langevin', 300.0, 10)
    assert run['stop_reason'] == 'completed'
    assert run['frames'] == 3
    deviations = orm.load_node(run['deviations_pk']).get_array('max_force_deviation')
    assert run['max_force_deviation_max'] == pytest.approx(deviations.max())
    assert run['accurate'] == int((deviations < 0.001).sum())
    calculation = orm.load_node(run['calculation_pk'])
    assert calculation.process_type.endswith('sianode.explore')
    assert calculation.inputs.parameters['force_deviation_upper'] == 1.0
    assert len(calculation.inputs.potentials) == 2

    image = tmp_path / 'dev.png'
    result = invoke('explore', 'plot', run['calculation_pk'], '-o', image, '--json')
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        'output': str(image),
        'node': run['calculation_pk'],
        'runs': 1,
        'lower': 0.001,
        'upper': 1.0,
    }
    assert image.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    result = invoke('explore', 'plot', document['process_pk'], '-o', tmp_path / 'all.png', '--upper', 0.5)
    assert result.exit_code == 0, result.output
    assert 'trust levels 0.001 / 0.5 eV/Å' in result.output

    result = invoke('explore', 'plot', committee[0])
    assert result.exit_code == 1
    assert 'neither an ExploreCalculation nor an ExploreWorkChain' in result.output


@pytest.mark.parametrize(
    ('extra', 'message'),
    [
        (['--ensemble', 'nvt', '--pressure', 1.0], '--pressure is only used by NPT runs'),
        (['--ensemble', 'npt', '--pressure', 15.0], '100 kbar'),
        (['-T', '300:600:900'], 'START:END'),
        (['--lower', 0.5, '--upper', 0.1], 'lower_trust < upper_trust'),
        (['--code', 'nothing@localhost'], 'code `nothing@localhost` not found'),
    ],
)
def test_refused_before_anything_runs(explore_code, committee, structure_file, extra, message):
    """Bad options are refused with the problem named, and no process is created."""
    before = _processes()
    result = invoke('explore', 'run', '--committee', committee[0], structure_file, '--steps', 5, *extra)
    assert result.exit_code != 0
    assert message in result.output
    assert _processes() == before


def test_bad_structure_and_committee(explore_code, committee, structure_file):
    """A missing file, a committee member that is not a PotentialData: refused with the culprit named."""
    result = invoke('explore', '--committee', committee[0], 'missing.xyz', '--json')
    assert result.exit_code == 1
    assert 'neither a file nor the PK/UUID' in json.loads(result.stdout)['error']
    structure = orm.StructureData(ase=ase.io.read(structure_file)).store()
    result = invoke('explore', '--committee', structure.pk, structure.pk)
    assert result.exit_code == 1
    assert 'not a PotentialData' in result.output


@pytest.mark.parametrize('as_json', [False, True])
def test_failed_exploration_exits_1(failing_code, committee, structure_file, as_json):
    """The MD engine exits 1 at once: the work chain fails and the command exits 1, with and without --json."""
    code = failing_code('sianode.explore')
    extra = ['--json'] if as_json else []
    result = invoke(
        'explore', '--committee', committee[0], structure_file, '--steps', 5, '--code', code.full_label, *extra
    )
    assert result.exit_code == 1, result.output
    if as_json:
        document = json.loads(result.stdout)
        assert document['exit_status'] == orm.load_node(document['process_pk']).exit_status != 0
    else:
        assert 'failed [' in result.output
