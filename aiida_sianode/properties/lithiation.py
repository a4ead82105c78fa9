"""Lithiation thermodynamics of silicon: formation energies, convex hull, voltage profile and volume expansion.

With one committee member, every crystalline Li-Si phase (bcc Li, diamond Si, LiSi, Li12Si7, Li7Si3, Li13Si4,
Li15Si4, Li17Si4 from the ``lixsi-crystal`` builder), every Li-Si structure given by the user and, optionally,
amorphous Li_xSi cells (the ``lixsi`` builder on a random a-Si host, annealed at constant volume with the member,
then relaxed) are relaxed with their cells. From the relaxed energies and volumes, :func:`lithiation_analysis`
(a pure function, also used on DFT energies) computes:

- the formation energy per atom against bcc Li and diamond Si, E_f = (E - n_Li mu_Li - n_Si mu_Si) / N, with mu
  the relaxed energies per atom of the two end members;
- the convex hull and each phase's energy above it (pymatgen ``PhaseDiagram``);
- the voltage profile against Li metal from the hull: between neighbouring hull phases at x1 < x2 Li per Si,
  V = -[E(Li_x2 Si) - E(Li_x1 Si) - (x2 - x1) mu_Li] / (x2 - x1) (volts, one electron per Li); Li beyond the
  Li-richest stable phase plates as metal at 0 V. pymatgen's ``InsertionElectrode`` gives the same steps when
  every phase it keeps is on this hull, but it builds its own hull with Li metal pushed 10 eV up, so a phase
  that is unstable against Li metal can enter it and give a negative step: we use the true hull;
- volume per Si and expansion against diamond Si, 100 (V/N_Si / v_Si - 1) %, as functions of x.

Energies in eV, volumes in Å^3, x = Li per Si.
"""

from __future__ import annotations

import itertools
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
from ase import Atoms

from aiida_sianode.properties.common import InvalidPropertyInput, check_min_distance, relax, require_keys

KIND = 'lithiation'
DESCRIPTION = 'formation energies, convex hull, voltage vs Li metal and volume expansion of Li-Si phases'

#: end members built in: bcc Li and diamond Si (lattice constants only start the relaxation)
END_MEMBERS = ('Li', 'Si')

#: Faraday constant over 3.6 (mAh per mol of electrons) and the molar mass of Si: capacity per gram of Si
MAH_PER_MOL_ELECTRONS = 26801.4815
SI_MOLAR_MASS = 28.0855

KNOWN_SETTINGS = ('phases', 'primitive', 'relax', 'amorphous', 'voltage_grid_step', 'reference_min_width_a')
RELAX_KEYS = ('fmax_ev_a', 'stress_tol_gpa', 'max_steps')
AMORPHOUS_KEYS = (
    'x_values',
    'n_si',
    'anneal_temperature_k',
    'anneal_steps',
    'timestep_fs',
    'friction_per_fs',
    'seed',
)


# --------------------------------------------------------------------------------------------------------------------
# settings


def _phases_available() -> tuple[str, ...]:
    from aiida_sianode.structures.lithiation import LIXSI_PHASES

    return END_MEMBERS + LIXSI_PHASES


def _counts(atoms: Atoms) -> tuple[int, int]:
    symbols = atoms.get_chemical_symbols()
    return symbols.count('Li'), symbols.count('Si')


def validate_settings(settings: Mapping, structures: Sequence[Atoms]) -> None:
    """Refuse settings and structures that cannot give a hull, before anything runs.

    Refused: unknown keys; unknown phases; structures with elements other than Li and Si, or not periodic, or with
    atoms closer than 0.5 Å; a hull without both end members (bcc Li and diamond Si, as phases or structures);
    nothing between them (no compound, no amorphous x); amorphous x outside (0, 4.4]; non-positive relaxation
    tolerances, temperatures, steps or grid step.
    """
    require_keys(settings, KNOWN_SETTINGS, KIND)
    phases = list(settings.get('phases', []))
    unknown = sorted(set(phases) - set(_phases_available()))
    if unknown:
        raise InvalidPropertyInput(
            f'unknown Li-Si phase(s) {", ".join(unknown)}; the built-in phases are {", ".join(_phases_available())}'
        )
    if len(set(phases)) != len(phases):
        raise InvalidPropertyInput(f'phases lists a phase twice: {phases}')
    for index, atoms in enumerate(structures):
        foreign = sorted(set(atoms.get_chemical_symbols()) - {'Li', 'Si'})
        if foreign:
            raise InvalidPropertyInput(
                f'structure {index} ({atoms.get_chemical_formula()}) contains {", ".join(foreign)}: the Li-Si hull '
                'takes only Li and Si'
            )
        if not atoms.pbc.all():
            raise InvalidPropertyInput(f'structure {index} ({atoms.get_chemical_formula()}) is not periodic in 3D')
        check_min_distance(atoms, f'structure {index} ({atoms.get_chemical_formula()})')

    relax_settings = dict(settings.get('relax', {}))
    require_keys(relax_settings, RELAX_KEYS, f'{KIND} (relax)')
    for key in ('fmax_ev_a', 'stress_tol_gpa'):
        if key in relax_settings and not float(relax_settings[key]) > 0:
            raise InvalidPropertyInput(f'relax.{key} must be positive, got {relax_settings[key]}')
    if 'max_steps' in relax_settings and int(relax_settings['max_steps']) < 1:
        raise InvalidPropertyInput(f'relax.max_steps must be at least 1, got {relax_settings["max_steps"]}')
    if not 0 <= float(settings.get('reference_min_width_a', 0.0)) <= 30:
        raise InvalidPropertyInput(
            f'reference_min_width_a must lie in [0, 30] Å, got {settings["reference_min_width_a"]}'
        )
    if not float(settings.get('voltage_grid_step', 0.05)) > 0:
        raise InvalidPropertyInput(f'voltage_grid_step must be positive, got {settings["voltage_grid_step"]}')

    amorphous = dict(settings.get('amorphous', {}))
    require_keys(amorphous, AMORPHOUS_KEYS, f'{KIND} (amorphous)')
    x_values = [float(x) for x in amorphous.get('x_values', [])]
    from aiida_sianode.structures.lithiation import X_MAX

    bad = [x for x in x_values if not 0 < x <= X_MAX]
    if bad:
        raise InvalidPropertyInput(f'amorphous.x_values must lie in (0, {X_MAX}] Li per Si, got {bad}')
    if x_values:
        if int(amorphous.get('n_si', 16)) < 2:
            raise InvalidPropertyInput(f'amorphous.n_si must be at least 2, got {amorphous["n_si"]}')
        for key in ('anneal_temperature_k', 'timestep_fs'):
            if key in amorphous and not float(amorphous[key]) > 0:
                raise InvalidPropertyInput(f'amorphous.{key} must be positive, got {amorphous[key]}')
        if int(amorphous.get('anneal_steps', 0)) < 0:
            raise InvalidPropertyInput(f'amorphous.anneal_steps must be 0 or more, got {amorphous["anneal_steps"]}')

    compositions = [(1, 0) if phase == 'Li' else (0, 1) if phase == 'Si' else (1, 1) for phase in phases]
    compositions += [_counts(atoms) for atoms in structures]
    has_li = any(n_li > 0 and n_si == 0 for n_li, n_si in compositions)
    has_si = any(n_si > 0 and n_li == 0 for n_li, n_si in compositions)
    if not (has_li and has_si):
        missing = ' and '.join(name for name, present in (('Li', has_li), ('Si', has_si)) if not present)
        raise InvalidPropertyInput(
            f'a hull without both end members: no pure {missing}. Add {missing!r} to phases (bcc Li, diamond Si) '
            'or give the structure(s)'
        )
    if not x_values and not any(n_li and n_si for n_li, n_si in compositions):
        raise InvalidPropertyInput(
            'nothing between the end members: give at least one Li-Si compound (phases, structures) or amorphous '
            'x_values'
        )


# --------------------------------------------------------------------------------------------------------------------
# configurations


def end_member(symbol: str, primitive: bool = True) -> Atoms:
    """bcc Li (a = 3.51 Å) or diamond Si (a = 5.431 Å): the primitive cell, or the conventional cubic one."""
    from ase.build import bulk

    from aiida_sianode.structures.silicon import SI_LATTICE_CONSTANT

    if symbol == 'Li':
        return bulk('Li', 'bcc', a=3.51, cubic=not primitive)
    return bulk('Si', 'diamond', a=SI_LATTICE_CONSTANT, cubic=not primitive)


def crystal_configurations(structures: Sequence[Atoms], settings: Mapping) -> list[tuple[str, Atoms]]:
    """``(name, atoms)`` of the built-in phases (names as in ``phases``) then the given structures (named by their
    formula with a ``structure<i>_`` prefix), unrelaxed."""
    from aiida_sianode.structures.lithiation import lixsi_crystal

    primitive = bool(settings.get('primitive', True))
    configurations = []
    for phase in settings.get('phases', []):
        atoms = end_member(phase, primitive) if phase in END_MEMBERS else lixsi_crystal(phase, primitive=primitive)
        atoms.info = {}
        configurations.append((phase, atoms))
    for index, atoms in enumerate(structures):
        atoms = atoms.copy()
        atoms.calc = None
        configurations.append((f'structure{index}_{atoms.get_chemical_formula(empirical=True)}', atoms))
    return configurations


def amorphous_start(x: float, settings: Mapping) -> Atoms:
    """The starting amorphous Li_xSi cell: ``lixsi`` on a random a-Si host of ``n_si`` atoms, volume from the
    linear model of :mod:`aiida_sianode.structures.lithiation`. The same for every member."""
    from aiida_sianode.structures.lithiation import lixsi

    amorphous = settings.get('amorphous', {})
    return lixsi(x=x, host_kind='random', n_si=int(amorphous.get('n_si', 16)), seed=int(amorphous.get('seed', 0)))


def amorphous_name(atoms: Atoms) -> str:
    """``a_<reduced formula>``, e.g. ``a_Li3Si2``."""
    return 'a_' + atoms.get_chemical_formula(empirical=True)


def anneal(atoms: Atoms, settings: Mapping) -> None:
    """Anneal ``atoms`` (carrying its calculator) in place: Langevin NVT at ``anneal_temperature_k`` for
    ``anneal_steps`` steps of ``timestep_fs``; velocities from the ``seed``."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    amorphous = settings.get('amorphous', {})
    steps = int(amorphous.get('anneal_steps', 0))
    if steps == 0:
        return
    temperature = float(amorphous.get('anneal_temperature_k', 800.0))
    rng = np.random.default_rng(int(amorphous.get('seed', 0)))
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dynamics = Langevin(
        atoms,
        timestep=float(amorphous.get('timestep_fs', 1.0)) * units.fs,
        temperature_K=temperature,
        friction=float(amorphous.get('friction_per_fs', 0.01)) / units.fs,
        fixcm=False,  # a drift of the whole periodic cell changes nothing here
        rng=rng,
    )
    dynamics.run(steps)
    atoms.set_momenta(np.zeros((len(atoms), 3)))


# --------------------------------------------------------------------------------------------------------------------
# the kernel


def _relax_entry(name: str, kind: str, atoms: Atoms, calculator, settings: Mapping, workdir: pathlib.Path) -> dict:
    from ase.io import write

    relax_settings = settings.get('relax', {})
    atoms.calc = calculator
    report = relax(
        atoms,
        fmax=float(relax_settings.get('fmax_ev_a', 0.02)),
        stress_tol_gpa=float(relax_settings.get('stress_tol_gpa', 0.05)),
        max_steps=int(relax_settings.get('max_steps', 300)),
        cell=True,
    )
    relaxed = atoms.copy()
    relaxed.calc = None
    write(workdir / f'{name}.extxyz', relaxed)
    return {
        'name': name,
        'kind': kind,
        'formula': atoms.get_chemical_formula(),
        'n_li': _counts(atoms)[0],
        'n_si': _counts(atoms)[1],
        'energy_ev': report['energy_ev'],
        'volume_a3': float(atoms.get_volume()),
        'converged': report['converged'],
        'steps': report['steps'],
        'max_force_ev_a': report['max_force_ev_a'],
        'max_stress_gpa': report['max_stress_gpa'],
    }


def run_member(structures: Sequence[Atoms], calculator, settings: Mapping, workdir: pathlib.Path) -> dict:
    """Relax every phase (and anneal then relax every amorphous cell) with one committee member, then
    :func:`lithiation_analysis`. Relaxed cells are written to ``workdir/<name>.extxyz``."""
    validate_settings(settings, structures)
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    entries = [
        _relax_entry(
            name,
            'crystal' if index < len(settings.get('phases', [])) else 'given',
            atoms,
            calculator,
            settings,
            workdir,
        )
        for index, (name, atoms) in enumerate(crystal_configurations(structures, settings))
    ]
    for x in settings.get('amorphous', {}).get('x_values', []):
        atoms = amorphous_start(float(x), settings)
        atoms.calc = calculator
        anneal(atoms, settings)
        entries.append(_relax_entry(amorphous_name(atoms), 'amorphous', atoms, calculator, settings, workdir))
    result = lithiation_analysis(entries, voltage_grid_step=float(settings.get('voltage_grid_step', 0.05)))
    result['extra']['unconverged'] = [entry['name'] for entry in entries if not entry['converged']]
    return result


# --------------------------------------------------------------------------------------------------------------------
# analysis (pure: also used on DFT energies)


def lithiation_analysis(entries: Sequence[Mapping], voltage_grid_step: float = 0.05) -> dict:
    """Formation energies, hull, voltage profile and volume expansion from relaxed (or DFT) energies and volumes.

    :param entries: one mapping per phase with ``name``, ``n_li``, ``n_si`` (atoms in the cell), ``energy_ev``
        (total energy of the cell), ``volume_a3`` (cell volume) and optionally ``kind`` (``amorphous`` entries get
        their own curves). The Li-poorest pure-Li and pure-Si entries of lowest energy per atom are the end members.
    :param voltage_grid_step: spacing (Li per Si) of the x grid the voltage profile is sampled on.
    :returns: a ``run_member``-shaped dict: ``scalars`` (``formation_energy_<name>_ev_atom``,
        ``e_above_hull_<name>_ev_atom``, ``volume_per_si_<name>_a3``, ``expansion_<name>_percent``,
        ``average_voltage_v``, ``max_voltage_v``, ``x_max_stable``, ``capacity_mah_per_g_si``), ``curves``
        (``formation_energy``, ``hull``, ``voltage``, ``volume_per_si``, ``expansion`` and their ``_amorphous``
        twins) and ``extra`` (the entries, the stable phases and the voltage steps).
    :raises InvalidPropertyInput: for a hull without both end members.
    """
    from pymatgen.analysis.phase_diagram import PhaseDiagram
    from pymatgen.core import Composition
    from pymatgen.entries.computed_entries import ComputedEntry

    entries = [dict(entry) for entry in entries]
    for entry in entries:
        if entry['n_li'] + entry['n_si'] == 0:
            raise InvalidPropertyInput(f'entry {entry["name"]} has no atoms')
        entry['per_atom'] = entry['energy_ev'] / (entry['n_li'] + entry['n_si'])
    li_entries = [entry for entry in entries if entry['n_si'] == 0]
    si_entries = [entry for entry in entries if entry['n_li'] == 0]
    if not li_entries or not si_entries:
        raise InvalidPropertyInput('a hull without both end members: the entries need pure Li and pure Si')
    mu_li = min(entry['per_atom'] for entry in li_entries)
    mu_si = min(entry['per_atom'] for entry in si_entries)
    si_reference = min(si_entries, key=lambda entry: entry['per_atom'])
    v_si = si_reference['volume_a3'] / si_reference['n_si']

    computed = []
    for entry in entries:
        composition = Composition({'Li': entry['n_li'], 'Si': entry['n_si']})
        computed.append(ComputedEntry(composition, entry['energy_ev'], entry_id=entry['name']))
    diagram = PhaseDiagram(computed)

    scalars: dict[str, float] = {}
    for entry, pmg_entry in zip(entries, computed):
        n_atoms = entry['n_li'] + entry['n_si']
        entry['li_fraction'] = entry['n_li'] / n_atoms
        entry['formation_energy_ev_atom'] = (
            entry['per_atom'] - entry['li_fraction'] * mu_li - (1 - entry['li_fraction']) * mu_si
        )
        entry['e_above_hull_ev_atom'] = float(diagram.get_e_above_hull(pmg_entry, allow_negative=True))
        scalars[f'formation_energy_{entry["name"]}_ev_atom'] = entry['formation_energy_ev_atom']
        scalars[f'e_above_hull_{entry["name"]}_ev_atom'] = entry['e_above_hull_ev_atom']
        if entry['n_si']:
            entry['x'] = entry['n_li'] / entry['n_si']
            entry['volume_per_si_a3'] = entry['volume_a3'] / entry['n_si']
            entry['expansion_percent'] = 100 * (entry['volume_per_si_a3'] / v_si - 1)
            scalars[f'volume_per_si_{entry["name"]}_a3'] = entry['volume_per_si_a3']
            scalars[f'expansion_{entry["name"]}_percent'] = entry['expansion_percent']

    # voltage steps between neighbouring phases on the hull (Li metal included, so no step is negative)
    stable_hosts = sorted(
        (e for e in diagram.stable_entries if e.composition['Si'] > 0),
        key=lambda e: e.composition['Li'] / e.composition['Si'],
    )
    steps = []
    for low, high in itertools.pairwise(stable_hosts):
        x_low, x_high = (e.composition['Li'] / e.composition['Si'] for e in (low, high))
        per_si_low, per_si_high = (e.energy / e.composition['Si'] for e in (low, high))
        steps.append(
            {
                'x_low': float(x_low),
                'x_high': float(x_high),
                'voltage_v': float(-(per_si_high - per_si_low - (x_high - x_low) * mu_li) / (x_high - x_low)),
                'from': low.entry_id,
                'to': high.entry_id,
            }
        )
    steps.sort(key=lambda step: step['x_low'])
    x_max_stable = steps[-1]['x_high'] if steps else 0.0
    if steps:
        charge = sum(step['voltage_v'] * (step['x_high'] - step['x_low']) for step in steps)
        scalars['average_voltage_v'] = charge / x_max_stable
        scalars['max_voltage_v'] = max(step['voltage_v'] for step in steps)
    else:
        scalars['average_voltage_v'] = 0.0
        scalars['max_voltage_v'] = 0.0
    scalars['x_max_stable'] = x_max_stable
    scalars['capacity_mah_per_g_si'] = x_max_stable * MAH_PER_MOL_ELECTRONS / SI_MOLAR_MASS

    curves = {}
    hosts_x = [entry for entry in entries if entry['n_si']]
    x_top = max(entry['x'] for entry in hosts_x)
    if x_top > 0:
        grid = np.arange(0.0, x_top + 1e-9, voltage_grid_step)
        curves['voltage'] = {
            'x': grid.tolist(),
            'y': [_voltage_at(x, steps) for x in grid],
            'x_label': 'x in Li$_x$Si',
            'y_label': 'voltage vs Li/Li$^+$ (V)',
        }
    fractions = np.linspace(0.0, 1.0, 101)
    curves['hull'] = {
        'x': fractions.tolist(),
        'y': [_hull_energy(diagram, fraction, mu_li, mu_si) for fraction in fractions],
        'x_label': 'Li fraction',
        'y_label': 'hull formation energy (eV/atom)',
    }
    for suffix, selected in (
        ('', [e for e in entries if e.get('kind') != 'amorphous']),
        ('_amorphous', [e for e in entries if e.get('kind') == 'amorphous']),
    ):
        if not selected:
            continue
        # one point per composition: the lowest formation energy there (a given c-Si beside the built one, say)
        lowest: dict[float, dict] = {}
        for entry in selected:
            key = round(entry['li_fraction'], 9)
            if key not in lowest or entry['formation_energy_ev_atom'] < lowest[key]['formation_energy_ev_atom']:
                lowest[key] = entry
        by_fraction = [lowest[key] for key in sorted(lowest)]
        curves[f'formation_energy{suffix}'] = {
            'x': [entry['li_fraction'] for entry in by_fraction],
            'y': [entry['formation_energy_ev_atom'] for entry in by_fraction],
            'x_label': 'Li fraction',
            'y_label': 'formation energy (eV/atom)',
        }
        by_x = [entry for entry in by_fraction if entry['n_si']]
        for name, key, label in (
            ('volume_per_si', 'volume_per_si_a3', 'volume per Si (Å$^3$)'),
            ('expansion', 'expansion_percent', 'expansion vs c-Si (%)'),
        ):
            if by_x:
                curves[f'{name}{suffix}'] = {
                    'x': [entry['x'] for entry in by_x],
                    'y': [entry[key] for entry in by_x],
                    'x_label': 'x in Li$_x$Si',
                    'y_label': label,
                }

    stable = sorted(entry.entry_id for entry in diagram.stable_entries)
    extra = {
        'entries': [{key: value for key, value in entry.items() if key != 'per_atom'} for entry in entries],
        'stable_phases': stable,
        'voltage_steps': steps,
        'mu_li_ev': mu_li,
        'mu_si_ev': mu_si,
        'volume_per_si_c_si_a3': v_si,
        'voltage_method': 'steps between neighbouring phases of the pymatgen PhaseDiagram hull, Li metal included',
    }
    return {'scalars': scalars, 'curves': curves, 'extra': extra}


def _voltage_at(x: float, steps: Sequence[Mapping]) -> float:
    """The voltage at x Li per Si: that of the step with x_low < x <= x_high (the first step at x = 0); 0 V beyond
    the Li-richest stable phase (Li plates)."""
    for step in steps:
        if x <= step['x_high'] + 1e-9:
            return step['voltage_v']
    return 0.0


def _hull_energy(diagram, fraction: float, mu_li: float, mu_si: float) -> float:
    """Formation energy per atom (against the end members) of the hull at Li fraction ``fraction``."""
    from pymatgen.core import Composition

    composition = Composition({'Li': fraction, 'Si': 1 - fraction})
    return float(diagram.get_hull_energy_per_atom(composition) - fraction * mu_li - (1 - fraction) * mu_si)


# --------------------------------------------------------------------------------------------------------------------
# DFT reference


def reference_configurations(structures: Sequence[Atoms], settings: Mapping) -> list[Atoms]:
    """The crystalline phases and given structures as built (not relaxed by the committee): a DFT labeler's single
    points on them give the DFT hull at those cells. Amorphous cells are left out (they need the member's anneal).

    With ``reference_min_width_a`` > 0 the conventional cells are used, each repeated until every perpendicular
    width is at least that many Å (0: the cells ``primitive`` asks for, as built).
    A labeler that samples only the Gamma point (GFN1-xTB through tblite) needs this (about 10 Å): on a 1-atom
    bcc Li or 2-atom Si cell its energy is far from the bulk one; k-point codes (GPAW, VASP, CASTEP) do not.
    """
    min_width = float(settings.get('reference_min_width_a', 0.0))
    if min_width > 0:
        settings = {**settings, 'primitive': False}
    configurations = []
    for name, atoms in crystal_configurations(structures, settings):
        if min_width > 0:
            widths = atoms.cell.volume / np.linalg.norm(np.cross(atoms.cell[[1, 2, 0]], atoms.cell[[2, 0, 1]]), axis=1)
            atoms = atoms.repeat([max(1, int(np.ceil(min_width / width - 1e-9))) for width in widths])
        atoms.info['lithiation_name'] = name
        configurations.append(atoms)
    return configurations


def reference_result(configurations: Sequence[Atoms], settings: Mapping) -> dict:
    """:func:`lithiation_analysis` of the labelled :func:`reference_configurations` (energies from their
    calculators, volumes from their cells)."""
    names = [name for name, _ in crystal_configurations([], settings)]
    entries = []
    for index, atoms in enumerate(configurations):
        n_li, n_si = _counts(atoms)
        name = atoms.info.get('lithiation_name') or (
            names[index] if index < len(names) else f'structure{index - len(names)}_{atoms.get_chemical_formula()}'
        )
        entries.append(
            {
                'name': name,
                'kind': 'crystal',
                'n_li': n_li,
                'n_si': n_si,
                'energy_ev': float(atoms.get_potential_energy()),
                'volume_a3': float(atoms.get_volume()),
            }
        )
    return lithiation_analysis(entries, voltage_grid_step=float(settings.get('voltage_grid_step', 0.05)))
