"""Si@C core-shell particles: how much a carbon shell holds back the expansion of a lithiated Si core.

For each shell thickness (or each particle given), with one committee member:

1. the unlithiated particle (the ``core-shell`` builder: a diamond Si sphere in a random a-C shell, in vacuum) is
   relaxed, annealed (Langevin NVT) and relaxed again, positions only;
2. the same particle with its core lithiated to ``x`` Li per Si (:func:`lithiate_core`: the core scaled to the
   free Li_xSi volume of the linear model in :mod:`aiida_sianode.structures.lithiation`, the shell moved out by as
   much with its thickness kept, Li placed at random in the core) gets the same relax-anneal-relax treatment: the
   stretched shell pulls back on the core, the core pushes the shell, and the relaxed particle is their balance;
3. :func:`particle_geometry` measures both: core radius (of the uniform sphere with the core's radius of
   gyration, sqrt(5/3) r_rms of the Si and Li atoms around the Si centroid), shell inner and outer radii (the 2nd
   and 98th percentiles of the C distances from that centre), mean shell radius;
4. the changes on lithiation: core volume change (core radius cubed), particle volume change (outer radius
   cubed; the core radius for a bare core), shell hoop strain (mean shell radius), shell thickness change, and the
   free expansion of Li_xSi for comparison (seed paper 001: the shell limits the expansion).

Lengths in Å (``_a``) except shell thicknesses in nm; changes in percent.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
from ase import Atoms

from aiida_sianode.properties.common import InvalidPropertyInput, check_min_distance, relax, require_keys

KIND = 'core_shell'
DESCRIPTION = 'volume change of a lithiated Si@C core-shell particle and the shell strain vs shell thickness'

KNOWN_SETTINGS = (
    'core_radius_nm',
    'shell_thicknesses_nm',
    'x',
    'carbon_density',
    'interface_gap',
    'vacuum',
    'li_min_distance',
    'seed',
    'relax',
    'anneal',
)
RELAX_KEYS = ('fmax_ev_a', 'max_steps')
ANNEAL_KEYS = ('temperature_k', 'steps', 'timestep_fs', 'friction_per_fs')

#: smallest core radius (nm) whose diamond sphere keeps bonded atoms after the builder trims dangling ones
MIN_CORE_RADIUS_NM = 0.5

#: percentiles of the C radial distances taken as the shell's inner and outer radii
SHELL_PERCENTILES = (2.0, 98.0)


# --------------------------------------------------------------------------------------------------------------------
# settings


def validate_settings(settings: Mapping, structures: Sequence[Atoms]) -> None:
    """Refuse settings and particles that cannot give the property, before anything runs.

    Refused: unknown keys; x outside (0, 4.4]; a core radius under 0.5 nm; no shell thickness, a repeated one, or
    one between 0 and 0.28 nm (thinner than two C-C distance floors) or over 10 nm; given particles with elements
    other than Si and C, with Li already in them, without Si, without vacuum around them, or with atoms closer
    than 0.5 Å; non-positive tolerances, temperatures or timesteps.
    """
    from aiida_sianode.structures.lithiation import X_MAX

    require_keys(settings, KNOWN_SETTINGS, KIND)
    require_keys(dict(settings.get('relax', {})), RELAX_KEYS, f'{KIND} (relax)')
    require_keys(dict(settings.get('anneal', {})), ANNEAL_KEYS, f'{KIND} (anneal)')
    x = float(settings.get('x', 1.0))
    if not 0 < x <= X_MAX:
        raise InvalidPropertyInput(f'x must lie in (0, {X_MAX}] Li per Si, got {x}')
    for key, value in dict(settings.get('relax', {})).items():
        if not float(value) > 0:
            raise InvalidPropertyInput(f'relax.{key} must be positive, got {value}')
    anneal = dict(settings.get('anneal', {}))
    for key in ('temperature_k', 'timestep_fs', 'friction_per_fs'):
        if key in anneal and not float(anneal[key]) > 0:
            raise InvalidPropertyInput(f'anneal.{key} must be positive, got {anneal[key]}')
    if int(anneal.get('steps', 0)) < 0:
        raise InvalidPropertyInput(f'anneal.steps must be 0 or more, got {anneal["steps"]}')
    if not 0.5 <= float(settings.get('li_min_distance', 1.8)) <= 3.0:
        raise InvalidPropertyInput(f'li_min_distance must lie in [0.5, 3] Å, got {settings["li_min_distance"]}')

    if structures:
        for index, atoms in enumerate(structures):
            name = f'particle {index} ({atoms.get_chemical_formula()})'
            symbols = set(atoms.get_chemical_symbols())
            if 'Si' not in symbols:
                raise InvalidPropertyInput(f'{name} has no Si core')
            if 'Li' in symbols:
                raise InvalidPropertyInput(f'{name} holds Li already: give the unlithiated particle, x sets the Li')
            foreign = sorted(symbols - {'Si', 'C'})
            if foreign:
                raise InvalidPropertyInput(f'{name} contains {", ".join(foreign)}: a Si@C particle has only Si and C')
            span = atoms.positions.max(axis=0) - atoms.positions.min(axis=0)
            if atoms.pbc.any() and np.any(atoms.cell.lengths() - span < 4.0):
                raise InvalidPropertyInput(f'{name} is not a particle in vacuum: less than 4 Å of vacuum across a face')
            check_min_distance(atoms, name)
        return

    core_radius = float(settings.get('core_radius_nm', 1.0))
    if core_radius < MIN_CORE_RADIUS_NM:
        raise InvalidPropertyInput(
            f'core_radius_nm {core_radius} is under {MIN_CORE_RADIUS_NM} nm: no bonded diamond core fits in it'
        )
    thicknesses = [float(value) for value in settings.get('shell_thicknesses_nm', [])]
    if not thicknesses:
        raise InvalidPropertyInput('shell_thicknesses_nm is empty: give at least one thickness (0 for a bare core)')
    if len(set(thicknesses)) != len(thicknesses):
        raise InvalidPropertyInput(f'shell_thicknesses_nm repeats a thickness: {thicknesses}')
    bad = [value for value in thicknesses if value < 0 or 0 < value < 0.28 or value > 10]
    if bad:
        raise InvalidPropertyInput(
            f'shell thicknesses {bad} nm: each must be 0 (bare core) or 0.28-10 nm (at least two C-C distance floors)'
        )


# --------------------------------------------------------------------------------------------------------------------
# particles


def build_particle(thickness_nm: float, settings: Mapping) -> Atoms:
    """The unlithiated particle of the ``core-shell`` builder with the settings' core radius, density and seed."""
    from aiida_sianode.structures.composites import core_shell

    return core_shell(
        core_radius_nm=float(settings.get('core_radius_nm', 1.0)),
        shell_thickness_nm=float(thickness_nm),
        carbon_density=float(settings.get('carbon_density', 2.0)),
        interface_gap=float(settings.get('interface_gap', 2.0)),
        vacuum=float(settings.get('vacuum', 8.0)),
        seed=int(settings.get('seed', 0)),
    )


def _radii(atoms: Atoms, center: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.linalg.norm(atoms.positions[mask] - center, axis=1)


def lithiate_core(particle: Atoms, x: float, min_distance: float = 1.8, seed: int = 0, vacuum: float = 8.0) -> Atoms:
    """Return ``particle`` with its Si core lithiated to ``x`` Li per Si, before any relaxation.

    The core (the Si atoms) is scaled about its centroid by the free expansion of Li_xSi, (V(x) / V_Si)^(1/3) with
    V(x) the linear model of :func:`aiida_sianode.structures.lithiation.volume_per_si`; every shell (C) atom moves
    radially outwards by the increase of the core radius, so the shell keeps its thickness and is stretched along
    its surface; ``round(x N_Si)`` Li atoms go at random inside the scaled core, none closer than ``min_distance``
    Å to another atom. The cubic cell is resized to leave ``vacuum`` Å around the particle.
    """
    from aiida_sianode.structures.common import make_rng, random_sequential_packing, uniform_in_spherical_shell
    from aiida_sianode.structures.lithiation import SI_VOLUME_PER_ATOM, volume_per_si

    rng = make_rng(seed)
    atoms = particle.copy()
    atoms.calc = None
    symbols = np.array(atoms.get_chemical_symbols())
    is_si, is_c = symbols == 'Si', symbols == 'C'
    center = atoms.positions[is_si].mean(axis=0)
    core_radius = np.sqrt(5 / 3) * np.sqrt((_radii(atoms, center, is_si) ** 2).mean())
    scale = (volume_per_si(x) / SI_VOLUME_PER_ATOM) ** (1 / 3)
    atoms.positions[is_si] = center + scale * (atoms.positions[is_si] - center)
    if is_c.any():
        offsets = atoms.positions[is_c] - center
        distances = np.linalg.norm(offsets, axis=1)[:, None]
        atoms.positions[is_c] = center + offsets * (1 + (scale - 1) * core_radius / distances)
    n_li = round(x * int(is_si.sum()))
    positions = random_sequential_packing(
        n_li,
        uniform_in_spherical_shell(center, 0.0, scale * core_radius),
        min_distance,
        rng,
        obstacles=atoms.positions,
        obstacle_distance=min_distance,
        what='core lithiation',
    )
    atoms += Atoms('Li' * n_li, positions=positions)
    half = np.linalg.norm(atoms.positions - center, axis=1).max() + vacuum
    atoms.positions += half - center
    atoms.set_cell([2 * half] * 3)
    atoms.pbc = True
    return atoms


def particle_geometry(atoms: Atoms) -> dict:
    """Radii (Å) of a core-shell particle around the centroid of its Si atoms.

    ``core_radius_a``: sqrt(5/3) times the rms distance of the core atoms (Si and Li), the radius of a uniform
    sphere with the same radius of gyration; ``shell_inner_radius_a`` and ``shell_outer_radius_a``: the 2nd and
    98th percentiles of the C distances; ``shell_mean_radius_a``: their mean; ``particle_radius_a``: the shell's
    outer radius, or the core radius for a bare core; ``li_outside_core_fraction``: Li beyond the shell's inner
    radius. Shell values are None without C.
    """
    symbols = np.array(atoms.get_chemical_symbols())
    is_si, is_li, is_c = symbols == 'Si', symbols == 'Li', symbols == 'C'
    center = atoms.positions[is_si].mean(axis=0)
    core = _radii(atoms, center, is_si | is_li)
    geometry = {
        'core_radius_a': float(np.sqrt(5 / 3) * np.sqrt((core**2).mean())),
        'shell_inner_radius_a': None,
        'shell_outer_radius_a': None,
        'shell_mean_radius_a': None,
        'li_outside_core_fraction': 0.0,
    }
    if is_c.any():
        shell = _radii(atoms, center, is_c)
        inner, outer = np.percentile(shell, SHELL_PERCENTILES)
        geometry.update(
            shell_inner_radius_a=float(inner),
            shell_outer_radius_a=float(outer),
            shell_mean_radius_a=float(shell.mean()),
        )
        if is_li.any():
            geometry['li_outside_core_fraction'] = float((_radii(atoms, center, is_li) > inner).mean())
    geometry['particle_radius_a'] = geometry['shell_outer_radius_a'] or geometry['core_radius_a']
    return geometry


def shell_thickness_nm(atoms: Atoms) -> float:
    """The shell thickness of a particle (nm, from :func:`particle_geometry`), 0 without C."""
    geometry = particle_geometry(atoms)
    if geometry['shell_outer_radius_a'] is None:
        return 0.0
    return (geometry['shell_outer_radius_a'] - geometry['shell_inner_radius_a']) / 10


def lithiation_changes(before: Mapping, after: Mapping) -> dict:
    """Changes (percent) from the unlithiated ``before`` to the lithiated ``after`` :func:`particle_geometry`."""
    changes = {
        'core_volume_change_percent': 100 * ((after['core_radius_a'] / before['core_radius_a']) ** 3 - 1),
        'particle_volume_change_percent': 100 * ((after['particle_radius_a'] / before['particle_radius_a']) ** 3 - 1),
    }
    if before['shell_mean_radius_a'] is not None and after['shell_mean_radius_a'] is not None:
        changes['shell_strain_percent'] = 100 * (after['shell_mean_radius_a'] / before['shell_mean_radius_a'] - 1)
        thickness_before = before['shell_outer_radius_a'] - before['shell_inner_radius_a']
        thickness_after = after['shell_outer_radius_a'] - after['shell_inner_radius_a']
        changes['shell_thickness_change_percent'] = 100 * (thickness_after / thickness_before - 1)
    return changes


# --------------------------------------------------------------------------------------------------------------------
# the kernel


def _relax_anneal_relax(atoms: Atoms, calculator, settings: Mapping) -> dict:
    """Relax (positions), anneal (Langevin NVT) and relax again ``atoms`` in place; return the last relax report."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    relax_settings = settings.get('relax', {})
    fmax = float(relax_settings.get('fmax_ev_a', 0.05))
    max_steps = int(relax_settings.get('max_steps', 300))
    atoms.calc = calculator
    relax(atoms, fmax=fmax, max_steps=max_steps, cell=False, stress_tol_gpa=None)
    anneal = settings.get('anneal', {})
    steps = int(anneal.get('steps', 0))
    if steps:
        temperature = float(anneal.get('temperature_k', 600.0))
        rng = np.random.default_rng(int(settings.get('seed', 0)))
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
        dynamics = Langevin(
            atoms,
            timestep=float(anneal.get('timestep_fs', 1.0)) * units.fs,
            temperature_K=temperature,
            friction=float(anneal.get('friction_per_fs', 0.01)) / units.fs,
            fixcm=False,
            rng=rng,
        )
        dynamics.run(steps)
        atoms.set_momenta(np.zeros((len(atoms), 3)))
    return relax(atoms, fmax=fmax, max_steps=max_steps, cell=False, stress_tol_gpa=None)


def _tag(thickness_nm: float) -> str:
    """``t0p50nm`` for 0.5 nm: a key fragment without dots (AiiDA attribute keys may not hold them)."""
    return 't' + f'{thickness_nm:.2f}'.replace('.', 'p') + 'nm'


def run_member(structures: Sequence[Atoms], calculator, settings: Mapping, workdir: pathlib.Path) -> dict:
    """Unlithiated and lithiated particle for every shell thickness (or given particle) with one member.

    Relaxed particles are written to ``workdir/<tag>_{unlithiated,lithiated}.extxyz``.
    """
    from ase.io import write

    from aiida_sianode.structures.lithiation import SI_VOLUME_PER_ATOM, volume_per_si

    validate_settings(settings, structures)
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    x = float(settings.get('x', 1.0))
    if structures:
        particles = [(shell_thickness_nm(atoms), atoms.copy()) for atoms in structures]
    else:
        particles = [(float(t), build_particle(float(t), settings)) for t in settings['shell_thicknesses_nm']]

    scalars = {'free_core_volume_change_percent': 100 * (volume_per_si(x) / SI_VOLUME_PER_ATOM - 1), 'x': x}
    rows = []
    for index, (thickness, particle) in enumerate(particles):
        tag = _tag(thickness) if not structures else f'particle{index}'
        particle.calc = None
        lithiated = lithiate_core(
            particle,
            x,
            float(settings.get('li_min_distance', 1.8)),
            int(settings.get('seed', 0)),
            float(settings.get('vacuum', 8.0)),
        )
        row = {'tag': tag, 'shell_thickness_nm': thickness, 'n_si': particle.get_chemical_symbols().count('Si')}
        for state, atoms in (('unlithiated', particle), ('lithiated', lithiated)):
            report = _relax_anneal_relax(atoms, calculator, settings)
            row[state] = {
                **particle_geometry(atoms),
                'energy_ev': report['energy_ev'],
                'converged': report['converged'],
                'n_atoms': len(atoms),
            }
            relaxed = atoms.copy()
            relaxed.calc = None
            write(workdir / f'{tag}_{state}.extxyz', relaxed)
        row['changes'] = lithiation_changes(row['unlithiated'], row['lithiated'])
        rows.append(row)
        for state in ('unlithiated', 'lithiated'):
            for key in ('core_radius_a', 'shell_inner_radius_a', 'shell_outer_radius_a'):
                if row[state][key] is not None:
                    name, unit = key.rsplit('_', 1)
                    scalars[f'{name}_{state}_{tag}_{unit}'] = row[state][key]
        for key, value in row['changes'].items():
            name, unit = key.rsplit('_', 1)
            scalars[f'{name}_{tag}_{unit}'] = value
        scalars[f'li_outside_core_fraction_{tag}'] = row['lithiated']['li_outside_core_fraction']

    curves = {}
    ordered = sorted(rows, key=lambda row: row['shell_thickness_nm'])
    thicknesses = [row['shell_thickness_nm'] for row in ordered]
    if len(set(thicknesses)) == len(thicknesses) and len(rows) > 1:
        for key, label in (
            ('core_volume_change_percent', 'core volume change on lithiation (%)'),
            ('particle_volume_change_percent', 'particle volume change on lithiation (%)'),
            ('shell_strain_percent', 'shell hoop strain (%)'),
        ):
            selected = [row for row in ordered if key in row['changes']]
            if len(selected) > 1:
                curves[key.removesuffix('_percent')] = {
                    'x': [row['shell_thickness_nm'] for row in selected],
                    'y': [row['changes'][key] for row in selected],
                    'x_label': 'shell thickness (nm)',
                    'y_label': label,
                }
    unconverged = [
        f'{row["tag"]}_{state}' for row in rows for state in ('unlithiated', 'lithiated') if not row[state]['converged']
    ]
    return {'scalars': scalars, 'curves': curves, 'extra': {'particles': rows, 'unconverged': unconverged}}
