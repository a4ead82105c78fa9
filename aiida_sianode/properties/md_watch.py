"""The committee watching a production MD run (:mod:`aiida_sianode.properties.md`): the other members' models,
their predictions on a sampled frame and the committee's deviation there (DP-GEN's definitions, see
:mod:`aiida_sianode.engines.committee`). Plain Python on ASE, numpy and mace, no AiiDA.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def find_committee_models(settings: Mapping[str, Any], workdir: pathlib.Path) -> tuple[list[pathlib.Path], int | None]:
    """Return ``(model files of the committee, index of the driving member)`` from the settings ``committee_models``
    and ``member_index`` (the property engine sets both for every member); ``([], None)`` when they are not given
    (no watch). ``workdir`` is where relative model paths are resolved from.
    """
    if not settings.get('committee_models'):
        return [], None
    models = [pathlib.Path(path) for path in settings['committee_models']]
    return [path if path.is_absolute() else pathlib.Path(workdir) / path for path in models], settings.get(
        'member_index'
    )


def load_other_members(calculator, models: Sequence[pathlib.Path], member_index: int | None):
    """Return one MACE calculator over every committee model but the driving one (``None`` when there is none)."""
    others = [path for index, path in enumerate(models) if index != member_index]
    if not others:
        return None
    import mace  # noqa: F401  (sets torch's weights-only switch before the model is unpickled)
    from mace.calculators import MACECalculator

    device = str(getattr(calculator, 'device', 'cpu'))
    dtype = getattr(calculator, 'default_dtype', 'float64') or 'float64'
    return MACECalculator(model_paths=[str(path) for path in others], device=device, default_dtype=dtype)


def committee_others(calculator, settings: Mapping[str, Any], workdir: pathlib.Path) -> list:
    """The calculators of the committee's other members for the member running in ``workdir`` (the folder the
    property engine gives it), found by :func:`find_committee_models`; ``[]`` when there are none."""
    models, member_index = find_committee_models(settings, pathlib.Path(workdir))
    other = load_other_members(calculator, models, member_index) if models else None
    return [other] if other is not None else []


def member_predictions(calculator, atoms) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate ``atoms`` with ``calculator`` (one model, or a mace calculator over several); return the member
    energies ``(k,)`` (eV) and forces ``(k, natoms, 3)`` (eV/Å)."""
    frame = atoms.copy()
    frame.calc = calculator
    energy = frame.get_potential_energy()
    forces = frame.get_forces(apply_constraint=False)  # the model's own forces, as the driver's are compared
    results = calculator.results
    if 'forces_comm' in results:
        member_forces = np.asarray(results['forces_comm'], dtype=float).reshape(-1, len(atoms), 3)
        return np.asarray(results['energy_comm'], dtype=float).ravel(), member_forces
    return np.array([float(energy)]), np.asarray(forces, dtype=float)[None]


def committee_deviation(driver_energy: float, driver_forces, others, atoms) -> dict:
    """Max atomic force deviation (eV/Å), per-atom deviations and energy spread (eV/atom) of the committee made of
    the driving member's result and the ``others`` calculators (a list; none: every deviation is zero)."""
    from aiida_sianode.engines.committee import atomic_force_deviation

    energies, forces = [float(driver_energy)], [np.asarray(driver_forces, dtype=float)[None]]
    for calculator in others:
        member_energies, member_forces = member_predictions(calculator, atoms)
        energies += [float(value) for value in member_energies]
        forces.append(member_forces)
    stacked = np.concatenate(forces)
    atomic = atomic_force_deviation(stacked)
    return {
        'atomic': atomic,
        'max_force_deviation': float(atomic.max()),
        'energy_std_per_atom': float(np.std(np.asarray(energies) / len(atoms))),
        'n_members': len(energies),
    }


# --------------------------------------------------------------------------------------------------------------------
# integrators and checkpoints
