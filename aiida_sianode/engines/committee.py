"""Committee predictions and their disagreement; plain numpy + mace-torch, no AiiDA.

Definitions (DP-GEN's, Zhang et al., Comput. Phys. Commun. 253, 107206 (2020)):

* force deviation of atom *i*: ``sqrt(mean_k |F_i^k - <F_i>|^2)`` over the *k* committee members;
  the frame's *max force deviation* is the largest over atoms (eV/Å).
* energy deviation per atom: the standard deviation over members of ``E^k / natoms`` (eV/atom).
* stress deviation: the largest standard deviation over members of the six Voigt components (eV/Å^3).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def atomic_force_deviation(forces: np.ndarray) -> np.ndarray:
    """Return the per-atom force deviation from member forces of shape ``(n_members, natoms, 3)``."""
    forces = np.asarray(forces, dtype=float)
    if forces.ndim != 3 or forces.shape[-1] != 3:
        raise ValueError(f'member forces must have shape (n_members, natoms, 3), got {forces.shape}')
    mean = forces.mean(axis=0)
    return np.sqrt(((forces - mean) ** 2).sum(axis=-1).mean(axis=0))


def max_force_deviation(forces: np.ndarray) -> float:
    """Return the frame's max atomic force deviation (eV/Å) from member forces ``(n_members, natoms, 3)``."""
    return float(atomic_force_deviation(forces).max())


def energy_deviation_per_atom(energies: Sequence[float], natoms: int) -> float:
    """Return the standard deviation over members of the energy per atom (eV/atom)."""
    return float(np.std(np.asarray(energies, dtype=float) / natoms))


def load_committee_calculator(model_paths: Sequence[str], device: str = 'cpu', default_dtype: str = 'float64'):
    """Return a mace ``MACECalculator`` over all ``model_paths``: it reports the mean, and keeps every member's
    energy (``energies``) and forces (``forces_comm``) in ``calc.results`` when there is more than one model."""
    from mace.calculators import MACECalculator

    if not model_paths:
        raise ValueError('a committee needs at least one model file')
    return MACECalculator(model_paths=[str(path) for path in model_paths], device=device, default_dtype=default_dtype)


def committee_predict(calculator, atoms) -> dict:
    """Evaluate ``atoms`` with a committee calculator; return means, member values and deviations.

    Keys: ``energy`` (mean, eV), ``forces`` (mean, eV/Å), ``stress`` (mean Voigt-6, eV/Å^3, periodic cells only),
    ``energies`` (per member), ``member_forces`` (n_members, natoms, 3), ``energy_std_per_atom``,
    ``atomic_force_deviation``, ``max_force_deviation``, ``stress_std_max`` (or ``None``).
    """
    atoms = atoms.copy()
    atoms.calc = calculator
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    results = calculator.results
    natoms = len(atoms)
    if 'forces_comm' in results:
        member_forces = np.asarray(results['forces_comm'], dtype=float).reshape(-1, natoms, 3)
        energies = np.asarray(results['energies'], dtype=float).ravel()
    else:
        member_forces = forces[np.newaxis]
        energies = np.array([energy])
    stress = stress_std = None
    if atoms.pbc.all():
        stress = atoms.get_stress()
        stress_var = calculator.results.get('stress_var')
        stress_std = float(np.sqrt(np.max(stress_var))) if stress_var is not None else 0.0
    atomic = atomic_force_deviation(member_forces)
    return {
        'energy': float(energy),
        'forces': np.asarray(forces, dtype=float),
        'stress': stress,
        'energies': energies,
        'member_forces': member_forces,
        'energy_std_per_atom': energy_deviation_per_atom(energies, natoms),
        'atomic_force_deviation': atomic,
        'max_force_deviation': float(atomic.max()),
        'stress_std_max': stress_std,
    }
