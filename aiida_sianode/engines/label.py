"""Engine: one GPAW (plane-wave PBE) or GFN1-xTB (tblite) single point, run as ``python -m``.

Usage, in a folder holding ``input.json`` and the structure file::

    python -m aiida_sianode.engines.label input.json

``input.json``::

    {"labeler": "gpaw", "structure": "structure.extxyz", "parameters": {"cutoff_ev": 400, ...}}

``parameters`` are checked by :func:`validate_parameters` (the keys of :data:`PARAMETERS` for the labeler, with the
types given there) and completed with the defaults. Units: energies eV, lengths Å, k-point density in points per
Å^-1 with the 2π included (ASE's and GPAW's ``kpts={'density': ...}``; the k-point spacing is its inverse),
smearing width eV, electronic temperature K.

The engine writes ``results.json``::

    {"status": "ok" | "scf_not_converged" | "invalid_input" | "calculation_failed",
     "error": null | "<message>", "labeler": ..., "energy": eV, "free_energy": eV, "forces": [[eV/Å]],
     "stress": [[eV/Å^3]] (3x3, ASE sign convention) | null, "natoms": ..., "formula": ...,
     "level_of_theory": {...}, "reported_level_of_theory": {...} (what the code says it ran with),
     "code_version": ..., "scf": {"converged": ..., "iterations": ..., ...},
     "wall_time_s": ...}

A failure of the code (GPAW's ``KohnShamConvergenceError``, tblite's ``SCF not converged``, any other exception)
becomes a status with its message; the process then exits 0 for the handled statuses so that the parser, not the
scheduler, reports what happened. This module imports ASE, GPAW and tblite, never AiiDA.
"""

from __future__ import annotations

import json
import logging
import math
import pathlib
import re
import sys
import time
import traceback
from importlib import metadata
from typing import Any

import numpy as np

from aiida_sianode.engines.once import once

LOGGER = logging.getLogger('aiida_sianode.engines.label')

LABELERS = ('gpaw', 'xtb')
STATUS_OK = 'ok'
STATUS_SCF_NOT_CONVERGED = 'scf_not_converged'
STATUS_INVALID_INPUT = 'invalid_input'
STATUS_CALCULATION_FAILED = 'calculation_failed'

RESULTS_FILENAME = 'results.json'
DEFAULT_STRUCTURE_FILENAME = 'structure.extxyz'
GPAW_LOG_FILENAME = 'gpaw.txt'

SMEARING_TYPES = ('fermi-dirac', 'marzari-vanderbilt')
GPAW_CONVERGENCE_KEYS = ('energy', 'density', 'eigenstates', 'forces')

_NUMBER = (int, float)

#: labeler -> key -> (allowed types, default). ``None`` in the types means the value may be ``null``.
PARAMETERS: dict[str, dict[str, tuple[tuple, Any]]] = {
    'gpaw': {
        'cutoff_ev': (_NUMBER, 400.0),
        'kpoint_density': ((*_NUMBER, type(None)), 2.5),
        'smearing': ((dict,), {'type': 'marzari-vanderbilt', 'width_ev': 0.1}),
        'maxiter': ((int,), 300),
        'mixer_beta': ((*_NUMBER, type(None)), None),
        'spin': ((bool,), False),
        'convergence': ((dict,), {}),
        'compute_stress': ((bool,), True),
    },
    'xtb': {
        'accuracy': (_NUMBER, 1.0),
        'electronic_temperature_k': (_NUMBER, 300.0),
        'max_iterations': ((int,), 250),
        'mixer_damping': (_NUMBER, 0.4),
        # SCF annealing (tblite's ``annealing``): start the SCF at ``start_k``, hold it ``hold_iterations`` cycles,
        # then lower it to ``electronic_temperature_k`` over ``cycles`` cycles. The converged result is the one at
        # ``electronic_temperature_k`` (the level of theory does not change); it only helps metals converge.
        'scf_annealing': ((dict, type(None)), None),
        'compute_stress': ((bool,), True),
    },
}

#: The keys of the xTB ``scf_annealing`` setting.
XTB_ANNEALING_KEYS = ('start_k', 'hold_iterations', 'cycles')


class InvalidParameters(ValueError):
    """The labeler name or its parameters are not valid; the message lists every problem."""


def validate_parameters(labeler: str, parameters: dict) -> list[str]:
    """Return the problems of ``parameters`` for ``labeler`` (an empty list when they are valid).

    Checks the labeler name, unknown keys, value types and ranges, and the nested ``smearing`` and ``convergence``.
    """
    if labeler not in LABELERS:
        return [f'unknown labeler `{labeler}`; choose one of: {", ".join(LABELERS)}']
    if not isinstance(parameters, dict):
        return [f'parameters must be a dict, got {type(parameters).__name__}']
    schema = PARAMETERS[labeler]
    problems = []
    for key, value in parameters.items():
        if key not in schema:
            problems.append(f'unknown parameter `{key}` for {labeler}; known: {", ".join(sorted(schema))}')
            continue
        types = schema[key][0]
        if isinstance(value, bool) and bool not in types:
            problems.append(f'parameter `{key}` must be a number, got a boolean')
        elif not isinstance(value, types):
            names = ', '.join('null' if t is type(None) else t.__name__ for t in types)
            problems.append(f'parameter `{key}` must be of type {names}, got {type(value).__name__}')
    if problems:
        return problems

    def positive(key):
        value = parameters.get(key)
        if value is not None and not value > 0:
            problems.append(f'parameter `{key}` must be positive, got {value}')

    if labeler == 'gpaw':
        for key in ('cutoff_ev', 'kpoint_density', 'maxiter', 'mixer_beta'):
            positive(key)
        smearing = parameters.get('smearing')
        if smearing is not None:
            if set(smearing) != {'type', 'width_ev'}:
                problems.append(
                    f'parameter `smearing` needs exactly the keys type and width_ev, got {sorted(smearing)}'
                )
            elif smearing['type'] not in SMEARING_TYPES:
                problems.append(
                    f'smearing type `{smearing["type"]}` unknown; choose one of: {", ".join(SMEARING_TYPES)}'
                )
            elif isinstance(smearing['width_ev'], bool) or not isinstance(smearing['width_ev'], _NUMBER):
                problems.append('smearing `width_ev` must be a number (eV)')
            elif not smearing['width_ev'] > 0:
                problems.append(f'smearing `width_ev` must be positive, got {smearing["width_ev"]}')
        for key, value in (parameters.get('convergence') or {}).items():
            if key not in GPAW_CONVERGENCE_KEYS:
                problems.append(f'unknown convergence criterion `{key}`; known: {", ".join(GPAW_CONVERGENCE_KEYS)}')
            elif isinstance(value, bool) or not isinstance(value, _NUMBER) or not value > 0:
                problems.append(f'convergence criterion `{key}` must be a positive number, got {value!r}')
    else:
        for key in ('accuracy', 'electronic_temperature_k', 'max_iterations', 'mixer_damping'):
            positive(key)
        problems.extend(_annealing_problems(parameters.get('scf_annealing'), parameters.get('max_iterations', 250)))
    return problems


def _annealing_problems(annealing: dict | None, max_iterations: int) -> list[str]:
    """Return the problems of the xTB ``scf_annealing`` setting (``None`` switches annealing off)."""
    if annealing is None:
        return []
    if set(annealing) != set(XTB_ANNEALING_KEYS):
        return [
            f'parameter `scf_annealing` needs exactly the keys {", ".join(XTB_ANNEALING_KEYS)}, got {sorted(annealing)}'
        ]
    problems = []
    start = annealing['start_k']
    if isinstance(start, bool) or not isinstance(start, _NUMBER) or not start > 0:
        problems.append(f'scf_annealing `start_k` must be a positive number (K), got {start!r}')
    for key in ('hold_iterations', 'cycles'):
        value = annealing[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(f'scf_annealing `{key}` must be a non-negative integer, got {value!r}')
    if not problems and annealing['hold_iterations'] + annealing['cycles'] >= max_iterations:
        problems.append(
            f'scf_annealing hold_iterations + cycles ({annealing["hold_iterations"] + annealing["cycles"]}) must be '
            f'below max_iterations ({max_iterations}), or the SCF never runs at the electronic temperature'
        )
    return problems


def complete_parameters(labeler: str, parameters: dict) -> dict:
    """Return ``parameters`` validated and completed with the defaults of :data:`PARAMETERS`.

    :raises InvalidParameters: naming every problem found by :func:`validate_parameters`.
    """
    problems = validate_parameters(labeler, parameters)
    if problems:
        raise InvalidParameters('; '.join(problems))
    completed = {key: default for key, (_, default) in PARAMETERS[labeler].items()}
    completed.update(parameters)
    return completed


def gpaw_kpoint_mesh(atoms, kpoint_density: float | None) -> list[int]:
    """Return the Γ-centred Monkhorst-Pack mesh for ``kpoint_density`` (points per Å^-1, 2π included).

    ``N_i = ceil(2π |b_i| density)`` with ``b_i`` the reciprocal vectors without 2π, as ASE's
    ``kptdensity2monkhorstpack`` (not rounded to even numbers); ``None`` gives Γ only.
    """
    if kpoint_density is None:
        return [1, 1, 1]
    reciprocal = atoms.cell.reciprocal()
    return [
        max(1, math.ceil(2 * math.pi * float(np.linalg.norm(reciprocal[i])) * kpoint_density - 1e-9))
        if atoms.pbc[i]
        else 1
        for i in range(3)
    ]


def package_version(name: str) -> str:
    """Return the installed version of the distribution ``name`` or ``'unknown'``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return 'unknown'


def _gpaw_setup_names(calc, atoms) -> dict[str, str]:
    """Return ``{element: '<setup file> md5:<fingerprint>'}`` for the PAW setups GPAW used."""
    names = {}
    for symbol, setup in zip(atoms.get_chemical_symbols(), calc.dft.setups):
        if symbol not in names:
            names[symbol] = f'{pathlib.Path(setup.filename).name} md5:{setup.fingerprint}'
    return names


_GPAW_LOG_PATTERNS = {
    'cutoff_ev': re.compile(r'^Cutoff:\s*([-\d.]+)\s*eV'),
    'kpoints_mesh': re.compile(r'^\s*Monkhorst-Pack size:\s*\[([\d,\s]+)\]'),
    'spin': re.compile(r'^Spin-components:\s*(\d)'),
    'smearing_width': re.compile(r'^\s*width:\s*([-\d.]+)\s*# eV'),
}


def gpaw_reported_level_of_theory(log: pathlib.Path, xc_name: str) -> dict:
    """Return what GPAW says it ran with: the functional of its potential (``xc_name``), and from its text log the
    plane-wave cut-off, the Monkhorst-Pack size, the spin components and the occupation smearing.

    Only what the log states is returned (a key it lacks is left out), for comparison with the recorded level of
    theory (:func:`aiida_sianode.common.level_of_theory.contradictions`).
    """
    reported: dict[str, Any] = {'method': xc_name}
    lines = log.read_text(errors='replace').splitlines() if log.is_file() else []
    smearing_type = None
    for index, line in enumerate(lines):
        if line.startswith('occupation numbers:') and index + 1 < len(lines):
            smearing_type = lines[index + 1].strip().rstrip(':').lower()
        for key, pattern in _GPAW_LOG_PATTERNS.items():
            match = pattern.match(line)
            if match and key not in reported:
                reported[key] = match.group(1)
    if 'cutoff_ev' in reported:
        reported['cutoff_ev'] = float(reported['cutoff_ev'])
    if 'kpoints_mesh' in reported:
        reported['kpoints_mesh'] = [int(value) for value in reported['kpoints_mesh'].split(',')]
    if 'spin' in reported:
        reported['spin'] = int(reported['spin']) == 2
    width = reported.pop('smearing_width', None)
    if smearing_type and width is not None:
        reported['smearing'] = {'type': smearing_type, 'width_ev': float(width)}
    return reported


def run_gpaw(atoms, parameters: dict, workdir: pathlib.Path) -> dict:
    """Run one GPAW PW-mode PBE single point of ``atoms``; return the results dictionary (see module doc)."""
    from gpaw import GPAW, PW, KohnShamConvergenceError

    mesh = gpaw_kpoint_mesh(atoms, parameters['kpoint_density'])
    smearing = parameters['smearing']
    keywords = {
        'mode': PW(float(parameters['cutoff_ev'])),
        'xc': 'PBE',
        'kpts': {'size': mesh, 'gamma': True},
        'occupations': {'name': smearing['type'], 'width': float(smearing['width_ev'])},
        'maxiter': int(parameters['maxiter']),
        'txt': str(workdir / GPAW_LOG_FILENAME),
    }
    if parameters['mixer_beta'] is not None:
        keywords['mixer'] = {'beta': float(parameters['mixer_beta'])}
    if parameters['convergence']:
        keywords['convergence'] = dict(parameters['convergence'])
    if parameters['spin']:
        keywords['spinpol'] = True
        if not atoms.get_initial_magnetic_moments().any():
            # A zero start keeps a spin-polarised SCF on the non-magnetic solution; start from 1 μB per atom.
            atoms.set_initial_magnetic_moments([1.0] * len(atoms))
    atoms.calc = GPAW(**keywords)

    kpoint_spacing = None if parameters['kpoint_density'] is None else 1.0 / float(parameters['kpoint_density'])
    level_of_theory = {
        'code': 'gpaw',
        'code_version': package_version('gpaw'),
        'method': 'PBE',
        'basis': 'plane-wave',
        'cutoff_ev': float(parameters['cutoff_ev']),
        'kpoint_spacing': kpoint_spacing,
        'smearing': {'type': smearing['type'], 'width_ev': float(smearing['width_ev'])},
        'spin': bool(parameters['spin']),
        'kpoints_mesh': [int(value) for value in mesh],
    }
    scf = {'maxiter': int(parameters['maxiter']), 'kpoint_mesh': mesh, 'mixer_beta': parameters['mixer_beta']}
    results = {'level_of_theory': level_of_theory, 'scf': scf}
    try:
        energy = atoms.get_potential_energy()
    except KohnShamConvergenceError as exception:
        scf.update(converged=False, iterations=int(parameters['maxiter']))
        results.update(
            status=STATUS_SCF_NOT_CONVERGED,
            error=f'GPAW SCF did not converge in {parameters["maxiter"]} iterations'
            + (f': {exception}' if str(exception) else ''),
        )
        return results
    calc = atoms.calc
    results['energy'] = float(energy)
    results['free_energy'] = float(atoms.get_potential_energy(force_consistent=True))
    results['forces'] = atoms.get_forces().tolist()
    if parameters['compute_stress'] and all(atoms.pbc):
        from ase.stress import voigt_6_to_full_3x3_stress

        results['stress'] = voigt_6_to_full_3x3_stress(atoms.get_stress()).tolist()
    scf.update(
        converged=True,
        iterations=int(calc.get_number_of_iterations()),
        nkpts_ibz=len(calc.get_ibz_k_points()),
        fermi_level_ev=float(calc.get_fermi_level()),
    )
    if parameters['spin']:
        results['magnetic_moment'] = float(calc.get_magnetic_moment())
    results['reported_level_of_theory'] = gpaw_reported_level_of_theory(
        workdir / GPAW_LOG_FILENAME, calc.get_xc_functional()
    )
    level_of_theory['pseudopotentials'] = _gpaw_setup_names(calc, atoms)
    level_of_theory['pseudopotential_library'] = f'gpaw-data {package_version("gpaw-data")}'
    results['status'] = STATUS_OK
    return results


def xtb_reported_level_of_theory(calc) -> dict:
    """Return what the tblite calculator ran with: its method and electronic temperature (as a Fermi smearing).

    tblite writes no log at verbosity 0; these are the parameters of the calculator object that computed the
    results, read back after the run.
    """
    from ase.units import kB

    parameters = calc.parameters
    return {
        'method': str(parameters.get('method')),
        'smearing': {'type': 'fermi-dirac', 'width_ev': float(parameters.get('electronic_temperature')) * kB},
    }


def run_xtb(atoms, parameters: dict, workdir: pathlib.Path) -> dict:
    """Run one GFN1-xTB single point of ``atoms`` with tblite; return the results dictionary (see module doc)."""
    from ase.calculators.calculator import CalculationFailed
    from ase.units import Hartree, kB
    from tblite.ase import TBLite

    annealing = parameters.get('scf_annealing')
    atoms.calc = TBLite(
        method='GFN1-xTB',
        accuracy=float(parameters['accuracy']),
        electronic_temperature=float(parameters['electronic_temperature_k']),
        max_iterations=int(parameters['max_iterations']),
        mixer_damping=float(parameters['mixer_damping']),
        # tblite takes the annealing start temperature in Hartree.
        annealing=None
        if annealing is None
        else (float(annealing['start_k']) * kB / Hartree, int(annealing['hold_iterations']), int(annealing['cycles'])),
        verbosity=0,
    )
    level_of_theory = {
        'code': 'xtb',
        'code_version': f'tblite {package_version("tblite")}',
        'method': 'GFN1-xTB',
        'basis': 'tight-binding',
        'smearing': {'type': 'fermi-dirac', 'width_ev': float(parameters['electronic_temperature_k']) * kB},
        'spin': False,
    }
    scf = {
        'max_iterations': int(parameters['max_iterations']),
        'mixer_damping': float(parameters['mixer_damping']),
        'annealing': annealing,
    }
    results = {'level_of_theory': level_of_theory, 'scf': scf}
    try:
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        stress = atoms.get_stress() if parameters['compute_stress'] and all(atoms.pbc) else None
    except CalculationFailed as exception:
        message = str(exception)
        if 'not converged' in message.lower():
            scf.update(converged=False, iterations=int(parameters['max_iterations']))
            results.update(status=STATUS_SCF_NOT_CONVERGED, error=f'tblite: {message}')
        else:
            results.update(status=STATUS_CALCULATION_FAILED, error=f'tblite: {message}')
        return results
    results['energy'] = float(energy)
    results['free_energy'] = float(energy)
    results['forces'] = forces.tolist()
    results['reported_level_of_theory'] = xtb_reported_level_of_theory(atoms.calc)
    if stress is not None:
        from ase.stress import voigt_6_to_full_3x3_stress

        results['stress'] = voigt_6_to_full_3x3_stress(stress).tolist()
    scf['converged'] = True
    results['status'] = STATUS_OK
    return results


RUNNERS = {'gpaw': run_gpaw, 'xtb': run_xtb}


def label(atoms, labeler: str, parameters: dict | None = None, workdir: str | pathlib.Path = '.') -> dict:
    """Label ``atoms`` with ``labeler`` and return the results dictionary that ``results.json`` holds.

    Never raises for a failure of the code: the status says what happened. Invalid parameters give the status
    ``invalid_input``.
    """
    workdir = pathlib.Path(workdir)
    start = time.perf_counter()
    base = {
        'labeler': labeler,
        'natoms': len(atoms),
        'formula': atoms.get_chemical_formula(mode='hill'),
        'energy': None,
        'free_energy': None,
        'forces': None,
        'stress': None,
        'error': None,
    }
    try:
        completed = complete_parameters(labeler, parameters or {})
    except InvalidParameters as exception:
        return {**base, 'status': STATUS_INVALID_INPUT, 'error': str(exception), 'wall_time_s': 0.0}
    base['parameters'] = completed
    atoms = atoms.copy()
    try:
        results = RUNNERS[labeler](atoms, completed, workdir)
    except Exception as exception:  # the engine reports every failure of the code as a status
        LOGGER.error('the %s calculation failed:\n%s', labeler, traceback.format_exc())
        results = {'status': STATUS_CALCULATION_FAILED, 'error': f'{type(exception).__name__}: {exception}'}
    results = {**base, **results}
    results['code_version'] = (results.get('level_of_theory') or {}).get('code_version')
    results['wall_time_s'] = time.perf_counter() - start
    return results


@once(RESULTS_FILENAME, 'label')
def main(argv: list[str] | None = None) -> int:
    """Read ``input.json`` (first argument), run the single point, write ``results.json``; return the exit status."""
    import ase.io

    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s', stream=sys.stdout)
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print('usage: python -m aiida_sianode.engines.label input.json', file=sys.stderr)
        return 2
    input_path = pathlib.Path(argv[0])
    workdir = input_path.parent
    try:
        request = json.loads(input_path.read_text())
        structure_path = workdir / request.get('structure', DEFAULT_STRUCTURE_FILENAME)
        atoms = ase.io.read(structure_path, format='extxyz')
        labeler = request['labeler']
    except Exception as exception:
        results = {
            'status': STATUS_INVALID_INPUT,
            'error': f'cannot read the input: {type(exception).__name__}: {exception}',
        }
        (workdir / RESULTS_FILENAME).write_text(json.dumps(results, indent=1))
        LOGGER.error(results['error'])
        return 0
    LOGGER.info('labelling %s (%d atoms) with %s', atoms.get_chemical_formula(), len(atoms), labeler)
    results = label(atoms, labeler, request.get('parameters') or {}, workdir)
    (workdir / RESULTS_FILENAME).write_text(json.dumps(results, indent=1))
    LOGGER.info(
        'status %s, energy %s eV, wall time %.2f s', results['status'], results['energy'], results['wall_time_s']
    )
    if results['error']:
        LOGGER.error(results['error'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
