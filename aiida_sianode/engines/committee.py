"""Committee predictions and their disagreement; plain numpy + mace-torch, no AiiDA.

Definitions (DP-GEN's, Zhang et al., Comput. Phys. Commun. 253, 107206 (2020)):

* force deviation of atom *i*: ``sqrt(mean_k |F_i^k - <F_i>|^2)`` over the *k* committee members;
  the frame's *max force deviation* is the largest over atoms (eV/Å).
* energy deviation per atom: the standard deviation over members of ``E^k / natoms`` (eV/atom).
* stress deviation: the largest standard deviation over members of the six Voigt components (eV/Å^3).

Trust levels split frames by their max force deviation ``d``: *accurate* ``d < lower``, *candidate*
``lower <= d < upper``, *failed* ``d >= upper``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np

#: names of the three trust classes, in the order of increasing deviation


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


def count_trust_levels(deviations: Sequence[float], lower: float, upper: float) -> dict:
    """Return ``{'frames', 'accurate', 'candidate', 'failed', 'accurate_fraction', 'candidate_fraction',
    'failed_fraction'}`` for a sequence of max force deviations and the two trust levels (eV/Å).

    The classes are :func:`aiida_sianode.selection.trust.classify_frames`'s (non-finite deviations fail);
    fractions are 0 when there are no frames."""
    from aiida_sianode.selection.trust import class_counts, class_fractions, classify_frames

    classes = classify_frames(deviations, lower, upper)
    fractions = {f'{name}_fraction': value for name, value in class_fractions(classes).items()}
    return {'frames': int(classes.size), **class_counts(classes), **fractions}


def load_committee_calculator(model_paths: Sequence[str], device: str = 'cpu', default_dtype: str = 'float64'):
    """Return a mace ``MACECalculator`` over all ``model_paths``: it reports the mean, and keeps every member's
    energy (``energy_comm``) and forces (``forces_comm``) in ``calc.results`` when there is more than one model.

    :raises ValueError: no model files, a missing file, or members with different cutoffs.
    """
    import mace  # noqa: F401  (mace sets torch's weights-only switch before anything loads a model)
    from mace.calculators import MACECalculator

    if not model_paths:
        raise ValueError('a committee needs at least one model file')
    missing = [str(path) for path in model_paths if not pathlib.Path(path).is_file()]
    if missing:
        raise ValueError(f'model files not found: {", ".join(missing)}')
    return MACECalculator(model_paths=[str(path) for path in model_paths], device=device, default_dtype=default_dtype)


def deviations_from_results(results: dict, natoms: int) -> dict:
    """Return member values and deviations from a mace calculator's ``results`` for a frame of ``natoms`` atoms.

    Keys: ``energies`` (per member, eV), ``member_forces`` ``(n_members, natoms, 3)``, ``energy_std_per_atom``,
    ``atomic_force_deviation``, ``max_force_deviation``, ``stress_std_max`` (``None`` without a stress). A single
    model is a committee of one: every deviation is zero.
    """
    if 'forces_comm' in results:
        member_forces = np.asarray(results['forces_comm'], dtype=float).reshape(-1, natoms, 3)
        # ``energies`` in mace's results are per-atom node energies; the member energies are ``energy_comm``.
        energies = np.asarray(results['energy_comm'], dtype=float).ravel()
    else:
        member_forces = np.asarray(results['forces'], dtype=float).reshape(1, natoms, 3)
        energies = np.array([float(results['energy'])])
    stress_std = None
    if 'stress_comm' in results:
        stress_std = float(np.sqrt(np.max(np.var(np.asarray(results['stress_comm'], dtype=float), axis=0))))
    elif results.get('stress') is not None:
        stress_std = 0.0
    atomic = atomic_force_deviation(member_forces)
    return {
        'energies': energies,
        'member_forces': member_forces,
        'energy_std_per_atom': energy_deviation_per_atom(energies, natoms),
        'atomic_force_deviation': atomic,
        'max_force_deviation': float(atomic.max()),
        'stress_std_max': stress_std,
    }


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
    stress = atoms.get_stress() if atoms.pbc.all() else None
    deviations = deviations_from_results(calculator.results, len(atoms))
    if stress is None:
        deviations['stress_std_max'] = None
    return {
        'energy': float(energy),
        'forces': np.asarray(forces, dtype=float),
        'stress': stress,
        **deviations,
    }


def build_untrained_mace(
    atomic_numbers: Sequence[int],
    *,
    seed: int = 0,
    num_channels: int = 16,
    max_L: int = 1,
    r_max: float = 5.0,
    num_interactions: int = 2,
    correlation: int = 3,
    max_ell: int = 3,
    num_radial_basis: int = 8,
    avg_num_neighbors: float = 16.0,
    atomic_energies: Sequence[float] | None = None,
    pair_repulsion: bool = False,
    dtype: str = 'float64',
):
    """Return a randomly initialised (untrained) ``ScaleShiftMACE`` with the architecture ``mace_run_train`` builds
    for ``--num_channels``, ``--max_L``, ``--r_max``, ``--num_interactions``, ``--correlation``.

    For tests and speed benchmarks: its cost per step equals a trained model's of the same size, and members with
    different ``seed`` disagree. Save it with ``torch.save(model, path)`` (what :func:`save_untrained_mace` does).
    """
    import mace  # noqa: F401  (must precede e3nn: it sets torch's weights-only switch)
    import torch
    from e3nn import o3
    from mace import modules

    if num_channels < 1 or max_L < 0 or r_max <= 0 or num_interactions < 1:
        raise ValueError('num_channels >= 1, max_L >= 0, r_max > 0 and num_interactions >= 1 are required')
    numbers = sorted({int(z) for z in atomic_numbers})
    if not numbers:
        raise ValueError('a model needs at least one element')
    if atomic_energies is None:
        atomic_energies = [-1.0] * len(numbers)
    if len(atomic_energies) != len(numbers):
        raise ValueError(f'{len(atomic_energies)} atomic energies given for {len(numbers)} elements')
    hidden = ' + '.join(f'{num_channels}x{ell}{"e" if ell % 2 == 0 else "o"}' for ell in range(max_L + 1))
    previous_dtype = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        torch.manual_seed(seed)
        interaction = modules.interaction_classes['RealAgnosticResidualInteractionBlock']
        model = modules.ScaleShiftMACE(
            r_max=float(r_max),
            num_bessel=num_radial_basis,
            num_polynomial_cutoff=5,
            max_ell=max_ell,
            interaction_cls=interaction,
            interaction_cls_first=interaction,
            num_interactions=num_interactions,
            num_elements=len(numbers),
            hidden_irreps=o3.Irreps(hidden),
            MLP_irreps=o3.Irreps('16x0e'),
            atomic_energies=np.asarray(atomic_energies, dtype=float),
            avg_num_neighbors=float(avg_num_neighbors),
            atomic_numbers=numbers,
            correlation=correlation,
            gate=torch.nn.functional.silu,
            pair_repulsion=pair_repulsion,
            atomic_inter_scale=1.0,
            atomic_inter_shift=0.0,
            heads=['Default'],
        )
    finally:
        torch.set_default_dtype(previous_dtype)
    return model


def save_untrained_mace(path: str | pathlib.Path, atomic_numbers: Sequence[int], **kwargs) -> pathlib.Path:
    """Build :func:`build_untrained_mace` ``(atomic_numbers, **kwargs)`` and ``torch.save`` the whole model to
    ``path`` as ``mace_run_train`` does; return the path."""
    import torch

    path = pathlib.Path(path)
    torch.save(build_untrained_mace(atomic_numbers, **kwargs), path)
    return path
