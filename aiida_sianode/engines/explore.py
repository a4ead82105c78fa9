"""Committee MD exploration: ASE molecular dynamics driven by one MACE committee member, watched by the committee.

Run as ``python -m aiida_sianode.engines.explore input.json`` in a working folder; no AiiDA. ``input.json``::

    {"structure": "structure.extxyz",            # one frame, extended XYZ
     "models": ["member_0.model", ...],          # torch.save'd mace models, >= 1
     "parameters": {"ensemble": "nvt_langevin", "temperature": 600, "steps": 2000, ...}}

One member (``driver_member``, the first by default) drives the MD; the whole committee is evaluated only at the
frames that are recorded, as DP-GEN does. With 3 members and a frame every 10 steps a step costs about 1.2 member
evaluations instead of 3 (``benchmarks/explore_speed.md``). ``driver: mean`` restores the older scheme, the committee
mean driving every step (every member evaluated at every step).

Every ``sample_interval`` steps (and at step 0, at the last step and at the step where a run breaks) the frame is
appended to ``frames.extxyz`` and flushed, with the committee mean energy/forces/stress and, in ``atoms.info``,
``step``, ``time_fs``, ``temperature`` (K), ``pressure_gpa``, ``volume`` (Å^3), ``max_force_deviation`` (eV/Å),
``energy_std_per_atom`` (eV/atom), ``target_temperature`` (K); ``arrays['force_deviation']`` holds the per-atom
deviation. A killed run therefore still leaves every frame sampled so far. The physical checks below run every step
on the driving calculator's energy and forces.

The run stops early, keeping its frames, when

* ``uncertainty``: the max force deviation is ``>= force_deviation_upper`` for ``uncertainty_patience`` consecutive
  samples (the uncertainty criterion of DP-GEN);
* ``min_distance``: two atoms are closer than ``min_distance`` Å (checked every step);
* ``nan``: the energy, the forces or the positions are not finite (every step);
* ``temperature``: the instantaneous temperature exceeds ``max_temperature_factor`` times the highest target
  temperature (every step).

Otherwise ``stop_reason`` is ``completed``. ``results.json`` holds ``status`` (``ok`` for ``completed`` and
``uncertainty``; the stop reason for a physically broken run; ``error`` when an exception ended the run,
``invalid_input`` when the inputs were refused), the counts and the speed in steps/s.
"""

from __future__ import annotations

import json
import math
import pathlib
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from aiida_sianode.campaign_spec import default_trust_levels
from aiida_sianode.engines.once import once
from aiida_sianode.structures.common import minimum_distance

#: the ensembles and the ASE integrator behind each
ENSEMBLES = {
    'nvt_langevin': 'ase.md.langevin.Langevin',
    'nvt_nose_hoover': 'ase.md.nose_hoover_chain.NoseHooverChainNVT',
    'nvt_bussi': 'ase.md.bussi.Bussi',
    'npt_isotropic': 'ase.md.nose_hoover_chain.IsotropicMTKNPT',
    'npt_anisotropic': 'ase.md.nose_hoover_chain.MTKNPT',
}
#: short names accepted for ``ensemble``
ENSEMBLE_ALIASES = {'nvt': 'nvt_langevin', 'npt': 'npt_isotropic'}
#: every ``stop_reason`` the engine writes
#: stop reasons of a physically broken run
PHYSICAL_STOPS = ('min_distance', 'nan', 'temperature')
#: largest pressure magnitude accepted (GPa; 10 GPa = 100 kbar)
MAX_PRESSURE_GPA = 10.0

FRAMES_FILENAME = 'frames.extxyz'
RESULTS_FILENAME = 'results.json'

#: the default trust levels (eV/Å): the campaign protocol's, one source for every layer
_LOWER_TRUST, _UPPER_TRUST = default_trust_levels()

#: every parameter with its default (``None``: derived from other parameters, see :func:`validate_parameters`)
DEFAULT_PARAMETERS: dict[str, Any] = {
    'ensemble': 'nvt_langevin',
    'temperature': 300.0,  # K, target at step 0
    'temperature_end': None,  # K, target at the last step (linear ramp); None: no ramp
    'pressure_gpa': 0.0,  # GPa, NPT only
    'timestep_fs': 1.0,
    'steps': 1000,
    'sample_interval': 10,
    'seed': 0,  # initial Maxwell-Boltzmann velocities and the thermostat's noise
    'friction_per_fs': 0.01,  # Langevin friction, 1/fs
    'thermostat_time_fs': None,  # Nose-Hoover chain / Bussi time constant; None: 100 timesteps
    'barostat_time_fs': None,  # MTK barostat time constant; None: 1000 timesteps
    'force_deviation_lower': _LOWER_TRUST,  # eV/Å, only for the counts in results.json
    'force_deviation_upper': _UPPER_TRUST,  # eV/Å, the early-stop threshold
    'uncertainty_patience': 3,  # consecutive samples >= upper before stopping
    'min_distance': 0.5,  # Å
    'max_temperature_factor': 5.0,
    'dtype': 'float64',
    'device': 'cpu',
    'driver': 'member',  # 'member': one member drives, the committee only at recorded frames; 'mean': the mean drives
    'driver_member': 0,  # index of the driving member in the committee (driver 'member')
}
#: accepted values of ``driver``
DRIVERS = ('member', 'mean')


class InvalidInputError(ValueError):
    """Raised for parameters or structures the engine refuses before any MD step."""


def normalise_ensemble(name: str) -> str:
    """Return the canonical ensemble name for ``name`` (``nvt`` -> ``nvt_langevin``, ``npt`` -> ``npt_isotropic``).

    :raises InvalidInputError: for an unknown ensemble.
    """
    if not isinstance(name, str):
        raise InvalidInputError(f'ensemble must be a string, got {name!r}')
    canonical = ENSEMBLE_ALIASES.get(name.lower(), name.lower())
    if canonical not in ENSEMBLES:
        known = ', '.join([*ENSEMBLES, *ENSEMBLE_ALIASES])
        raise InvalidInputError(f'unknown ensemble `{name}`; choose one of: {known}')
    return canonical


def _number(params: dict, key: str, *, integer: bool = False) -> float | int:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f'`{key}` must be a finite number, got {value!r}')
    if integer:
        if int(value) != value:
            raise InvalidInputError(f'`{key}` must be an integer, got {value!r}')
        return int(value)
    return float(value)


def validate_parameters(parameters: Mapping[str, Any] | None, *, pbc: Sequence[bool] | None = None) -> dict:
    """Return ``parameters`` merged over :data:`DEFAULT_PARAMETERS`, checked and with derived values filled in.

    :param pbc: the structure's periodicity; NPT needs a cell periodic in all three directions.
    :raises InvalidInputError: naming the first problem (unknown key, unknown ensemble, temperature <= 0, pressure
        beyond 10 GPa, pressure given to an NVT ensemble, non-positive timestep, ...).
    """
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(DEFAULT_PARAMETERS))
    if unknown:
        raise InvalidInputError(
            f'unknown parameter(s): {", ".join(unknown)}; known parameters: {", ".join(DEFAULT_PARAMETERS)}'
        )
    params = {**DEFAULT_PARAMETERS, **parameters}
    params['ensemble'] = normalise_ensemble(params['ensemble'])
    npt = params['ensemble'].startswith('npt')

    params['temperature'] = _number(params, 'temperature')
    if params['temperature_end'] is None:
        params['temperature_end'] = params['temperature']
    params['temperature_end'] = _number(params, 'temperature_end')
    for key in ('temperature', 'temperature_end'):
        if not 0 < params[key] <= 20000:
            raise InvalidInputError(f'`{key}` must be in (0, 20000] K, got {params[key]}')

    params['pressure_gpa'] = _number(params, 'pressure_gpa')
    if abs(params['pressure_gpa']) > MAX_PRESSURE_GPA:
        raise InvalidInputError(
            f'`pressure_gpa` must be within +-{MAX_PRESSURE_GPA} GPa (100 kbar), got {params["pressure_gpa"]} GPa'
        )
    if not npt and params['pressure_gpa'] != 0:
        raise InvalidInputError(
            f'`pressure_gpa` = {params["pressure_gpa"]} was given to the constant-volume ensemble '
            f'`{params["ensemble"]}`; use npt_isotropic or npt_anisotropic'
        )

    params['timestep_fs'] = _number(params, 'timestep_fs')
    if not 0 < params['timestep_fs'] <= 50:
        raise InvalidInputError(f'`timestep_fs` must be in (0, 50] fs, got {params["timestep_fs"]}')
    params['steps'] = _number(params, 'steps', integer=True)
    if params['steps'] < 0:
        raise InvalidInputError(f'`steps` must be >= 0, got {params["steps"]}')
    params['sample_interval'] = _number(params, 'sample_interval', integer=True)
    if params['sample_interval'] < 1:
        raise InvalidInputError(f'`sample_interval` must be >= 1, got {params["sample_interval"]}')
    params['seed'] = _number(params, 'seed', integer=True)
    if params['seed'] < 0:
        raise InvalidInputError(f'`seed` must be >= 0, got {params["seed"]}')
    params['friction_per_fs'] = _number(params, 'friction_per_fs')
    if params['friction_per_fs'] <= 0:
        raise InvalidInputError(f'`friction_per_fs` must be > 0, got {params["friction_per_fs"]}')
    for key, factor in (('thermostat_time_fs', 100), ('barostat_time_fs', 1000)):
        if params[key] is None:
            params[key] = factor * params['timestep_fs']
        params[key] = _number(params, key)
        if params[key] <= params['timestep_fs']:
            raise InvalidInputError(f'`{key}` must be longer than the timestep, got {params[key]} fs')

    params['force_deviation_lower'] = _number(params, 'force_deviation_lower')
    params['force_deviation_upper'] = _number(params, 'force_deviation_upper')
    if not 0 <= params['force_deviation_lower'] < params['force_deviation_upper']:
        raise InvalidInputError(
            'trust levels must satisfy 0 <= force_deviation_lower < force_deviation_upper, got '
            f'{params["force_deviation_lower"]} and {params["force_deviation_upper"]} eV/Å'
        )
    params['uncertainty_patience'] = _number(params, 'uncertainty_patience', integer=True)
    if params['uncertainty_patience'] < 1:
        raise InvalidInputError(f'`uncertainty_patience` must be >= 1, got {params["uncertainty_patience"]}')
    params['min_distance'] = _number(params, 'min_distance')
    if params['min_distance'] < 0:
        raise InvalidInputError(f'`min_distance` must be >= 0 Å, got {params["min_distance"]}')
    params['max_temperature_factor'] = _number(params, 'max_temperature_factor')
    if params['max_temperature_factor'] <= 1:
        raise InvalidInputError(f'`max_temperature_factor` must be > 1, got {params["max_temperature_factor"]}')
    if params['dtype'] not in ('float32', 'float64'):
        raise InvalidInputError(f'`dtype` must be float32 or float64, got {params["dtype"]!r}')
    if not isinstance(params['device'], str) or not params['device']:
        raise InvalidInputError(f'`device` must be a torch device name such as cpu or cuda, got {params["device"]!r}')
    if params['driver'] not in DRIVERS:
        raise InvalidInputError(f'`driver` must be one of {", ".join(DRIVERS)}, got {params["driver"]!r}')
    params['driver_member'] = _number(params, 'driver_member', integer=True)
    if params['driver_member'] < 0:
        raise InvalidInputError(f'`driver_member` must be >= 0, got {params["driver_member"]}')

    if npt and pbc is not None and not all(bool(flag) for flag in pbc):
        raise InvalidInputError(f'the ensemble `{params["ensemble"]}` needs a cell periodic in x, y and z')
    return params


def target_temperature(params: Mapping[str, Any], step: int) -> float:
    """Return the target temperature (K) at ``step`` of the linear ramp from ``temperature`` to ``temperature_end``."""
    start, end, steps = params['temperature'], params['temperature_end'], params['steps']
    if steps == 0 or start == end:
        return float(start)
    return float(start + (end - start) * min(step, steps) / steps)


def hold_centre_of_mass(atoms) -> None:
    """Add ASE's ``FixCom`` constraint (once): ASE 3.28+ deprecates Langevin's own ``fixcm`` in its favour."""
    from ase.constraints import FixCom

    if not any(isinstance(constraint, FixCom) for constraint in atoms.constraints):
        atoms.set_constraint([*atoms.constraints, FixCom()])


def make_dynamics(atoms, params: Mapping[str, Any], rng: np.random.Generator):
    """Return the ASE integrator of ``params['ensemble']`` for ``atoms`` (calculator and velocities already set)."""
    from ase import units
    from ase.md.bussi import Bussi
    from ase.md.langevin import Langevin
    from ase.md.nose_hoover_chain import MTKNPT, IsotropicMTKNPT, NoseHooverChainNVT

    ensemble = params['ensemble']
    timestep = params['timestep_fs'] * units.fs
    temperature = params['temperature']
    tdamp = params['thermostat_time_fs'] * units.fs
    if ensemble == 'nvt_langevin':
        hold_centre_of_mass(atoms)
        friction = params['friction_per_fs'] / units.fs
        return Langevin(atoms, timestep, temperature_K=temperature, friction=friction, fixcm=False, rng=rng)
    if ensemble == 'nvt_nose_hoover':
        return NoseHooverChainNVT(atoms, timestep, temperature_K=temperature, tdamp=tdamp)
    if ensemble == 'nvt_bussi':
        return Bussi(atoms, timestep, temperature_K=temperature, taut=tdamp, rng=rng)
    # ASE's MTK integrators refuse any constraint; they keep the total momentum themselves, so a centre-of-mass
    # constraint left by an earlier Langevin stage (a quench before an NPT anneal) is dropped, not refused
    from ase.constraints import FixCom

    atoms.set_constraint([constraint for constraint in atoms.constraints if not isinstance(constraint, FixCom)])
    pressure = params['pressure_gpa'] * units.GPa
    pdamp = params['barostat_time_fs'] * units.fs
    barostat = {'temperature_K': temperature, 'pressure_au': pressure, 'tdamp': tdamp, 'pdamp': pdamp}
    if ensemble == 'npt_isotropic':
        return IsotropicMTKNPT(atoms, timestep, **barostat)
    if ensemble == 'npt_anisotropic':
        return MTKNPT(atoms, timestep, **barostat)
    raise InvalidInputError(f'unknown ensemble `{ensemble}`')


def set_target_temperature(dynamics, temperature: float) -> None:
    """Move the thermostat target of ``dynamics`` to ``temperature`` (K), keeping its state (for ramps).

    Langevin uses its public ``set_temperature``. ASE 3.29's Bussi and Nosé-Hoover-chain / MTK integrators have no
    setter: their target ``kT`` is updated in place while the thermostat and barostat masses, set from the initial
    temperature, are kept, so a ramp changes the target and not the coupling.
    """
    from ase import units
    from ase.md.bussi import Bussi
    from ase.md.langevin import Langevin

    kT = units.kB * temperature
    if isinstance(dynamics, Langevin):
        dynamics.set_temperature(temperature_K=temperature)
    elif isinstance(dynamics, Bussi):
        dynamics.temp = kT
        dynamics.target_kinetic_energy = 0.5 * kT * dynamics.ndof
    else:
        for part in (dynamics, getattr(dynamics, '_thermostat', None), getattr(dynamics, '_barostat', None)):
            if part is not None and hasattr(part, '_kT'):
                part._kT = kT
        if hasattr(dynamics, '_temperature_K'):
            dynamics._temperature_K = temperature


def check_physical(atoms, energy: float, forces: np.ndarray, params: Mapping[str, Any]) -> tuple[str | None, str]:
    """Return ``(stop_reason, message)`` when the frame is physically broken, ``(None, '')`` otherwise.

    Checks, in order: finite energy, forces and positions (``nan``); the temperature limit (``temperature``);
    the distance floor (``min_distance``).
    """
    positions = atoms.get_positions()
    if not (math.isfinite(energy) and np.all(np.isfinite(forces)) and np.all(np.isfinite(positions))):
        return 'nan', 'the energy, the forces or the positions are not finite'
    temperature = atoms.get_temperature()
    limit = params['max_temperature_factor'] * max(params['temperature'], params['temperature_end'])
    if not math.isfinite(temperature) or temperature > limit:
        return 'temperature', f'the temperature reached {temperature:.1f} K, above the limit of {limit:.1f} K'
    distance = minimum_distance(atoms, params['min_distance']) if params['min_distance'] > 0 else math.inf
    if distance < params['min_distance']:
        return 'min_distance', f'two atoms came {distance:.3f} Å apart, closer than {params["min_distance"]} Å'
    return None, ''


class UncertaintyMonitor:
    """Counts consecutive samples whose max force deviation is at or above the upper trust level."""

    def __init__(self, upper: float, patience: int):
        """Stop after ``patience`` consecutive samples with a deviation ``>= upper`` (eV/Å); NaN counts as above."""
        if patience < 1:
            raise ValueError(f'patience must be >= 1, got {patience}')
        self.upper = upper
        self.patience = patience
        self.consecutive = 0

    def update(self, deviation: float) -> bool:
        """Record one sample's max force deviation; return ``True`` when the run should stop."""
        self.consecutive = 0 if deviation < self.upper else self.consecutive + 1
        return self.consecutive >= self.patience


def member_values(results: Mapping[str, Any], natoms: int, *, stress: bool):
    """Return per-member energies ``(k,)`` (eV), forces ``(k, natoms, 3)`` (eV/Å) and Voigt stresses ``(k, 6)``
    (eV/Å^3; ``None`` unless ``stress``) from the ``results`` of a mace calculator over one model or several."""
    from ase.stress import full_3x3_to_voigt_6_stress

    if 'forces_comm' in results:
        energies = np.asarray(results['energy_comm'], dtype=float).ravel()
        forces = np.asarray(results['forces_comm'], dtype=float).reshape(-1, natoms, 3)
        stresses = None
        if stress:
            raw = np.asarray(results['stress_comm'], dtype=float).reshape(len(energies), -1)
            stresses = raw if raw.shape[1] == 6 else full_3x3_to_voigt_6_stress(raw.reshape(-1, 3, 3))
        return energies, forces, stresses
    energies = np.array([float(results['energy'])])
    forces = np.asarray(results['forces'], dtype=float).reshape(1, natoms, 3)
    stresses = np.asarray(results['stress'], dtype=float).reshape(1, 6) if stress else None
    return energies, forces, stresses


def evaluate_committee(atoms, driver, others) -> dict:
    """Return the whole committee at the frame ``atoms``: the driving calculator's results for this frame (already
    computed by the MD step) joined with those of ``others`` (a mace calculator over the remaining members, evaluated
    here; ``None`` when the driver is the whole committee).

    Keys: ``energy`` (eV), ``forces`` (eV/Å) and ``stress`` (Voigt, eV/Å^3; ``None`` unless the cell is periodic in
    x, y and z): the committee means; ``energies`` (per member), ``atomic_force_deviation``, ``max_force_deviation``
    (eV/Å), ``energy_std_per_atom`` (eV/atom), ``n_members``.
    """
    from aiida_sianode.engines.committee import atomic_force_deviation, energy_deviation_per_atom

    natoms = len(atoms)
    periodic = bool(atoms.pbc.all())
    if periodic:
        atoms.get_stress()  # mace computes it with the forces: this reads the driver's cached result
    energies, forces, stresses = member_values(driver.results, natoms, stress=periodic)
    if others is not None:
        frame = atoms.copy()
        frame.calc = others
        frame.get_potential_energy()
        more = member_values(others.results, natoms, stress=periodic)
        energies = np.concatenate([energies, more[0]])
        forces = np.concatenate([forces, more[1]])
        stresses = np.concatenate([stresses, more[2]]) if periodic else None
    atomic = atomic_force_deviation(forces)
    return {
        'energy': float(energies.mean()),
        'forces': forces.mean(axis=0),
        'stress': stresses.mean(axis=0) if stresses is not None else None,
        'energies': energies,
        'atomic_force_deviation': atomic,
        'max_force_deviation': float(atomic.max()),
        'energy_std_per_atom': energy_deviation_per_atom(energies, natoms),
        'n_members': len(energies),
    }


def load_driver_and_others(model_paths: Sequence, params: Mapping[str, Any]):
    """Return ``(driver, others)``: the calculator that drives the MD and one over the remaining members (``None``
    when the driver is the whole committee: ``driver: mean``, or a committee of one).

    :raises InvalidInputError: ``driver_member`` outside the committee, or a committee that cannot be loaded.
    """
    from aiida_sianode.engines.committee import load_committee_calculator

    model_paths = list(model_paths)
    index = params['driver_member']
    if params['driver'] == 'member' and index >= len(model_paths):
        raise InvalidInputError(f'`driver_member` is {index}, but the committee has {len(model_paths)} member(s)')
    load = {'device': params['device'], 'default_dtype': params['dtype']}
    try:
        if params['driver'] == 'mean' or len(model_paths) == 1:
            return load_committee_calculator(model_paths, **load), None
        others = [path for position, path in enumerate(model_paths) if position != index]
        return load_committee_calculator([model_paths[index]], **load), load_committee_calculator(others, **load)
    except (ValueError, OSError, RuntimeError) as exception:
        raise InvalidInputError(f'cannot load the committee: {exception}') from exception


def _pressure_gpa(atoms) -> float:
    from ase import units

    if not atoms.pbc.all():
        return math.nan
    stress = atoms.get_stress(voigt=False, include_ideal_gas=True)
    return float(-np.trace(stress) / 3 / units.GPa)


class FrameWriter:
    """Appends sampled frames to an extended XYZ file, flushed after every frame."""

    def __init__(self, path: str | pathlib.Path):
        """Open ``path`` for writing (truncating an old file)."""
        self.path = pathlib.Path(path)
        self._handle = self.path.open('w')
        self.count = 0

    def write(self, atoms, *, energy: float, forces, stress, info: dict, atomic_deviation) -> None:
        """Write one frame with its committee-mean energy/forces/stress, ``info`` and per-atom deviation."""
        from ase.calculators.singlepoint import SinglePointCalculator
        from ase.io import write

        frame = atoms.copy()
        frame.info = {key: value for key, value in info.items()}
        frame.arrays.pop('momenta', None)
        frame.set_array('force_deviation', np.asarray(atomic_deviation, dtype=float))
        results = {'energy': energy, 'forces': np.asarray(forces, dtype=float)}
        if stress is not None and np.all(np.isfinite(stress)):
            results['stress'] = np.asarray(stress, dtype=float)
        frame.calc = SinglePointCalculator(frame, **results)
        write(self._handle, frame, format='extxyz')
        self._handle.flush()
        self.count += 1

    def close(self) -> None:
        """Close the file."""
        self._handle.close()


def run_exploration(atoms, model_paths, parameters: Mapping[str, Any], directory: str | pathlib.Path = '.') -> dict:
    """Run one committee MD exploration of ``atoms`` and return the results (also written to ``results.json``).

    :param atoms: the starting ``ase.Atoms`` (not modified).
    :param model_paths: the committee's model files (>= 1).
    :param parameters: see :data:`DEFAULT_PARAMETERS`; validated by :func:`validate_parameters`.
    :param directory: where ``frames.extxyz`` and ``results.json`` are written.
    :raises InvalidInputError: before any MD step, for bad parameters, models or structure.
    """
    from ase.md.velocitydistribution import (
        MaxwellBoltzmannDistribution,
        Stationary,
        ZeroRotation,
        force_temperature,
    )

    from aiida_sianode.engines.committee import count_trust_levels

    directory = pathlib.Path(directory)
    params = validate_parameters(parameters, pbc=atoms.pbc)
    if len(atoms) == 0:
        raise InvalidInputError('the structure has no atoms')
    if atoms.pbc.any() and atoms.cell.rank < 3:
        raise InvalidInputError('a periodic structure needs a full 3D cell')
    setup_start = time.perf_counter()
    calculator, others = load_driver_and_others(model_paths, params)
    model_numbers = {int(z) for z in np.asarray(calculator.z_table.zs)}
    if others is not None:
        model_numbers &= {int(z) for z in np.asarray(others.z_table.zs)}
    missing = sorted({int(z) for z in atoms.numbers} - model_numbers)
    if missing:
        from ase.data import chemical_symbols

        raise InvalidInputError(
            f'the committee has no parameters for element(s) {", ".join(chemical_symbols[z] for z in missing)}'
        )

    atoms = atoms.copy()
    atoms.calc = calculator
    rng = np.random.default_rng(params['seed'])
    if params['ensemble'] == 'nvt_langevin':
        hold_centre_of_mass(atoms)  # before the velocities, so the start temperature counts the right freedoms
    MaxwellBoltzmannDistribution(atoms, temperature_K=params['temperature'], rng=rng)
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    if len(atoms) > 1:  # start exactly at the target (ASE's 3N convention)
        force_temperature(atoms, params['temperature'], unit='K')
    dynamics = make_dynamics(atoms, params, rng)
    ramp = params['temperature'] != params['temperature_end']
    upper, lower = params['force_deviation_upper'], params['force_deviation_lower']
    patience = params['uncertainty_patience']
    initial_volume = float(atoms.get_volume()) if atoms.pbc.all() else math.nan

    writer = FrameWriter(directory / FRAMES_FILENAME)
    stop_reason, message = 'completed', f'ran all {params["steps"]} steps'
    deviations: list[float] = []
    monitor = UncertaintyMonitor(upper, patience)
    step = 0
    committee_evaluations = 0
    try:
        atoms.get_forces()  # the first evaluation (model warm-up) counts as set-up, not as MD speed
        if others is not None:
            evaluate_committee(atoms, calculator, others)
    except Exception:
        writer.close()
        raise
    setup_time = time.perf_counter() - setup_start
    start = time.perf_counter()
    cpu_start = time.process_time()
    try:
        while True:
            energy = float(atoms.get_potential_energy())
            forces = atoms.get_forces()
            broken, broken_message = check_physical(atoms, energy, forces, params)
            regular = step % params['sample_interval'] == 0
            if regular or broken or step == params['steps']:
                if broken == 'nan':  # nothing to evaluate the other members on; the frame is kept as it is
                    committee = {
                        'energy': energy,
                        'forces': forces,
                        'stress': None,
                        'atomic_force_deviation': np.full(len(atoms), math.nan),
                        'max_force_deviation': math.nan,
                        'energy_std_per_atom': math.nan,
                    }
                else:
                    committee = evaluate_committee(atoms, calculator, others)
                    committee_evaluations += 1
                info = {
                    'step': step,
                    'time_fs': step * params['timestep_fs'],
                    'temperature': float(atoms.get_temperature()),
                    'target_temperature': target_temperature(params, step),
                    'pressure_gpa': _pressure_gpa(atoms) if broken != 'nan' else math.nan,
                    'volume': float(atoms.get_volume()) if atoms.pbc.all() else math.nan,
                    'max_force_deviation': committee['max_force_deviation'],
                    'energy_std_per_atom': committee['energy_std_per_atom'],
                }
                writer.write(
                    atoms,
                    energy=committee['energy'],
                    forces=committee['forces'],
                    stress=committee['stress'],
                    info=info,
                    atomic_deviation=committee['atomic_force_deviation'],
                )
                deviations.append(committee['max_force_deviation'])
                if broken is None and regular:
                    deviation = committee['max_force_deviation']
                    if monitor.update(deviation):
                        stop_reason = 'uncertainty'
                        message = (
                            f'the max force deviation was >= {upper} eV/Å for {patience} consecutive samples '
                            f'(last {deviation:.4f} eV/Å at step {step})'
                        )
                        break
            if broken is not None:
                stop_reason, message = broken, f'{broken_message} at step {step}'
                break
            if step >= params['steps']:
                break
            step += 1
            if ramp:
                set_target_temperature(dynamics, target_temperature(params, step))
            dynamics.step()
            dynamics.nsteps += 1
    finally:
        writer.close()
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    counts = count_trust_levels(deviations, lower, upper)
    results = {
        'status': 'ok' if stop_reason in ('completed', 'uncertainty') else stop_reason,
        'stop_reason': stop_reason,
        'message': message,
        'ensemble': params['ensemble'],
        'parameters': params,
        'natoms': len(atoms),
        'n_members': len(list(model_paths)),
        'driver': params['driver'] if others is not None else 'mean',
        'driver_member': params['driver_member'] if others is not None else None,
        'committee_evaluations': committee_evaluations,
        'n_steps': step,
        'n_steps_requested': params['steps'],
        'stop_step': step,
        'stop_time_fs': step * params['timestep_fs'],
        **counts,
        'max_force_deviation_max': float(np.nanmax(deviations)) if deviations else math.nan,
        'max_force_deviation_mean': float(np.nanmean(deviations)) if deviations else math.nan,
        'initial_volume': initial_volume,
        'final_volume': float(atoms.get_volume()) if atoms.pbc.all() else math.nan,
        'setup_time_s': setup_time,
        'wall_time_s': wall,
        'steps_per_second': step / wall if wall > 0 and step else 0.0,
        # CPU time of this process: on a shared machine ``steps / cpu_time_s`` estimates the speed on an idle one
        'cpu_time_s': cpu,
        'steps_per_cpu_second': step / cpu if cpu > 0 and step else 0.0,
        'ns_per_day': step * params['timestep_fs'] * 1e-6 / wall * 86400 if wall > 0 and step else 0.0,
        'units': {'time': 'fs', 'temperature': 'K', 'pressure': 'GPa', 'volume': 'Å^3', 'deviation': 'eV/Å'},
    }
    write_results(directory / RESULTS_FILENAME, results)
    return results


def write_results(path: str | pathlib.Path, results: dict) -> None:
    """Write ``results`` as JSON (NaN and infinities as ``null``)."""

    def clean(value):
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [clean(item) for item in value]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    pathlib.Path(path).write_text(json.dumps(clean(results), indent=2, allow_nan=False))


def read_input(path: str | pathlib.Path) -> tuple[Any, list[pathlib.Path], dict]:
    """Read ``input.json``; return ``(atoms, model_paths, parameters)`` with paths relative to its folder.

    :raises InvalidInputError: for a missing key or an unreadable structure file.
    """
    from ase.io import read

    path = pathlib.Path(path)
    data = json.loads(path.read_text())
    unknown = sorted(set(data) - {'structure', 'models', 'parameters'})
    if unknown:
        raise InvalidInputError(f'unknown key(s) in {path.name}: {", ".join(unknown)}')
    for key in ('structure', 'models'):
        if key not in data:
            raise InvalidInputError(f'{path.name} has no `{key}`')
    base = path.parent
    try:
        atoms = read(base / data['structure'], index=0, format='extxyz')
    except Exception as exception:
        raise InvalidInputError(f'cannot read the structure {data["structure"]}: {exception}') from exception
    models = [base / model for model in data['models']]
    return atoms, models, data.get('parameters', {})


@once(RESULTS_FILENAME, 'explore')
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: ``python -m aiida_sianode.engines.explore input.json``; returns the exit status."""
    import os

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print('usage: python -m aiida_sianode.engines.explore input.json', file=sys.stderr)
        return 2
    input_path = pathlib.Path(argv[0])
    directory = input_path.parent
    threads = int(os.environ.get('OMP_NUM_THREADS', '0') or 0)
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    try:
        atoms, models, parameters = read_input(input_path)
        results = run_exploration(atoms, models, parameters, directory)
    except InvalidInputError as exception:
        write_results(directory / RESULTS_FILENAME, {'status': 'invalid_input', 'message': str(exception)})
        print(f'invalid input: {exception}', file=sys.stderr)
        return 1
    except Exception as exception:
        frames = directory / FRAMES_FILENAME
        write_results(
            directory / RESULTS_FILENAME,
            {
                'status': 'error',
                'stop_reason': 'error',
                'message': f'{type(exception).__name__}: {exception}',
                'traceback': traceback.format_exc(),
                'frames_written': frames.exists(),
            },
        )
        traceback.print_exc()
        return 1
    print(
        f'stop reason: {results["stop_reason"]} ({results["message"]}); {results["frames"]} frames, '
        f'{results["n_steps"]} steps at {results["steps_per_second"]:.2f} steps/s'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
