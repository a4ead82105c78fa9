"""Turn the outputs of aiida-vasp's and aiida-castep's work chains into :class:`~aiida_sianode.data.label.LabelData`.

Two layers:

* plain functions that check the parsed outputs (:func:`check_vasp_misc`, :func:`check_castep_outputs`, raising
  :class:`LabelRefusal` with the exit code to use and the reason) and convert their numbers to the project's units
  (:func:`vasp_results_from_misc`, :func:`castep_results_from_outputs`);
* calcfunctions (:func:`normalise_vasp_outputs`, :func:`normalise_castep_outputs`) that take the output nodes, so
  every label is linked to the calculation that made its numbers.

Units and conventions (the same as every label, see :mod:`aiida_sianode.data.label`):

* **VASP** (aiida-vasp 5.1 ``misc`` output, read by its parser from ``vasprun.xml``/``OUTCAR``): energy
  ``total_energies.energy_extrapolated`` = VASP's ``energy(sigma->0)`` in eV (aiida-vasp's vasprun parser remaps
  VASP 5's mislabelled ``e_0_energy`` for this); forces in eV/Å as written; stress from ``vasprun.xml``
  ``<varray name="stress">``, in kbar with VASP's sign (positive = compressive, ``pressure = trace/3``); it is
  converted with ``stress_ASE = -0.1 GPa/kbar * stress_VASP`` in eV/Å^3 (the same conversion as ``ase.io.vasp``).
* **CASTEP** (aiida-castep 2.0.1 ``output_parameters`` and ``output_array``): energy ``zero_K_energy``
  (``NB est. 0K energy (E-0.5TS)``) when the run used smearing, ``total_energy`` (``Final energy``) otherwise; the
  units are checked to be eV, eV/Å and GPa as CASTEP writes by default; CASTEP's stress has ASE's sign already
  (positive = tensile) and is multiplied by ``ase.units.GPa``. CASTEP lists atoms sorted by species; aiida-castep
  2.0.1 computes the order back but stores the arrays unsorted, so the forces are put back in the input order here
  with aiida-castep's own :func:`aiida_castep.parsers.utils.get_desort_args`.

A label is one single point: a run that moved the ions (more than one ionic step, a geometry optimisation or MD
task) is refused, because the final forces belong to a structure that is not the input structure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import calcfunction
from ase.units import GPa

from aiida_sianode.data.label import LabelData

__all__ = (
    'LabelRefusal',
    'castep_results_from_outputs',
    'check_castep_outputs',
    'check_vasp_misc',
    'normalise_castep_outputs',
    'normalise_vasp_outputs',
    'vasp_results_from_misc',
    'vasp_stress_to_ase',
)

#: kbar (VASP) to eV/Å^3: 1 kbar = 0.1 GPa.
KBAR = 0.1 * GPa


class LabelRefusal(ValueError):
    """The outputs of a calculation cannot make a label; ``exit_code`` names the label work chain's exit code."""

    def __init__(self, exit_code: str, reason: str):
        super().__init__(reason)
        self.exit_code = exit_code
        self.reason = reason


def vasp_stress_to_ase(stress_kbar) -> np.ndarray:
    """Return VASP's stress (kbar, positive = compressive) as eV/Å^3 with ASE's sign (positive = tensile)."""
    return -KBAR * np.asarray(stress_kbar, dtype=float)


def check_vasp_misc(misc: Mapping[str, Any], *, natoms: int | None = None, require_stress: bool = True) -> None:
    """Raise :class:`LabelRefusal` when aiida-vasp's ``misc`` output cannot make a single-point label.

    :param misc: the ``misc`` output of a ``vasp.vasp`` calculation (a dict).
    :param natoms: number of atoms of the input structure, to check the forces against.
    :param require_stress: refuse outputs without a stress (the label work chains always ask for one).
    """
    run_status = misc.get('run_status')
    if not run_status:
        raise LabelRefusal(
            'ERROR_MISSING_OUTPUTS',
            'the VASP outputs have no run status (the OUTCAR was missing or unreadable), so convergence is unknown',
        )
    if run_status.get('finished') is False:
        raise LabelRefusal(
            'ERROR_INCOMPLETE_OUTPUT', 'VASP did not finish: the OUTCAR has no timing summary (a killed or crashed run)'
        )
    if run_status.get('electronic_converged') is False:
        steps = (run_status.get('last_iteration_index') or [None, None])[1]
        raise LabelRefusal(
            'ERROR_SCF_NOT_CONVERGED',
            f'the electronic SCF stopped at NELM = {run_status.get("nelm")} steps ({steps} done) without converging',
        )
    ionic = (run_status.get('last_iteration_index') or [1, None])[0]
    if ionic is not None and int(ionic) > 1:
        raise LabelRefusal(
            'ERROR_NOT_A_SINGLE_POINT',
            f'the run made {ionic} ionic steps (NSW = {run_status.get("nsw")}): its final forces belong to a moved '
            'structure; a label is one single point (NSW = 0). Import the vasprun.xml to keep every step',
        )
    energy = (misc.get('total_energies') or {}).get('energy_extrapolated')
    if energy is None:
        raise LabelRefusal('ERROR_MISSING_OUTPUTS', 'the VASP outputs have no energy(sigma->0)')
    forces = misc.get('forces')
    if forces is None:
        raise LabelRefusal('ERROR_MISSING_OUTPUTS', 'the VASP outputs have no forces')
    shape = np.shape(forces)
    if natoms is not None and shape != (natoms, 3):
        raise LabelRefusal('ERROR_MISSING_OUTPUTS', f'the VASP forces have shape {shape}, expected ({natoms}, 3)')
    if require_stress and misc.get('stress') is None:
        raise LabelRefusal('ERROR_MISSING_OUTPUTS', 'the VASP outputs have no stress (ISIF = 0?)')


def vasp_results_from_misc(misc: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``energy`` (eV), ``forces`` (eV/Å), ``stress`` (3x3 eV/Å^3, ASE sign, or ``None``) and ``version``.

    :param misc: the ``misc`` output of aiida-vasp's parser, already checked with :func:`check_vasp_misc`.
    """
    stress = misc.get('stress')
    return {
        'energy': float(misc['total_energies']['energy_extrapolated']),
        'forces': np.asarray(misc['forces'], dtype=float),
        'stress': vasp_stress_to_ase(stress) if stress is not None else None,
        'version': misc.get('version'),
    }


_CASTEP_UNITS = {'unit_energy': 'eV', 'unit_force': 'eV/A', 'unit_pressure': 'GPa'}


def _last(arrays: Mapping[str, Any], *names: str):
    """Return ``(name, last entry)`` of the first of ``names`` in ``arrays`` with entries, else ``(None, None)``."""
    for name in names:
        values = arrays.get(name)
        if values is not None and len(values) > 0:
            return name, np.asarray(values[-1], dtype=float)
    return None, None


def check_castep_outputs(
    parameters: Mapping[str, Any],
    arrays: Mapping[str, Any],
    *,
    task: str = 'singlepoint',
    natoms: int | None = None,
    require_stress: bool = True,
) -> None:
    """Raise :class:`LabelRefusal` when aiida-castep's outputs cannot make a single-point label.

    :param parameters: the ``output_parameters`` dict of a ``castep.castep`` calculation.
    :param arrays: its ``output_array`` as ``{name: array}`` (``{}`` when it has none).
    :param task: the CASTEP ``task`` the calculation ran.
    :param natoms: number of atoms of the input structure.
    :param require_stress: refuse outputs without a stress.
    """
    warnings = [str(warning) for warning in parameters.get('warnings', [])]
    if 'ERROR_SCF_NOT_CONVERGED' in warnings or any('not reached the groundstate' in item for item in warnings):
        raise LabelRefusal(
            'ERROR_SCF_NOT_CONVERGED',
            'CASTEP warned "max. SCF cycles performed but system has not reached the groundstate"',
        )
    if str(task).replace('_', '').lower() not in ('singlepoint', 'energy'):
        raise LabelRefusal(
            'ERROR_NOT_A_SINGLE_POINT',
            f'the CASTEP task was `{task}`: a label is one single point (task: singlepoint); import the .castep/.md '
            'file to keep every step',
        )
    for key, expected in _CASTEP_UNITS.items():
        unit = parameters.get(key)
        if unit is not None and unit != expected:
            raise LabelRefusal(
                'ERROR_MISSING_OUTPUTS', f'CASTEP wrote {key[5:]} in `{unit}`, not `{expected}`: refusing to guess'
            )
    energies = arrays.get('zero_K_energy', arrays.get('total_energy'))
    if energies is None or len(energies) == 0:
        raise LabelRefusal('ERROR_MISSING_OUTPUTS', 'the CASTEP outputs have no final energy')
    if len(energies) > 1:
        raise LabelRefusal(
            'ERROR_NOT_A_SINGLE_POINT',
            f'the CASTEP output holds {len(energies)} energy evaluations (continuation runs or moved ions): a label '
            'is one single point',
        )
    _, forces = _last(arrays, 'forces', 'unconstrained_forces')
    if forces is None:
        detail = ' (only constrained forces, which are not the total forces)' if 'cons_forces' in arrays else ''
        raise LabelRefusal('ERROR_MISSING_OUTPUTS', f'the CASTEP outputs have no forces{detail}')
    if natoms is not None and forces.shape != (natoms, 3):
        raise LabelRefusal(
            'ERROR_MISSING_OUTPUTS', f'the CASTEP forces have shape {forces.shape}, expected ({natoms}, 3)'
        )
    if require_stress and _last(arrays, 'stress', 'symm_stress')[1] is None:
        raise LabelRefusal('ERROR_MISSING_OUTPUTS', 'the CASTEP outputs have no stress (calculate_stress is off?)')


def castep_results_from_outputs(
    parameters: Mapping[str, Any], arrays: Mapping[str, Any], structure: orm.StructureData | None = None
) -> dict[str, Any]:
    """Return ``energy`` (eV), ``forces`` (eV/Å, input atom order), ``stress`` (3x3 eV/Å^3 or ``None``), ``version``.

    :param parameters: aiida-castep's ``output_parameters`` dict, checked with :func:`check_castep_outputs`.
    :param arrays: aiida-castep's ``output_array`` as ``{name: array}``.
    :param structure: the input structure; when given, the forces are put back from CASTEP's species-sorted order
        into its order.
    """
    _, energy = _last(arrays, 'zero_K_energy', 'total_energy')
    _, forces = _last(arrays, 'forces', 'unconstrained_forces')
    if structure is not None:
        from aiida_castep.parsers.utils import get_desort_args

        forces = forces[get_desort_args(structure)]
    _, stress = _last(arrays, 'stress', 'symm_stress')
    return {
        'energy': float(energy),
        'forces': forces,
        'stress': stress * GPa if stress is not None else None,
        'version': parameters.get('castep_version'),
    }


def _calculation_source(node: orm.Data, code: str) -> dict[str, Any]:
    """Return the ``source`` record of a label made from the output ``node`` of a calculation."""
    creator = node.creator
    return {
        'kind': 'calculation',
        'code': code,
        'calculation_uuid': creator.uuid if creator is not None else None,
        'output_uuid': node.uuid,
    }


@calcfunction
def normalise_vasp_outputs(structure: orm.StructureData, misc: orm.Dict, level_of_theory: orm.Dict) -> LabelData:
    """Return the label of a VASP single point from aiida-vasp's ``misc`` output.

    :param structure: the structure VASP computed (the work chain's input; VASP keeps its atom order).
    :param misc: aiida-vasp's ``misc`` output (energies, forces, stress, run status).
    :param level_of_theory: the record built from the inputs with
        :func:`aiida_sianode.common.level_of_theory.vasp_level_of_theory`; the VASP version is filled in from
        ``misc`` when the record has none.
    """
    values = misc.get_dict()
    atoms = structure.get_ase()
    check_vasp_misc(values, natoms=len(atoms), require_stress=False)
    results = vasp_results_from_misc(values)
    record = level_of_theory.get_dict()
    if results['version'] and not record.get('code_version'):
        record['code_version'] = str(results['version'])
    return LabelData(
        atoms,
        energy=results['energy'],
        forces=results['forces'],
        stress=results['stress'],
        level_of_theory=record,
        source=_calculation_source(misc, 'vasp'),
    )


@calcfunction
def normalise_castep_outputs(
    structure: orm.StructureData,
    output_parameters: orm.Dict,
    output_array: orm.ArrayData,
    level_of_theory: orm.Dict,
) -> LabelData:
    """Return the label of a CASTEP single point from aiida-castep's ``output_parameters`` and ``output_array``.

    :param structure: the input structure (the forces are put back in its atom order).
    :param output_parameters: aiida-castep's parsed results (units, warnings, version, pseudopotentials).
    :param output_array: aiida-castep's arrays (energies, forces, stress) of the single point.
    :param level_of_theory: the record built from the inputs; the version is filled in when missing.
    """
    parameters = output_parameters.get_dict()
    arrays = {name: output_array.get_array(name) for name in output_array.get_arraynames()}
    atoms = structure.get_ase()
    check_castep_outputs(parameters, arrays, natoms=len(atoms), require_stress=False)
    results = castep_results_from_outputs(parameters, arrays, structure)
    record = level_of_theory.get_dict()
    if results['version'] and not record.get('code_version'):
        record['code_version'] = str(results['version'])
    return LabelData(
        atoms,
        energy=results['energy'],
        forces=results['forces'],
        stress=results['stress'],
        level_of_theory=record,
        source=_calculation_source(output_parameters, 'castep'),
    )
