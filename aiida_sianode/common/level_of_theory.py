"""The level of theory of a label: what a training set compares before it mixes two labels.

A level of theory is a plain ``dict`` with these keys (all optional except ``code``):

``code``              name of the program (``vasp``, ``castep``, ``gpaw``, ``xtb``)
``code_version``      version string; recorded, but *not* part of the fingerprint
``method``            functional or Hamiltonian (``PBE``, ``GFN1-xTB``)
``basis``             ``plane-wave``, ``tight-binding``, ...
``cutoff_ev``         plane-wave cutoff in eV
``kpoint_spacing``    k-point spacing in 1/Å, with the 2π included (ASE's ``kptdensity`` / VASP KSPACING
                      convention); ``None`` for Γ-only
``smearing``          ``{'type': ..., 'width_ev': ...}``
``spin``              ``True`` when spin polarised
``pseudopotentials``  ``{element: name}``; compared per element, so Si labels and Li-Si labels made with the
                      same Si pseudopotential are compatible
``description``       free text, for imported data whose settings are only known in words

Numbers are compared after rounding (:data:`ROUNDING`), so ``520`` and ``520.0000001`` agree.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

FINGERPRINT_KEYS = ('code', 'method', 'basis', 'cutoff_ev', 'kpoint_spacing', 'smearing', 'spin', 'description')
ROUNDING = 6


def _canonical(value: Any) -> Any:
    """Return ``value`` with floats rounded and dicts sorted, so equal settings serialise equally."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        rounded = round(float(value), ROUNDING)
        return int(rounded) if rounded.is_integer() else rounded
    if isinstance(value, dict):
        return {str(key): _canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    return str(value)


def normalise(level_of_theory: dict) -> dict:
    """Return a canonical copy of ``level_of_theory``: rounded numbers, lower-case code name."""
    if not isinstance(level_of_theory, dict):
        raise TypeError(f'a level of theory is a dict, got {type(level_of_theory).__name__}')
    if 'code' not in level_of_theory:
        raise ValueError('a level of theory needs at least the key `code`')
    result = _canonical(level_of_theory)
    result['code'] = str(result['code']).lower()
    return result


def fingerprint(level_of_theory: dict) -> str:
    """Return the SHA-256 over the settings that change energies (:data:`FINGERPRINT_KEYS`), pseudopotentials aside.

    Pseudopotentials are compared per element by :func:`differences` instead, because a Si label and a LiSi label
    carry different element sets but can share one Si pseudopotential.
    """
    canonical = normalise(level_of_theory)
    subset = {key: canonical.get(key) for key in FINGERPRINT_KEYS}
    return hashlib.sha256(json.dumps(subset, sort_keys=True).encode()).hexdigest()


def differences(first: dict, second: dict) -> list[str]:
    """Return human-readable differences between two levels of theory; an empty list means compatible."""
    one, two = normalise(first), normalise(second)
    found = [f'{key}: {one.get(key)!r} != {two.get(key)!r}' for key in FINGERPRINT_KEYS if one.get(key) != two.get(key)]
    pseudos_one, pseudos_two = one.get('pseudopotentials') or {}, two.get('pseudopotentials') or {}
    for element in sorted(set(pseudos_one) & set(pseudos_two)):
        if pseudos_one[element] != pseudos_two[element]:
            found.append(f'pseudopotentials[{element}]: {pseudos_one[element]!r} != {pseudos_two[element]!r}')
    return found
