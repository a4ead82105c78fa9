"""Diffusion kernel: D of a synthetic random walk, exact Arrhenius fits, Nernst-Einstein, refusals, a small run."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_sianode.properties import diffusion
from aiida_sianode.properties.common import InvalidPropertyInput


def random_walk(d_a2_ps: float, *, n_atoms=100, n_frames=1000, frame_ps=0.02, box=12.0, seed=3):
    """Gaussian random walk with diffusion coefficient ``d_a2_ps`` (Å^2/ps): frames as ``ase.Atoms``, wrapped into a
    cubic box."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, math.sqrt(2 * d_a2_ps * frame_ps), size=(n_frames, n_atoms, 3))
    steps[0] = rng.uniform(0, box, size=(n_atoms, 3))
    positions = np.cumsum(steps, axis=0)
    frames = [Atoms(f'Li{n_atoms}', positions=p, cell=[box] * 3, pbc=True) for p in positions]
    for frame in frames:
        frame.wrap()
    return frames, positions


def test_random_walk_of_known_d():
    """D = 0.5 Å^2/ps = 5e-5 cm^2/s, recovered from wrapped frames within 3 block errors and 10 %."""
    frames, truth = random_walk(0.5)
    unwrapped = diffusion.unwrapped_positions(frames)
    np.testing.assert_allclose(unwrapped - unwrapped[0], truth - truth[0], atol=1e-9)
    positions = diffusion.remove_drift(unwrapped, frames[0].get_masses())
    result = diffusion.block_diffusion(positions, 0.02, n_blocks=5, fit_window=(0.1, 0.5))
    assert result['d_cm2_s'] == pytest.approx(5e-5, rel=0.1)
    assert abs(result['d_cm2_s'] - 5e-5) < 3 * result['d_std_cm2_s']
    assert 0 < result['d_std_cm2_s'] < 0.1 * result['d_cm2_s']
    assert len(result['block_d_cm2_s']) == 5
    # the MSD of a walk is 6 D t: at 1 ps, 3 Å^2
    assert np.interp(1.0, result['lag_ps'], result['msd_a2']) == pytest.approx(3.0, rel=0.1)
    assert result['msd_a2'][0] == 0.0


def test_drift_is_removed():
    frames, _ = random_walk(0.2, n_frames=200)
    unwrapped = diffusion.unwrapped_positions(frames)
    drifting = unwrapped + np.linspace(0, 40, len(frames))[:, None, None]  # 40 Å of collective drift
    corrected = diffusion.remove_drift(drifting, frames[0].get_masses())
    np.testing.assert_allclose(
        diffusion.msd(corrected, [10, 50]),
        diffusion.msd(diffusion.remove_drift(unwrapped, frames[0].get_masses()), [10, 50]),
        rtol=1e-10,
    )


def test_arrhenius_fit_of_exact_data():
    """D(T) = 1e-3 exp(-0.45 eV / kB T): Ea, D0 and D(300 K) come back exactly, with no error."""
    temperatures = [600.0, 800.0, 1000.0, 1200.0]
    d = [1e-3 * math.exp(-0.45 / (diffusion.BOLTZMANN_EV * t)) for t in temperatures]
    fit = diffusion.arrhenius_fit(temperatures, d)
    assert fit['ea_ev'] == pytest.approx(0.45, rel=1e-10)
    assert fit['prefactor_cm2_s'] == pytest.approx(1e-3, rel=1e-9)
    assert fit['ea_std_ev'] == pytest.approx(0.0, abs=1e-9)
    d300, d300_std = diffusion.arrhenius_extrapolate(fit, 300.0)
    assert d300 == pytest.approx(1e-3 * math.exp(-0.45 / (diffusion.BOLTZMANN_EV * 300)), rel=1e-9)
    assert d300_std == pytest.approx(0.0, abs=1e-20)


def test_arrhenius_fit_with_errors():
    """Two temperatures with 10 % errors: Ea exact (the line goes through both) and its error from propagation."""
    t1, t2 = 500.0, 1000.0
    d = [1e-3 * math.exp(-0.3 / (diffusion.BOLTZMANN_EV * t)) for t in (t1, t2)]
    fit = diffusion.arrhenius_fit([t1, t2], d, [0.1 * value for value in d])
    assert fit['ea_ev'] == pytest.approx(0.3, rel=1e-9)
    # slope error: sqrt(0.1^2 + 0.1^2) / (1/t1 - 1/t2), times kB
    expected = math.sqrt(0.02) / (1 / t1 - 1 / t2) * diffusion.BOLTZMANN_EV
    assert fit['ea_std_ev'] == pytest.approx(expected, rel=1e-9)
    with pytest.raises(InvalidPropertyInput, match='two temperatures'):
        diffusion.arrhenius_fit([t1], d[:1])
    with pytest.raises(InvalidPropertyInput, match='positive'):
        diffusion.arrhenius_fit([t1, t2], [1e-5, -1e-6])


def test_nernst_einstein():
    """n = 1e28 m^-3 (10 carriers in 1000 Å^3), D = 1e-5 cm^2/s, 300 K: sigma = n e^2 D / kB T = 0.6196 S/cm."""
    sigma = diffusion.nernst_einstein_conductivity(1e-5, 10, 1000.0, 300.0)
    expected = 1e28 * 1.602176634e-19**2 * 1e-9 / (1.380649e-23 * 300) / 100
    assert sigma == pytest.approx(expected, rel=1e-12)
    assert sigma == pytest.approx(0.6196, rel=1e-3)
    assert diffusion.nernst_einstein_conductivity(1e-5, 10, 1000.0, 300.0, charge=2) == pytest.approx(4 * sigma)


@pytest.mark.parametrize(
    ('overrides', 'message'),
    [
        ({'temperatures_k': []}, 'non-empty list'),
        ({'temperatures_k': [600, 600]}, 'distinct'),
        ({'n_blocks': 1}, '`n_blocks`'),
        ({'fit_window': [0.6, 0.5]}, '`fit_window`'),
        ({'md': {'temperature_k': 300}}, 'temperatures_k'),
        ({'md': {'ensemble': 'nve'}}, 'unknown ensemble'),
    ],
)
def test_bad_settings_are_refused(overrides, message):
    with pytest.raises(InvalidPropertyInput, match=message):
        diffusion.validate_settings({'species': 'Cu', **overrides}, [bulk('Cu', cubic=True)])


def test_structure_without_the_species_is_refused():
    with pytest.raises(InvalidPropertyInput, match='no Li atom'):
        diffusion.validate_settings({'species': 'Li'}, [bulk('Cu', cubic=True)])


def test_run_member_on_hot_copper(tmp_path):
    """Eight EMT Cu atoms at 2500 and 3500 K, 0.45 ps each: D per temperature, the fit, conductivities, plots."""
    settings = {
        'species': 'Cu',
        'temperatures_k': [2500.0, 3500.0],
        'n_blocks': 3,
        'fit_window': [0.1, 0.6],
        'md': {'timestep_fs': 3.0, 'length_ps': 0.45, 'equilibration_ps': 0.06, 'trajectory_interval': 2},
    }
    atoms = bulk('Cu', 'fcc', a=3.7, cubic=True).repeat((2, 1, 1))
    result = diffusion.run_member([atoms], EMT(), settings, tmp_path)
    scalars = result['scalars']
    for label in ('2500k', '3500k'):
        assert scalars[f'd_{label}_cm2_s'] > 0
        assert scalars[f'd_{label}_sampling_std_cm2_s'] > 0
        volume = result['extra']['temperatures'][0]['volume_a3']
        temperature = 2500.0 if label == '2500k' else 3500.0
        assert scalars[f'conductivity_{label}_s_cm'] == pytest.approx(
            diffusion.nernst_einstein_conductivity(scalars[f'd_{label}_cm2_s'], 8, volume, temperature), rel=1e-9
        )
    d_hot, d_cold = scalars['d_3500k_cm2_s'], scalars['d_2500k_cm2_s']
    expected_ea = math.log(d_hot / d_cold) * diffusion.BOLTZMANN_EV / (1 / 2500 - 1 / 3500)
    assert scalars['ea_ev'] == pytest.approx(expected_ea, rel=1e-9)
    assert (tmp_path / 'msd.png').is_file() and (tmp_path / 'arrhenius.png').is_file()
    assert (tmp_path / 'T_2500K' / 'checkpoint.npz').is_file()
    assert result['curves']['arrhenius']['x'] == pytest.approx([0.4, 1000 / 3500])


def test_a_temperature_that_blows_up_is_left_out_of_the_fit(tmp_path, monkeypatch):
    """At 3000 K the member heats itself (forces along the velocities) and the MD kernel stops it above 5x the target:
    that temperature gets no D and the Arrhenius fit uses the other two, exactly."""
    from ase import units
    from ase.calculators.calculator import Calculator, all_changes

    from aiida_sianode.properties import md

    class Pump(Calculator):
        implemented_properties = ['energy', 'forces']

        def calculate(self, atoms=None, properties=('energy',), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            self.results = {'energy': 0.0, 'forces': 0.05 / units.fs * self.atoms.get_momenta()}

    real_run_md = md.run_md

    def run_md(atoms, calculator, settings, workdir, **kwargs):
        if settings['temperature_k'] == 3000.0:
            calculator = Pump()
        return real_run_md(atoms, calculator, settings, workdir, **kwargs)

    monkeypatch.setattr(md, 'run_md', run_md)
    settings = {
        'species': 'Cu',
        'temperatures_k': [2500.0, 3000.0, 3500.0],
        'n_blocks': 3,
        'fit_window': [0.1, 0.6],
        'md': {'timestep_fs': 3.0, 'length_ps': 0.45, 'equilibration_ps': 0.06, 'trajectory_interval': 2},
    }
    atoms = bulk('Cu', 'fcc', a=3.7, cubic=True).repeat((2, 1, 1))
    result = diffusion.run_member([atoms], EMT(), settings, tmp_path)
    scalars, extra = result['scalars'], result['extra']
    assert extra['excluded_temperatures_k'] == [3000.0]
    hot = extra['temperatures'][1]
    assert hot['stop_reason'] == 'temperature' and hot['stopped_at_ps'] < 0.1
    assert 'd_3000k_cm2_s' not in scalars and 'msd_3000k' not in result['curves']
    d_hot, d_cold = scalars['d_3500k_cm2_s'], scalars['d_2500k_cm2_s']
    expected_ea = math.log(d_hot / d_cold) * diffusion.BOLTZMANN_EV / (1 / 2500 - 1 / 3500)
    assert scalars['ea_ev'] == pytest.approx(expected_ea, rel=1e-9)
    assert result['curves']['arrhenius']['x'] == pytest.approx([0.4, 1000 / 3500])
    assert (tmp_path / 'msd.png').is_file() and (tmp_path / 'arrhenius.png').is_file()

    only_one = diffusion.run_member([atoms], EMT(), {**settings, 'temperatures_k': [2500.0, 3000.0]}, tmp_path / 'b')
    assert 'ea_ev' not in only_one['scalars']
    assert only_one['extra']['arrhenius_error'].startswith('no Arrhenius fit: 1 of 2 temperatures')
