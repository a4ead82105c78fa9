"""The committee MD engine: parameters, thermostat ramps, stop rules, frames on disk, NPT, the command line."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read

from aiida_sianode.engines import explore as engine
from aiida_sianode.engines.committee import save_untrained_mace


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """Untrained Si models: ``disagree`` (three seeds), ``twins`` (one model twice), ``zbl`` (two seeds with ZBL
    pair repulsion, so that a cell resists compression)."""
    directory = tmp_path_factory.mktemp('explore-models')
    small = {'num_channels': 8, 'max_L': 0, 'r_max': 4.0, 'num_interactions': 1}
    disagree = [save_untrained_mace(directory / f'seed{seed}.model', [14], seed=seed, **small) for seed in range(3)]
    twin = directory / 'seed0_copy.model'
    shutil.copy(disagree[0], twin)
    zbl = [
        save_untrained_mace(directory / f'zbl{seed}.model', [14], seed=seed, pair_repulsion=True, **small)
        for seed in range(2)
    ]
    return {'disagree': disagree, 'twins': [disagree[0], twin], 'zbl': zbl}


def silicon(rattle: float = 0.05) -> Atoms:
    """The 8-atom conventional cell of diamond Si, rattled so that forces are not zero by symmetry."""
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    if rattle:
        atoms.rattle(rattle, seed=7)
    return atoms


# ----------------------------------------------------------------------------------------------------- parameters


def test_parameters_defaults_and_aliases():
    """Defaults fill in; nvt/npt are aliases; thermostat and barostat times default to 100 and 1000 timesteps."""
    params = engine.validate_parameters({'ensemble': 'npt', 'timestep_fs': 2.0, 'pressure_gpa': 10.0})
    assert params['ensemble'] == 'npt_isotropic'
    assert params['thermostat_time_fs'] == 200.0
    assert params['barostat_time_fs'] == 2000.0
    assert params['temperature_end'] == params['temperature'] == 300.0
    assert engine.validate_parameters({'ensemble': 'nvt'})['ensemble'] == 'nvt_langevin'


@pytest.mark.parametrize(
    ('parameters', 'match'),
    [
        ({'temprature': 300}, 'unknown parameter.*temprature'),
        ({'ensemble': 'nve'}, 'unknown ensemble `nve`'),
        ({'temperature': 0}, r'`temperature` must be in \(0, 20000\]'),
        ({'temperature': 300, 'temperature_end': -5}, '`temperature_end`'),
        ({'ensemble': 'npt_isotropic', 'pressure_gpa': 10.5}, r'10.0 GPa \(100 kbar\)'),
        ({'ensemble': 'nvt_langevin', 'pressure_gpa': 1.0}, 'constant-volume'),
        ({'timestep_fs': 0}, '`timestep_fs`'),
        ({'steps': 10.5}, '`steps` must be an integer'),
        ({'sample_interval': 0}, '`sample_interval` must be >= 1'),
        ({'force_deviation_lower': 0.3, 'force_deviation_upper': 0.2}, 'force_deviation_lower < force_deviation_upper'),
        ({'uncertainty_patience': 0}, '`uncertainty_patience`'),
        ({'temperature': 'hot'}, '`temperature` must be a finite number'),
        ({'dtype': 'float16'}, 'float32 or float64'),
    ],
)
def test_parameters_refused(parameters, match):
    """Bad parameters are refused with a message naming the problem."""
    with pytest.raises(engine.InvalidInputError, match=match):
        engine.validate_parameters(parameters)


def test_npt_needs_periodic_cell():
    """An NPT ensemble on a molecule is refused."""
    with pytest.raises(engine.InvalidInputError, match='periodic in x, y and z'):
        engine.validate_parameters({'ensemble': 'npt_anisotropic'}, pbc=[True, True, False])


def test_temperature_ramp_targets():
    """The target goes linearly from temperature to temperature_end over the steps."""
    params = engine.validate_parameters({'temperature': 300, 'temperature_end': 900, 'steps': 100})
    assert [engine.target_temperature(params, step) for step in (0, 50, 100, 150)] == [300, 600, 900, 900]


# ---------------------------------------------------------------------------------------------- integrators (EMT)


def _mean_temperature(dynamics, atoms, warm_up: int, steps: int) -> float:
    """Run ``warm_up`` steps, then return the mean temperature (K) over ``steps`` more."""
    dynamics.run(warm_up)
    temperatures = []
    for _ in range(steps):
        dynamics.run(1)
        temperatures.append(atoms.get_temperature())
    return float(np.mean(temperatures))


def _copper(repeat: int, lattice_constant: float = 3.61, temperature: float = 300.0, seed: int = 1):
    """An fcc Cu supercell with EMT and Maxwell-Boltzmann velocities at ``temperature``."""
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    atoms = bulk('Cu', 'fcc', a=lattice_constant, cubic=True) * (repeat, repeat, repeat)
    atoms.calc = EMT()
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, force_temp=True, rng=np.random.default_rng(seed))
    return atoms


@pytest.mark.parametrize('ensemble', list(engine.ENSEMBLES))
def test_thermostats_hold_their_target(ensemble):
    """Every integrator holds EMT copper (32 atoms) at 300 K, then, its target raised, at 1500 K: the mean
    temperature is within 10 % of the target under NVT and 15 % under NPT.

    One sample's kinetic temperature scatters by sqrt(2 / 3N) = 15 % for 32 atoms; 200 samples over 800 fs, 20
    thermostat times, bring the error of the mean to about 3 %. Measured (seeds 1 and 2, 4 fs steps): 293-306 K and
    1411-1542 K."""
    atoms = _copper(2)
    params = engine.validate_parameters(
        {
            'ensemble': ensemble,
            'temperature': 300,
            'timestep_fs': 4.0,
            'thermostat_time_fs': 40.0,
            'barostat_time_fs': 400.0,
            'friction_per_fs': 0.05,
        }
    )
    rng = np.random.default_rng(1)
    dynamics = engine.make_dynamics(atoms, params, rng)
    assert type(dynamics).__name__ == engine.ENSEMBLES[ensemble].rsplit('.', 1)[1]
    tolerance = 0.15 if ensemble.startswith('npt') else 0.10
    cold = _mean_temperature(dynamics, atoms, warm_up=50, steps=200)
    assert cold == pytest.approx(300.0, rel=tolerance)
    engine.set_target_temperature(dynamics, 1500.0)
    hot = _mean_temperature(dynamics, atoms, warm_up=75, steps=200)
    assert hot == pytest.approx(1500.0, rel=tolerance)


def _emt_copper_volume_at(pressure_gpa: float) -> tuple[float, float]:
    """Return ``(V0, V(P))`` per atom (Å^3) of EMT fcc Cu at 0 K from a Birch-Murnaghan fit of seven cells."""
    from ase import units
    from ase.eos import EquationOfState
    from scipy.optimize import brentq

    volumes, energies = [], []
    for factor in np.linspace(0.97, 1.03, 7):
        cell = bulk('Cu', 'fcc', a=3.61 * factor, cubic=True)
        cell.calc = EMT()
        volumes.append(cell.get_volume() / len(cell))
        energies.append(cell.get_potential_energy() / len(cell))
    eos = EquationOfState(volumes, energies, eos='birchmurnaghan')
    v0, _, _ = eos.fit()

    def pressure(volume):
        step = 1e-4 * volume
        energy = [eos.func(volume + sign * step, *eos.eos_parameters) for sign in (1, -1)]
        return -(energy[0] - energy[1]) / (2 * step) / units.GPa

    return v0, brentq(lambda volume: pressure(volume) - pressure_gpa, 0.9 * v0, v0)


@pytest.mark.parametrize('ensemble', ['npt_isotropic', 'npt_anisotropic'])
def test_barostats_reach_the_set_pressure_and_the_eos_volume(ensemble):
    """EMT copper (32 atoms) at 3 GPa and 50 K: the mean pressure (virial and kinetic) is within 0.3 GPa of the set
    point and the mean volume matches the 0 K equation of state of the same potential, V/V0 = 0.979 (B = 134 GPa),
    within 0.5 % (classical thermal expansion at 50 K adds about 0.25 %). Measured: 3.00 and 3.04 GPa, V/V0 0.981
    and 0.982; without a barostat the cell would stay at V/V0 = 1."""
    from ase import units

    v0, v_at_pressure = _emt_copper_volume_at(3.0)
    atoms = _copper(2, lattice_constant=(4 * v0) ** (1 / 3), temperature=50.0)
    params = engine.validate_parameters(
        {
            'ensemble': ensemble,
            'temperature': 50,
            'pressure_gpa': 3.0,
            'timestep_fs': 4.0,
            'thermostat_time_fs': 40.0,
            'barostat_time_fs': 200.0,
        }
    )
    dynamics = engine.make_dynamics(atoms, params, np.random.default_rng(1))
    dynamics.run(150)
    pressures, volumes = [], []
    for _ in range(250):
        dynamics.run(1)
        stress = atoms.get_stress(voigt=False, include_ideal_gas=True)
        pressures.append(-np.trace(stress) / 3 / units.GPa)
        volumes.append(atoms.get_volume() / len(atoms))
    assert np.mean(pressures) == pytest.approx(3.0, abs=0.3)
    assert np.mean(volumes) / v0 == pytest.approx(v_at_pressure / v0, abs=0.005)
    assert v_at_pressure / v0 == pytest.approx(1 - 3.0 / 134, abs=0.002)  # the EOS itself: B of EMT Cu


# ------------------------------------------------------------------------------------------------------ stop rules


def test_uncertainty_monitor_needs_consecutive_samples():
    """A sample below the upper level resets the count: with patience 3 the stop comes at the 6th sample, not the
    2nd; NaN counts as above."""
    monitor = engine.UncertaintyMonitor(0.25, 3)
    stops = [monitor.update(value) for value in (0.3, 0.3, 0.1, 0.3, 0.25, float('nan'))]
    assert stops == [False, False, False, False, False, True]


def test_check_physical():
    """NaN forces, a runaway temperature and two atoms too close are recognised; a sane frame passes."""
    params = engine.validate_parameters({'temperature': 300, 'min_distance': 0.5, 'max_temperature_factor': 5})
    atoms = Atoms('Si2', positions=[[0, 0, 0], [2.3, 0, 0]], cell=[10, 10, 10], pbc=True)
    forces = np.zeros((2, 3))
    assert engine.check_physical(atoms, -1.0, forces, params) == (None, '')
    assert engine.check_physical(atoms, -1.0, np.full((2, 3), np.nan), params)[0] == 'nan'
    assert engine.check_physical(atoms, float('inf'), forces, params)[0] == 'nan'
    hot = atoms.copy()
    hot.set_velocities([[0.5, 0, 0], [-0.5, 0, 0]])  # Å/(ASE time unit): thousands of K
    reason, message = engine.check_physical(hot, -1.0, forces, params)
    assert reason == 'temperature'
    assert 'above the limit of 1500.0 K' in message
    close = Atoms('Si2', positions=[[0, 0, 0], [0.3, 0, 0]], cell=[10, 10, 10], pbc=True)
    reason, message = engine.check_physical(close, -1.0, forces, params)
    assert reason == 'min_distance'
    assert '0.300 Å apart' in message
    image = Atoms('Si2', positions=[[0.1, 0, 0], [9.8, 0, 0]], cell=[10, 10, 10], pbc=True)  # 0.3 Å across the cell
    assert engine.check_physical(image, -1.0, forces, params)[0] == 'min_distance'


def test_stops_on_uncertainty(models, tmp_path):
    """Members that disagree and an upper level below their disagreement: the run stops after exactly
    ``uncertainty_patience`` samples, keeping them, and that is a normal finish (status ok)."""
    results = engine.run_exploration(
        silicon(),
        models['disagree'],
        {
            'steps': 100,
            'sample_interval': 2,
            'force_deviation_lower': 1e-5,
            'force_deviation_upper': 1e-4,
            'uncertainty_patience': 3,
        },
        tmp_path,
    )
    assert results['status'] == 'ok'
    assert results['stop_reason'] == 'uncertainty'
    assert results['stop_step'] == 4
    frames = read(tmp_path / engine.FRAMES_FILENAME, ':')
    assert [atoms.info['step'] for atoms in frames] == [0, 2, 4]
    assert all(atoms.info['max_force_deviation'] >= 1e-4 for atoms in frames)
    assert (results['frames'], results['failed'], results['accurate']) == (3, 3, 0)
    on_disk = json.loads((tmp_path / engine.RESULTS_FILENAME).read_text())
    assert on_disk['stop_reason'] == 'uncertainty'
    assert on_disk['steps_per_second'] > 0


def test_identical_members_never_stop(models, tmp_path):
    """Two copies of one model agree exactly: even a tiny upper level never triggers, the run completes."""
    results = engine.run_exploration(
        silicon(),
        models['twins'],
        {
            'steps': 12,
            'sample_interval': 4,
            'force_deviation_lower': 1e-7,
            'force_deviation_upper': 1e-6,
            'uncertainty_patience': 1,
        },
        tmp_path,
    )
    assert results['stop_reason'] == 'completed'
    assert results['n_steps'] == 12
    frames = read(tmp_path / engine.FRAMES_FILENAME, ':')
    assert [atoms.info['step'] for atoms in frames] == [0, 4, 8, 12]
    assert [atoms.info['time_fs'] for atoms in frames] == [0.0, 4.0, 8.0, 12.0]
    assert max(atoms.info['max_force_deviation'] for atoms in frames) < 1e-12
    assert results['accurate'] == 4
    # the frames carry the committee-mean energy and forces, the thermodynamics and the per-atom deviation
    last = frames[-1]
    assert last.get_forces().shape == (8, 3)
    assert last.arrays['force_deviation'].shape == (8,)
    assert last.info['volume'] == pytest.approx(5.43**3)
    assert math.isfinite(last.info['pressure_gpa'])
    assert 0 < last.info['temperature'] < 1500


def test_atoms_too_close_stop_at_once(models, tmp_path):
    """Two atoms 0.3 Å apart: the run stops at step 0 with reason min_distance and keeps that frame."""
    atoms = silicon(rattle=0)
    atoms.positions[1] = atoms.positions[0] + [0.3, 0.0, 0.0]
    results = engine.run_exploration(atoms, models['twins'], {'steps': 50}, tmp_path)
    assert results['status'] == results['stop_reason'] == 'min_distance'
    assert 'apart' in results['message']
    assert results['stop_step'] == 0
    assert len(read(tmp_path / engine.FRAMES_FILENAME, ':')) == 1


def test_huge_timestep_blows_up_and_keeps_frames(models, tmp_path):
    """A 20 fs step at 3000 K throws atoms onto each other: the run stops physically, keeping the frames sampled up
    to the step that broke (which is itself kept as the last frame)."""
    results = engine.run_exploration(
        silicon(),
        models['disagree'],
        {'steps': 500, 'sample_interval': 5, 'timestep_fs': 20.0, 'temperature': 3000, 'force_deviation_upper': 100},
        tmp_path,
    )
    assert results['stop_reason'] in engine.PHYSICAL_STOPS
    assert results['status'] == results['stop_reason']
    assert 0 < results['stop_step'] < 500
    frames = read(tmp_path / engine.FRAMES_FILENAME, ':')
    steps = [atoms.info['step'] for atoms in frames]
    assert steps[-1] == results['stop_step']
    assert steps[:-1] == list(range(0, results['stop_step'], 5))[: len(steps) - 1]
    assert results['frames'] == len(frames)


def test_npt_changes_volume_with_pressure(models, tmp_path):
    """Isotropic and anisotropic MTK NPT: at 10 GPa the cell shrinks, at 0 GPa (this repulsive, barely bound
    model) it grows; NVT keeps the volume."""
    volumes = {}
    for ensemble in ('npt_isotropic', 'npt_anisotropic', 'nvt_nose_hoover'):
        for pressure in (0.0, 10.0) if ensemble.startswith('npt') else (0.0,):
            directory = tmp_path / f'{ensemble}_{pressure}'
            directory.mkdir()
            results = engine.run_exploration(
                silicon(),
                models['zbl'],
                {
                    'ensemble': ensemble,
                    'pressure_gpa': pressure,
                    'steps': 30,
                    'sample_interval': 10,
                    'barostat_time_fs': 50.0,
                    'force_deviation_upper': 100,
                },
                directory,
            )
            assert results['stop_reason'] == 'completed'
            frames = read(directory / engine.FRAMES_FILENAME, ':')
            volumes[ensemble, pressure] = [atoms.info['volume'] for atoms in frames]
            assert frames[-1].get_volume() == pytest.approx(frames[-1].info['volume'])
    initial = 5.43**3
    for ensemble in ('npt_isotropic', 'npt_anisotropic'):
        assert volumes[ensemble, 10.0][-1] < 0.8 * initial
        assert volumes[ensemble, 0.0][-1] > 1.2 * initial
    assert volumes['nvt_nose_hoover', 0.0] == pytest.approx([initial] * 4)


def test_temperature_ramp_in_run(models, tmp_path):
    """A Langevin ramp records the target at every frame."""
    engine.run_exploration(
        silicon(),
        models['twins'],
        {'temperature': 100, 'temperature_end': 500, 'steps': 8, 'sample_interval': 4},
        tmp_path,
    )
    frames = read(tmp_path / engine.FRAMES_FILENAME, ':')
    assert [atoms.info['target_temperature'] for atoms in frames] == [100.0, 300.0, 500.0]
    assert frames[0].info['temperature'] == pytest.approx(100.0)  # Maxwell-Boltzmann forced to the start target


def test_unknown_element_refused(models, tmp_path):
    """A structure with an element the committee does not know is refused before any step."""
    atoms = silicon()
    atoms[0].symbol = 'Li'
    with pytest.raises(engine.InvalidInputError, match=r'no parameters for element.*Li'):
        engine.run_exploration(atoms, models['twins'], {'steps': 2}, tmp_path)
    assert not (tmp_path / engine.FRAMES_FILENAME).exists()


# --------------------------------------------------------------------------------------------------- command line


def _write_input(directory, models, parameters):
    silicon().write(directory / 'structure.extxyz', format='extxyz')
    for index, path in enumerate(models):
        shutil.copy(path, directory / f'member_{index}.model')
    request = {
        'structure': 'structure.extxyz',
        'models': [f'member_{index}.model' for index in range(len(models))],
        'parameters': parameters,
    }
    (directory / 'input.json').write_text(json.dumps(request))
    return directory / 'input.json'


def test_main_invalid_input(tmp_path, models):
    """Bad parameters: exit status 1 and results.json with status invalid_input and the reason."""
    path = _write_input(tmp_path, models['twins'], {'ensemble': 'nve'})
    assert engine.main([str(path)]) == 1
    results = json.loads((tmp_path / engine.RESULTS_FILENAME).read_text())
    assert results['status'] == 'invalid_input'
    assert 'unknown ensemble `nve`' in results['message']


@pytest.mark.slow
def test_killed_run_keeps_its_frames(tmp_path, models):
    """``python -m aiida_sianode.engines.explore`` killed mid-run (SIGKILL): the frames written so far are complete
    and readable, and there is no results.json."""
    path = _write_input(tmp_path, models['twins'], {'steps': 100000, 'sample_interval': 1})
    environment = {**os.environ, 'OMP_NUM_THREADS': '1'}
    process = subprocess.Popen(
        [sys.executable, '-m', 'aiida_sianode.engines.explore', path.name],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    frames_path = tmp_path / engine.FRAMES_FILENAME
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if frames_path.exists() and frames_path.read_text().count('Lattice=') >= 4:
                break
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    from aiida_sianode.parsers.explore import read_frames

    frames = read_frames(frames_path)
    assert len(frames) >= 4
    assert [atoms.info['step'] for atoms in frames] == list(range(len(frames)))
    assert not (tmp_path / engine.RESULTS_FILENAME).exists()


def test_frame_deviations_and_stress_recomputed_from_the_frame(models, tmp_path):
    """Every frame written carries deviations that one can recompute from the frame alone: each member's forces
    and energy evaluated afresh, the DP-GEN max force deviation max_i sqrt(<|F_i - <F_i>|^2>), the spread of the
    energy per atom, and the stress, which is the members' mean get_stress()."""
    from mace.calculators import MACECalculator

    engine.run_exploration(
        silicon(),
        models['disagree'],
        {'steps': 6, 'sample_interval': 2, 'force_deviation_upper': 100.0, 'dtype': 'float64'},
        tmp_path,
    )
    frames = read(tmp_path / engine.FRAMES_FILENAME, ':')
    assert len(frames) == 4
    members = [
        MACECalculator(model_paths=str(path), device='cpu', default_dtype='float64') for path in models['disagree']
    ]
    for frame in frames:
        atoms = Atoms(frame.get_chemical_symbols(), positions=frame.positions, cell=frame.cell, pbc=True)
        forces, energies, stresses = [], [], []
        for member in members:
            atoms.calc = member
            forces.append(atoms.get_forces())
            energies.append(atoms.get_potential_energy() / len(atoms))
            stresses.append(atoms.get_stress())
        forces = np.array(forces)
        per_atom = np.sqrt(((forces - forces.mean(axis=0)) ** 2).sum(axis=2).mean(axis=0))
        assert frame.arrays['force_deviation'] == pytest.approx(per_atom, abs=1e-6)
        assert frame.info['max_force_deviation'] == pytest.approx(per_atom.max(), abs=1e-6)
        assert frame.info['energy_std_per_atom'] == pytest.approx(np.std(energies), abs=1e-7)
        assert frame.get_stress() == pytest.approx(np.mean(stresses, axis=0), abs=1e-7)
        assert frame.get_forces() == pytest.approx(forces.mean(axis=0), abs=1e-6)


def test_one_member_drives_and_the_committee_sees_only_recorded_frames(models, tmp_path):
    """With ``driver: member`` the trajectory is the driving member's own: the same seed run with that member alone
    gives the same positions at every recorded frame, while the frames still carry the whole committee's
    deviation (non-zero for disagreeing members) and mean energy. The committee is evaluated once per recorded frame
    only; ``driver: mean`` drives with the mean and so moves the atoms elsewhere."""
    parameters = {'steps': 8, 'sample_interval': 4, 'force_deviation_upper': 100.0, 'dtype': 'float64'}
    for name in ('committee', 'alone', 'mean'):
        (tmp_path / name).mkdir()
    committee = engine.run_exploration(
        silicon(), models['disagree'], {**parameters, 'driver_member': 1}, tmp_path / 'committee'
    )
    alone = engine.run_exploration(silicon(), models['disagree'][1:2], parameters, tmp_path / 'alone')
    mean = engine.run_exploration(silicon(), models['disagree'], {**parameters, 'driver': 'mean'}, tmp_path / 'mean')
    assert (committee['driver'], committee['driver_member'], committee['n_members']) == ('member', 1, 3)
    assert (mean['driver'], alone['driver']) == ('mean', 'mean')  # a committee of one is its own mean
    assert committee['committee_evaluations'] == committee['frames'] == 3  # steps 0, 4, 8
    frames = {name: read(tmp_path / name / engine.FRAMES_FILENAME, ':') for name in ('committee', 'alone', 'mean')}
    for driven, single in zip(frames['committee'], frames['alone'], strict=True):
        assert driven.positions == pytest.approx(single.positions, abs=1e-10)
        assert driven.info['max_force_deviation'] > 1e-4
        assert single.info['max_force_deviation'] == 0.0
    assert np.abs(frames['mean'][-1].positions - frames['alone'][-1].positions).max() > 1e-6
    # at step 0 both committees see the same frame: the same mean energy and the same deviations
    assert frames['committee'][0].get_potential_energy() == pytest.approx(frames['mean'][0].get_potential_energy())
    assert frames['committee'][0].info['max_force_deviation'] == pytest.approx(
        frames['mean'][0].info['max_force_deviation']
    )


def test_driver_member_outside_the_committee_refused(models, tmp_path):
    """A driving member index beyond the committee is refused before any step, naming the committee's size."""
    with pytest.raises(engine.InvalidInputError, match='`driver_member` is 3, but the committee has 3 member'):
        engine.run_exploration(silicon(), models['disagree'], {'driver_member': 3}, tmp_path)
    with pytest.raises(engine.InvalidInputError, match='`driver` must be one of member, mean'):
        engine.validate_parameters({'driver': 'median'})
