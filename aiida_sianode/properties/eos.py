"""Equation of state: relaxed lattice, E(V) over a volume range, Birch-Murnaghan fit (V0, E0, B, B').

Per member: relax positions and cell (FIRE + ``FrechetCellFilter``), then scale the relaxed cell isotropically to the
volumes ``V_relaxed * (1 + s)`` for ``s`` evenly spaced in ``[-volume_range, +volume_range]`` (optionally relaxing
the ions at each fixed cell), and fit ``E(V)`` with ``ase.eos.EquationOfState`` (Birch-Murnaghan by default).
Lattice parameters are those of the relaxed cell's Bravais lattice (``ase.cell.Cell.get_bravais_lattice``: the
conventional ``a`` for cubic lattices, whether the cell given is primitive or conventional), and ``a`` rescaled to the
fitted V0.

Reference (``reference``): the same volumes around the *input* cell (no relaxation is possible with single points),
fitted the same way from the DFT energies.
"""

from __future__ import annotations

import pathlib

import numpy as np

from aiida_sianode.properties.common import (
    InvalidPropertyInput,
    check_fraction_range,
    relax,
    require_keys,
)

KIND = 'eos'
DESCRIPTION = 'Relaxed lattice, E(V) and Birch-Murnaghan fit (V0, B, B′) of a crystal'

SETTINGS = ('volume_range', 'n_points', 'eos', 'relax', 'relax_ions_at_volume')
RELAX_SETTINGS = ('fmax_ev_a', 'stress_tol_gpa', 'max_steps')
EOS_FORMS = ('birchmurnaghan', 'murnaghan', 'vinet', 'sj', 'pouriertarantola', 'antonschmidt', 'p3')


def validate_settings(settings: dict, structures: list) -> None:
    """Refuse settings and structures the EOS cannot use: not exactly one 3D-periodic structure, an empty volume
    range or one over 20 %, fewer than 5 volumes, an unknown EOS form or setting."""
    require_keys(settings, SETTINGS, KIND)
    require_keys(settings.get('relax', {}), RELAX_SETTINGS, f'{KIND} (relax)')
    if len(structures) != 1:
        raise InvalidPropertyInput(f'the equation of state takes exactly one structure, got {len(structures)}')
    if not all(structures[0].pbc):
        raise InvalidPropertyInput('the equation of state needs a structure periodic in all three directions')
    check_fraction_range('volume', [settings.get('volume_range', 0.0)])
    if int(settings.get('n_points', 0)) < 5:
        raise InvalidPropertyInput(f'the EOS fit needs at least 5 volumes (n_points), got {settings.get("n_points")}')
    if settings.get('eos', 'birchmurnaghan') not in EOS_FORMS:
        raise InvalidPropertyInput(f'unknown EOS form `{settings.get("eos")}`; choose one of: {", ".join(EOS_FORMS)}')


def strains(settings: dict) -> np.ndarray:
    """Relative volume changes ``s`` of the E(V) points (``V = V_ref * (1 + s)``)."""
    return np.linspace(-settings['volume_range'], settings['volume_range'], int(settings['n_points']))


def lattice_parameters(cell) -> dict:
    """Scalars of the Bravais lattice of ``cell``: ``lattice_<a|b|c>_a`` (Å), ``lattice_<alpha|beta|gamma>_deg``."""
    lattice = cell.get_bravais_lattice()
    scalars = {}
    for name, value in lattice.vars().items():
        unit = 'deg' if name in ('alpha', 'beta', 'gamma') else 'a'
        scalars[f'lattice_{name}_{unit}'] = float(value)
    return scalars | {'_lattice_name': lattice.name}


def fit(volumes, energies, form: str = 'birchmurnaghan') -> dict:
    """Fit E(V) (volumes Å^3/atom, energies eV/atom); return V0 (Å^3/atom), E0 (eV/atom), B (GPa) and B′."""
    from ase.eos import EquationOfState
    from ase.units import GPa

    eos = EquationOfState(list(volumes), list(energies), eos=form)
    v0, e0, bulk = eos.fit()
    result = {
        'equilibrium_volume_a3_per_atom': float(v0),
        'minimum_energy_ev_per_atom': float(e0),
        'bulk_modulus_gpa': float(bulk / GPa),
    }
    parameters = getattr(eos, 'eos_parameters', None)
    if form in ('birchmurnaghan', 'murnaghan', 'vinet', 'pouriertarantola') and parameters is not None:
        result['bulk_modulus_derivative'] = float(parameters[2])
    return result


def energy_volume(atoms, calculator, settings: dict, reference_cell=None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(volumes, energies)`` per atom of ``atoms`` scaled isotropically to the volumes of the settings."""
    natoms = len(atoms)
    cell = np.array(atoms.get_cell() if reference_cell is None else reference_cell)
    volumes, energies = [], []
    for s in strains(settings):
        scaled = atoms.copy()
        scaled.set_cell(cell * (1.0 + s) ** (1.0 / 3.0), scale_atoms=True)
        scaled.calc = calculator
        if settings.get('relax_ions_at_volume'):
            options = settings['relax']
            relax(scaled, fmax=options['fmax_ev_a'], stress_tol_gpa=None, max_steps=options['max_steps'], cell=False)
        volumes.append(scaled.get_volume() / natoms)
        energies.append(scaled.get_potential_energy() / natoms)
    return np.array(volumes), np.array(energies)


def run_member(structures: list, calculator, settings: dict, workdir: pathlib.Path) -> dict:
    """Relax, compute E(V) and fit it with one committee member (see the module docstring)."""
    atoms = structures[0].copy()
    atoms.calc = calculator
    options = settings['relax']
    relaxation = relax(
        atoms,
        fmax=options['fmax_ev_a'],
        stress_tol_gpa=options['stress_tol_gpa'],
        max_steps=options['max_steps'],
        logfile=str(pathlib.Path(workdir) / 'relax.log'),
    )
    natoms = len(atoms)
    volumes, energies = energy_volume(atoms, calculator, settings)
    scalars = fit(volumes, energies, settings.get('eos', 'birchmurnaghan'))
    lattice = lattice_parameters(atoms.cell)
    lattice_name = lattice.pop('_lattice_name')
    scalars.update(lattice)
    relaxed_volume = atoms.get_volume() / natoms
    scalars['relaxed_volume_a3_per_atom'] = float(relaxed_volume)
    scale = (scalars['equilibrium_volume_a3_per_atom'] / relaxed_volume) ** (1.0 / 3.0)
    if 'lattice_a_a' in scalars:
        scalars['lattice_a_eos_a'] = float(scalars['lattice_a_a'] * scale)
    scalars['density_g_cm3'] = float(atoms.get_masses().sum() / atoms.get_volume() * 1.66053906660)
    return {
        'scalars': scalars,
        'curves': {
            'energy_volume': {
                'x': volumes.tolist(),
                'y': energies.tolist(),
                'x_label': 'V (Å^3/atom)',
                'y_label': 'E (eV/atom)',
            }
        },
        'extra': {
            'lattice': lattice_name,
            'relaxation': relaxation,
            'relaxed_cell_a': np.array(atoms.get_cell()).tolist(),
        },
    }


def reference_configurations(structures: list, settings: dict) -> list:
    """The input cell scaled isotropically to every volume of the E(V) curve (for DFT single points)."""
    atoms = structures[0]
    configurations = []
    for s in strains(settings):
        scaled = atoms.copy()
        scaled.set_cell(np.array(atoms.get_cell()) * (1.0 + s) ** (1.0 / 3.0), scale_atoms=True)
        configurations.append(scaled)
    return configurations


def reference_result(configurations: list, settings: dict) -> dict:
    """E(V) and its fit from DFT-labelled configurations."""
    volumes = np.array([atoms.get_volume() / len(atoms) for atoms in configurations])
    energies = np.array([atoms.get_potential_energy() / len(atoms) for atoms in configurations])
    order = np.argsort(volumes)
    scalars = fit(volumes[order], energies[order], settings.get('eos', 'birchmurnaghan'))
    first = configurations[0]
    lattice = lattice_parameters(first.cell)
    lattice.pop('_lattice_name')
    if 'lattice_a_a' in lattice:
        # isotropic scaling: a goes as V^(1/3)
        scale = (scalars['equilibrium_volume_a3_per_atom'] / (first.get_volume() / len(first))) ** (1.0 / 3.0)
        scalars['lattice_a_eos_a'] = float(lattice['lattice_a_a'] * scale)
    return {
        'scalars': scalars,
        'curves': {
            'energy_volume': {
                'x': volumes[order].tolist(),
                'y': energies[order].tolist(),
                'x_label': 'V (Å^3/atom)',
                'y_label': 'E (eV/atom)',
            }
        },
        'extra': {},
    }
