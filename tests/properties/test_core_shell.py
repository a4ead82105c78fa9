"""Si@C core-shell particles: geometry measures, core lithiation, refusals and a per-member run on a tiny particle."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read

from aiida_sianode.properties.common import InvalidPropertyInput, aggregate_members, get_settings, split_settings
from aiida_sianode.properties.core_shell import (
    build_particle,
    lithiate_core,
    lithiation_changes,
    particle_geometry,
    run_member,
    shell_thickness_nm,
    validate_settings,
)
from aiida_sianode.structures.lithiation import SI_VOLUME_PER_ATOM, volume_per_si

TINY = {'core_radius_nm': 0.5, 'vacuum': 6.0, 'seed': 0}


@pytest.fixture(scope='module')
def particle():
    return build_particle(0.3, TINY)  # 29 Si in 276 C


def test_geometry_of_the_built_particle(particle):
    geometry = particle_geometry(particle)
    symbols = particle.get_chemical_symbols()
    assert (symbols.count('Si'), symbols.count('C')) == (29, 276)
    # the builder's nominal radii: core 5 Å, shell from 5 + 2 (gap) = 7 Å to 10 Å
    assert geometry['core_radius_a'] == pytest.approx(5.0, abs=0.2)
    assert 7.0 <= geometry['shell_inner_radius_a'] < 7.3
    assert 9.7 < geometry['shell_outer_radius_a'] <= 10.0
    assert shell_thickness_nm(particle) == pytest.approx(0.3, abs=0.04)
    assert geometry['particle_radius_a'] == geometry['shell_outer_radius_a']
    bare = particle_geometry(build_particle(0.0, TINY))
    assert bare['shell_inner_radius_a'] is None and bare['particle_radius_a'] == bare['core_radius_a']


def test_a_uniform_sphere_has_its_radius_as_core_radius():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(20000, 3))
    points *= (8.0 * rng.random(20000) ** (1 / 3) / np.linalg.norm(points, axis=1))[:, None]
    from ase import Atoms

    sphere = Atoms('Si' * len(points), positions=points)
    assert particle_geometry(sphere)['core_radius_a'] == pytest.approx(8.0, rel=0.01)


def test_lithiating_the_core_scales_it_to_the_free_volume_and_moves_the_shell(particle):
    before = particle_geometry(particle)
    lithiated = lithiate_core(particle, 1.0, min_distance=1.8, seed=3, vacuum=6.0)
    symbols = lithiated.get_chemical_symbols()
    assert (symbols.count('Si'), symbols.count('Li'), symbols.count('C')) == (29, 29, 276)
    scale = (volume_per_si(1.0) / SI_VOLUME_PER_ATOM) ** (1 / 3)
    is_si = np.array(symbols) == 'Si'
    center = lithiated.positions[is_si].mean(axis=0)
    si_rms = np.sqrt(((lithiated.positions[is_si] - center) ** 2).sum(axis=1).mean())
    original = particle.positions[np.array(particle.get_chemical_symbols()) == 'Si']
    original_rms = np.sqrt(((original - original.mean(axis=0)) ** 2).sum(axis=1).mean())
    assert si_rms == pytest.approx(scale * original_rms, rel=1e-9)
    after = particle_geometry(lithiated)
    shift = (scale - 1) * before['core_radius_a']
    # the shell moved out by the core's growth, thickness kept
    assert after['shell_inner_radius_a'] - before['shell_inner_radius_a'] == pytest.approx(shift, abs=0.3)
    assert after['shell_outer_radius_a'] - after['shell_inner_radius_a'] == pytest.approx(
        before['shell_outer_radius_a'] - before['shell_inner_radius_a'], abs=0.3
    )
    assert after['li_outside_core_fraction'] == 0.0
    from aiida_sianode.structures.common import minimum_distance

    assert minimum_distance(lithiated[np.array(symbols) == 'Li']) >= 1.8 - 1e-9
    assert lithiated.positions.min() >= 6.0 - 1e-9  # the requested vacuum to each face
    changes = lithiation_changes(before, after)
    assert changes['shell_strain_percent'] > 0
    assert changes['particle_volume_change_percent'] > 0


@pytest.mark.parametrize('protocol', ['fast', 'balanced', 'stringent'])
def test_every_protocol_is_valid(protocol):
    validate_settings(split_settings(get_settings('core_shell', protocol))[1], [])


@pytest.mark.parametrize(
    ('settings', 'message'),
    [
        ({'x': 0.0}, r'x must lie in \(0, 4.4\]'),
        ({'x': 5.0}, r'x must lie in \(0, 4.4\]'),
        ({'core_radius_nm': 0.3, 'shell_thicknesses_nm': [0.0]}, 'under 0.5 nm'),
        ({'shell_thicknesses_nm': []}, 'shell_thicknesses_nm is empty'),
        ({'shell_thicknesses_nm': [0.0, 0.1]}, 'each must be 0'),
        ({'shell_thicknesses_nm': [0.3, 0.3]}, 'repeats a thickness'),
        ({'shell_thicknesses_nm': [0.0], 'anneal': {'temperature_k': -5}}, 'anneal.temperature_k must be positive'),
        ({'shell_thicknesses_nm': [0.0], 'anneal': {'time_ps': 1}}, 'unknown setting.*time_ps'),
        ({'shell_thicknesses_nm': [0.0], 'shell': 1.0}, 'unknown setting.*shell'),
    ],
)
def test_refused_settings(settings, message):
    with pytest.raises(InvalidPropertyInput, match=message):
        validate_settings(settings, [])


def test_refused_particles(particle):
    lithiated = lithiate_core(particle, 0.5, vacuum=6.0)
    with pytest.raises(InvalidPropertyInput, match='holds Li already'):
        validate_settings({}, [lithiated])
    with pytest.raises(InvalidPropertyInput, match='has no Si core'):
        validate_settings({}, [particle[np.array(particle.get_chemical_symbols()) == 'C']])
    with pytest.raises(InvalidPropertyInput, match='not a particle in vacuum'):
        validate_settings({}, [bulk('Si', 'diamond', a=5.43, cubic=True)])
    oxidised = particle.copy()
    oxidised[0].symbol = 'O'
    with pytest.raises(InvalidPropertyInput, match='contains O'):
        validate_settings({}, [oxidised])
    validate_settings({}, [particle])


def pair_member(shell_stiffness: float):
    """Lennard-Jones Li/Si/C (matscipy); the C-C well depth sets how hard the shell resists."""
    from matscipy.calculators.pair_potential import LennardJonesCut, PairPotential

    return PairPotential(
        {
            (3, 3): LennardJonesCut(0.1, 2.7, 6.0),
            (3, 14): LennardJonesCut(0.3, 2.4, 6.0),
            (14, 14): LennardJonesCut(0.4, 2.1, 6.0),
            (6, 6): LennardJonesCut(shell_stiffness, 1.4, 4.0),
            (3, 6): LennardJonesCut(0.05, 2.0, 5.0),
            (6, 14): LennardJonesCut(0.1, 2.0, 5.0),
        }
    )


SETTINGS = {
    **TINY,
    'shell_thicknesses_nm': [0.0, 0.3],
    'x': 1.0,
    'relax': {'fmax_ev_a': 0.1, 'max_steps': 15},
    'anneal': {'steps': 3, 'temperature_k': 300},
}


@pytest.fixture(scope='module')
def two_members(tmp_path_factory):
    return [
        (run_member([], pair_member(stiffness), SETTINGS, path), path)
        for stiffness, path in ((0.3, tmp_path_factory.mktemp('soft')), (1.0, tmp_path_factory.mktemp('stiff')))
    ]


def test_per_member_run_on_a_tiny_particle(two_members):
    result, workdir = two_members[0]
    scalars, rows = result['scalars'], result['extra']['particles']
    assert [row['tag'] for row in rows] == ['t0p00nm', 't0p30nm']
    assert scalars['free_core_volume_change_percent'] == pytest.approx(100 * (volume_per_si(1.0) / 20.02 - 1), 0.01)
    for row in rows:
        assert row['lithiated']['n_atoms'] - row['unlithiated']['n_atoms'] == 29  # one Li per Si of the core
        assert scalars[f'core_volume_change_{row["tag"]}_percent'] > 0
        relaxed = read(workdir / f'{row["tag"]}_lithiated.extxyz')
        assert particle_geometry(relaxed)['core_radius_a'] == pytest.approx(row['lithiated']['core_radius_a'])
        relaxed.calc = pair_member(0.3)
        assert relaxed.get_potential_energy() == pytest.approx(row['lithiated']['energy_ev'], abs=1e-6)
    # the bare core's particle is its core; the shelled one reports its shell
    assert scalars['particle_volume_change_t0p00nm_percent'] == scalars['core_volume_change_t0p00nm_percent']
    assert scalars['shell_outer_radius_lithiated_t0p30nm_a'] > scalars['shell_inner_radius_lithiated_t0p30nm_a']
    assert 'shell_strain_t0p30nm_percent' in scalars and 'shell_strain_t0p00nm_percent' not in scalars
    curve = result['curves']['particle_volume_change']
    assert curve['x'] == [0.0, 0.3]
    assert curve['y'] == [
        scalars['particle_volume_change_t0p00nm_percent'],
        scalars['particle_volume_change_t0p30nm_percent'],
    ]


def test_members_differ_and_aggregate(two_members):
    soft, stiff = (result for result, _ in two_members)
    key = 'shell_strain_t0p30nm_percent'
    assert soft['scalars'][key] != pytest.approx(stiff['scalars'][key], abs=1e-3)
    aggregate = aggregate_members([soft, stiff])['scalars'][key]
    assert aggregate['mean'] == pytest.approx((soft['scalars'][key] + stiff['scalars'][key]) / 2)
    assert aggregate['members'] == [soft['scalars'][key], stiff['scalars'][key]]


def test_given_particles_are_used_as_they_are(particle, tmp_path):
    settings = {'x': 0.5, 'relax': {'max_steps': 2}, 'anneal': {'steps': 0}}
    result = run_member([particle], pair_member(0.3), settings, tmp_path)
    (row,) = result['extra']['particles']
    assert row['tag'] == 'particle0'
    assert row['shell_thickness_nm'] == pytest.approx(shell_thickness_nm(particle))
    assert row['lithiated']['n_atoms'] == len(particle) + round(0.5 * 29)
    assert result['curves'] == {}
