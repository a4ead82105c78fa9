"""The LAMMPS inputs of each melt-quench stage, as aiida-lammps ``parameters`` dictionaries (plain functions).

Units: LAMMPS ``metal`` (time ps, pressure bar); the arguments are in the project's units (timestep fs,
pressure GPa, temperatures K).
"""

from __future__ import annotations

BAR_PER_GPA = 1.0e4

#: The result key under which aiida-lammps reports the last value of the melt's ``compute msd`` (the total mean
#: square displacement, Å^2). aiida-lammps names a compute's output ``<compute id>_<group>_aiida`` and adds the
#: component index in double underscores; ``compute msd`` has four components (dx^2, dy^2, dz^2, total) and the
#: total is the fourth, so the key is ``c_msd_all_aiida__4__``, prefixed ``final_`` for the value at the last step.
MELT_MSD_RESULT_KEY = 'final_c_msd_all_aiida__4__'


def integration(ensemble: str, start: float, stop: float, timestep_fs: float, pressure_gpa: float) -> dict:
    """Return the ``md.integration`` block: Nosé-Hoover, damping 100 (temperature) and 1000 (pressure) steps.

    :param ensemble: ``nvt`` or ``npt`` (isotropic at ``pressure_gpa``).
    :param start: target temperature at the first step, K.
    :param stop: target temperature at the last step, K (a linear ramp between them).
    """
    timestep_ps = timestep_fs * 1.0e-3
    constraints = {'temp': [start, stop, 100 * timestep_ps]}
    if ensemble == 'npt':
        pressure_bar = pressure_gpa * BAR_PER_GPA
        constraints['iso'] = [pressure_bar, pressure_bar, 1000 * timestep_ps]
    return {'style': ensemble, 'constraints': constraints}


def base_parameters(timestep_fs: float, dump_interval: int) -> dict:
    """Return the parameters every stage shares: units, timestep, thermo output, dump interval."""
    return {
        'control': {'units': 'metal', 'timestep': timestep_fs * 1.0e-3, 'newton': 'on'},
        'structure': {'atom_style': 'atomic'},
        'potential': {},
        'thermo': {
            'printing_rate': 1000,
            'thermo_printing': {
                'step': True,
                'temp': True,
                'pe': True,
                'etotal': True,
                'press': True,
                'vol': True,
                'density': True,
            },
        },
        'dump': {'dump_rate': int(dump_interval)},
    }


def md_parameters(timestep_fs: float, integration_block: dict, steps: int, dump_interval: int) -> dict:
    """Return the parameters of an MD stage that writes a final restart file."""
    parameters = base_parameters(timestep_fs, dump_interval)
    parameters['md'] = {'integration': integration_block, 'max_number_steps': int(steps)}
    parameters['restart'] = {'print_final': True}
    return parameters


def melt_parameters(timestep_fs: float, temperature: float, steps: int, seed: int) -> dict:
    """Return the melt: NVT at ``temperature`` from Maxwell-Boltzmann velocities drawn with ``seed``, with the
    mean square displacement computed (its last value is reported under :data:`MELT_MSD_RESULT_KEY`)."""
    parameters = md_parameters(
        timestep_fs, integration('nvt', temperature, temperature, timestep_fs, 0.0), steps, steps
    )
    parameters['md']['velocity'] = [
        {'create': {'temp': temperature, 'seed': seed}, 'dist': 'gaussian', 'mom': 'yes', 'rot': 'yes'}
    ]
    # A global compute is printed with the thermo output; its last value is in the ``results`` output.
    parameters['compute'] = {'msd': [{'type': [], 'group': 'all'}]}
    return parameters


def relax_parameters(timestep_fs: float, ensemble: str, pressure_gpa: float) -> dict:
    """Return the final energy minimisation (conjugate gradients), of the cell too (``box/relax iso``) under npt."""
    parameters = base_parameters(timestep_fs, dump_interval=100_000)
    parameters['minimize'] = {
        'style': 'cg',
        'energy_tolerance': 1.0e-10,
        'force_tolerance': 1.0e-6,
        'max_iterations': 10_000,
        'max_evaluations': 100_000,
    }
    if ensemble == 'npt':
        parameters['fix'] = {'box/relax': [{'type': ['iso', pressure_gpa * BAR_PER_GPA], 'group': 'all'}]}
    return parameters
