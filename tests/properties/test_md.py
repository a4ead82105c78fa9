"""Production MD kernel: refusals, exact continuation after the engine is killed twice, the uncertainty watch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from aiida_sianode.properties import md
from aiida_sianode.properties.common import InvalidPropertyInput

#: a tiny, cheap run: 8 Cu atoms with EMT, 200 steps of 2 fs
SETTINGS = {
    'ensemble': 'nvt_langevin',
    'temperature_k': 500.0,
    'timestep_fs': 2.0,
    'length_ps': 0.4,
    'equilibration_ps': 0.1,
    'trajectory_interval': 5,
    'chunk_frames': 8,
    'thermo_interval': 5,
    'sample_interval': 10,
    'checkpoint_interval': 20,
}


def copper() -> Atoms:
    """Eight Cu atoms (fcc, a = 3.6 Å)."""
    return bulk('Cu', 'fcc', a=3.6, cubic=True).repeat((2, 1, 1))


class ScaledEMT(Calculator):
    """EMT with its forces scaled by ``factor``: a second 'member' that disagrees by a known amount."""

    implemented_properties = ['energy', 'forces']

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def calculate(self, atoms=None, properties=('energy',), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        frame = self.atoms.copy()
        frame.calc = EMT()
        self.results = {
            'energy': frame.get_potential_energy(),
            'forces': frame.get_forces(apply_constraint=False) * self.factor,
        }


@pytest.mark.parametrize(
    ('overrides', 'message'),
    [
        ({'ensemble': 'nve'}, 'unknown ensemble'),
        ({'pressure_gpa': 1.0}, 'constant-volume'),
        ({'equilibration_ps': 0.8}, 'shorter than `length_ps`'),
        ({'force_deviation_lower': 0.3}, 'trust levels'),
        ({'on_uncertain': 'abort'}, 'flag or stop'),
        ({'sample_interval': 0}, '`sample_interval` must be > 0'),
        ({'lenght_ps': 2}, 'unknown setting'),
    ],
)
def test_bad_settings_are_refused(overrides, message):
    with pytest.raises(InvalidPropertyInput, match=message):
        md.validate_settings({**SETTINGS, **overrides}, [copper()])


def test_bad_structures_are_refused():
    with pytest.raises(InvalidPropertyInput, match='exactly one structure'):
        md.validate_settings(SETTINGS, [copper(), copper()])
    molecule = Atoms('Cu2', positions=[[0, 0, 0], [0, 0, 2.5]])
    with pytest.raises(InvalidPropertyInput, match='periodic in x, y and z'):
        md.validate_settings({**SETTINGS, 'ensemble': 'npt_isotropic'}, [molecule])
    squeezed = Atoms('Cu2', positions=[[0, 0, 0], [0, 0, 0.3]], cell=[5, 5, 5], pbc=True)
    with pytest.raises(InvalidPropertyInput, match='closer than'):
        md.validate_settings(SETTINGS, [squeezed])


RUNNER = """
import sys
from aiida_sianode.properties import md
from ase.calculators.emt import EMT
from test_md import SETTINGS, copper
md.run_md(copper(), EMT(), SETTINGS, sys.argv[1], others=[])
"""


def checkpoint_step(workdir) -> int:
    path = workdir / md.CHECKPOINT
    if not path.exists():
        return -1
    try:
        return md.read_checkpoint(path)['step']
    except Exception:  # replaced while we read it
        return -1


def run_and_kill(workdir, past_step: int) -> None:
    """Start the kernel in a subprocess; SIGKILL it once its checkpoint passes ``past_step``."""
    env = {**os.environ, 'PYTHONPATH': os.path.dirname(__file__), 'OMP_NUM_THREADS': '1'}
    process = subprocess.Popen([sys.executable, '-c', RUNNER, str(workdir)], env=env)
    try:
        deadline = time.monotonic() + 120
        while checkpoint_step(workdir) < past_step:
            assert process.poll() is None, 'the run ended before it could be killed'
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL


def test_killed_twice_continues_without_gap_or_repeat(tmp_path):
    """Kill the run twice mid-way; the continued run equals an uninterrupted one frame for frame."""
    reference = md.run_md(copper(), EMT(), SETTINGS, tmp_path / 'reference', others=[])
    assert reference['stop_reason'] == 'completed'
    assert reference['n_steps'] == 200

    workdir = tmp_path / 'killed'
    workdir.mkdir()
    run_and_kill(workdir, 40)
    first = checkpoint_step(workdir)
    run_and_kill(workdir, first + 60)
    second = checkpoint_step(workdir)
    assert 40 <= first < second < 200
    result = md.run_md(copper(), EMT(), SETTINGS, workdir, others=[])
    assert result['resumed_from'] == [first, second]
    assert result['n_steps'] == 200

    frames = md.read_trajectory(workdir)
    expected = md.read_trajectory(tmp_path / 'reference')
    steps = [frame.info['step'] for frame in frames]
    assert steps == list(range(0, 201, 5))  # no gap, no repeat
    assert len(list((workdir / md.TRAJECTORY_DIR).glob('chunk_*.extxyz'))) == 6  # 41 frames, 8 per file
    for frame, twin in zip(frames, expected):
        np.testing.assert_allclose(frame.positions, twin.positions, rtol=0, atol=1e-9)
        np.testing.assert_allclose(frame.get_momenta(), twin.get_momenta(), rtol=0, atol=1e-9)
    thermo = md.read_jsonl(workdir / md.THERMO)
    assert [record['step'] for record in thermo] == list(range(0, 201, 5))
    assert result['temperature_k_mean'] == pytest.approx(reference['temperature_k_mean'], abs=1e-9)

    # a finished run is returned as it is; a longer length continues it from its last checkpoint
    assert md.run_md(copper(), EMT(), SETTINGS, workdir, others=[])['resumed_from'] == [first, second]
    longer = md.run_md(copper(), EMT(), {**SETTINGS, 'length_ps': 0.45}, workdir, others=[])
    assert longer['n_steps'] == 225 and longer['resumed_from'] == [first, second, 200]
    assert [frame.info['step'] for frame in md.read_trajectory(workdir)] == list(range(0, 226, 5))

    with pytest.raises(InvalidPropertyInput, match='other settings'):
        md.run_md(copper(), EMT(), {**SETTINGS, 'seed': 7, 'length_ps': 0.5}, workdir, others=[])


@pytest.mark.parametrize('ensemble', ['nvt_nose_hoover', 'nvt_bussi', 'npt_isotropic', 'npt_anisotropic'])
def test_every_ensemble_continues_exactly(tmp_path, ensemble):
    """A checkpoint holds the thermostat / barostat state: stopping at 20 steps and extending to 40 equals one
    run of 40 steps."""
    settings = {
        **SETTINGS,
        'ensemble': ensemble,
        'length_ps': 0.08,
        'equilibration_ps': 0.0,
        'thermostat_time_fs': 40.0,
        'barostat_time_fs': 200.0,
    }
    straight = md.run_md(copper(), EMT(), settings, tmp_path / 'straight', others=[])
    md.run_md(copper(), EMT(), {**settings, 'length_ps': 0.04}, tmp_path / 'split', others=[])
    split = md.run_md(copper(), EMT(), settings, tmp_path / 'split', others=[])
    assert split['resumed_from'] == [20]
    last, twin = md.read_trajectory(tmp_path / 'split')[-1], md.read_trajectory(tmp_path / 'straight')[-1]
    assert last.info['step'] == twin.info['step'] == 40
    np.testing.assert_allclose(last.positions, twin.positions, rtol=0, atol=1e-9)
    np.testing.assert_allclose(last.cell, twin.cell, rtol=0, atol=1e-9)
    assert split['temperature_k_mean'] == pytest.approx(straight['temperature_k_mean'], abs=1e-9)


def test_uncertainty_watch_flags_and_stops(tmp_path):
    """A second member with forces 1.5x the driver's: the deviation of atom i is |F_i| / 4 exactly."""
    settings = {**SETTINGS, 'length_ps': 0.2, 'equilibration_ps': 0.0, 'trajectory_interval': 10}
    flagging = md.run_md(copper(), EMT(), settings, tmp_path / 'flag', others=[ScaledEMT(1.5)])
    samples = md.read_jsonl(tmp_path / 'flag' / md.COMMITTEE)
    assert [record['step'] for record in samples] == list(range(0, 101, 10))
    for frame, record in zip(md.read_trajectory(tmp_path / 'flag'), samples):
        assert frame.info['step'] == record['step']
        frame.calc = EMT()
        largest = np.linalg.norm(frame.get_forces(), axis=1).max()
        assert record['max_force_deviation'] == pytest.approx(largest / 4, rel=1e-6)  # extxyz keeps 8 decimals
    deviations = np.array([record['max_force_deviation'] for record in samples])
    upper = float(np.median(deviations[1:]))  # step 0 is the perfect lattice: no force, no deviation
    lower = upper / 2
    watched = md.run_md(
        copper(),
        EMT(),
        {**settings, 'force_deviation_lower': lower, 'force_deviation_upper': upper},
        tmp_path / 'watched',
        others=[ScaledEMT(1.5)],
    )
    above = deviations >= upper
    assert watched['fraction_above_upper'] == pytest.approx(above.mean())
    assert watched['fraction_above_lower'] == pytest.approx((deviations >= lower).mean())
    assert watched['flagged_steps'] == [record['step'] for record, flag in zip(samples, above) if flag]
    from ase.io import read

    flagged = read(tmp_path / 'watched' / md.FLAGGED, index=':')
    assert [frame.info['step'] for frame in flagged] == watched['flagged_steps']
    assert flagging['stop_reason'] == 'completed'

    stopped = md.run_md(
        copper(),
        EMT(),
        {**settings, 'force_deviation_lower': lower, 'force_deviation_upper': upper, 'on_uncertain': 'stop'},
        tmp_path / 'stopped',
        others=[ScaledEMT(1.5)],
    )
    assert stopped['stop_reason'] == 'uncertainty'
    assert stopped['n_steps'] == watched['flagged_steps'][0]


class Pump(Calculator):
    """Forces along each atom's velocity (F = rate * p, no energy): an anti-friction that heats the run
    exponentially, as a member far outside its training data can."""

    implemented_properties = ['energy', 'forces']

    def __init__(self, rate_per_fs: float):
        super().__init__()
        self.rate = rate_per_fs

    def calculate(self, atoms=None, properties=('energy',), system_changes=all_changes):
        from ase import units

        super().calculate(atoms, properties, system_changes)
        self.results = {'energy': 0.0, 'forces': self.rate / units.fs * self.atoms.get_momenta()}


def test_runaway_temperature_stops_the_run(tmp_path):
    """A run heating itself (kinetic energy growing as exp(2 (0.05 - 0.01) t/fs) against the Langevin friction) stops
    at the first step above 5x the target, keeps the frames before it and no checkpoint of the blown-up state."""
    settings = {**SETTINGS, 'length_ps': 0.4, 'checkpoint_interval': 10, 'thermo_interval': 1}
    summary = md.run_md(copper(), Pump(0.05), settings, tmp_path)
    assert summary['stop_reason'] == 'temperature'
    assert 7 <= summary['n_steps'] <= 14  # ln 5 / 0.08 per fs: 20 fs, 10 steps of 2 fs
    thermo = md.read_jsonl(tmp_path / md.THERMO)
    assert [record['step'] for record in thermo] == list(range(summary['n_steps']))
    assert max(record['temperature_k'] for record in thermo) <= 5 * 500.0
    checkpoint = md.read_checkpoint(tmp_path / md.CHECKPOINT)
    assert checkpoint['step'] == (summary['n_steps'] - 1) // 10 * 10
    again = md.run_md(copper(), Pump(0.05), settings, tmp_path)  # a stopped run is returned as it is
    assert again == summary
    loose = md.run_md(copper(), Pump(0.05), {**settings, 'max_temperature_factor': 20.0}, tmp_path / 'loose')
    assert loose['stop_reason'] == 'temperature'
    assert 15 <= loose['n_steps'] <= 25  # ln 20 / 0.08 per fs: 37 fs
    with pytest.raises(InvalidPropertyInput, match='`max_temperature_factor` must be > 1'):
        md.normalise_settings({'max_temperature_factor': 1.0})


def test_run_member_result_shape(tmp_path):
    settings = {**SETTINGS, 'length_ps': 0.1, 'equilibration_ps': 0.02}
    result = md.run_member([copper()], EMT(), settings, tmp_path)
    json.dumps(result)
    scalars = result['scalars']
    assert scalars['simulated_time_ps'] == pytest.approx(0.1)
    assert 100 < scalars['temperature_mean_k'] < 1000
    assert scalars['fraction_above_upper_trust'] is None  # no other member: no watch
    assert result['curves']['temperature']['x'][-1] == pytest.approx(0.1)
    assert result['extra']['n_steps'] == 50


@pytest.mark.parametrize('kind', ['md', 'diffusion', 'phonons', 'vdos', 'neb'])
@pytest.mark.parametrize('protocol', ['fast', 'balanced', 'stringent'])
def test_dynamic_protocols_are_accepted(kind, protocol):
    """Every protocol of the dynamic kinds passes its kernel's own validation on a structure it applies to."""
    from aiida_sianode.properties import load_kind
    from aiida_sianode.properties.common import get_settings, split_settings

    silicon = bulk('Si', 'diamond', a=5.43, cubic=True)
    structures = [silicon]
    if kind == 'diffusion':
        silicon[0].symbol = 'Li'
    if kind == 'neb':
        final = silicon.copy()
        final.positions[0] += [0.6, 0.6, 0.6]
        structures = [silicon, final]
    _, settings = split_settings(get_settings(kind, protocol))
    load_kind(kind).validate_settings(settings, structures)


def test_engine_runs_md_with_the_committee_watching(tmp_path, fixtures_path):
    """The property engine runs the md kernel for both trained fast Si members: each member drives its own run and
    the other member evaluates every 5th frame; the deviation at step 0 is the two models' disagreement there."""
    import shutil

    from ase.io import write

    from aiida_sianode.engines import property as engine
    from aiida_sianode.engines.committee import atomic_force_deviation
    from aiida_sianode.engines.property import load_member_calculator

    models = [fixtures_path / 'models' / 'si_fast' / f'member_{index}.model' for index in range(2)]
    for model in models:
        shutil.copy(model, tmp_path / model.name)
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(0.05, seed=2)
    write(tmp_path / 'structure_0.extxyz', atoms, format='extxyz')
    settings = {
        'device': 'cpu',
        'dtype': 'float64',
        'temperature_k': 300.0,
        'length_ps': 0.02,
        'equilibration_ps': 0.0,
        'sample_interval': 5,
        'trajectory_interval': 5,
        'thermo_interval': 5,
        'force_deviation_lower': 1e-4,
        'force_deviation_upper': 10.0,
    }
    (tmp_path / 'input.json').write_text(
        json.dumps(
            {
                'kind': 'md',
                'structures': ['structure_0.extxyz'],
                'models': [model.name for model in models],
                'settings': settings,
            }
        )
    )
    results = engine.run(tmp_path)
    assert results['status'] == 'ok', results.get('message')
    assert len(results['members']) == 2
    for member in results['members']:
        assert member['extra']['committee_size'] == 2
        assert member['extra']['committee_samples'] == 5  # steps 0, 5, 10, 15, 20
        assert member['scalars']['fraction_above_lower_trust'] == 1.0
        assert member['scalars']['fraction_above_upper_trust'] == 0.0
    forces = []
    for model in models:
        frame = atoms.copy()
        frame.calc = load_member_calculator(model, 'cpu', 'float64')
        forces.append(frame.get_forces())
    expected = atomic_force_deviation(np.array(forces)).max()
    for index in range(2):
        first = md.read_jsonl(tmp_path / f'member_{index}' / md.COMMITTEE)[0]
        assert first['step'] == 0
        assert first['max_force_deviation'] == pytest.approx(expected, rel=1e-6)  # extxyz keeps 8 decimals
    assert results['aggregate']['scalars']['temperature_mean_k']['std'] >= 0
