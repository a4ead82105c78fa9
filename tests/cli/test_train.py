"""Tests of ``aiida-sianode train``: override parsing, refusals before anything runs, and a real committee run."""

from __future__ import annotations

import json

import click
import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_sianode.cli import cmd_root
from aiida_sianode.cli.train import _print_summary, parse_overrides

MLEARN = {'code': 'vasp', 'method': 'PBE', 'description': 'mlearn Si, Zuo et al. 2020'}


def invoke(*args):
    return CliRunner().invoke(cmd_root, [str(arg) for arg in args], catch_exceptions=False)


@pytest.fixture
def small_dataset(aiida_profile, fixtures_path):
    """A DatasetData of the eleven mlearn Si training frames of at most 40 atoms (eight train, three valid)."""
    from ase.io import read

    from aiida_sianode.data.dataset import build_dataset
    from aiida_sianode.data.label import LabelData

    frames = read(fixtures_path / 'datasets' / 'mlearn_Si_Li' / 'Si' / 'training.extxyz', ':')
    labels = [
        LabelData(
            atoms,
            energy=atoms.info['dft_energy'],
            forces=atoms.arrays['dft_forces'],
            level_of_theory=MLEARN,
            source={'kind': 'file', 'filename': 'training.extxyz', 'frame': index},
            config_type=atoms.info['config_type'],
        ).store()
        for index, atoms in enumerate(frames)
        if len(atoms) <= 40
    ]
    return build_dataset(labels, valid_fraction=0.25, seed=1)


def test_parse_overrides():
    overrides = parse_overrides(
        [
            'lr=0.005',
            'bootstrap=true',
            'E0s={Si: -5.4}',
            'max_iterations=2',
            'train.metadata.options.max_wallclock_seconds=600',
            'subsample_seed=null',
        ]
    )
    assert overrides == {
        'train': {
            'parameters': {'lr': 0.005, 'bootstrap': True, 'E0s': {'Si': -5.4}, 'subsample_seed': None},
            'metadata': {'options': {'max_wallclock_seconds': 600}},
        },
        'max_iterations': 2,
    }
    with pytest.raises(click.BadParameter, match='is not KEY=VALUE'):
        parse_overrides(['lr'])
    with pytest.raises(click.BadParameter, match='is not KEY=VALUE'):
        parse_overrides(['=3'])


def test_print_summary_table(capsys):
    summary = {
        'members': {
            'member_00': {
                'seed': 0,
                'epochs_run': 5,
                'training_wall_time_s': 12.5,
                'valid': {'rmse_e_per_atom_mev': 4.0, 'rmse_f_mev_a': 150.0},
            },
            'member_01': {
                'seed': 1,
                'epochs_run': 5,
                'training_wall_time_s': 13.0,
                'valid': {'rmse_e_per_atom_mev': 6.0, 'rmse_f_mev_a': 170.0},
            },
        },
        'mean_std': {
            'valid': {
                'rmse_e_per_atom_mev': {'mean': 5.0, 'std': 1.0},
                'rmse_f_mev_a': {'mean': 160.0, 'std': 10.0},
            }
        },
        'committee_prediction': {'test': {'rmse_e_per_atom_mev': 3.5, 'rmse_f_mev_a': 140.0, 'n_frames': 25}},
        'failed_members': {'member_02': 'TrainWorkChain<7> exit status 401: too many restarts'},
    }
    _print_summary(summary)
    output = capsys.readouterr().out
    assert 'valid E (meV/atom)' in output and 'valid F (meV/Å)' in output and 'test E' not in output
    assert '5 ± 1' in output and '160 ± 10' in output
    assert 'committee mean on test: RMSE E 3.5 meV/atom, RMSE F 140 meV/Å (25 frames)' in output
    assert 'member_02 failed: TrainWorkChain<7> exit status 401' in output


def test_refusals_before_anything_runs(small_dataset, train_code):
    before = orm.QueryBuilder().append(orm.ProcessNode).count()

    result = invoke('train', small_dataset.pk, '--override', 'learning_rate=0.1', '--json')
    assert result.exit_code == 1
    error = json.loads(result.stdout)['error']
    assert 'nothing was run' in error and 'override `learning_rate` does not exist' in error

    result = invoke('train', small_dataset.pk, '--override', 'lr=-1', '--json')
    assert result.exit_code == 1 and '`lr` must be positive' in json.loads(result.stdout)['error']

    result = invoke('train', small_dataset.pk, '--override', 'lr', '--json')
    assert result.exit_code == 1 and 'is not KEY=VALUE' in json.loads(result.stdout)['error']

    label = orm.load_node(small_dataset.label_uuids[0])
    result = invoke('train', label.pk, '--json')
    assert result.exit_code == 1 and 'is a LabelData, not a dataset' in json.loads(result.stdout)['error']

    result = invoke('train', small_dataset.pk, '--code', 'nowhere@localhost', '--json')
    assert result.exit_code == 1 and 'code `nowhere@localhost` not found' in json.loads(result.stdout)['error']

    result = invoke('train', small_dataset.pk, '--committee', '0')
    assert result.exit_code == 2 and '0 is not in the range 1<=x<=100' in result.output

    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


@pytest.mark.slow
def test_train_committee_json(small_dataset, train_code, aiida_localhost):
    aiida_localhost.set_minimum_job_poll_interval(1.0)
    result = invoke(
        'train',
        small_dataset.pk,
        '--committee',
        2,
        '--protocol',
        'fast',
        '--override',
        'max_num_epochs=1',
        '--override',
        'batch_size=4',
        '--json',
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document['protocol'] == 'fast' and document['exit_status'] == 0
    assert sorted(document['potentials']) == ['member_00', 'member_01']
    summary = document['metrics']
    assert summary['n_members'] == 2 and summary['failed_members'] == {}
    for label, pk in document['potentials'].items():
        potential = orm.load_node(pk)
        assert potential.training_set_uuid == small_dataset.uuid
        assert potential.metrics['valid'] == summary['members'][label]['valid']
        assert summary['members'][label]['epochs_run'] == 1
    parameters = orm.load_node(document['workchain_pk']).inputs.member.train.parameters.get_dict()
    assert parameters['bootstrap'] is True and parameters['max_num_epochs'] == 1 and parameters['num_channels'] == 8


@pytest.mark.parametrize('as_json', [False, True])
def test_failed_training_exits_1(small_dataset, failing_code, as_json):
    """Every member's engine exits 1 at once: the committee fails and the command exits 1, with and without --json."""
    code = failing_code('sianode.train')
    extra = ['--json'] if as_json else []
    result = invoke('train', small_dataset.pk, '--committee', 2, '--code', code.full_label, *extra)
    assert result.exit_code == 1, result.output
    if as_json:
        document = json.loads(result.stdout)
        assert document['exit_status'] == orm.load_node(document['workchain_pk']).exit_status != 0
        assert document['potentials'] == {}
    else:
        assert 'finished with exit status 4' in result.output
