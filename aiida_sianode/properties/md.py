"""Production molecular dynamics driven by one committee member, with checkpoints and an uncertainty watch.

One member's calculator drives the MD (never the committee mean); every ``sample_interval`` steps the other members
evaluate the same frame and the committee's max atomic force deviation (DP-GEN's definition, see
:mod:`aiida_sianode.engines.committee`) is recorded. That is what DP-GEN does: with 3 members and a sample every 10
steps the MD costs 1.2 model evaluations per step instead of 3 (``benchmarks/properties_dynamic.md``).

Files in ``workdir`` (all appended as the run goes, flushed, so a killed run keeps them):

* ``trajectory/chunk_<k>.extxyz``: frames every ``trajectory_interval`` steps, ``chunk_frames`` per file, with
  momenta and ``step`` / ``time_ps`` in ``info`` (positions are never wrapped: MSDs can be read directly);
* ``thermo.jsonl``: one line every ``thermo_interval`` steps (time, temperature, energies, pressure, volume);
* ``committee.jsonl``: one line per sampled frame (max force deviation, energy spread);
* ``flagged.extxyz``: the sampled frames at or above the upper trust level, for labelling;
* ``checkpoint.npz``: positions, momenta, cell, step, the integrator's state (thermostat / barostat variables as
  ASE holds them) and the random generator's state, replaced atomically every ``checkpoint_interval`` steps;
* ``md_result.json``: the finished run's summary.

The run stops early, keeping everything written so far, on non-finite energies or forces (``nan``), on an
instantaneous temperature above ``max_temperature_factor`` times the target (``temperature``: the member is blowing
up, as exploration's engine also checks), or, with ``on_uncertain: stop``, on the committee's deviation
(``uncertainty``). After the first two the last checkpoint is the last good state and none is written at the stop.

On start the kernel continues from ``checkpoint.npz`` when it finds one: every file above is cut back to the
checkpoint's step, so the trajectory has no gap and no repeat, and the continued run is the same, bit for bit, as
one that was never interrupted. A finished run (``md_result.json`` for the same settings and length) is returned as
it is; raising ``length_ps`` extends it from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pathlib
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from aiida_sianode.properties.common import InvalidPropertyInput, check_min_distance, require_keys
from aiida_sianode.properties.md_files import (  # noqa: F401  (the run's files; re-exported for callers)
    CHECKPOINT,
    COMMITTEE,
    FLAGGED,
    RESULT,
    THERMO,
    TRAJECTORY_DIR,
    clear_outputs,
    cut_back_outputs,
    integrator_state,
    read_checkpoint,
    read_jsonl,
    read_trajectory,
    restore_integrator_state,
    truncate_extxyz,
    truncate_jsonl,
    write_checkpoint,
    write_frame,
    write_json,
)
from aiida_sianode.properties.md_watch import (  # noqa: F401  (re-exported for callers)
    committee_deviation,
    committee_others,
    find_committee_models,
    load_other_members,
    member_predictions,
)

KIND = 'md'
DESCRIPTION = 'production MD (NVT / NPT) driven by one member, with checkpoints and the committee watching it'

ENSEMBLES = ('nvt_langevin', 'nvt_nose_hoover', 'nvt_bussi', 'npt_isotropic', 'npt_anisotropic')
ON_UNCERTAIN = ('flag', 'stop')
#: stops where the dynamics itself broke (non-finite numbers, a runaway temperature): the run's data stop there
PHYSICAL_STOPS = ('nan', 'temperature')

#: every setting with its default (the protocol YAML sets them all; units in the names)
DEFAULTS: dict[str, Any] = {
    'ensemble': 'nvt_langevin',
    'temperature_k': 300.0,
    'pressure_gpa': 0.0,
    'timestep_fs': 1.0,
    'length_ps': 10.0,
    'equilibration_ps': 1.0,  # left out of the averages
    'friction_per_fs': 0.01,
    'thermostat_time_fs': 100.0,
    'barostat_time_fs': 1000.0,
    'seed': 0,
    'trajectory_interval': 10,  # steps between written frames
    'chunk_frames': 1000,  # frames per trajectory file
    'thermo_interval': 10,  # steps between thermodynamic records
    'sample_interval': 10,  # steps between committee evaluations
    'checkpoint_interval': 1000,  # steps between checkpoints
    'force_deviation_lower': 0.05,  # eV/Å
    'force_deviation_upper': 0.25,  # eV/Å
    'on_uncertain': 'flag',
    'uncertainty_patience': 1,  # consecutive samples >= upper before `stop` stops
    'max_temperature_factor': 5.0,  # stop when the instantaneous temperature exceeds this times the target
    'committee_models': None,  # model files of the whole committee (the property engine sets them); None: no watch
    'member_index': None,  # this member's index in committee_models
}
#: settings a checkpoint must share with the run that continues it (the length may grow, the watch may change)
TRAJECTORY_SETTINGS = (
    'ensemble',
    'temperature_k',
    'pressure_gpa',
    'timestep_fs',
    'friction_per_fs',
    'thermostat_time_fs',
    'barostat_time_fs',
    'seed',
    'trajectory_interval',
    'chunk_frames',
    'thermo_interval',
    'sample_interval',
    'checkpoint_interval',
)


# --------------------------------------------------------------------------------------------------------------------
# settings


def _number(settings: Mapping[str, Any], key: str, *, integer: bool = False, low: float | None = None) -> float:
    value = settings[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidPropertyInput(f'md: `{key}` must be a finite number, got {value!r}')
    if integer and int(value) != value:
        raise InvalidPropertyInput(f'md: `{key}` must be an integer, got {value!r}')
    if low is not None and not value > low:
        raise InvalidPropertyInput(f'md: `{key}` must be > {low}, got {value!r}')
    return int(value) if integer else float(value)


def normalise_settings(settings: Mapping[str, Any], *, kind: str = KIND) -> dict:
    """Return ``settings`` over :data:`DEFAULTS`, checked.

    :raises InvalidPropertyInput: an unknown key, an unknown ensemble or ``on_uncertain``, a non-positive length /
        timestep / interval, a pressure given to an NVT run, trust levels out of order.
    """
    require_keys(settings, list(DEFAULTS), kind)
    merged = {**DEFAULTS, **dict(settings)}
    if merged['ensemble'] not in ENSEMBLES:
        raise InvalidPropertyInput(
            f'md: unknown ensemble `{merged["ensemble"]}`; choose one of: {", ".join(ENSEMBLES)}'
        )
    if merged['on_uncertain'] not in ON_UNCERTAIN:
        raise InvalidPropertyInput(f'md: `on_uncertain` must be flag or stop, got {merged["on_uncertain"]!r}')
    for key in ('temperature_k', 'timestep_fs', 'length_ps', 'friction_per_fs', 'thermostat_time_fs'):
        merged[key] = _number(merged, key, low=0)
    merged['barostat_time_fs'] = _number(merged, 'barostat_time_fs', low=0)
    merged['pressure_gpa'] = _number(merged, 'pressure_gpa')
    merged['equilibration_ps'] = _number(merged, 'equilibration_ps')
    for key in ('trajectory_interval', 'chunk_frames', 'thermo_interval', 'sample_interval', 'checkpoint_interval'):
        merged[key] = _number(merged, key, integer=True, low=0)
    merged['uncertainty_patience'] = _number(merged, 'uncertainty_patience', integer=True, low=0)
    merged['max_temperature_factor'] = _number(merged, 'max_temperature_factor', low=1)
    merged['seed'] = _number(merged, 'seed', integer=True, low=-1)
    if merged['timestep_fs'] > 10:
        raise InvalidPropertyInput(
            f'md: `timestep_fs` = {merged["timestep_fs"]} fs is too long for atomistic MD (<= 10)'
        )
    if merged['temperature_k'] > 20000:
        raise InvalidPropertyInput(f'md: `temperature_k` must be <= 20000 K, got {merged["temperature_k"]}')
    if not 0 <= merged['equilibration_ps'] < merged['length_ps']:
        raise InvalidPropertyInput(
            f'md: `equilibration_ps` ({merged["equilibration_ps"]}) must be >= 0 and shorter than `length_ps` '
            f'({merged["length_ps"]})'
        )
    if not merged['ensemble'].startswith('npt') and merged['pressure_gpa'] != 0:
        raise InvalidPropertyInput(
            f'md: `pressure_gpa` = {merged["pressure_gpa"]} was given to the constant-volume ensemble '
            f'{merged["ensemble"]}; use npt_isotropic or npt_anisotropic'
        )
    if abs(merged['pressure_gpa']) > 10:
        raise InvalidPropertyInput(f'md: `pressure_gpa` must be within +-10 GPa, got {merged["pressure_gpa"]}')
    for key in ('thermostat_time_fs', 'barostat_time_fs'):
        if merged[key] <= merged['timestep_fs']:
            raise InvalidPropertyInput(f'md: `{key}` must be longer than the timestep, got {merged[key]} fs')
    lower, upper = (_number(merged, key) for key in ('force_deviation_lower', 'force_deviation_upper'))
    if not 0 <= lower < upper:
        raise InvalidPropertyInput(
            f'md: trust levels must satisfy 0 <= force_deviation_lower < force_deviation_upper, got {lower} and '
            f'{upper} eV/Å'
        )
    if merged['committee_models'] is not None and not isinstance(merged['committee_models'], list | tuple):
        raise InvalidPropertyInput('md: `committee_models` must be a list of model files')
    return merged


def total_steps(settings: Mapping[str, Any]) -> int:
    """Number of MD steps of ``length_ps`` at ``timestep_fs``."""
    return round(settings['length_ps'] * 1000 / settings['timestep_fs'])


def check_structure(atoms, settings: Mapping[str, Any], name: str = 'the structure') -> None:
    """Refuse a structure that production MD cannot run: no atoms, NPT without a full periodic cell, atoms closer
    than 0.5 Å."""
    if len(atoms) < 2:
        raise InvalidPropertyInput(f'md: {name} has {len(atoms)} atom(s); MD needs at least 2')
    if settings['ensemble'].startswith('npt') and not all(atoms.pbc):
        raise InvalidPropertyInput(f'md: the ensemble {settings["ensemble"]} needs a cell periodic in x, y and z')
    if any(atoms.pbc) and atoms.cell.rank < 3:
        raise InvalidPropertyInput(f'md: {name} is periodic but has no full 3D cell')
    check_min_distance(atoms, name)


def validate_settings(settings: dict, structures: list) -> None:
    """Refuse bad settings or structures (exactly one structure) before any MD step."""
    merged = normalise_settings(settings)
    if len(structures) != 1:
        raise InvalidPropertyInput(f'md: give exactly one structure, got {len(structures)}')
    check_structure(structures[0], merged)


# --------------------------------------------------------------------------------------------------------------------
# the committee at sampled frames


def settings_fingerprint(settings: Mapping[str, Any], atoms) -> str:
    """A hash of what decides the trajectory: :data:`TRAJECTORY_SETTINGS` and the starting structure."""
    data = {key: settings[key] for key in TRAJECTORY_SETTINGS}
    data['numbers'] = [int(z) for z in atoms.numbers]
    data['positions'] = np.round(atoms.positions, 8).tolist()
    data['cell'] = np.round(np.asarray(atoms.cell), 8).tolist()
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def make_dynamics(atoms, settings: Mapping[str, Any], rng: np.random.Generator):
    """Return the ASE integrator of ``settings['ensemble']`` for ``atoms`` (calculator and momenta already set)."""
    from ase import units
    from ase.md.bussi import Bussi
    from ase.md.langevin import Langevin
    from ase.md.nose_hoover_chain import MTKNPT, IsotropicMTKNPT, NoseHooverChainNVT

    timestep = settings['timestep_fs'] * units.fs
    temperature = settings['temperature_k']
    tdamp = settings['thermostat_time_fs'] * units.fs
    ensemble = settings['ensemble']
    if ensemble == 'nvt_langevin':
        friction = settings['friction_per_fs'] / units.fs
        return Langevin(atoms, timestep, temperature_K=temperature, friction=friction, fixcm=False, rng=rng)
    if ensemble == 'nvt_nose_hoover':
        return NoseHooverChainNVT(atoms, timestep, temperature_K=temperature, tdamp=tdamp)
    if ensemble == 'nvt_bussi':
        return Bussi(atoms, timestep, temperature_K=temperature, taut=tdamp, rng=rng)
    barostat = {
        'temperature_K': temperature,
        'pressure_au': settings['pressure_gpa'] * units.GPa,
        'tdamp': tdamp,
        'pdamp': settings['barostat_time_fs'] * units.fs,
    }
    if ensemble == 'npt_isotropic':
        return IsotropicMTKNPT(atoms, timestep, **barostat)
    return MTKNPT(atoms, timestep, **barostat)


# --------------------------------------------------------------------------------------------------------------------
# the run


def _pressure_gpa(atoms) -> float | None:
    from ase import units

    if not all(atoms.pbc):
        return None
    try:
        stress = atoms.get_stress(voigt=False, include_ideal_gas=True)
    except Exception:  # a calculator without stress
        return None
    return float(-np.trace(stress) / 3 / units.GPa)


def run_md(atoms, calculator, settings: Mapping[str, Any], workdir: pathlib.Path, *, others=None) -> dict:
    """Run (or continue) production MD of ``atoms`` driven by ``calculator``; return the summary.

    :param settings: see :data:`DEFAULTS`; checked by :func:`normalise_settings`.
    :param others: calculators of the other committee members evaluated at sampled frames (``None``: found with
        :func:`find_committee_models`; ``[]``: no watch).
    :returns: the summary also written to ``md_result.json``: ``stop_reason`` (``completed`` | ``uncertainty`` |
        ``temperature`` | ``nan``), steps done, thermodynamic averages after equilibration, trust-level fractions,
        flagged steps, the steps the run was resumed from, speed.
    """
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, force_temperature

    settings = normalise_settings(settings)
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / TRAJECTORY_DIR).mkdir(exist_ok=True)
    check_structure(atoms, settings)
    steps = total_steps(settings)
    fingerprint = settings_fingerprint(settings, atoms)

    finished = workdir / RESULT
    if finished.is_file():
        summary = json.loads(finished.read_text())
        if summary.get('fingerprint') == fingerprint and (
            summary.get('n_steps_requested') == steps or summary.get('stop_reason') != 'completed'
        ):
            return summary

    others = committee_others(calculator, settings, workdir) if others is None else list(others)

    atoms = atoms.copy()
    atoms.constraints = []
    if settings['ensemble'] == 'nvt_langevin':
        from ase.constraints import FixCom

        atoms.set_constraint(FixCom())  # ASE 3.29's way of holding the centre of mass (Langevin's fixcm is deprecated)
    atoms.calc = calculator
    rng = np.random.default_rng(settings['seed'])
    checkpoint_path = workdir / CHECKPOINT
    resumed_from: list[int] = []
    if checkpoint_path.is_file():
        checkpoint = read_checkpoint(checkpoint_path)
        if checkpoint['extra'].get('fingerprint') != fingerprint:
            raise InvalidPropertyInput(
                f'md: the checkpoint in {workdir} belongs to a run with other settings or another structure; '
                'continue it with the same settings (only length_ps and the uncertainty watch may change) or remove it'
            )
        start_step = checkpoint['step']
        resumed_from = [*checkpoint['extra'].get('resumed_from', []), start_step]
        cut_back_outputs(workdir, start_step)
        atoms.set_cell(checkpoint['cell'], scale_atoms=False)
        atoms.set_positions(checkpoint['positions'], apply_constraint=False)
        atoms.set_momenta(checkpoint['momenta'], apply_constraint=False)
        rng.bit_generator.state = checkpoint['rng']
        dynamics = make_dynamics(atoms, settings, rng)
        restore_integrator_state(dynamics, checkpoint['integrator'])
        consecutive = int(checkpoint['extra'].get('consecutive_above_upper', 0))
    else:
        clear_outputs(workdir)
        start_step = 0
        MaxwellBoltzmannDistribution(atoms, temperature_K=settings['temperature_k'], rng=rng)
        Stationary(atoms)
        force_temperature(atoms, settings['temperature_k'], unit='K')
        dynamics = make_dynamics(atoms, settings, rng)
        consecutive = 0

    upper, lower = settings['force_deviation_upper'], settings['force_deviation_lower']
    temperature_limit = settings['max_temperature_factor'] * settings['temperature_k']
    timestep_ps = settings['timestep_fs'] / 1000
    handles: dict[str, Any] = {}

    def handle(name: pathlib.Path):
        key = str(name)
        if key not in handles:
            handles[key] = open(name, 'a')
        return handles[key]

    def close_chunks_before(chunk: int) -> None:
        for key in [key for key in handles if '/chunk_' in key and not key.endswith(f'chunk_{chunk:05d}.extxyz')]:
            handles.pop(key).close()

    def checkpoint(step: int) -> None:
        for open_handle in handles.values():
            open_handle.flush()
            os.fsync(open_handle.fileno())
        extra = {'fingerprint': fingerprint, 'resumed_from': resumed_from, 'consecutive_above_upper': consecutive}
        write_checkpoint(checkpoint_path, atoms, dynamics, rng, step, extra)

    stop_reason, step = 'completed', start_step
    samples = 0
    try:
        atoms.get_forces()  # the first evaluation (model warm-up) is set-up, not MD speed
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        while True:
            energy = float(atoms.get_potential_energy())
            forces = atoms.get_forces()
            if not (math.isfinite(energy) and np.all(np.isfinite(forces)) and np.all(np.isfinite(atoms.positions))):
                stop_reason = 'nan'
                break
            temperature = float(atoms.get_temperature())
            if temperature > temperature_limit:  # a runaway: the potential pumps energy in faster than the thermostat
                stop_reason = 'temperature'
                break
            fresh = step > start_step or start_step == 0  # the checkpoint's own step was recorded before the kill
            time_ps = step * timestep_ps
            if fresh and step % settings['thermo_interval'] == 0:
                record = {
                    'step': step,
                    'time_ps': time_ps,
                    'temperature_k': temperature,
                    'potential_energy_ev': energy,
                    'kinetic_energy_ev': float(atoms.get_kinetic_energy()),
                    'pressure_gpa': _pressure_gpa(atoms),
                    'volume_a3': float(atoms.get_volume()) if all(atoms.pbc) else None,
                }
                if hasattr(dynamics, 'get_conserved_energy'):
                    record['conserved_energy_ev'] = float(dynamics.get_conserved_energy())
                handle(workdir / THERMO).write(json.dumps(record) + '\n')
            if fresh and step % settings['trajectory_interval'] == 0:
                chunk = step // settings['trajectory_interval'] // settings['chunk_frames']
                close_chunks_before(chunk)
                path = workdir / TRAJECTORY_DIR / f'chunk_{chunk:05d}.extxyz'
                write_frame(handle(path), atoms, {'step': step, 'time_ps': time_ps, 'potential_energy_ev': energy})
            if fresh and others and step % settings['sample_interval'] == 0:
                deviation = committee_deviation(energy, atoms.get_forces(apply_constraint=False), others, atoms)
                samples += 1
                value = deviation['max_force_deviation']
                handle(workdir / COMMITTEE).write(
                    json.dumps(
                        {
                            'step': step,
                            'time_ps': time_ps,
                            'max_force_deviation': value,
                            'energy_std_per_atom': deviation['energy_std_per_atom'],
                        }
                    )
                    + '\n'
                )
                if not value < upper:
                    consecutive += 1
                    info = {'step': step, 'time_ps': time_ps, 'max_force_deviation': value}
                    write_frame(handle(workdir / FLAGGED), atoms, info, {'force_deviation': deviation['atomic']})
                else:
                    consecutive = 0
                if settings['on_uncertain'] == 'stop' and consecutive >= settings['uncertainty_patience']:
                    stop_reason = 'uncertainty'
                    break
            if fresh and step % settings['checkpoint_interval'] == 0 and step > start_step:
                checkpoint(step)
            elif step == 0 and start_step == 0:
                checkpoint(0)
            if step >= steps:
                break
            dynamics.step()
            dynamics.nsteps += 1
            step += 1
        if stop_reason not in PHYSICAL_STOPS:
            checkpoint(step)  # a run that blew up keeps its last good checkpoint
    finally:
        for open_handle in handles.values():
            open_handle.close()
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    summary = summarise(workdir, settings, lower, upper)
    done = step - start_step
    summary.update(
        {
            'stop_reason': stop_reason,
            'n_steps': step,
            'n_steps_requested': steps,
            'resumed_from': resumed_from,
            'fingerprint': fingerprint,
            'natoms': len(atoms),
            'committee_size': 1 + sum(_members_in(other) for other in others),
            'committee_samples_this_run': samples,
            'wall_time_s': wall,
            'cpu_time_s': cpu,
            'steps_per_second': done / wall if wall > 0 and done else None,
            'ns_per_day': done * settings['timestep_fs'] * 1e-6 / wall * 86400 if wall > 0 and done else None,
        }
    )
    write_json(finished, summary)
    return json.loads(finished.read_text())


def _members_in(calculator) -> int:
    models = getattr(calculator, 'models', None)
    return len(models) if models is not None else 1


def summarise(workdir: pathlib.Path, settings: Mapping[str, Any], lower: float, upper: float) -> dict:
    """Averages after equilibration from ``thermo.jsonl`` and the trust-level counts from ``committee.jsonl``."""
    from aiida_sianode.engines.committee import count_trust_levels

    thermo = read_jsonl(workdir / THERMO)
    production = [record for record in thermo if record['time_ps'] >= settings['equilibration_ps']] or thermo
    summary: dict[str, Any] = {'thermo_records': len(thermo)}
    for key in ('temperature_k', 'potential_energy_ev', 'pressure_gpa', 'volume_a3'):
        values = np.array([record[key] for record in production if record.get(key) is not None], dtype=float)
        summary[f'{key}_mean'] = float(values.mean()) if values.size else None
        summary[f'{key}_std'] = float(values.std()) if values.size else None
    samples = read_jsonl(workdir / COMMITTEE)
    deviations = [record['max_force_deviation'] for record in samples]
    counts = count_trust_levels(deviations, lower, upper)
    summary['committee_samples'] = counts['frames']
    summary['fraction_above_lower'] = counts['candidate_fraction'] + counts['failed_fraction'] if deviations else None
    summary['fraction_above_upper'] = counts['failed_fraction'] if deviations else None
    summary['max_force_deviation_max'] = float(np.max(deviations)) if deviations else None
    summary['max_force_deviation_mean'] = float(np.mean(deviations)) if deviations else None
    summary['flagged_steps'] = [record['step'] for record in samples if not record['max_force_deviation'] < upper]
    summary['trajectory_files'] = sorted(
        str(path.relative_to(workdir)) for path in (workdir / TRAJECTORY_DIR).glob('chunk_*.extxyz')
    )
    return summary


# --------------------------------------------------------------------------------------------------------------------
# the kernel contract


def run_member(structures: list, calculator, settings: dict, workdir: pathlib.Path) -> dict:
    """Production MD of ``structures[0]`` driven by this member, the committee watching at sampled frames."""
    from ase.data import atomic_masses

    validate_settings(settings, structures)
    merged = normalise_settings(settings)
    atoms = structures[0]
    summary = run_md(atoms, calculator, merged, pathlib.Path(workdir))
    natoms = summary['natoms']
    thermo = read_jsonl(pathlib.Path(workdir) / THERMO)
    time_ps = [record['time_ps'] for record in thermo]
    curves = {
        'temperature': {
            'x': time_ps,
            'y': [record['temperature_k'] for record in thermo],
            'x_label': 't (ps)',
            'y_label': 'T (K)',
        },
        'potential_energy': {
            'x': time_ps,
            'y': [record['potential_energy_ev'] / natoms for record in thermo],
            'x_label': 't (ps)',
            'y_label': 'E_pot (eV/atom)',
        },
    }
    if thermo and thermo[0].get('pressure_gpa') is not None:
        curves['pressure'] = {
            'x': time_ps,
            'y': [record['pressure_gpa'] for record in thermo],
            'x_label': 't (ps)',
            'y_label': 'P (GPa)',
        }
    if merged['ensemble'].startswith('npt'):
        curves['volume'] = {
            'x': time_ps,
            'y': [record['volume_a3'] / natoms for record in thermo],
            'x_label': 't (ps)',
            'y_label': 'V (Å^3/atom)',
        }
    samples = read_jsonl(pathlib.Path(workdir) / COMMITTEE)
    if samples:
        curves['max_force_deviation'] = {
            'x': [record['time_ps'] for record in samples],
            'y': [record['max_force_deviation'] for record in samples],
            'x_label': 't (ps)',
            'y_label': 'max force deviation (eV/Å)',
        }
    scalars = {
        'temperature_mean_k': summary['temperature_k_mean'],
        'temperature_std_k': summary['temperature_k_std'],
        'potential_energy_mean_ev_per_atom': _per_atom(summary['potential_energy_ev_mean'], natoms),
        'simulated_time_ps': summary['n_steps'] * merged['timestep_fs'] / 1000,
        'fraction_above_lower_trust': summary['fraction_above_lower'],
        'fraction_above_upper_trust': summary['fraction_above_upper'],
        'max_force_deviation_max_ev_a': summary['max_force_deviation_max'],
        'steps_per_second': summary['steps_per_second'],
        'ns_per_day': summary['ns_per_day'],
    }
    if summary['pressure_gpa_mean'] is not None:
        scalars['pressure_mean_gpa'] = summary['pressure_gpa_mean']
    if merged['ensemble'].startswith('npt') and summary['volume_a3_mean']:
        mass_g = float(atomic_masses[atoms.numbers].sum()) / 6.02214076e23
        scalars['volume_mean_a3_per_atom'] = summary['volume_a3_mean'] / natoms
        scalars['density_mean_g_cm3'] = mass_g / (summary['volume_a3_mean'] * 1e-24)
    extra = {key: summary[key] for key in ('stop_reason', 'n_steps', 'n_steps_requested', 'resumed_from')}
    extra.update(
        flagged_steps=summary['flagged_steps'],
        trajectory_files=summary['trajectory_files'],
        committee_size=summary['committee_size'],
        committee_samples=summary['committee_samples'],
        workdir=pathlib.Path(workdir).name,
    )
    return {'scalars': scalars, 'curves': curves, 'extra': extra}


def _per_atom(value: float | None, natoms: int) -> float | None:
    return None if value is None else value / natoms
