"""Amorphous phase made with the committee itself: melt, quench at a set rate, anneal, relax, then its structure.

One melt for the whole committee: the first member to run melts the input structure (scaled to ``density_g_cm3``
when set) at ``melt.temperature_k`` for ``melt.time_ps`` (Langevin NVT) and writes it to
``<calculation folder>/member_shared/melt.extxyz``; every member then quenches *that* liquid, so the committee's spread
includes the quench. Each member: a linear quench from ``melt.temperature_k`` to ``quench.end_k`` at
``quench.rate_k_per_ps``, an anneal at ``anneal.temperature_k`` for ``anneal.time_ps``, a relaxation, and the analysis
of :mod:`aiida_sianode.properties.structure` (g(r), coordination, angles, rings, density).

Ensembles: ``quench.ensemble`` (default ``nvt``: the quench keeps the melt's density) and ``anneal.ensemble``
(``npt``: isotropic MTK barostat at ``pressure_gpa``, or ``nvt``); ``relax.cell`` relaxes the cell at the end. With
an NPT anneal or a cell relaxation the density is a result; with neither it is the one given (``density_g_cm3``) or
the input's. A cell that swells past twice its volume, or whose atoms come closer than 0.5 Å, stops the member with
an error naming it: a liquid that boils off under a barostat is a broken run, not an amorphous phase.
For pure Si (or pure C) the excess energy against the relaxed diamond crystal of the same member is reported.

A member keeps its finished stages: after the quench and after the anneal it replaces ``stage.npz`` in its folder
(positions, momenta, cell, the random generator's state and the quench curve). A member run again in the same folder
(a job past its walltime, or a failure in the relaxation or the analysis) continues after the last finished stage,
with the same result as a run never stopped; a stage file from other settings or another melt is ignored.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np

from aiida_sianode.properties import structure as structure_analysis
from aiida_sianode.properties.common import InvalidPropertyInput, relax, require_keys

KIND = 'amorphous'
DESCRIPTION = 'Melt-quench-anneal with each committee member from one shared melt, then the amorphous structure'

SETTINGS = (
    'pressure_gpa',
    'density_g_cm3',
    'timestep_fs',
    'seed',
    'sample_interval',
    'melt',
    'quench',
    'anneal',
    'relax',
    *structure_analysis.SETTINGS[:-1],  # cutoffs, rdf, angles, rings
)
SECTIONS = {
    'melt': ('temperature_k', 'time_ps'),
    'quench': ('end_k', 'rate_k_per_ps', 'ensemble'),
    'anneal': ('temperature_k', 'time_ps', 'ensemble'),
    'relax': ('cell', 'fmax_ev_a', 'stress_tol_gpa', 'max_steps'),
}
SHARED_FOLDER = 'member_shared'
MELT_FILENAME = 'melt.extxyz'
STAGE_FILENAME = 'stage.npz'
#: the settings that decide a member's quench and anneal (with the melt and the member's index)
STAGE_SETTINGS = ('pressure_gpa', 'density_g_cm3', 'timestep_fs', 'seed', 'sample_interval', 'melt', 'quench', 'anneal')
AMU_PER_A3_TO_G_CM3 = 1.66053906660


def validate_settings(settings: dict, structures: list) -> None:
    """Refuse unknown keys, one structure that is not 3D-periodic, non-positive times, rates or temperatures, a quench
    that ends above the melt, and the structure analysis' own refusals."""
    require_keys(settings, SETTINGS, KIND)
    for section, keys in SECTIONS.items():
        require_keys(settings.get(section, {}), keys, f'{KIND} ({section})')
    if len(structures) != 1:
        raise InvalidPropertyInput(f'the amorphous phase starts from exactly one structure, got {len(structures)}')
    if not all(structures[0].pbc):
        raise InvalidPropertyInput('the amorphous phase needs a cell periodic in all three directions')
    for section in ('quench', 'anneal'):
        if settings[section]['ensemble'] not in ('npt', 'nvt'):
            raise InvalidPropertyInput(f'{section}.ensemble must be npt or nvt, got {settings[section]["ensemble"]!r}')
    positive = {
        'melt.temperature_k': settings['melt']['temperature_k'],
        'melt.time_ps': settings['melt']['time_ps'],
        'quench.rate_k_per_ps': settings['quench']['rate_k_per_ps'],
        'quench.end_k': settings['quench']['end_k'],
        'anneal.temperature_k': settings['anneal']['temperature_k'],
        'timestep_fs': settings['timestep_fs'],
    }
    for name, value in positive.items():
        if not float(value) > 0:
            raise InvalidPropertyInput(f'{name} must be positive, got {value}')
    if float(settings['anneal']['time_ps']) < 0:
        raise InvalidPropertyInput('anneal.time_ps must not be negative')
    if settings['quench']['end_k'] >= settings['melt']['temperature_k']:
        raise InvalidPropertyInput(
            f'the quench must end below the melt: quench.end_k {settings["quench"]["end_k"]} K >= '
            f'melt.temperature_k {settings["melt"]["temperature_k"]} K'
        )
    if settings.get('density_g_cm3') is not None and not float(settings['density_g_cm3']) > 0:
        raise InvalidPropertyInput(f'density_g_cm3 must be positive or null, got {settings["density_g_cm3"]}')
    if abs(float(settings.get('pressure_gpa', 0.0))) > 10:
        raise InvalidPropertyInput('|pressure_gpa| must be at most 10 GPa (100 kbar)')
    structure_analysis.validate_settings(analysis_settings(settings), structures)


def analysis_settings(settings: dict) -> dict:
    """The settings of the structure analysis (no relaxation: the amorphous kind relaxes itself)."""
    return {
        'cutoffs': settings['cutoffs'],
        'rdf': settings['rdf'],
        'angles': settings['angles'],
        'rings': settings['rings'],
        'relax': {'enabled': False},
    }


def density(atoms) -> float:
    """Mass density in g/cm^3."""
    return float(atoms.get_masses().sum() / atoms.get_volume() * AMU_PER_A3_TO_G_CM3)


def quench_steps(settings: dict) -> int:
    """MD steps of the quench: (T_melt - T_end) / rate, in timesteps."""
    span_k = settings['melt']['temperature_k'] - settings['quench']['end_k']
    return max(1, round(span_k / settings['quench']['rate_k_per_ps'] * 1000.0 / settings['timestep_fs']))


def _dynamics(atoms, settings: dict, temperature: float, npt: bool, rng):
    from aiida_sianode.engines.explore import make_dynamics

    params = {
        'ensemble': 'npt_isotropic' if npt else 'nvt_langevin',
        'timestep_fs': float(settings['timestep_fs']),
        'temperature': float(temperature),
        'thermostat_time_fs': 100 * float(settings['timestep_fs']),
        'barostat_time_fs': 1000 * float(settings['timestep_fs']),
        'friction_per_fs': 0.01,
        'pressure_gpa': float(settings.get('pressure_gpa', 0.0)),
    }
    return make_dynamics(atoms, params, rng)


def make_melt(atoms, calculator, settings: dict):
    """Melt ``atoms`` (scaled to ``density_g_cm3`` when set) with ``calculator``: Langevin NVT at the melt
    temperature."""
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    melt = atoms.copy()
    target = settings.get('density_g_cm3')
    if target is not None:
        scale = (density(melt) / float(target)) ** (1.0 / 3.0)
        melt.set_cell(np.array(melt.get_cell()) * scale, scale_atoms=True)
    melt.calc = calculator
    rng = np.random.default_rng(int(settings.get('seed', 0)))
    temperature = float(settings['melt']['temperature_k'])
    MaxwellBoltzmannDistribution(melt, temperature_K=temperature, rng=rng)
    Stationary(melt)
    dynamics = _dynamics(melt, settings, temperature, npt=False, rng=rng)
    dynamics.run(max(1, round(float(settings['melt']['time_ps']) * 1000.0 / float(settings['timestep_fs']))))
    return melt


def shared_melt(atoms, calculator, settings: dict, workdir: pathlib.Path):
    """Return the committee's melt: read it when a previous member wrote it, else make and write it.

    Returns ``(melt atoms with velocities, made_here)``.
    """
    from ase.io import read, write

    folder = pathlib.Path(workdir).parent / SHARED_FOLDER
    path = folder / MELT_FILENAME
    if path.is_file():
        melt = read(path, format='extxyz')
        return melt, False
    melt = make_melt(atoms, calculator, settings)
    folder.mkdir(exist_ok=True)
    temporary = folder / (MELT_FILENAME + '.part')
    stripped = melt.copy()
    stripped.calc = None
    write(temporary, stripped, format='extxyz')
    temporary.replace(path)
    return read(path, format='extxyz'), True


def check_intact(atoms, start_volume: float, stage: str) -> None:
    """Stop a run whose cell swelled past twice its starting volume or whose atoms came closer than 0.5 Å."""
    from aiida_sianode.properties.common import MIN_DISTANCE_A, shortest_distance

    ratio = atoms.get_volume() / start_volume
    if ratio > 2.0:
        raise RuntimeError(
            f'the cell swelled to {ratio:.1f} times its volume during {stage} (density {density(atoms):.2f} g/cm^3): '
            'the liquid fell apart under the barostat; quench or anneal at fixed volume (ensemble: nvt)'
        )
    distance, pair = shortest_distance(atoms, MIN_DISTANCE_A)
    if pair is not None:
        raise RuntimeError(f'atoms {pair[0]} and {pair[1]} came {distance:.2f} Å apart during {stage}')


def crystal_energy(symbol: str, calculator, settings: dict) -> float | None:
    """Energy per atom (eV) of the relaxed diamond crystal of ``symbol`` (Si, C) with this member."""
    from ase.build import bulk

    if symbol not in ('Si', 'C'):
        return None
    crystal = bulk(symbol, 'diamond', a={'Si': 5.43, 'C': 3.57}[symbol], cubic=True)
    crystal.calc = calculator
    options = settings['relax']
    relax(crystal, fmax=options['fmax_ev_a'], stress_tol_gpa=options['stress_tol_gpa'], max_steps=options['max_steps'])
    return float(crystal.get_potential_energy() / len(crystal))


def stage_fingerprint(settings: dict, melt_sha256: str, index: int) -> str:
    """A hash of what decides a member's quench and anneal: :data:`STAGE_SETTINGS`, the melt and the member."""
    data = {key: settings.get(key) for key in STAGE_SETTINGS}
    data.update(melt_sha256=melt_sha256, member=index)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def write_stage(workdir: pathlib.Path, stage: str, fingerprint: str, atoms, dynamics, rng, temperatures, densities):
    """Replace ``stage.npz`` (atomically) with the state after ``stage`` (``quenched`` or ``annealed``)."""
    from aiida_sianode.properties.md_files import write_checkpoint

    extra = {'stage': stage, 'fingerprint': fingerprint, 'temperatures': temperatures, 'densities': densities}
    write_checkpoint(pathlib.Path(workdir) / STAGE_FILENAME, atoms, dynamics, rng, 0, extra)


def read_stage(workdir: pathlib.Path, fingerprint: str, atoms, rng) -> tuple[str | None, list, list]:
    """Put the state of the last finished stage into ``atoms`` and ``rng`` when ``stage.npz`` belongs to this
    member's settings and melt; return ``(stage or None, quench temperatures, quench densities)``."""
    from aiida_sianode.properties.md_files import read_checkpoint

    path = pathlib.Path(workdir) / STAGE_FILENAME
    if not path.is_file():
        return None, [], []
    state = read_checkpoint(path)
    if state['extra'].get('fingerprint') != fingerprint:
        return None, [], []
    atoms.set_cell(state['cell'], scale_atoms=False)
    atoms.set_positions(state['positions'], apply_constraint=False)
    atoms.set_momenta(state['momenta'], apply_constraint=False)
    rng.bit_generator.state = state['rng']
    return state['extra']['stage'], list(state['extra']['temperatures']), list(state['extra']['densities'])


def run_member(structures: list, calculator, settings: dict, workdir: pathlib.Path) -> dict:
    """Quench the shared melt with this member, anneal, relax and analyse (see the module docstring)."""
    from ase.io import write

    workdir = pathlib.Path(workdir)
    melt, made_here = shared_melt(structures[0], calculator, settings, workdir)
    atoms = melt.copy()
    atoms.calc = calculator
    index = int(workdir.name.rsplit('_', 1)[-1]) if workdir.name.rsplit('_', 1)[-1].isdigit() else 0
    rng = np.random.default_rng(int(settings.get('seed', 0)) + 1000 + index)
    t_melt, t_end = float(settings['melt']['temperature_k']), float(settings['quench']['end_k'])
    n_quench = quench_steps(settings)
    interval = max(1, int(settings.get('sample_interval', 50)))
    from aiida_sianode.engines.explore import set_target_temperature

    start_volume = atoms.get_volume()
    melt_sha256 = hashlib.sha256(np.ascontiguousarray(melt.get_positions()).tobytes()).hexdigest()
    fingerprint = stage_fingerprint(settings, melt_sha256, index)
    stage, temperatures, densities = read_stage(workdir, fingerprint, atoms, rng)
    if stage is None:
        dynamics = _dynamics(atoms, settings, t_melt, settings['quench']['ensemble'] == 'npt', rng)
        for step in range(n_quench):
            target = t_melt + (t_end - t_melt) * (step + 1) / n_quench
            set_target_temperature(dynamics, target)
            dynamics.run(1)
            if (step + 1) % interval == 0 or step + 1 == n_quench:
                check_intact(atoms, start_volume, f'the quench at {target:.0f} K')
                temperatures.append(target)
                densities.append(density(atoms))
        write_stage(workdir, 'quenched', fingerprint, atoms, dynamics, rng, temperatures, densities)
    n_anneal = round(float(settings['anneal']['time_ps']) * 1000.0 / float(settings['timestep_fs']))
    if n_anneal and stage != 'annealed':
        temperature = float(settings['anneal']['temperature_k'])
        dynamics = _dynamics(atoms, settings, temperature, settings['anneal']['ensemble'] == 'npt', rng)
        for _ in range(0, n_anneal, interval):
            dynamics.run(min(interval, n_anneal))
            check_intact(atoms, start_volume, f'the anneal at {temperature:.0f} K')
        write_stage(workdir, 'annealed', fingerprint, atoms, dynamics, rng, temperatures, densities)
    atoms.set_constraint()  # the thermostat's centre-of-mass hold (the forces of a periodic cell sum to zero anyway)
    options = settings['relax']
    relaxation = relax(
        atoms,
        fmax=options['fmax_ev_a'],
        stress_tol_gpa=options['stress_tol_gpa'],
        max_steps=options['max_steps'],
        cell=bool(options['cell']),
        logfile=str(workdir / 'relax.log'),
    )
    check_intact(atoms, start_volume, 'the final relaxation')
    final = atoms.copy()
    final.calc = None
    write(workdir / 'amorphous.extxyz', final, format='extxyz')

    result = structure_analysis.analyse([final], analysis_settings(settings))
    scalars = result['scalars']
    scalars['energy_ev_per_atom'] = float(atoms.get_potential_energy() / len(atoms))
    symbols = set(atoms.get_chemical_symbols())
    if len(symbols) == 1:
        reference = crystal_energy(next(iter(symbols)), calculator, settings)
        if reference is not None:
            scalars['excess_energy_ev_per_atom'] = scalars['energy_ev_per_atom'] - reference
    result['curves']['quench_density'] = {
        'x': temperatures,
        'y': densities,
        'x_label': 'quench target temperature (K)',
        'y_label': 'density (g/cm^3)',
    }
    result['extra'].update(
        {
            'melt_made_by_this_member': made_here,
            'melt_sha256': melt_sha256,
            'continued_after_stage': stage,
            'melt_density_g_cm3': density(melt),
            'quench_steps': n_quench,
            'anneal_steps': n_anneal,
            'quench_rate_k_per_ps': float(settings['quench']['rate_k_per_ps']),
            'relaxation': relaxation,
        }
    )
    return result
