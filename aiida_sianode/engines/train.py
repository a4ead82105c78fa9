"""MACE training engine: ``python -m aiida_sianode.engines.train config.json`` (plain files, no AiiDA).

Inputs, in the working folder:

* ``config.json``: ``{"parameters": {...}, "train_file": "train.extxyz", "valid_file": "valid.extxyz",
  "test_file": "test.extxyz" or null}``; the parameters are described by :data:`PARAMETER_SPECS`, missing ones
  take the values in :data:`DEFAULT_PARAMETERS`.
* the extended XYZ files, one frame per structure with ``info['REF_energy']`` (eV), ``arrays['REF_forces']``
  (eV/Å), optionally ``info['REF_stress']`` (Voigt-6, eV/Å^3, ASE sign convention) and ``info['config_type']``.

The engine draws the training subset (all frames, a fraction, or a bootstrap sample drawn with replacement, from
``subsample_seed``), runs ``mace_run_train`` in this process (``mace.cli.run_train.run`` on an argument list built
from the parameters), evaluates the final model itself with ``MACECalculator`` on every split and writes:

* ``mace.model``: the trained model (``torch.save`` of the whole model, as ``mace_run_train`` writes it);
* ``metrics.json``: ``status`` (``ok``, ``nan_loss``, ``out_of_memory``, ``invalid_input``, ``error``), per split the
  number of frames and the RMSE / MAE of the energy per atom (meV/atom), of the force components (meV/Å) and of the
  stress components (meV/Å^3, frames with a reference stress only), the epochs run, the best epoch and wall times;
* ``training.log``: mace's log;
* ``test_predictions.npz``: reference and predicted energies, forces and stresses of the test frames, so that a
  committee's mean prediction can be scored without loading any model again.

Frames of one atom with ``config_type == 'IsolatedAtom'`` in the training file are mace's isolated-atom energies
(E0s, they then take precedence over the ``E0s`` parameter): they are in every training subset and in no error
metric. Epoch checkpoints are deleted once the model is saved.

**Continuing an interrupted run.** mace keeps the checkpoint of the lowest validation loss so far in
``mace_run/checkpoints/`` (model, optimiser and scheduler state). When that folder already holds a checkpoint of this
run (same seed) as the engine starts, which is what the calculation puts there after a job was killed or ran out of
walltime, training continues from it (mace's ``--restart_latest``): from the checkpoint's epoch to
``max_num_epochs``, on the same training subset (it is drawn from the seed). The checkpoint's own epoch is trained
once more (mace restarts its loop there) and the epochs after it that the killed run had trained are lost; the
metrics record ``resumed_from_epoch``. A checkpoint that cannot be read makes mace start from the beginning.

mace 0.3.16 only stops on ``patience`` in distributed runs, so the engine applies the patience rule itself (stop
after ``patience`` evaluations without a lower validation loss; the model kept is the one of the lowest validation
loss) and stops at the first non-finite loss. With ``stage_two`` (mace's "stage two", formerly SWA: other loss
weights and learning rate from ``stage_two_start``), patience counts per stage and the stage-two model is kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import pathlib
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

import numpy as np

from aiida_sianode.analysis.metrics import error_metrics, predict_frames
from aiida_sianode.engines.once import once
from aiida_sianode.engines.train_parameters import (  # noqa: F401  (the engine's parameter API)
    DEFAULT_PARAMETERS,
    PARAMETER_SPECS,
    TrainingInputError,
    check_parameters,
    resolve_parameters,
)

#: Name of the run inside mace: the model file is ``<MODEL_NAME>.model``.
MODEL_NAME = 'mace'
MODEL_FILENAME = 'mace.model'
METRICS_FILENAME = 'metrics.json'
LOG_FILENAME = 'training.log'
PREDICTIONS_FILENAME = 'test_predictions.npz'
CONFIG_FILENAME = 'config.json'
MACE_WORK_DIR = 'mace_run'

#: The files the engine leaves for the calculation to bring back; mace's scratch folder stays on the remote machine.
OUTPUT_FILES = (MODEL_FILENAME, METRICS_FILENAME, LOG_FILENAME, PREDICTIONS_FILENAME)

STATUS_OK = 'ok'
STATUS_NAN_LOSS = 'nan_loss'
STATUS_OUT_OF_MEMORY = 'out_of_memory'
STATUS_INVALID_INPUT = 'invalid_input'
STATUS_ERROR = 'error'


class NonFiniteLossError(RuntimeError):
    """Raised inside mace's training loop when a loss is NaN or infinite."""


class _PatienceExhausted(Exception):
    """Raised inside mace's training loop to stop it when the validation loss stopped improving."""


def read_frames(path: str | pathlib.Path, split: str) -> list:
    """Read the frames of one split and check that each has ``REF_energy`` and ``REF_forces``.

    :raises TrainingInputError: for a missing or empty file or a frame without reference energy or forces.
    """
    from ase.io import read

    path = pathlib.Path(path)
    if not path.is_file():
        raise TrainingInputError(f'the {split} file `{path}` does not exist')
    frames = read(path, index=':', format='extxyz')
    if not frames:
        raise TrainingInputError(f'the {split} file `{path}` holds no frames')
    for index, atoms in enumerate(frames):
        if 'REF_energy' not in atoms.info:
            raise TrainingInputError(f'frame {index} of the {split} file `{path}` has no `REF_energy`')
        forces = atoms.arrays.get('REF_forces')
        if forces is None or np.shape(forces) != (len(atoms), 3):
            raise TrainingInputError(f'frame {index} of the {split} file `{path}` has no `REF_forces` of shape (N, 3)')
    return frames


def is_isolated_atom(atoms) -> bool:
    """Return whether ``atoms`` is an isolated-atom reference (one atom, ``config_type == 'IsolatedAtom'``).

    mace takes the energies of such frames in the training file as its E0s and does not train on them; the engine
    keeps them in every training subset and leaves them out of the error metrics.
    """
    return len(atoms) == 1 and atoms.info.get('config_type') == 'IsolatedAtom'


def draw_training_subset(n_frames: int, *, fraction: float, bootstrap: bool, seed: int) -> np.ndarray:
    """Return the indices of the training frames one committee member sees.

    With ``bootstrap`` the ``round(fraction * n_frames)`` indices are drawn with replacement (bagging: repeated frames
    weigh more, about a third of the frames are left out at ``fraction=1``); otherwise without replacement, and all
    frames in their order when ``fraction`` is 1. The same ``seed`` always gives the same indices.
    """
    size = max(1, round(fraction * n_frames))
    if not bootstrap and size >= n_frames:
        return np.arange(n_frames)
    rng = np.random.default_rng(seed)
    indices = rng.choice(n_frames, size=size, replace=bootstrap)
    return np.sort(indices)


def build_mace_arguments(
    parameters: dict, *, train_file: str, valid_file: str, test_file: str | None, with_stress: bool, work_dir: str
) -> list[str]:
    """Return the ``mace_run_train`` command-line arguments for the resolved ``parameters``.

    ``with_stress`` switches to mace's ``stress`` loss (energy, forces and stress); frames without a reference stress
    get a zero stress weight inside mace.
    """
    from ase.data import atomic_numbers

    e0s = parameters['E0s']
    if isinstance(e0s, dict):
        e0s = str({atomic_numbers[symbol]: float(energy) for symbol, energy in e0s.items()})
    arguments = {
        'name': MODEL_NAME,
        'seed': parameters['seed'],
        'work_dir': work_dir,
        'train_file': train_file,
        'valid_file': valid_file,
        'energy_key': 'REF_energy',
        'forces_key': 'REF_forces',
        'stress_key': 'REF_stress',
        'model': 'MACE',
        'r_max': parameters['r_max'],
        'num_channels': parameters['num_channels'],
        'max_L': parameters['max_L'],
        'correlation': parameters['correlation'],
        'num_interactions': parameters['num_interactions'],
        'num_radial_basis': parameters['num_radial_basis'],
        'E0s': e0s,
        'loss': 'stress' if with_stress else 'weighted',
        'energy_weight': parameters['energy_weight'],
        'forces_weight': parameters['forces_weight'],
        'stress_weight': parameters['stress_weight'],
        'error_table': 'PerAtomRMSEstressvirials' if with_stress else 'PerAtomRMSE',
        'batch_size': parameters['batch_size'],
        'valid_batch_size': parameters['valid_batch_size'],
        'lr': parameters['lr'],
        'weight_decay': parameters['weight_decay'],
        'scheduler_patience': parameters['scheduler_patience'],
        'clip_grad': parameters['clip_grad'],
        'max_num_epochs': parameters['max_num_epochs'],
        'patience': parameters['patience'],
        'default_dtype': parameters['default_dtype'],
        'device': parameters['device'],
        'plot': False,
        'pin_memory': False,
        'num_workers': 0,
    }
    if test_file:
        arguments['test_file'] = test_file
    argv = []
    for key, value in arguments.items():
        argv.extend([f'--{key}', str(value)])
    if parameters['ema']:
        argv.extend(['--ema', '--ema_decay', str(parameters['ema_decay'])])
    if parameters['stage_two']:
        argv.append('--stage_two')
        for option, key in (
            ('--start_stage_two', 'stage_two_start'),
            ('--stage_two_energy_weight', 'stage_two_energy_weight'),
            ('--stage_two_forces_weight', 'stage_two_forces_weight'),
            ('--stage_two_stress_weight', 'stage_two_stress_weight'),
            ('--stage_two_lr', 'stage_two_lr'),
        ):
            argv.extend([option, str(parameters[key])])
    return argv


class _LossMonitor:
    """Watches the losses mace logs: stops on a non-finite loss and applies the patience rule to the validation loss.

    mace logs one ``eval`` record per validation (``epoch`` is ``None`` for the one before training) and one ``opt``
    record per optimisation step; both pass through :meth:`observe`. With a stage two starting at epoch
    ``stage_two_start``, running out of patience in stage one is left to mace (it jumps to stage two), and the count
    starts again in stage two, whose loss has other weights.
    """

    def __init__(self, patience: int, stage_two_start: int | None = None):
        self.patience = patience
        self.stage_two_start = stage_two_start
        self.in_stage_two = False
        self.lowest = math.inf
        self.best_epoch: int | None = None
        self.last_epoch: int | None = None
        self.stale = 0
        self.evaluations = 0
        self.stopped_early = False
        self.initial_loss: float | None = None  # validation loss before the first epoch (warm starts: already low)

    def observe(self, record: dict) -> None:
        """Check one record of mace's metrics logger; raise to stop the training loop."""
        loss = record.get('loss')
        epoch = record.get('epoch')
        if loss is not None and not math.isfinite(float(loss)):
            where = 'before training' if epoch is None else f'in epoch {epoch}'
            raise NonFiniteLossError(f'{record.get("mode", "training")} loss is {loss} {where}')
        if record.get('mode') == 'eval' and epoch is None and loss is not None:
            self.initial_loss = float(loss)
        if record.get('mode') != 'eval' or epoch is None:
            return
        self.last_epoch = epoch
        self.evaluations += 1
        if self.stage_two_start is not None and epoch >= self.stage_two_start and not self.in_stage_two:
            self.in_stage_two, self.lowest, self.stale = True, math.inf, 0
        if loss < self.lowest:
            self.lowest, self.best_epoch, self.stale = float(loss), epoch, 0
            return
        self.stale += 1
        if self.stale >= self.patience and (self.stage_two_start is None or self.in_stage_two):
            self.stopped_early = True
            raise _PatienceExhausted(epoch)


@contextlib.contextmanager
def _monitored_mace(monitor: _LossMonitor):
    """Patch mace's metrics logger and training loop so that ``monitor`` sees every loss; restore them afterwards.

    A patience stop unwinds only the epoch loop: mace then loads the checkpoint of the lowest validation loss, saves
    the model and evaluates it, as after a full run. A non-finite loss unwinds the whole run.
    """
    import torch
    from mace import tools

    original_logger_class, original_train = tools.MetricsLogger, tools.train

    class MonitoredMetricsLogger(original_logger_class):
        def log(self, d):
            super().log(d)
            monitor.observe(d)

    def train_until_patience(*args, **kwargs):
        try:
            return original_train(*args, **kwargs)
        except _PatienceExhausted as stop:
            logging.info(f'Stopping after epoch {stop.args[0]}: {monitor.patience} validations without improvement')
            return None

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    default_dtype = torch.get_default_dtype()
    tools.MetricsLogger, tools.train = MonitoredMetricsLogger, train_until_patience
    try:
        yield
    finally:
        tools.MetricsLogger, tools.train = original_logger_class, original_train
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        root.filters.clear()
        root.setLevel(level)
        torch.set_default_dtype(default_dtype)


def _all_finite(metrics: dict) -> bool:
    return all(math.isfinite(value) for value in metrics.values() if isinstance(value, float))


def _is_out_of_memory(error: BaseException) -> bool:
    import torch

    if isinstance(error, MemoryError | torch.OutOfMemoryError):
        return True
    message = str(error).lower()
    return isinstance(error, RuntimeError) and ('out of memory' in message or "can't allocate memory" in message)


def latest_checkpoint(work_dir: str | pathlib.Path, seed: int) -> tuple[pathlib.Path, int] | None:
    """Return the newest mace checkpoint of run ``seed`` in ``work_dir/checkpoints`` and its epoch, or ``None``.

    mace names them ``<name>_run-<seed>_epoch-<epoch>.pt`` (``..._swa.pt`` in stage two).
    """
    import re

    pattern = re.compile(rf'^{re.escape(MODEL_NAME)}_run-{int(seed)}_epoch-(\d+)(_swa)?\.pt$')
    found = []
    for path in (pathlib.Path(work_dir) / 'checkpoints').glob('*.pt'):
        match = pattern.match(path.name)
        if match and path.stat().st_size > 0:
            found.append((int(match.group(1)), match.group(2) is not None, path))
    if not found:
        return None
    epoch, _, path = max(found)
    return path, epoch


def _write_json(path: pathlib.Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=True))


def _copy_log(work_dir: pathlib.Path, seed: int, directory: pathlib.Path) -> None:
    log = work_dir / 'logs' / f'{MODEL_NAME}_run-{seed}.log'
    if log.is_file():
        shutil.copyfile(log, directory / LOG_FILENAME)


def run_training(config: dict, directory: str | pathlib.Path = '.') -> dict:
    """Train one MACE model as ``config`` says, in ``directory``; write the output files and return the metrics.

    ``config`` holds ``parameters`` and the names of ``train_file``, ``valid_file`` and optionally ``test_file``
    (relative to ``directory``). Never raises for a failed training: the returned (and written) metrics carry the
    ``status`` and an ``error`` message.
    """
    directory = pathlib.Path(directory).resolve()
    start = time.perf_counter()
    metrics: dict[str, Any] = {'status': STATUS_ERROR, 'mace_version': None}
    try:
        import mace

        metrics['mace_version'] = mace.__version__
        parameters = resolve_parameters(config.get('parameters'))
        metrics['parameters'] = parameters
        files = {split: config.get(f'{split}_file') for split in ('train', 'valid', 'test')}
        for split in ('train', 'valid'):
            if not files[split]:
                raise TrainingInputError(f'the config names no `{split}_file`')
        frames = {split: read_frames(directory / name, split) for split, name in files.items() if name}
        training_elements = {symbol for atoms in frames['train'] for symbol in atoms.get_chemical_symbols()}
        for split in ('valid', 'test'):
            extra = {s for atoms in frames.get(split, []) for s in atoms.get_chemical_symbols()} - training_elements
            if extra:
                raise TrainingInputError(f'the {split} frames hold elements absent from training: {sorted(extra)}')
        init_model = config.get('init_model')
        if init_model and not (directory / init_model).is_file():
            raise TrainingInputError(f'the warm-start model `{init_model}` (config `init_model`) does not exist')
        if isinstance(parameters['E0s'], dict) and training_elements - set(parameters['E0s']):
            missing = sorted(training_elements - set(parameters['E0s']))
            raise TrainingInputError(f'`E0s` gives no isolated-atom energy for {missing}')
    except TrainingInputError as error:
        metrics.update(status=STATUS_INVALID_INPUT, error=str(error), wall_time_s=time.perf_counter() - start)
        _write_json(directory / METRICS_FILENAME, metrics)
        return metrics

    isolated = [index for index, atoms in enumerate(frames['train']) if is_isolated_atom(atoms)]
    candidates = np.asarray([index for index in range(len(frames['train'])) if index not in set(isolated)], dtype=int)
    if len(candidates) == 0:
        metrics.update(status=STATUS_INVALID_INPUT, error='the training file holds only isolated-atom frames')
        metrics['wall_time_s'] = time.perf_counter() - start
        _write_json(directory / METRICS_FILENAME, metrics)
        return metrics
    drawn = draw_training_subset(
        len(candidates),
        fraction=parameters['subsample_fraction'],
        bootstrap=parameters['bootstrap'],
        seed=parameters['subsample_seed'],
    )
    indices = np.concatenate([np.asarray(isolated, dtype=int), candidates[drawn]])
    metrics['training_subset'] = {
        'n_frames': len(drawn),
        'n_unique_frames': len(np.unique(drawn)),
        'n_frames_available': len(candidates),
        'n_isolated_atoms': len(isolated),
        'bootstrap': parameters['bootstrap'],
        'fraction': parameters['subsample_fraction'],
        'seed': parameters['subsample_seed'],
    }
    work_dir = directory / MACE_WORK_DIR
    work_dir.mkdir(exist_ok=True)
    train_file = files['train']
    if len(indices) != len(frames['train']) or not np.array_equal(indices, np.arange(len(indices))):
        from ase.io import write

        train_file = str(work_dir / 'train_subset.extxyz')
        write(train_file, [frames['train'][index] for index in indices], format='extxyz')
    with_stress = parameters['stress_weight'] > 0 and any(
        frames['train'][index].info.get('REF_stress') is not None for index in indices
    )
    # mace drops the last incomplete batch: a batch larger than the data would leave no batch at all (small
    # datasets at the start of a campaign), so the batch sizes are capped by the numbers of frames (isolated atoms
    # are not training frames for mace).
    n_valid = len(frames['valid'])
    if parameters['batch_size'] > len(drawn) or parameters['valid_batch_size'] > max(n_valid, 1):
        parameters = {
            **parameters,
            'batch_size': min(parameters['batch_size'], len(drawn)),
            'valid_batch_size': min(parameters['valid_batch_size'], max(n_valid, 1)),
        }
        metrics['batch_sizes_capped'] = {
            'batch_size': parameters['batch_size'],
            'valid_batch_size': parameters['valid_batch_size'],
        }
    argv = build_mace_arguments(
        parameters,
        train_file=str(directory / train_file),
        valid_file=str(directory / files['valid']),
        test_file=None,
        with_stress=with_stress,
        work_dir=str(work_dir),
    )
    if init_model:
        # Warm start: mace builds the model from this model's architecture and starts from its weights (a local
        # file is never a multi-head fine-tuning in mace 0.3.16: that needs the pretraining data).
        argv.extend(['--foundation_model', str(directory / init_model)])
        metrics['init_model'] = init_model
    checkpoint = latest_checkpoint(work_dir, parameters['seed'])
    if checkpoint is not None:
        argv.append('--restart_latest')
        metrics['resumed_from_epoch'] = checkpoint[1]
        metrics['resumed_from_checkpoint'] = checkpoint[0].name
    metrics['mace_arguments'] = argv
    metrics['loss'] = 'stress' if with_stress else 'weighted'

    monitor = _LossMonitor(parameters['patience'], parameters['stage_two_start'] if parameters['stage_two'] else None)
    training_start = time.perf_counter()
    failure: dict[str, str] = {}
    try:
        from mace import tools
        from mace.cli.run_train import run

        with _monitored_mace(monitor):
            run(tools.build_default_arg_parser().parse_args(argv))
    except NonFiniteLossError as error:
        failure = {'status': STATUS_NAN_LOSS, 'error': str(error)}
    except Exception as error:
        status = STATUS_OUT_OF_MEMORY if _is_out_of_memory(error) else STATUS_ERROR
        failure = {'status': status, 'error': f'{type(error).__name__}: {error}', 'traceback': traceback.format_exc()}
    metrics['training_wall_time_s'] = time.perf_counter() - training_start
    metrics['epochs_run'] = monitor.evaluations
    metrics['last_epoch'] = monitor.last_epoch
    metrics['stage_two_reached'] = monitor.in_stage_two
    metrics['best_epoch'] = monitor.best_epoch
    metrics['best_valid_loss'] = monitor.lowest if math.isfinite(monitor.lowest) else None
    metrics['initial_valid_loss'] = monitor.initial_loss
    metrics['stopped_early'] = monitor.stopped_early
    _copy_log(work_dir, parameters['seed'], directory)

    # With a stage two, mace writes the stage-one model and ``<name>_stagetwo.model``: the latter is the result.
    model_path = work_dir / f'{MODEL_NAME}.model'
    if monitor.in_stage_two and (work_dir / f'{MODEL_NAME}_stagetwo.model').is_file():
        model_path = work_dir / f'{MODEL_NAME}_stagetwo.model'
    if not failure and not model_path.is_file():
        failure = {'status': STATUS_ERROR, 'error': f'mace finished without writing {model_path.name}'}
    if not failure:
        shutil.move(model_path, directory / MODEL_FILENAME)
        try:
            evaluation = _evaluate(directory / MODEL_FILENAME, frames, parameters, directory)
        except Exception as error:
            status = STATUS_OUT_OF_MEMORY if _is_out_of_memory(error) else STATUS_ERROR
            failure = {'status': status, 'error': f'evaluating the model failed: {type(error).__name__}: {error}'}
        else:
            metrics.update(evaluation)
            if not all(_all_finite(evaluation[split]) for split in evaluation):
                failure = {'status': STATUS_NAN_LOSS, 'error': 'the model predicts non-finite energies or forces'}
        shutil.rmtree(work_dir / 'checkpoints', ignore_errors=True)
        for leftover in work_dir.glob(f'{MODEL_NAME}*.model'):
            leftover.unlink()
    metrics.update(failure or {'status': STATUS_OK})
    metrics['wall_time_s'] = time.perf_counter() - start
    _write_json(directory / METRICS_FILENAME, metrics)
    return metrics


def _evaluate(model_path: pathlib.Path, frames: dict, parameters: dict, directory: pathlib.Path) -> dict:
    """Evaluate the saved model on every split; write the test predictions; return ``{split: metrics}``."""
    from mace.calculators import MACECalculator

    calculator = MACECalculator(
        model_paths=str(model_path), device=parameters['device'], default_dtype=parameters['default_dtype']
    )
    result = {}
    for split, split_frames in frames.items():
        split_frames = [atoms for atoms in split_frames if not is_isolated_atom(atoms)]
        if not split_frames:
            continue
        predictions = predict_frames(calculator, split_frames)
        result[split] = error_metrics(predictions)
        if split == 'test':
            np.savez(directory / PREDICTIONS_FILENAME, **predictions)
    return result


@once(METRICS_FILENAME, 'train')
def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``python -m aiida_sianode.engines.train config.json``; returns the exit status.

    The exit status is 0 whenever ``metrics.json`` was written (the status inside says whether training worked),
    2 for a missing or unreadable config file.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print('usage: python -m aiida_sianode.engines.train config.json', file=sys.stderr)
        return 2
    config_path = pathlib.Path(argv[0])
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        print(f'cannot read the config file {config_path}: {error}', file=sys.stderr)
        return 2
    metrics = run_training(config, config_path.parent)
    detail = f': {metrics["error"]}' if 'error' in metrics else ''
    print(f'training finished with status {metrics["status"]}{detail}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
