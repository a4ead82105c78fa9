"""Tests of TrainCalculation, its parser, TrainWorkChain's error handlers and TrainCommitteeWorkChain.

Real training runs use a few small frames of the mlearn Si set and a tiny model; the handlers are tested by giving
the work chain a failed child calculation, as aiida-quantumespresso's tests do.
"""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import ExitCode, ProcessHandlerReport, run_get_node
from plumpy import ProcessState

from aiida_sianode.calculations.train import TrainCalculation
from aiida_sianode.engines import train as engine
from aiida_sianode.protocols import ProtocolError
from aiida_sianode.workflows.train import (
    TrainCommitteeWorkChain,
    TrainWorkChain,
    member_parameters,
    summarise_committee_metrics,
)

MLEARN = {'code': 'vasp', 'method': 'PBE', 'description': 'mlearn Si, Zuo et al. 2020'}
#: a model that trains for two epochs on a few small frames in seconds
TINY = {
    'num_channels': 8,
    'max_L': 0,
    'correlation': 2,
    'r_max': 4.0,
    'batch_size': 4,
    'valid_batch_size': 4,
    'max_num_epochs': 2,
    'ema': False,
    'default_dtype': 'float64',
}


def _labels(frames, level_of_theory=MLEARN):
    from aiida_sianode.data.label import LabelData

    labels = []
    for index, atoms in enumerate(frames):
        label = LabelData(
            atoms,
            energy=atoms.info['dft_energy'],
            forces=atoms.arrays['dft_forces'],
            level_of_theory=level_of_theory,
            source={'kind': 'file', 'filename': 'mlearn', 'frame': index},
            config_type=atoms.info['config_type'],
        )
        labels.append(label.store())
    return labels


@pytest.fixture(autouse=True)
def quick_polling(aiida_localhost):
    """Poll the local scheduler every second instead of every ten: a tiny training takes only seconds."""
    aiida_localhost.set_minimum_job_poll_interval(1.0)


@pytest.fixture(scope='module')
def mlearn_small(fixtures_path):
    """The eleven mlearn Si training frames of at most 40 atoms and the two smallest test frames."""
    from ase.io import read

    folder = fixtures_path / 'datasets' / 'mlearn_Si_Li' / 'Si'
    training = [atoms for atoms in read(folder / 'training.extxyz', ':') if len(atoms) <= 40]
    test = sorted(read(folder / 'test.extxyz', ':'), key=len)[:2]
    return training, test


@pytest.fixture
def datasets(aiida_profile, mlearn_small):
    """A training DatasetData (eight train + three valid frames) and a test DatasetData (two frames)."""
    from aiida_sianode.data.dataset import build_dataset

    training, test = mlearn_small
    dataset = build_dataset(_labels(training), valid_fraction=0.25, seed=1)
    test_dataset = build_dataset(_labels(test), valid_fraction=0.0, seed=1)
    assert dataset.split_counts == {'train': 8, 'valid': 3, 'test': 0}
    return dataset, test_dataset


def _instantiate(process_class, inputs):
    """Return an instance of ``process_class`` with ``inputs``, without running it."""
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    return instantiate_process(get_manager().get_runner(), process_class, **inputs)


def _failed_node(node_class, exit_code, computer=None, label='TrainCalculation'):
    """Return a stored process node that finished with ``exit_code``."""
    node = node_class(computer=computer) if computer is not None else node_class()
    node.set_process_label(label)
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(exit_code.status)
    node.set_exit_message(exit_code.message)
    return node.store()


@pytest.fixture
def train_workchain(train_code, datasets):
    """A TrainWorkChain instance set up with tiny parameters, ready to inspect a child."""

    def factory(parameters=None):
        dataset, _ = datasets
        inputs = {
            'train': {'code': train_code, 'dataset': dataset, 'parameters': orm.Dict({**TINY, **(parameters or {})})}
        }
        process = _instantiate(TrainWorkChain, inputs)
        process.setup()
        return process

    return factory


# ---------------------------------------------------------------------------------------------------------------- #
# Input validation and protocols (no training)
# ---------------------------------------------------------------------------------------------------------------- #


def test_calculation_refuses_bad_parameters(train_code, datasets):
    dataset, _ = datasets
    with pytest.raises(ValueError, match='unknown parameter\\(s\\) learning_rate'):
        run_get_node(TrainCalculation, code=train_code, dataset=dataset, parameters=orm.Dict({'learning_rate': 0.1}))
    with pytest.raises(ValueError, match='`default_dtype` must be one of float32, float64'):
        run_get_node(TrainCalculation, code=train_code, dataset=dataset, parameters=orm.Dict({'default_dtype': 'f16'}))
    with pytest.raises(ValueError, match='`E0s` gives no isolated-atom energy for Si'):
        run_get_node(TrainCalculation, code=train_code, dataset=dataset, parameters=orm.Dict({'E0s': {'Li': -1.0}}))


def test_calculation_refuses_incompatible_datasets(train_code, datasets, mlearn_small):
    from aiida_sianode.data.dataset import build_dataset

    dataset, _ = datasets
    training, test = mlearn_small
    no_valid = build_dataset(_labels(training[:3]), valid_fraction=0.0)
    with pytest.raises(ValueError, match='has no validation frames'):
        run_get_node(TrainCalculation, code=train_code, dataset=no_valid)
    other_theory = build_dataset(_labels(test, {'code': 'gpaw', 'method': 'PBE'}), valid_fraction=0.0)
    with pytest.raises(ValueError, match='another level of theory than the training set: code'):
        run_get_node(TrainCalculation, code=train_code, dataset=dataset, test_dataset=other_theory)


def test_protocols_and_builders(train_code, datasets):
    dataset, test_dataset = datasets
    assert set(TrainWorkChain.get_available_protocols()) == {'fast', 'balanced', 'stringent'}
    assert TrainWorkChain.get_default_protocol() == 'balanced'
    for protocol in ('fast', 'balanced', 'stringent'):
        parameters = TrainWorkChain.get_protocol_inputs(protocol)['train']['parameters']
        assert set(parameters) == set(engine.PARAMETER_SPECS), protocol
        assert engine.check_parameters(parameters) is None, protocol
    fast = TrainWorkChain.get_protocol_inputs('fast')['train']['parameters']
    assert (fast['num_channels'], fast['max_L'], fast['default_dtype']) == (8, 0, 'float32')

    builder = TrainCommitteeWorkChain.get_builder_from_protocol(
        train_code,
        dataset,
        protocol='fast',
        overrides={'train': {'parameters': {'lr': 0.005, 'bootstrap': True}}},
        committee_size=4,
        test_dataset=test_dataset,
        options={'max_wallclock_seconds': 120},
    )
    assert builder.committee_size.value == 4
    assert builder.test_dataset.uuid == test_dataset.uuid
    assert builder.member.train.parameters['lr'] == 0.005 and builder.member.train.parameters['bootstrap'] is True
    assert builder.member.train.metadata.options['max_wallclock_seconds'] == 120
    assert builder.member.train.metadata.options['resources'] == {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
    # committee members draw bootstrap samples unless told otherwise
    assert TrainCommitteeWorkChain.get_builder_from_protocol(train_code, dataset).member.train.parameters['bootstrap']
    assert TrainWorkChain.get_builder_from_protocol(train_code, dataset).train.parameters['bootstrap'] is False
    no_bootstrap = {'train': {'parameters': {'bootstrap': False}}}
    builder = TrainCommitteeWorkChain.get_builder_from_protocol(train_code, dataset, overrides=no_bootstrap)
    assert builder.member.train.parameters['bootstrap'] is False

    # the active-learning work chain sets the dataset later
    builder = TrainCommitteeWorkChain.get_builder_from_protocol(train_code, None, protocol='fast')
    assert 'dataset' not in builder and builder.member.train.parameters['num_channels'] == 8

    with pytest.raises(ProtocolError, match=r'override `train\.parameters\.learning_rate` does not exist'):
        TrainWorkChain.get_builder_from_protocol(
            train_code, dataset, overrides={'train': {'parameters': {'learning_rate': 1.0}}}
        )
    with pytest.raises(ValueError, match='`lr` must be positive'):
        TrainWorkChain.get_builder_from_protocol(train_code, dataset, overrides={'train': {'parameters': {'lr': -1}}})
    with pytest.raises(ValueError, match='committee_size'):
        TrainCommitteeWorkChain.get_builder_from_protocol(train_code, dataset, committee_size=0)


def test_member_parameters_shift_seeds():
    assert member_parameters({'seed': 5, 'bootstrap': True}, 2) == {'seed': 7, 'bootstrap': True}
    assert member_parameters({'seed': 5, 'subsample_seed': 10}, 3) == {'seed': 8, 'subsample_seed': 13}
    assert member_parameters({}, 1)['seed'] == engine.DEFAULT_PARAMETERS['seed'] + 1


# ---------------------------------------------------------------------------------------------------------------- #
# Error handlers, given failed children
# ---------------------------------------------------------------------------------------------------------------- #


def test_nan_loss_handler_halves_the_learning_rate(train_workchain, aiida_localhost):
    process = train_workchain({'lr': 0.01})
    child = _failed_node(orm.CalcJobNode, TrainCalculation.exit_codes.ERROR_NAN_LOSS, aiida_localhost)
    process.ctx.children = [child]
    process.ctx.iteration = 1

    assert process.inspect_process().status == 0  # handled: the work chain restarts
    assert not process.ctx.is_finished
    assert process.ctx.inputs.parameters['lr'] == pytest.approx(0.005)
    assert process.ctx.inputs.parameters['num_channels'] == 8  # the rest is untouched

    report = process.handle_nan_loss(child)
    assert isinstance(report, ProcessHandlerReport) and report.do_break and report.exit_code.status == 0
    assert process.ctx.inputs.parameters['lr'] == pytest.approx(0.0025)


def test_nan_loss_handler_uses_the_engine_default_learning_rate(train_workchain, aiida_localhost):
    process = train_workchain()
    child = _failed_node(orm.CalcJobNode, TrainCalculation.exit_codes.ERROR_NAN_LOSS, aiida_localhost)
    process.handle_nan_loss(child)
    assert process.ctx.inputs.parameters['lr'] == pytest.approx(engine.DEFAULT_PARAMETERS['lr'] / 2)


@pytest.mark.parametrize(
    'exit_code',
    [TrainCalculation.exit_codes.ERROR_OUT_OF_MEMORY, TrainCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_MEMORY],
)
def test_out_of_memory_handler_halves_the_batch_size(train_workchain, aiida_localhost, exit_code):
    process = train_workchain({'batch_size': 5, 'valid_batch_size': 8})
    process.ctx.children = [_failed_node(orm.CalcJobNode, exit_code, aiida_localhost)]
    process.ctx.iteration = 1
    assert process.inspect_process().status == 0
    assert process.ctx.inputs.parameters['batch_size'] == 2
    assert process.ctx.inputs.parameters['valid_batch_size'] == 4
    assert 'lr' not in process.ctx.inputs.parameters.get_dict()  # only the batch sizes change


def test_out_of_memory_at_batch_size_one_aborts(train_workchain, aiida_localhost):
    process = train_workchain({'batch_size': 1})
    process.ctx.children = [
        _failed_node(orm.CalcJobNode, TrainCalculation.exit_codes.ERROR_OUT_OF_MEMORY, aiida_localhost)
    ]
    process.ctx.iteration = 1
    result = process.inspect_process()
    assert result.status == TrainWorkChain.exit_codes.ERROR_OUT_OF_MEMORY_AT_BATCH_SIZE_ONE.status == 403


def test_refused_input_aborts_and_unknown_failure_is_not_retried(train_workchain, aiida_localhost):
    process = train_workchain()
    refused = TrainCalculation.exit_codes.ERROR_INVALID_TRAINING_INPUT.format(error='frame 0 has no REF_forces')
    process.ctx.children = [_failed_node(orm.CalcJobNode, refused, aiida_localhost)]
    process.ctx.iteration = 1
    result = process.inspect_process()
    assert result.status == 404 and 'frame 0 has no REF_forces' in result.message

    process = train_workchain()
    unreadable = TrainCalculation.exit_codes.ERROR_UNREADABLE_MODEL.format(error='truncated file')
    process.ctx.children = [_failed_node(orm.CalcJobNode, unreadable, aiida_localhost)]
    process.ctx.iteration = 1
    assert process.inspect_process().status == TrainWorkChain.exit_codes.ERROR_UNHANDLED_FAILURE.status


def _interrupted_node(computer, checkpoints=(), walltime=3600):
    """Return a stored TrainCalculation node that ended with exit 300, its `retrieved` holding ``checkpoints``."""
    import io

    from aiida.common.links import LinkType

    node = orm.CalcJobNode(computer=computer, process_type='aiida.calculations:sianode.train')
    node.set_process_label('TrainCalculation')
    node.set_option('max_wallclock_seconds', walltime)
    node.set_process_state(ProcessState.FINISHED)
    exit_code = TrainCalculation.exit_codes.ERROR_MISSING_METRICS
    node.set_exit_status(exit_code.status)
    node.set_exit_message(exit_code.message)
    node.store()
    retrieved = orm.FolderData()
    retrieved.base.repository.put_object_from_filelike(io.BytesIO(b'{}'), 'engine.err')
    for name in checkpoints:
        retrieved.base.repository.put_object_from_filelike(io.BytesIO(b'state'), f'checkpoints/{name}')
    retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='retrieved')
    return node, retrieved.store()


def test_interrupted_training_continues_from_its_checkpoint(train_workchain, aiida_localhost):
    process = train_workchain()
    process.ctx.inputs.metadata.options = {'max_wallclock_seconds': 3600}
    first, retrieved = _interrupted_node(aiida_localhost, ['mace_run-0_epoch-7.pt'])
    process.ctx.children, process.ctx.iteration = [first], 1
    assert process.inspect_process().status == 0  # handled: continue
    assert process.ctx.inputs.parent_checkpoints.uuid == retrieved.uuid
    assert process.ctx.inputs.metadata.options['max_wallclock_seconds'] == 3600  # it progressed: same walltime

    # the next try ends at the same checkpoint: no progress, so twice the walltime
    second, retrieved = _interrupted_node(aiida_localhost, ['mace_run-0_epoch-7.pt'])
    assert process.handle_interrupted(second).do_break
    assert process.ctx.inputs.parent_checkpoints.uuid == retrieved.uuid
    assert process.ctx.inputs.metadata.options['max_wallclock_seconds'] == 7200

    # killed before any checkpoint: from the start, twice the walltime
    process = train_workchain()
    process.ctx.inputs.metadata.options = {'max_wallclock_seconds': 600}
    node, _ = _interrupted_node(aiida_localhost)
    process.handle_interrupted(node)
    assert 'parent_checkpoints' not in process.ctx.inputs
    assert process.ctx.inputs.metadata.options['max_wallclock_seconds'] == 1200


def test_parent_checkpoints_without_a_checkpoint_are_refused(train_code, datasets, aiida_localhost):
    dataset, _ = datasets
    _, empty = _interrupted_node(aiida_localhost)
    with pytest.raises(ValueError, match='holds no mace checkpoint under `checkpoints/`'):
        run_get_node(TrainCalculation, code=train_code, dataset=dataset, parent_checkpoints=empty)


@pytest.mark.slow
def test_training_killed_mid_run_continues_from_its_checkpoint(train_code, datasets, aiida_localhost, tmp_path):
    """The engine SIGKILLed after its first checkpoint (as by a walltime): the work chain runs a second
    calculation that loads that checkpoint and trains only the remaining epochs."""
    import pathlib
    import stat
    import sys

    from aiida_sianode.calculations.train import checkpoint_epoch

    killer = pathlib.Path(__file__).parents[1] / 'engines' / 'kill_after_checkpoint.py'
    wrapper = tmp_path / 'train-killed-once'
    wrapper.write_text(f'#!/bin/bash\nexec {sys.executable} {killer} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    code = orm.InstalledCode(
        label='train-killed-once',
        computer=aiida_localhost,
        filepath_executable=str(wrapper),
        default_calc_job_plugin='sianode.train',
        prepend_text=f'export SIANODE_KILL_MARKER={tmp_path / "killed"}',
    ).store()
    dataset, _ = datasets
    parameters = {**TINY, 'max_num_epochs': 30, 'patience': 100}
    results, node = run_get_node(
        TrainWorkChain, train={'code': code, 'dataset': dataset, 'parameters': orm.Dict(parameters)}
    )
    assert node.is_finished_ok, node.exit_message
    first, second = sorted(node.called, key=lambda calc: calc.ctime)
    assert (first.exit_status, second.exit_status) == (300, 0)
    epoch = checkpoint_epoch(first.outputs.retrieved)
    assert epoch is not None and second.inputs.parent_checkpoints.uuid == first.outputs.retrieved.uuid
    metrics = results['metrics'].get_dict()
    assert metrics['resumed_from_epoch'] == epoch
    assert metrics['last_epoch'] == 29 and metrics['epochs_run'] == 30 - epoch
    assert checkpoint_epoch(second.outputs.retrieved) is None  # a finished run leaves no checkpoint behind
    logs = [line.message for line in orm.Log.collection.get_logs_for(node)]
    assert any(f'continuing from its checkpoint of epoch {epoch}' in line for line in logs)


def test_committee_reports_failed_members_and_fails_only_when_all_fail(train_code, datasets):
    dataset, _ = datasets
    inputs = {
        'dataset': dataset,
        'committee_size': orm.Int(2),
        'member': {'train': {'code': train_code, 'parameters': orm.Dict(TINY)}},
    }
    failed = TrainWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED
    ok = ExitCode(0)

    process = _instantiate(TrainCommitteeWorkChain, inputs)
    process.setup()
    process.ctx.member_00 = _failed_node(orm.WorkChainNode, failed, label='TrainWorkChain')
    process.ctx.member_01 = _failed_node(orm.WorkChainNode, ok, label='TrainWorkChain')
    assert process.inspect_members() is None
    assert process.ctx.succeeded == ['member_01']
    assert 'exit status 401' in process.ctx.failures['member_00']

    process = _instantiate(TrainCommitteeWorkChain, inputs)
    process.setup()
    process.ctx.member_00 = _failed_node(orm.WorkChainNode, failed, label='TrainWorkChain')
    process.ctx.member_01 = _failed_node(orm.WorkChainNode, failed, label='TrainWorkChain')
    result = process.inspect_members()
    assert result.status == TrainCommitteeWorkChain.exit_codes.ERROR_ALL_MEMBERS_FAILED.status == 400
    assert 'member_00' in result.message and 'member_01' in result.message


def test_summarise_committee_metrics_values():
    """Mean/std over members and the committee-mean prediction error, on numbers worked out by hand."""
    natoms = np.array([2, 2])
    reference = {
        'natoms': natoms,
        'energy_ref': np.array([0.0, 0.0]),
        'forces_ref': np.zeros((4, 3)),
        'stress_ref': np.full((2, 6), np.nan),
    }
    one = {**reference, 'energy_pred': np.array([0.002, -0.002]), 'forces_pred': np.full((4, 3), 0.1)}
    two = {**reference, 'energy_pred': np.array([-0.002, 0.002]), 'forces_pred': np.full((4, 3), -0.1)}
    for member in (one, two):
        member['stress_pred'] = np.full((2, 6), np.nan)
    metrics = {
        'member_00': {'parameters': {'seed': 0}, 'valid': {'rmse_e_per_atom_mev': 2.0, 'rmse_f_mev_a': 90.0}},
        'member_01': {'parameters': {'seed': 1}, 'valid': {'rmse_e_per_atom_mev': 4.0, 'rmse_f_mev_a': 110.0}},
    }
    summary = summarise_committee_metrics(metrics, {'member_00': one, 'member_01': two})
    assert summary['n_members'] == 2
    assert summary['members']['member_01']['seed'] == 1
    assert summary['mean_std']['valid']['rmse_e_per_atom_mev'] == {'mean': 3.0, 'std': 1.0, 'min': 2.0, 'max': 4.0}
    assert summary['mean_std']['valid']['rmse_f_mev_a']['mean'] == pytest.approx(100.0)
    # each member is 1 meV/atom and 100 meV/Å off; their mean prediction is exact
    assert engine.error_metrics(one)['rmse_e_per_atom_mev'] == pytest.approx(1.0)
    assert engine.error_metrics(one)['rmse_f_mev_a'] == pytest.approx(100.0)
    assert summary['committee_prediction']['test']['rmse_e_per_atom_mev'] == pytest.approx(0.0)
    assert summary['committee_prediction']['test']['rmse_f_mev_a'] == pytest.approx(0.0)
    # members differ by 0.2 eV/Å per component: deviation sqrt(3 * 0.1**2) per atom
    assert summary['test_disagreement']['mean_max_force_deviation_ev_a'] == pytest.approx(np.sqrt(0.03))
    assert summary['test_disagreement']['mean_energy_std_mev_per_atom'] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------------------------- #
# Real training
# ---------------------------------------------------------------------------------------------------------------- #


@pytest.mark.slow
def test_train_calculation_outputs(train_code, datasets, mlearn_small):
    dataset, test_dataset = datasets
    results, node = run_get_node(
        TrainCalculation,
        code=train_code,
        dataset=dataset,
        test_dataset=test_dataset,
        parameters=orm.Dict({**TINY, 'seed': 3}),
    )
    assert node.is_finished_ok, node.exit_message
    metrics, potential = results['metrics'].get_dict(), results['potential']
    assert metrics['status'] == 'ok' and metrics['epochs_run'] == 2
    assert (metrics['train']['n_frames'], metrics['valid']['n_frames'], metrics['test']['n_frames']) == (8, 3, 2)
    assert potential.training_set_uuid == dataset.uuid
    assert potential.seed == 3 and potential.elements == ['Si'] and potential.r_max == pytest.approx(4.0)
    assert potential.dtype == 'float64'
    assert potential.metrics['valid'] == metrics['valid'] and potential.metrics['test'] == metrics['test']
    retrieved = set(node.outputs.retrieved.base.repository.list_object_names())
    assert {engine.METRICS_FILENAME, engine.LOG_FILENAME, TrainCalculation.STDERR_FILENAME} <= retrieved
    assert engine.MODEL_FILENAME not in retrieved  # the model lives in the PotentialData only

    # the stored potential, evaluated here, reproduces the test errors the engine reported
    calculator = potential.get_calculator()
    test_frames = test_dataset.get_frames()
    errors = []
    for frame in test_frames:
        atoms = frame.copy()
        atoms.calc = calculator
        errors.append((atoms.get_potential_energy() - frame.info['REF_energy']) / len(atoms))
    assert metrics['test']['rmse_e_per_atom_mev'] == pytest.approx(1000 * np.sqrt(np.mean(np.square(errors))))
    predictions = results['test_predictions']
    assert predictions.get_array('energy_ref').tolist() == [frame.info['REF_energy'] for frame in test_frames]


@pytest.mark.slow
def test_train_calculation_nan_loss_exit_code(train_code, datasets):
    dataset, _ = datasets
    results, node = run_get_node(
        TrainCalculation, code=train_code, dataset=dataset, parameters=orm.Dict({**TINY, 'lr': 1e4})
    )
    assert node.exit_status == TrainCalculation.exit_codes.ERROR_NAN_LOSS.status == 400
    assert 'lower learning rate' in node.exit_message and 'loss is' in node.exit_message
    assert results['metrics']['status'] == 'nan_loss'
    assert 'potential' not in results


@pytest.mark.slow
def test_committee_of_two_trains_end_to_end(train_code, datasets):
    dataset, test_dataset = datasets
    builder = TrainCommitteeWorkChain.get_builder_from_protocol(
        train_code,
        dataset,
        protocol='fast',
        overrides={'train': {'parameters': {'max_num_epochs': 2, 'batch_size': 4}}},
        committee_size=2,
        test_dataset=test_dataset,
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    potentials = results['potentials']
    assert sorted(potentials) == ['member_00', 'member_01']
    assert [potentials[label].seed for label in sorted(potentials)] == [0, 1]
    assert all(potential.training_set_uuid == dataset.uuid for potential in potentials.values())

    summary = results['metrics'].get_dict()
    assert summary['n_members'] == summary['committee_size'] == 2 and summary['failed_members'] == {}
    members = summary['members']
    valid_rmse = [members[label]['valid']['rmse_e_per_atom_mev'] for label in ('member_00', 'member_01')]
    assert summary['mean_std']['valid']['rmse_e_per_atom_mev']['mean'] == pytest.approx(np.mean(valid_rmse))
    assert summary['mean_std']['valid']['rmse_e_per_atom_mev']['std'] == pytest.approx(np.std(valid_rmse))
    assert members['member_00']['n_frames_trained'] < 8  # bootstrap samples leave frames out

    # member diversity and the committee-mean error, recomputed from the stored potentials
    test_frames = test_dataset.get_frames()
    calculators = [potentials[label].get_calculator() for label in ('member_00', 'member_01')]
    member_energies, member_forces = [], []
    for calculator in calculators:
        energies, forces = [], []
        for frame in test_frames:
            atoms = frame.copy()
            atoms.calc = calculator
            energies.append(atoms.get_potential_energy() / len(atoms))
            forces.append(atoms.get_forces())
        member_energies.append(energies)
        member_forces.append(np.concatenate(forces))
    assert np.abs(member_forces[0] - member_forces[1]).max() > 1e-3
    reference_e = np.array([frame.info['REF_energy'] / len(frame) for frame in test_frames])
    reference_f = np.concatenate([frame.arrays['REF_forces'] for frame in test_frames])
    committee_e = np.mean(member_energies, axis=0)
    committee_f = np.mean(member_forces, axis=0)
    expected_e = 1000 * np.sqrt(np.mean((committee_e - reference_e) ** 2))
    expected_f = 1000 * np.sqrt(np.mean((committee_f - reference_f) ** 2))
    committee = summary['committee_prediction']['test']
    assert committee['rmse_e_per_atom_mev'] == pytest.approx(expected_e, rel=1e-3)
    assert committee['rmse_f_mev_a'] == pytest.approx(expected_f, rel=1e-3)
    assert summary['test_disagreement']['mean_max_force_deviation_ev_a'] > 0
