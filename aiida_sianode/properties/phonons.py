"""Harmonic phonons with phonopy's finite displacements: Gamma frequencies, band structure, DOS, thermal properties.

The displaced supercells are made once from the structure as given (``primitive_matrix='auto'``, the supercell from
``supercell`` or ``supercell_min_length_a``), so every member and a DFT ``reference`` label the same configurations
(for diamond Si a single displacement). The forces of the undisplaced supercell are subtracted from every displaced
one, so a structure slightly off a member's minimum still gives its harmonic force constants at that geometry.
``relax: positions`` or ``cell`` instead relaxes the structure with the member first (each member then displaces its
own minimum; no reference comparison is possible for those configurations).

Frequencies in cm^-1 (phonopy's THz times 33.35641); imaginary modes are negative. The band structure follows
seekpath's standard path (phonopy ``auto_band_structure``); it is in ``extra`` (every branch) and drawn per member in
``band_structure.png``; the committee's mean and spread per branch are in the aggregate's ``band_structure``.
"""

from __future__ import annotations

import math
import pathlib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from aiida_sianode.properties.common import InvalidPropertyInput, aggregate_members, relax, require_keys

KIND = 'phonons'
DESCRIPTION = 'harmonic phonons by finite displacements (phonopy): Gamma modes, bands, DOS, thermal properties'

THZ_TO_CM1 = 33.35641
DEFAULTS: dict[str, Any] = {
    'supercell': None,  # [n1, n2, n3] or a 3x3 matrix on the given cell; None: from supercell_min_length_a
    'supercell_min_length_a': 10.0,  # Å, every supercell width at least this
    'displacement_a': 0.01,  # Å
    'relax': 'none',  # none | positions | cell
    'relax_fmax_ev_a': 1e-3,
    'band_points': 51,  # q-points per path segment
    'mesh_density': 100.0,  # phonopy's length-based mesh (Å), for DOS and thermal properties
    'dos_pitch_cm1': 5.0,
    'temperatures_k': [0.0, 1000.0, 10.0],  # t_min, t_max, t_step
}
RELAX_MODES = ('none', 'positions', 'cell')


def normalise_settings(settings: Mapping[str, Any]) -> dict:
    """Return ``settings`` over :data:`DEFAULTS`, checked.

    :raises InvalidPropertyInput: an unknown key, a bad supercell, a displacement outside (0, 0.1] Å, an unknown
        relax mode.
    """
    require_keys(settings, list(DEFAULTS), KIND)
    merged = {**DEFAULTS, **dict(settings)}
    if merged['supercell'] is not None:
        matrix = np.asarray(merged['supercell'])
        if matrix.shape == (3,):
            matrix = np.diag(matrix)
        if matrix.shape != (3, 3) or not np.all(np.round(matrix) == matrix) or round(np.linalg.det(matrix)) < 1:
            raise InvalidPropertyInput(
                'phonons: `supercell` must be three positive integers or an integer 3x3 matrix, '
                f'got {merged["supercell"]}'
            )
        merged['supercell'] = matrix.astype(int).tolist()
    elif not merged['supercell_min_length_a'] > 0:
        raise InvalidPropertyInput('phonons: `supercell_min_length_a` must be > 0 Å')
    if not 0 < merged['displacement_a'] <= 0.1:
        raise InvalidPropertyInput(f'phonons: `displacement_a` must be in (0, 0.1] Å, got {merged["displacement_a"]}')
    if merged['relax'] not in RELAX_MODES:
        raise InvalidPropertyInput(f'phonons: `relax` must be one of {", ".join(RELAX_MODES)}, got {merged["relax"]!r}')
    if not isinstance(merged['band_points'], int) or merged['band_points'] < 2:
        raise InvalidPropertyInput('phonons: `band_points` must be an integer >= 2')
    temperatures = merged['temperatures_k']
    if len(temperatures) != 3 or not 0 <= temperatures[0] < temperatures[1] or temperatures[2] <= 0:
        raise InvalidPropertyInput('phonons: `temperatures_k` must be [t_min, t_max, t_step] with 0 <= t_min < t_max')
    return merged


def validate_settings(settings: dict, structures: list) -> None:
    """Refuse bad settings, not exactly one structure, or a structure that is not a 3D periodic crystal."""
    merged = normalise_settings(settings)
    if len(structures) != 1:
        raise InvalidPropertyInput(f'phonons: give exactly one structure, got {len(structures)}')
    atoms = structures[0]
    if not all(atoms.pbc) or atoms.cell.rank < 3:
        raise InvalidPropertyInput(
            'phonons: the structure must be a crystal periodic in x, y and z (use vdos for others)'
        )
    supercell = supercell_matrix(atoms, merged)
    natoms = len(atoms) * round(abs(np.linalg.det(supercell)))
    if natoms > 2000:
        raise InvalidPropertyInput(f'phonons: the supercell would hold {natoms} atoms (limit 2000); give a smaller one')


def supercell_matrix(atoms, settings: Mapping[str, Any]) -> np.ndarray:
    """The supercell matrix: ``supercell`` when given, else the smallest diagonal one whose widths (distances between
    opposite faces) are all at least ``supercell_min_length_a``."""
    if settings['supercell'] is not None:
        return np.asarray(settings['supercell'], dtype=int)
    cell = np.asarray(atoms.cell)
    volume = abs(np.linalg.det(cell))
    widths = [volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)]
    return np.diag([max(1, math.ceil(settings['supercell_min_length_a'] / width - 1e-9)) for width in widths])


def make_phonopy(atoms, settings: Mapping[str, Any]):
    """A ``Phonopy`` of ``atoms`` with its displacements generated."""
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    unitcell = PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=np.asarray(atoms.cell),
        scaled_positions=atoms.get_scaled_positions(),
    )
    with warnings.catch_warnings():  # phonopy 4 tells that 'auto' found a primitive cell: that is what we ask for
        warnings.filterwarnings('ignore', message='primitive_matrix defaulted')
        phonon = Phonopy(unitcell, supercell_matrix=supercell_matrix(atoms, settings), primitive_matrix='auto')
    phonon.generate_displacements(distance=settings['displacement_a'])
    return phonon


def to_ase(cell):
    """An ``ase.Atoms`` of a phonopy cell."""
    from ase import Atoms

    return Atoms(symbols=cell.symbols, cell=cell.cell, scaled_positions=cell.scaled_positions, pbc=True)


def configurations(phonon) -> list:
    """The undisplaced supercell followed by every displaced supercell (``ase.Atoms``)."""
    return [to_ase(phonon.supercell)] + [to_ase(cell) for cell in phonon.supercells_with_displacements]


def analyse(phonon, forces: Sequence[np.ndarray], settings: Mapping[str, Any], workdir=None) -> dict:
    """Force constants from the forces of :func:`configurations` (undisplaced first); frequencies, bands, DOS and
    thermal properties in the kernel's result shape."""
    forces = [np.asarray(value, dtype=float) for value in forces]
    residual, displaced = forces[0], forces[1:]
    phonon.forces = np.array([value - residual for value in displaced])
    phonon.produce_force_constants(show_drift=False)
    phonon.symmetrize_force_constants()

    gamma = np.sort(phonon.get_frequencies([0.0, 0.0, 0.0])) * THZ_TO_CM1
    n_acoustic = 3
    phonon.auto_band_structure(npoints=settings['band_points'])
    bands = phonon.get_band_structure_dict()
    distances = np.concatenate(bands['distances'])
    frequencies = np.concatenate(bands['frequencies']) * THZ_TO_CM1  # (n_q, n_branches)
    labels = list(getattr(phonon.band_structure, 'labels', None) or [])

    phonon.run_mesh(settings['mesh_density'])
    phonon.run_total_dos(freq_pitch=settings['dos_pitch_cm1'] / THZ_TO_CM1)
    dos = phonon.get_total_dos_dict()
    mesh_frequencies = phonon.get_mesh_dict()['frequencies'] * THZ_TO_CM1
    t_min, t_max, t_step = settings['temperatures_k']
    # the three acoustic modes at Gamma are zero: left out of the sums instead of adding log(0)-like noise
    phonon.run_thermal_properties(t_min=t_min, t_max=t_max, t_step=t_step, exclude_gamma_acoustic=True)
    thermal = phonon.get_thermal_properties_dict()
    temperatures = np.asarray(thermal['temperatures'])

    def at(values, temperature):
        return float(np.interp(temperature, temperatures, np.asarray(values)))

    n_primitive = len(phonon.primitive)
    scalars = {
        'gamma_optical_max_cm1': float(gamma[-1]) if len(gamma) > n_acoustic else None,
        'gamma_optical_min_cm1': float(gamma[n_acoustic]) if len(gamma) > n_acoustic else None,
        'gamma_acoustic_max_abs_cm1': float(np.abs(gamma[:n_acoustic]).max()),
        'max_frequency_cm1': float(max(frequencies.max(), mesh_frequencies.max())),
        'min_frequency_cm1': float(min(frequencies.min(), mesh_frequencies.min())),
        'residual_force_max_ev_a': float(np.linalg.norm(residual, axis=1).max()),
    }
    if t_min <= 300 <= t_max:
        scalars.update(
            free_energy_300k_kj_mol=at(thermal['free_energy'], 300.0),
            entropy_300k_j_k_mol=at(thermal['entropy'], 300.0),
            heat_capacity_300k_j_k_mol=at(thermal['heat_capacity'], 300.0),
        )
    curves = {
        'dos': {
            'x': (np.asarray(dos['frequency_points']) * THZ_TO_CM1).tolist(),
            'y': (np.asarray(dos['total_dos']) / THZ_TO_CM1).tolist(),
            'x_label': 'frequency (cm^-1)',
            'y_label': 'DOS (states/cm^-1 per primitive cell)',
        },
        'heat_capacity': {
            'x': temperatures.tolist(),
            'y': np.asarray(thermal['heat_capacity']).tolist(),
            'x_label': 'T (K)',
            'y_label': 'C_v (J/K/mol)',
        },
        'free_energy': {
            'x': temperatures.tolist(),
            'y': np.asarray(thermal['free_energy']).tolist(),
            'x_label': 'T (K)',
            'y_label': 'F_vib (kJ/mol)',
        },
    }
    extra = {
        'gamma_frequencies_cm1': gamma.tolist(),
        'n_primitive_atoms': n_primitive,
        'primitive_formula': to_ase(phonon.primitive).get_chemical_formula(),
        'supercell_matrix': np.asarray(phonon.supercell_matrix).tolist(),
        'n_displacements': len(displaced),
        'band_structure': {
            'distances': distances.tolist(),
            'frequencies_cm1': frequencies.T.tolist(),  # one list per branch
            'labels': labels,
            'segment_ends': np.cumsum([len(segment) for segment in bands['distances']]).tolist(),
        },
    }
    if workdir is not None:
        plot_bands(extra['band_structure'], pathlib.Path(workdir) / 'band_structure.png')
    return {'scalars': scalars, 'curves': curves, 'extra': extra}


def plot_bands(
    band_structure: Mapping[str, Any], path: pathlib.Path, reference: Mapping[str, Any] | None = None
) -> pathlib.Path:
    """Draw the branches (and a reference's, dashed) along the path into the PNG ``path``; return it."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.0, 3.4), dpi=100)
    x = np.asarray(band_structure['distances'])
    for branch in band_structure.get('frequencies_cm1') or band_structure.get('mean', []):
        axis.plot(x, branch, color='k', lw=0.8)
    for index, (mean, std) in enumerate(zip(band_structure.get('mean', []), band_structure.get('std', []))):
        mean, std = np.asarray(mean), np.asarray(std)
        axis.fill_between(
            x, mean - std, mean + std, color='tab:blue', alpha=0.3, lw=0, label='±std' if not index else None
        )
    if reference is not None:
        for index, branch in enumerate(reference['frequencies_cm1']):
            axis.plot(
                reference['distances'], branch, '--', color='tab:red', lw=0.8, label='reference' if not index else None
            )
        axis.legend(fontsize=7, frameon=False)
    ends = band_structure.get('segment_ends', [])
    for end in ends[:-1]:
        axis.axvline(x[end - 1], color='0.7', lw=0.5)
    axis.axhline(0, color='0.7', lw=0.5)
    axis.set_xlim(x.min(), x.max())
    axis.set_ylabel('frequency (cm$^{-1}$)')
    axis.set_xticks([])
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def run_member(structures: list, calculator, settings: dict, workdir: pathlib.Path) -> dict:
    """Forces of every displaced supercell with this member, then phonopy's analysis."""
    validate_settings(settings, structures)
    merged = normalise_settings(settings)
    atoms = structures[0].copy()
    relaxation = None
    if merged['relax'] != 'none':
        atoms.calc = calculator
        relaxation = relax(atoms, fmax=merged['relax_fmax_ev_a'], cell=merged['relax'] == 'cell')
        atoms = atoms.copy()
    phonon = make_phonopy(atoms, merged)
    forces = []
    for configuration in configurations(phonon):
        configuration.calc = calculator
        forces.append(configuration.get_forces().copy())
    result = analyse(phonon, forces, merged, workdir)
    result['extra']['relaxation'] = relaxation
    return result


def aggregate(per_member: Sequence[Mapping[str, Any]]) -> dict:
    """The default statistics, and the committee's band structure: mean and std of every branch when the members
    share the path (same cell); the band plot ``band_structure_committee.png`` is left to the caller."""
    result = aggregate_members(per_member)
    structures = [member['extra']['band_structure'] for member in per_member]
    first = structures[0]
    if all(np.allclose(item['distances'], first['distances']) for item in structures):
        stack = np.array([item['frequencies_cm1'] for item in structures])  # (members, branches, q)
        result['band_structure'] = {
            'distances': first['distances'],
            'labels': first['labels'],
            'segment_ends': first['segment_ends'],
            'mean': stack.mean(axis=0).tolist(),
            'std': stack.std(axis=0).tolist(),
        }
    gammas = np.array([member['extra']['gamma_frequencies_cm1'] for member in per_member])
    result['gamma_frequencies_cm1'] = {'mean': gammas.mean(axis=0).tolist(), 'std': gammas.std(axis=0).tolist()}
    return result


def reference_configurations(structures: list, settings: dict) -> list:
    """The undisplaced and displaced supercells of the structure as given (what a DFT labeler labels)."""
    merged = normalise_settings(settings)
    return configurations(make_phonopy(structures[0], merged))


def phonopy_from_configurations(configurations_: Sequence, settings: Mapping[str, Any]):
    """A ``Phonopy`` rebuilt from :func:`configurations` alone: the undisplaced supercell becomes the unit cell
    (supercell matrix 1, ``primitive_matrix='auto'`` finds the same primitive cell) and each displaced supercell
    gives one displacement (its single moved atom, minimum image)."""
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    perfect = configurations_[0]
    unitcell = PhonopyAtoms(
        symbols=perfect.get_chemical_symbols(),
        cell=np.asarray(perfect.cell),
        scaled_positions=perfect.get_scaled_positions(),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='primitive_matrix defaulted')
        phonon = Phonopy(unitcell, supercell_matrix=np.eye(3, dtype=int), primitive_matrix='auto')
    displacements = []
    for index, displaced in enumerate(configurations_[1:], start=1):
        if len(displaced) != len(perfect) or displaced.get_chemical_symbols() != perfect.get_chemical_symbols():
            raise InvalidPropertyInput(f'phonons: configuration {index} has other atoms than the undisplaced supercell')
        fractional = displaced.get_scaled_positions(wrap=False) - perfect.get_scaled_positions(wrap=False)
        fractional -= np.round(fractional)
        shift = fractional @ np.asarray(perfect.cell)
        moved = np.flatnonzero(np.linalg.norm(shift, axis=1) > 1e-8)
        if len(moved) != 1:
            raise InvalidPropertyInput(
                f'phonons: configuration {index} moves {len(moved)} atoms; a finite-displacement set moves exactly one'
            )
        displacements.append({'number': int(moved[0]), 'displacement': shift[moved[0]]})
    phonon.dataset = {'natom': len(perfect), 'first_atoms': displacements}
    return phonon


def reference_result(labelled: list, settings: dict) -> dict:
    """Phonons from DFT-labelled :func:`reference_configurations` (same order: undisplaced first; forces from their
    SinglePointCalculator)."""
    merged = normalise_settings(settings)
    if len(labelled) < 2:
        raise InvalidPropertyInput('phonons: the reference needs the undisplaced and at least one displaced supercell')
    phonon = phonopy_from_configurations(labelled, merged)
    return analyse(phonon, [atoms.get_forces() for atoms in labelled], merged)
