"""Error metrics of a potential on labelled frames: the predictions, the RMSE and MAE, and their names.

:func:`error_metrics` computes them (the training engine scores every model with it); the committee summary
(:mod:`aiida_sianode.workflows.train`), the parity plots and the CLI tables read them by these names. Plain
numpy on an ASE calculator, no AiiDA.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Energy per atom (meV/atom), force components (meV/Å), Voigt stress components (meV/Å^3); RMSE and MAE each.
ERROR_METRIC_KEYS = (
    'rmse_e_per_atom_mev',
    'mae_e_per_atom_mev',
    'rmse_f_mev_a',
    'mae_f_mev_a',
    'rmse_stress_mev_a3',
    'mae_stress_mev_a3',
)


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
