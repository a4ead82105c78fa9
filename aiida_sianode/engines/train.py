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

DEFAULT_PARAMETERS: dict[str, Any] = {
    'seed': 0,
    'r_max': 5.0,
    'num_channels': 32,
    'max_L': 1,
    'correlation': 3,
    'num_interactions': 2,
    'num_radial_basis': 8,
    'E0s': 'average',
    'energy_weight': 1.0,
    'forces_weight': 100.0,
    'stress_weight': 1.0,
    'batch_size': 10,
    'valid_batch_size': 10,
    'lr': 0.01,
    'weight_decay': 5e-7,
    'scheduler_patience': 50,
    'clip_grad': 10.0,
    'ema': False,
    'ema_decay': 0.99,
    'max_num_epochs': 200,
    'patience': 50,
    'stage_two': False,
    'stage_two_start': None,
    'stage_two_energy_weight': 1000.0,
    'stage_two_forces_weight': 100.0,
    'stage_two_stress_weight': 10.0,
    'stage_two_lr': 0.001,
    'default_dtype': 'float64',
    'device': 'cpu',
    'bootstrap': False,
    'subsample_fraction': 1.0,
    'subsample_seed': None,
}

#: name -> (kind, rule); kinds: int, float, bool, choice, e0s, seed; rules: 'positive', 'non_negative', a range
#: ``(low, high)`` inclusive, or the allowed values of a choice.
PARAMETER_SPECS: dict[str, tuple[str, Any]] = {
    'seed': ('int', 'non_negative'),
    'r_max': ('float', 'positive'),
    'num_channels': ('int', 'positive'),
    'max_L': ('int', (0, 3)),
    'correlation': ('int', (1, 4)),
    'num_interactions': ('int', (1, 4)),
    'num_radial_basis': ('int', 'positive'),
    'E0s': ('e0s', None),
    'energy_weight': ('float', 'non_negative'),
    'forces_weight': ('float', 'non_negative'),
    'stress_weight': ('float', 'non_negative'),
    'batch_size': ('int', 'positive'),
    'valid_batch_size': ('int', 'positive'),
    'lr': ('float', 'positive'),
    'weight_decay': ('float', 'non_negative'),
    'scheduler_patience': ('int', 'positive'),
    'clip_grad': ('float', 'positive'),
    'ema': ('bool', None),
    'ema_decay': ('float', (0.0, 1.0)),
    'max_num_epochs': ('int', 'positive'),
    'patience': ('int', 'positive'),
    'stage_two': ('bool', None),
    'stage_two_start': ('epoch', None),
    'stage_two_energy_weight': ('float', 'non_negative'),
    'stage_two_forces_weight': ('float', 'non_negative'),
    'stage_two_stress_weight': ('float', 'non_negative'),
    'stage_two_lr': ('float', 'positive'),
    'default_dtype': ('choice', ('float32', 'float64')),
    'device': ('choice', ('cpu', 'cuda')),
    'bootstrap': ('bool', None),
    'subsample_fraction': ('float', (1e-9, 1.0)),
    'subsample_seed': ('seed', None),
}


class TrainingInputError(ValueError):
    """Raised when the parameters or the training files cannot be used; the message names the problem."""


class NonFiniteLossError(RuntimeError):
    """Raised inside mace's training loop when a loss is NaN or infinite."""


class _PatienceExhausted(Exception):
    """Raised inside mace's training loop to stop it when the validation loss stopped improving."""


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _check_value(name: str, value, kind: str, rule) -> str | None:
    """Return an error message for ``value`` of parameter ``name``, or ``None`` when it is acceptable."""
    if kind == 'bool':
        return None if isinstance(value, bool) else f'`{name}` must be true or false, got {value!r}'
    if kind == 'choice':
        return None if value in rule else f'`{name}` must be one of {", ".join(rule)}, got {value!r}'
    if kind == 'seed':
        if value is None or (_is_int(value) and value >= 0):
            return None
        return f'`{name}` must be a non-negative integer or null, got {value!r}'
    if kind == 'epoch':
        if value is None or (_is_int(value) and value >= 1):
            return None
        return f'`{name}` must be a positive integer (an epoch) or null, got {value!r}'
    if kind == 'e0s':
        if value == 'average':
            return None
        if isinstance(value, dict) and value:
            from ase.data import atomic_numbers

            for symbol, energy in value.items():
                if symbol not in atomic_numbers:
                    return f'`E0s` keys must be chemical symbols, got {symbol!r}'
                if not _is_number(energy) or not math.isfinite(energy):
                    return f'`E0s[{symbol}]` must be a finite energy in eV, got {energy!r}'
            return None
        return f"`E0s` must be 'average' or a dict of isolated-atom energies in eV per element, got {value!r}"
    if kind == 'int' and not _is_int(value):
        return f'`{name}` must be an integer, got {value!r}'
    if kind == 'float' and (not _is_number(value) or not math.isfinite(value)):
        return f'`{name}` must be a finite number, got {value!r}'
    if rule == 'positive' and value <= 0:
        return f'`{name}` must be positive, got {value!r}'
    if rule == 'non_negative' and value < 0:
        return f'`{name}` must not be negative, got {value!r}'
    if isinstance(rule, tuple) and not rule[0] <= value <= rule[1]:
        return f'`{name}` must lie in [{rule[0]}, {rule[1]}], got {value!r}'
    return None


def check_parameters(parameters: dict) -> str | None:
    """Return a message naming every problem of the training ``parameters``, or ``None`` when they are valid.

    Unknown keys are refused; the known ones are listed in :data:`PARAMETER_SPECS`.
    """
    if not isinstance(parameters, dict):
        return f'the training parameters must be a dict, got {type(parameters).__name__}'
    problems = []
    unknown = sorted(set(parameters) - set(PARAMETER_SPECS))
    if unknown:
        problems.append(f'unknown parameter(s) {", ".join(unknown)}; known: {", ".join(sorted(PARAMETER_SPECS))}')
    for name, value in parameters.items():
        if name in PARAMETER_SPECS:
            kind, rule = PARAMETER_SPECS[name]
            problem = _check_value(name, value, kind, rule)
            if problem:
                problems.append(problem)
    merged = {**DEFAULT_PARAMETERS, **parameters}
    if not problems and merged['energy_weight'] == 0 and merged['forces_weight'] == 0:
        problems.append('`energy_weight` and `forces_weight` cannot both be zero')
    start = merged['stage_two_start']
    if not problems and merged['stage_two'] and start is not None and start >= merged['max_num_epochs']:
        problems.append(f'`stage_two_start` ({start}) must be below `max_num_epochs` ({merged["max_num_epochs"]})')
    return '; '.join(problems) if problems else None


def resolve_parameters(parameters: dict | None) -> dict:
    """Return the full parameter set: :data:`DEFAULT_PARAMETERS` updated with ``parameters``, after checking them.

    :raises TrainingInputError: when :func:`check_parameters` finds a problem.
    """
    parameters = dict(parameters or {})
    problem = check_parameters(parameters)
    if problem:
        raise TrainingInputError(problem)
    resolved = {**DEFAULT_PARAMETERS, **parameters}
    if resolved['subsample_seed'] is None:
        resolved['subsample_seed'] = resolved['seed']
    if resolved['stage_two'] and resolved['stage_two_start'] is None:
        # mace's own default: the last quarter of the epochs
        resolved['stage_two_start'] = max(1, resolved['max_num_epochs'] // 4 * 3)
    return resolved


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


def _errors(predicted: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    difference = np.asarray(predicted, dtype=float) - np.asarray(reference, dtype=float)
    return float(np.sqrt(np.mean(difference**2))), float(np.mean(np.abs(difference)))


def predict_frames(calculator, frames: Sequence) -> dict[str, np.ndarray]:
    """Evaluate ``frames`` with ``calculator``; return reference and predicted values as flat arrays.

    Keys: ``natoms`` (n_frames), ``energy_ref`` / ``energy_pred`` (eV, n_frames), ``forces_ref`` / ``forces_pred``
    (eV/Å, all atoms of all frames stacked, (sum natoms, 3)), ``stress_ref`` / ``stress_pred`` (Voigt-6, eV/Å^3,
    (n_frames, 6), NaN rows for frames without a reference stress or a periodic cell).
    """
    natoms, energy_ref, energy_pred, forces_ref, forces_pred = [], [], [], [], []
    stress_ref = np.full((len(frames), 6), np.nan)
    stress_pred = np.full((len(frames), 6), np.nan)
    for index, frame in enumerate(frames):
        atoms = frame.copy()
        atoms.calc = calculator
        natoms.append(len(atoms))
        energy_ref.append(float(frame.info['REF_energy']))
        energy_pred.append(float(atoms.get_potential_energy()))
        forces_ref.append(np.asarray(frame.arrays['REF_forces'], dtype=float))
        forces_pred.append(np.asarray(atoms.get_forces(), dtype=float))
        reference_stress = frame.info.get('REF_stress')
        if reference_stress is not None and atoms.pbc.all():
            reference_stress = np.asarray(reference_stress, dtype=float).reshape(-1)
            if reference_stress.shape == (9,):
                from ase.stress import full_3x3_to_voigt_6_stress

                reference_stress = full_3x3_to_voigt_6_stress(reference_stress.reshape(3, 3))
            stress_ref[index] = reference_stress
            stress_pred[index] = atoms.get_stress(voigt=True)
    return {
        'natoms': np.asarray(natoms, dtype=int),
        'energy_ref': np.asarray(energy_ref),
        'energy_pred': np.asarray(energy_pred),
        'forces_ref': np.concatenate(forces_ref).reshape(-1, 3),
        'forces_pred': np.concatenate(forces_pred).reshape(-1, 3),
        'stress_ref': stress_ref,
        'stress_pred': stress_pred,
    }


def error_metrics(predictions: dict[str, np.ndarray]) -> dict[str, Any]:
    """Return the error metrics of :func:`predict_frames` output, in meV units.

    Keys: ``n_frames``, ``n_atoms``, ``rmse_e_per_atom_mev``, ``mae_e_per_atom_mev`` (error of the energy
    per atom, one value per frame), ``rmse_f_mev_a``, ``mae_f_mev_a`` (over every Cartesian force
    component), and when any frame has a reference stress ``n_frames_with_stress``, ``rmse_stress_mev_a3``,
    ``mae_stress_mev_a3`` (over the six Voigt components).
    """
    natoms = np.asarray(predictions['natoms'], dtype=float)
    energy_rmse, energy_mae = _errors(predictions['energy_pred'] / natoms, predictions['energy_ref'] / natoms)
    forces_rmse, forces_mae = _errors(predictions['forces_pred'], predictions['forces_ref'])
    metrics = {
        'n_frames': len(natoms),
        'n_atoms': int(natoms.sum()),
        'rmse_e_per_atom_mev': 1000 * energy_rmse,
        'mae_e_per_atom_mev': 1000 * energy_mae,
        'rmse_f_mev_a': 1000 * forces_rmse,
        'mae_f_mev_a': 1000 * forces_mae,
    }
    with_stress = ~np.isnan(predictions['stress_ref']).any(axis=1)
    if with_stress.any():
        stress_rmse, stress_mae = _errors(
            predictions['stress_pred'][with_stress], predictions['stress_ref'][with_stress]
        )
        metrics.update(
            {
                'n_frames_with_stress': int(with_stress.sum()),
                'rmse_stress_mev_a3': 1000 * stress_rmse,
                'mae_stress_mev_a3': 1000 * stress_mae,
            }
        )
    return metrics


def _all_finite(metrics: dict) -> bool:
    return all(math.isfinite(value) for value in metrics.values() if isinstance(value, float))


def _is_out_of_memory(error: BaseException) -> bool:
    import torch

    if isinstance(error, MemoryError | torch.OutOfMemoryError):
        return True
    message = str(error).lower()
    return isinstance(error, RuntimeError) and ('out of memory' in message or "can't allocate memory" in message)


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
