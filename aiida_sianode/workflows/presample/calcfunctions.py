"""The calcfunctions of the melt-quench pre-sampling: every node they derive is linked to what it came from."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction
from aiida_lammps.data.trajectory import LammpsTrajectory

from aiida_sianode.structures.melt_quench import parse_cutoffs
from aiida_sianode.workflows.presample.lammps import BAR_PER_GPA


@calcfunction
def extract_snapshots(trajectory: LammpsTrajectory, temperatures: orm.List) -> dict:
    """Return the frames of the quench trajectory after its first as ``snapshot_00``, ``snapshot_01``, ...

    ``temperatures`` holds the nominal (thermostat target) temperature of every frame of the trajectory; each
    snapshot is labelled with its own.
    """
    nominal = temperatures.get_list()
    snapshots = {}
    for index in range(1, trajectory.number_steps):
        structure = trajectory.get_step_structure(index)
        structure.label = f'quench snapshot at {nominal[index]:.0f} K'
        snapshots[f'snapshot_{index - 1:02d}'] = structure
    return snapshots


@calcfunction
def analyse_presampled_structure(
    structure: orm.StructureData, cutoffs: orm.Dict, results: orm.Dict, schedule: orm.Dict
) -> orm.Dict:
    """Measure the density and the coordination numbers of ``structure``; add the final LAMMPS thermodynamics.

    ``cutoffs`` is ``{'Si-Si': 2.85, ...}`` for every pair of elements; ``results`` the ``results`` output of the
    last LAMMPS calculation; ``schedule`` what was run (steps, rates, the melt's mean square displacement), copied
    into the output under ``schedule``.
    """
    from aiida_sianode.analysis import structure as analysis

    atoms = structure.get_ase()
    pairs = parse_cutoffs(cutoffs.get_dict())
    elements = sorted(set(atoms.get_chemical_symbols()))
    final = results.get_dict()
    natoms = len(atoms)
    properties = {
        'natoms': natoms,
        'formula': atoms.get_chemical_formula(mode='hill'),
        'density_g_cm3': analysis.density_g_cm3(atoms),
        'volume_per_atom_a3': float(atoms.cell.volume) / natoms,
        'coordination_cutoffs': cutoffs.get_dict(),
        'mean_coordination': analysis.mean_coordination(atoms, pairs),
        'coordination_fractions': {
            str(number): fraction for number, fraction in analysis.coordination_fractions(atoms, pairs).items()
        },
        'elements': {},
        'partial_coordination': analysis.partial_coordination(atoms, pairs),
        'schedule': schedule.get_dict(),
    }
    for element in elements:
        properties['elements'][element] = {
            'count': atoms.get_chemical_symbols().count(element),
            'mean_coordination': analysis.mean_coordination(atoms, pairs, element=element),
            'coordination_fractions': {
                str(number): fraction
                for number, fraction in analysis.coordination_fractions(atoms, pairs, element=element).items()
            },
        }
    if 'final_pe' in final:
        properties['potential_energy_ev_per_atom'] = float(final['final_pe']) / natoms
    if 'final_temp' in final:
        properties['final_temperature_k'] = float(final['final_temp'])
    if 'final_press' in final:
        properties['final_pressure_gpa'] = float(final['final_press']) / BAR_PER_GPA
    return orm.Dict(properties)
