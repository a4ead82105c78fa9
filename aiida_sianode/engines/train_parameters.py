"""The parameters of the training engine (:mod:`aiida_sianode.engines.train`): every one with its default, its type
and its rule, and the check that names every problem before anything is trained. Plain Python, no AiiDA.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

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
