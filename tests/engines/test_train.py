"""Tests of the MACE training engine on small frames of the mlearn Si data set (plain files, no AiiDA)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from aiida_sianode.engines import train as engine

#: a model small enough to train for a few epochs in seconds on one core
TINY = {
    'num_channels': 8,
    'max_L': 0,
    'correlation': 2,
    'num_interactions': 2,
    'r_max': 4.0,
    'batch_size': 4,
    'valid_batch_size': 4,
    'max_num_epochs': 3,
    'default_dtype': 'float64',
}


def _to_training_frame(atoms):
    """Return a copy of an mlearn frame with the REF_* keys the engine reads."""
    frame = atoms.copy()
    frame.calc = None
    frame.info = {'REF_energy': atoms.info['dft_energy'], 'config_type': atoms.info['config_type']}
    frame.arrays = {'numbers': atoms.arrays['numbers'], 'positions': atoms.arrays['positions']}
    frame.arrays['REF_forces'] = np.array(atoms.arrays['dft_forces'])
    return frame


@pytest.fixture(scope='module')
def small_frames(fixtures_path):
    """The eleven mlearn Si training frames of at most 40 atoms, and the two smallest test frames."""
    from ase.io import read

    folder = fixtures_path / 'datasets' / 'mlearn_Si_Li' / 'Si'
    training = [atoms for atoms in read(folder / 'training.extxyz', ':') if len(atoms) <= 40]
    test = sorted(read(folder / 'test.extxyz', ':'), key=len)[:2]
    assert len(training) == 11
    return [_to_training_frame(atoms) for atoms in training], [_to_training_frame(atoms) for atoms in test]


def _write_inputs(directory, train, valid, test=None, parameters=None):
    from ase.io import write

    write(directory / 'train.extxyz', train, format='extxyz')
    write(directory / 'valid.extxyz', valid, format='extxyz')
    config = {'parameters': {**TINY, **(parameters or {})}, 'train_file': 'train.extxyz', 'valid_file': 'valid.extxyz'}
    if test is not None:
        write(directory / 'test.extxyz', test, format='extxyz')
        config['test_file'] = 'test.extxyz'
    (directory / 'config.json').write_text(json.dumps(config))
    return config


@pytest.fixture(scope='module')
def trained(tmp_path_factory, small_frames):
    """One tiny model trained by the engine's command-line entry point, with a test split."""
    training, test = small_frames
    directory = tmp_path_factory.mktemp('train')
    _write_inputs(directory, training[:8], training[8:], test, {'seed': 7})
    assert engine.main([str(directory / 'config.json')]) == 0
    return directory, json.loads((directory / engine.METRICS_FILENAME).read_text())


def test_check_parameters_accepts_defaults_and_partial_sets():
    assert engine.check_parameters({}) is None
    assert engine.check_parameters(dict(engine.DEFAULT_PARAMETERS)) is None
    assert engine.check_parameters({'E0s': {'Si': -5.4}, 'stress_weight': 0}) is None


@pytest.mark.parametrize(
    ('parameters', 'message'),
    [
        ({'learning_rate': 0.01}, 'unknown parameter(s) learning_rate'),
        ({'lr': -0.01}, '`lr` must be positive'),
        ({'lr': float('nan')}, '`lr` must be a finite number'),
        ({'batch_size': 0}, '`batch_size` must be positive'),
        ({'batch_size': 2.5}, '`batch_size` must be an integer'),
        ({'num_channels': True}, '`num_channels` must be an integer'),
        ({'default_dtype': 'float16'}, '`default_dtype` must be one of float32, float64'),
        ({'max_L': 5}, '`max_L` must lie in [0, 3]'),
        ({'subsample_fraction': 1.5}, '`subsample_fraction` must lie in'),
        ({'E0s': 'isolated'}, "`E0s` must be 'average' or a dict"),
        ({'E0s': {'Xx': -1.0}}, '`E0s` keys must be chemical symbols'),
        ({'energy_weight': 0, 'forces_weight': 0}, 'cannot both be zero'),
    ],
)
def test_check_parameters_refuses_bad_values(parameters, message):
    problem = engine.check_parameters(parameters)
    assert problem is not None and message in problem
    with pytest.raises(engine.TrainingInputError, match=r'must|unknown|cannot'):
        engine.resolve_parameters(parameters)


def test_resolve_parameters_defaults_subsample_seed_to_seed():
    assert engine.resolve_parameters({'seed': 11})['subsample_seed'] == 11
    assert engine.resolve_parameters({'seed': 11, 'subsample_seed': 3})['subsample_seed'] == 3


def test_draw_training_subset():
    assert engine.draw_training_subset(10, fraction=1.0, bootstrap=False, seed=0).tolist() == list(range(10))
    half = engine.draw_training_subset(10, fraction=0.5, bootstrap=False, seed=0)
    assert len(half) == 5 and len(set(half.tolist())) == 5
    first = engine.draw_training_subset(200, fraction=1.0, bootstrap=True, seed=1)
    again = engine.draw_training_subset(200, fraction=1.0, bootstrap=True, seed=1)
    other = engine.draw_training_subset(200, fraction=1.0, bootstrap=True, seed=2)
    assert len(first) == 200 and np.array_equal(first, again) and not np.array_equal(first, other)
    # sampling with replacement leaves about 1/e of the frames out
    assert 0.55 < len(np.unique(first)) / 200 < 0.72


def test_loss_monitor_patience_and_non_finite_losses():
    monitor = engine._LossMonitor(patience=2)
    monitor.observe({'mode': 'eval', 'epoch': None, 'loss': 9.0})
    for epoch, loss in enumerate([5.0, 4.0, 4.5]):
        monitor.observe({'mode': 'eval', 'epoch': epoch, 'loss': loss})
    assert (monitor.best_epoch, monitor.lowest, monitor.stale) == (1, 4.0, 1)
    with pytest.raises(engine._PatienceExhausted):
        monitor.observe({'mode': 'eval', 'epoch': 3, 'loss': 4.0})
    assert monitor.stopped_early and monitor.last_epoch == 3
    with pytest.raises(engine.NonFiniteLossError, match='opt loss is nan in epoch 4'):
        monitor.observe({'mode': 'opt', 'epoch': 4, 'loss': float('nan')})


def test_loss_monitor_with_stage_two():
    """In stage one mace handles patience (it jumps to stage two); the count restarts in stage two."""
    monitor = engine._LossMonitor(patience=1, stage_two_start=3)
    for epoch, loss in enumerate([5.0, 6.0, 7.0]):
        monitor.observe({'mode': 'eval', 'epoch': epoch, 'loss': loss})  # no stop: stage one
    assert not monitor.in_stage_two and monitor.stale == 2
    monitor.observe({'mode': 'eval', 'epoch': 3, 'loss': 9.0})  # other weights: a new lowest
    assert monitor.in_stage_two and monitor.best_epoch == 3 and monitor.lowest == 9.0
    with pytest.raises(engine._PatienceExhausted):
        monitor.observe({'mode': 'eval', 'epoch': 4, 'loss': 9.5})
    assert monitor.evaluations == 5


def test_stage_two_parameters():
    resolved = engine.resolve_parameters({'stage_two': True, 'max_num_epochs': 40})
    assert resolved['stage_two_start'] == 30
    argv = engine.build_mace_arguments(
        resolved, train_file='t.xyz', valid_file='v.xyz', test_file=None, with_stress=False, work_dir='w'
    )
    from mace import tools

    args = tools.build_default_arg_parser().parse_args(argv)
    assert args.swa and args.start_swa == 30 and args.swa_energy_weight == 1000.0 and args.swa_lr == 0.001
    problem = engine.check_parameters({'stage_two': True, 'stage_two_start': 40, 'max_num_epochs': 40})
    assert '`stage_two_start` (40) must be below `max_num_epochs` (40)' in problem
    assert '`stage_two_start` must be a positive integer' in engine.check_parameters({'stage_two_start': 0})


def test_build_mace_arguments_explicit_e0s_and_stress_loss():
    parameters = engine.resolve_parameters({'E0s': {'Si': -5.25}, 'ema': True})
    argv = engine.build_mace_arguments(
        parameters, train_file='t.xyz', valid_file='v.xyz', test_file=None, with_stress=True, work_dir='w'
    )
    options = dict(zip(argv[::2], argv[1::2]))
    assert options['--E0s'] == '{14: -5.25}'
    assert options['--loss'] == 'stress'
    assert options['--energy_key'] == 'REF_energy' and options['--forces_key'] == 'REF_forces'
    assert '--ema' in argv
    from mace import tools

    args = tools.build_default_arg_parser().parse_args(argv)
    assert args.E0s == '{14: -5.25}' and args.ema and args.r_max == 5.0 and args.default_dtype == 'float64'


@pytest.mark.slow
def test_engine_trains_and_metrics_match_an_independent_evaluation(trained, small_frames):
    directory, metrics = trained
    training, test = small_frames
    assert metrics['status'] == 'ok'
    assert metrics['mace_version'] == '0.3.16'
    assert metrics['epochs_run'] == 3 and metrics['best_epoch'] in (0, 1, 2)
    assert metrics['training_subset'] == {
        'n_frames': 8,
        'n_unique_frames': 8,
        'n_frames_available': 8,
        'n_isolated_atoms': 0,
        'bootstrap': False,
        'fraction': 1.0,
        'seed': 7,
    }
    assert metrics['train']['n_frames'] == 8 and metrics['valid']['n_frames'] == 3 and metrics['test']['n_frames'] == 2
    assert metrics['test']['n_atoms'] == sum(len(atoms) for atoms in test)
    assert 'rmse_stress_mev_a3' not in metrics['train']
    for name in engine.OUTPUT_FILES:
        assert (directory / name).is_file(), name
    assert not (directory / engine.MACE_WORK_DIR / 'checkpoints').exists()

    # Evaluate the saved model independently, frame by frame, and recompute the errors in meV.
    from mace.calculators import MACECalculator

    calculator = MACECalculator(model_paths=str(directory / 'mace.model'), device='cpu', default_dtype='float64')
    for split, frames in (('train', training[:8]), ('valid', training[8:]), ('test', test)):
        energy_errors, force_errors = [], []
        for frame in frames:
            atoms = frame.copy()
            atoms.calc = calculator
            energy_errors.append((atoms.get_potential_energy() - frame.info['REF_energy']) / len(atoms))
            force_errors.append((atoms.get_forces() - frame.arrays['REF_forces']).ravel())
        energy_errors, force_errors = np.array(energy_errors), np.concatenate(force_errors)
        assert metrics[split]['rmse_e_per_atom_mev'] == pytest.approx(1000 * np.sqrt(np.mean(energy_errors**2)))
        assert metrics[split]['mae_e_per_atom_mev'] == pytest.approx(1000 * np.mean(np.abs(energy_errors)))
        assert metrics[split]['rmse_f_mev_a'] == pytest.approx(1000 * np.sqrt(np.mean(force_errors**2)))
        assert metrics[split]['mae_f_mev_a'] == pytest.approx(1000 * np.mean(np.abs(force_errors)))

    # mace's own validation of the kept (lowest-loss) epoch agrees with the engine's evaluation.
    records = [
        json.loads(line)
        for line in (directory / engine.MACE_WORK_DIR / 'results' / 'mace_run-7_train.txt').read_text().splitlines()
    ]
    best = next(r for r in records if r['mode'] == 'eval' and r['epoch'] == metrics['best_epoch'])
    assert metrics['valid']['rmse_e_per_atom_mev'] == pytest.approx(1000 * best['rmse_e_per_atom'], rel=1e-6)
    assert metrics['valid']['rmse_f_mev_a'] == pytest.approx(1000 * best['rmse_f'], rel=1e-6)
    assert metrics['best_valid_loss'] == pytest.approx(best['loss'])

    predictions = np.load(directory / engine.PREDICTIONS_FILENAME)
    assert predictions['energy_ref'].tolist() == [frame.info['REF_energy'] for frame in test]
    assert predictions['forces_pred'].shape == (sum(len(atoms) for atoms in test), 3)
    assert np.isnan(predictions['stress_ref']).all()


@pytest.mark.slow
def test_engine_learns(tmp_path, small_frames):
    """Ten epochs on two frames: the kept model's validation loss is below the untrained model's, which mace
    evaluates first (the record of epoch null), and the force error falls. Measured: loss 0.0784 -> 0.0729 (-7 %),
    force RMSE 39.5 -> 38.2 meV/Å, falling at every epoch but one."""
    training, _ = small_frames
    _write_inputs(tmp_path, training[:2], training[:2], parameters={'max_num_epochs': 10, 'batch_size': 2, 'lr': 0.02})
    metrics = engine.run_training(json.loads((tmp_path / 'config.json').read_text()), tmp_path)
    assert metrics['status'] == 'ok', metrics.get('error')
    records = [
        json.loads(line)
        for line in (tmp_path / engine.MACE_WORK_DIR / 'results' / 'mace_run-0_train.txt').read_text().splitlines()
    ]
    evaluations = [r for r in records if r['mode'] == 'eval']
    initial = next(r for r in evaluations if r['epoch'] is None)
    assert metrics['best_valid_loss'] < 0.97 * initial['loss']
    assert metrics['best_epoch'] >= 5  # still improving late: it learns, not a lucky first step
    assert metrics['valid']['rmse_f_mev_a'] < 1000 * initial['rmse_f']


@pytest.mark.slow
def test_engine_bootstrap_seeds_give_different_models(tmp_path, small_frames, trained):
    """A second member with another seed and a bootstrap subset predicts differently from the first."""
    training, test = small_frames
    first_dir, _ = trained
    _write_inputs(tmp_path, training[:8], training[8:], test, {'seed': 8, 'bootstrap': True, 'max_num_epochs': 2})
    second = engine.run_training(json.loads((tmp_path / 'config.json').read_text()), tmp_path)
    assert second['status'] == 'ok'
    assert second['training_subset']['n_frames'] == 8 and second['training_subset']['n_unique_frames'] < 8
    # the frames mace trained on are the bootstrap draw (with replacement) of seed 8, not the training file
    from ase.io import read

    drawn = engine.draw_training_subset(8, fraction=1.0, bootstrap=True, seed=8)
    assert len(np.unique(drawn)) == second['training_subset']['n_unique_frames']
    subset = read(tmp_path / engine.MACE_WORK_DIR / 'train_subset.extxyz', ':')
    assert [atoms.info['REF_energy'] for atoms in subset] == [training[index].info['REF_energy'] for index in drawn]
    one, two = np.load(first_dir / engine.PREDICTIONS_FILENAME), np.load(tmp_path / engine.PREDICTIONS_FILENAME)
    assert np.array_equal(one['forces_ref'], two['forces_ref'])
    assert np.abs(one['forces_pred'] - two['forces_pred']).max() > 1e-3
    assert np.abs(one['energy_pred'] - two['energy_pred']).max() > 1e-4


@pytest.mark.slow
def test_engine_reports_nan_loss(tmp_path, small_frames):
    training, _ = small_frames
    _write_inputs(tmp_path, training[:4], training[8:], parameters={'lr': 1e4, 'max_num_epochs': 2})
    metrics = engine.run_training(json.loads((tmp_path / 'config.json').read_text()), tmp_path)
    assert metrics['status'] == engine.STATUS_NAN_LOSS
    assert re.search(r'loss is (nan|inf) in epoch 0', metrics['error'])
    assert not (tmp_path / engine.MODEL_FILENAME).exists()
    assert json.loads((tmp_path / engine.METRICS_FILENAME).read_text())['status'] == 'nan_loss'


@pytest.mark.slow
def test_engine_stress_metrics_and_isolated_atoms(tmp_path, small_frames):
    """Frames with a stress switch on mace's stress loss; an IsolatedAtom frame is kept out of the metrics."""
    from ase import Atoms

    training, _ = small_frames
    train = [_to_training_frame_with_stress(frame) for frame in training[:4]] + training[4:6]
    isolated = Atoms('Si', positions=[[0, 0, 0]], cell=[20, 20, 20], pbc=False)
    isolated.info = {'REF_energy': -0.8, 'config_type': 'IsolatedAtom'}
    isolated.arrays['REF_forces'] = np.zeros((1, 3))
    parameters = {'max_num_epochs': 1, 'bootstrap': True, 'batch_size': 10, 'valid_batch_size': 10}
    _write_inputs(tmp_path, [isolated, *train], training[8:], parameters=parameters)
    metrics = engine.run_training(json.loads((tmp_path / 'config.json').read_text()), tmp_path)
    assert metrics['status'] == 'ok', metrics.get('error')
    # mace drops incomplete batches: the batch sizes are capped by the 6 training (the isolated atom is no training
    # frame for mace) and 3 validation frames
    assert metrics['batch_sizes_capped'] == {'batch_size': 6, 'valid_batch_size': 3}
    assert metrics['mace_arguments'][metrics['mace_arguments'].index('--batch_size') + 1] == '6'
    assert metrics['loss'] == 'stress'
    assert metrics['training_subset']['n_isolated_atoms'] == 1
    assert metrics['train']['n_frames'] == 6
    assert metrics['train']['n_frames_with_stress'] == 4
    # the stress RMSE, recomputed from the saved model: the four frames with a reference stress, Voigt components
    from mace.calculators import MACECalculator

    calculator = MACECalculator(model_paths=str(tmp_path / 'mace.model'), device='cpu', default_dtype='float64')
    errors = []
    for frame in train[:4]:
        atoms = frame.copy()
        atoms.calc = calculator
        errors.append(atoms.get_stress(voigt=True) - frame.info['REF_stress'])
    assert metrics['train']['rmse_stress_mev_a3'] == pytest.approx(1000 * np.sqrt(np.mean(np.square(errors))))
    assert 'rmse_stress_mev_a3' not in metrics['valid']
    log = (tmp_path / engine.LOG_FILENAME).read_text()
    assert 'Using isolated atom energies from training file' in log


@pytest.mark.slow
def test_engine_stage_two_keeps_the_stage_two_model(tmp_path, small_frames):
    training, _ = small_frames
    _write_inputs(
        tmp_path,
        training[:4],
        training[8:],
        parameters={'max_num_epochs': 3, 'stage_two': True, 'stage_two_start': 2, 'patience': 5},
    )
    metrics = engine.run_training(json.loads((tmp_path / 'config.json').read_text()), tmp_path)
    assert metrics['status'] == 'ok', metrics.get('error')
    assert metrics['stage_two_reached'] and metrics['epochs_run'] == 3 and metrics['best_epoch'] == 2
    log = (tmp_path / engine.LOG_FILENAME).read_text()
    assert 'Changing loss based on Stage Two Weights' in log
    assert 'Loaded Stage two model from epoch 2' in log
    assert not list((tmp_path / engine.MACE_WORK_DIR).glob('*.model'))


def _to_training_frame_with_stress(frame):
    """Add a made-up but finite stress, only to check that stress metrics cover the frames that have one."""
    frame = frame.copy()
    frame.info['REF_stress'] = np.array([0.01, 0.012, 0.009, 0.0, 0.001, -0.002])
    return frame


def test_engine_refuses_bad_files_before_training(tmp_path, small_frames):
    training, _ = small_frames
    broken = training[0].copy()
    del broken.arrays['REF_forces']
    _write_inputs(tmp_path, [broken, *training[1:4]], training[8:])
    metrics = engine.run_training(json.loads((tmp_path / 'config.json').read_text()), tmp_path)
    assert metrics['status'] == engine.STATUS_INVALID_INPUT
    assert 'frame 0 of the train file' in metrics['error'] and 'REF_forces' in metrics['error']
    assert 'training_wall_time_s' not in metrics

    config = {'parameters': {'lr': 0}, 'train_file': 'train.extxyz', 'valid_file': 'valid.extxyz'}
    metrics = engine.run_training(config, tmp_path)
    assert metrics['status'] == engine.STATUS_INVALID_INPUT and '`lr` must be positive' in metrics['error']
    assert engine.main([str(tmp_path / 'missing.json')]) == 2


def test_latest_checkpoint_picks_this_runs_newest_epoch(tmp_path):
    folder = tmp_path / 'checkpoints'
    folder.mkdir()
    for name in ('mace_run-3_epoch-4.pt', 'mace_run-3_epoch-12.pt', 'mace_run-4_epoch-30.pt', 'other_epoch-40.pt'):
        (folder / name).write_bytes(b'x')
    (folder / 'mace_run-3_epoch-20.pt').write_bytes(b'')  # an empty file: a save that never happened
    path, epoch = engine.latest_checkpoint(tmp_path, seed=3)
    assert (path.name, epoch) == ('mace_run-3_epoch-12.pt', 12)
    (folder / 'mace_run-3_epoch-15_swa.pt').write_bytes(b'x')
    assert engine.latest_checkpoint(tmp_path, seed=3)[1] == 15
    assert engine.latest_checkpoint(tmp_path, seed=5) is None
    assert engine.latest_checkpoint(tmp_path / 'nowhere', seed=3) is None


@pytest.mark.slow
def test_killed_engine_continues_from_its_checkpoint(tmp_path, small_frames):
    """SIGKILL after the first checkpoint, then the engine again in the same folder: it loads mace's checkpoint
    (model, optimiser, scheduler) and trains only from that epoch to the end."""
    training, _ = small_frames
    _write_inputs(tmp_path, training[:8], training[8:], parameters={'seed': 5, 'max_num_epochs': 30, 'patience': 100})
    import importlib.util
    import pathlib
    import sys

    spec = importlib.util.spec_from_file_location(
        'killer', pathlib.Path(__file__).with_name('kill_after_checkpoint.py')
    )
    killer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(killer)
    command = [sys.executable, '-m', 'aiida_sianode.engines.train', 'config.json']
    path, epoch = killer.kill_after_first_checkpoint(command, tmp_path)
    assert not (tmp_path / engine.METRICS_FILENAME).exists()  # killed: nothing written

    metrics = engine.run_training(json.loads((tmp_path / 'config.json').read_text()), tmp_path)
    assert metrics['status'] == 'ok', metrics.get('error')
    assert metrics['resumed_from_epoch'] == epoch and metrics['resumed_from_checkpoint'] == path.name
    assert '--restart_latest' in metrics['mace_arguments']
    # mace restarts its loop at the checkpoint's epoch: epochs `epoch` .. 29 are trained, not 0 .. 29
    assert metrics['last_epoch'] == 29 and metrics['epochs_run'] == 30 - epoch
    log = (tmp_path / engine.LOG_FILENAME).read_text()
    assert f'Loading checkpoint: {path}' in log
    assert not (tmp_path / engine.MACE_WORK_DIR / 'checkpoints').exists()  # removed once the model is saved
    assert (tmp_path / engine.MODEL_FILENAME).is_file()
