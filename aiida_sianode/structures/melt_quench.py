"""Melt-quench recipes, plain Python (no AiiDA): the stage lengths of a schedule, the random starting cell of a
melt and the pair cutoffs of the coordination analysis.

:class:`aiida_sianode.workflows.presample.PresampleWorkChain` runs these schedules with LAMMPS; the functions here
also serve anyone who wants the numbers without running anything.
"""

from __future__ import annotations

from ase.data import atomic_numbers

#: Mean square displacement (Å^2) the melt must reach: atoms moved on average more than 1.4 Å, over half a
#: Si-Si bond and most of a C-C bond. A solid, even superheated, stays below about 0.5 Å^2.
MIN_MELT_MSD = 2.0

#: Default neighbour cutoffs (Å) for the coordination analysis. Si-Si 2.85: between the first (2.35) and second
#: (3.84) shells, near the first minimum of g(r) of a-Si. C-C 1.85: between the bonds (1.42-1.54) and the second
#: shell (2.5); then 2, 3, 4 neighbours are sp, sp2, sp3. Si-C 2.30: between the SiC bond (1.89) and 3.08.
DEFAULT_COORDINATION_CUTOFFS = {'Si-Si': 2.85, 'C-C': 1.85, 'Si-C': 2.30}


def melt_quench_schedule(
    timestep: float,
    melt_temperature: float,
    melt_time: float,
    quench_rate: float,
    final_temperature: float,
    anneal_time: float = 0.0,
    snapshots: int = 0,
) -> dict:
    """Return the number of MD steps of each stage and the dump interval of the quench.

    :param timestep: fs.
    :param melt_temperature: K.
    :param melt_time: ps.
    :param quench_rate: K/ps.
    :param final_temperature: K.
    :param anneal_time: ps; 0 skips the anneal.
    :param snapshots: structures to keep along the quench; the quench length is rounded to a multiple of their
        spacing so that the last one is the end of the quench.
    :return: ``{'melt_steps', 'quench_steps', 'anneal_steps', 'quench_dump_interval', 'quench_rate'}``, the last
        the rate actually run after rounding (K/ps).
    :raises ValueError: for a non-positive timestep, time or rate, or a final temperature not below the melt.
    """
    if not timestep > 0:
        raise ValueError(f'the timestep must be positive, got {timestep} fs')
    if not melt_time > 0:
        raise ValueError(f'the melt time must be positive, got {melt_time} ps')
    if not quench_rate > 0:
        raise ValueError(f'the quench rate must be positive, got {quench_rate} K/ps')
    if not 0 < final_temperature < melt_temperature:
        raise ValueError(
            f'the final temperature ({final_temperature} K) must be positive and below the melt temperature '
            f'({melt_temperature} K)'
        )
    if anneal_time < 0:
        raise ValueError(f'the anneal time cannot be negative, got {anneal_time} ps')
    if snapshots < 0:
        raise ValueError(f'the number of snapshots cannot be negative, got {snapshots}')
    timestep_ps = timestep * 1.0e-3
    melt_steps = max(1, round(melt_time / timestep_ps))
    quench_steps = max(1, round((melt_temperature - final_temperature) / quench_rate / timestep_ps))
    frames = max(1, snapshots)
    interval = max(1, round(quench_steps / frames))
    quench_steps = interval * frames
    anneal_steps = round(anneal_time / timestep_ps)
    return {
        'melt_steps': int(melt_steps),
        'quench_steps': int(quench_steps),
        'anneal_steps': int(anneal_steps),
        'quench_dump_interval': int(interval),
        'quench_rate': (melt_temperature - final_temperature) / (quench_steps * timestep_ps),
    }


#: The amorphous materials ``aiida-sianode presample`` and a campaign's ``presample`` structures make: a random cell of
#: this element and density (g/cm^3), atoms at least ``min_distance`` Å apart, and the default classical potential.
PRESAMPLE_MATERIALS = {
    'a-si': {'element': 'Si', 'density': 2.28, 'min_distance': 2.0, 'potential': 'sw-vbwm'},
    'a-c': {'element': 'C', 'density': 2.5, 'min_distance': 1.3, 'potential': 'tersoff'},
}


def presample_random_cell(material: str, natoms: int, density: float | None = None) -> dict:
    """The ``random_cell`` input of a melt-quench of ``material`` (a key of :data:`PRESAMPLE_MATERIALS`)."""
    preset = PRESAMPLE_MATERIALS[material]
    return {
        'element': preset['element'],
        'natoms': natoms,
        'density': density if density is not None else preset['density'],
        'min_distance': preset['min_distance'],
    }


#: The structure builders (``aiida_sianode.structures``) that make a random starting cell, by element.
RANDOM_CELL_BUILDERS = {'Si': 'si-random', 'C': 'amorphous-carbon'}

_RANDOM_CELL_KEYS = ('element', 'natoms', 'density', 'min_distance')


def random_cell_request(random_cell: dict) -> tuple[str, dict]:
    """Return the structure builder kind and its parameters for a ``random_cell`` input.

    ``random_cell`` is ``{'element': 'Si' or 'C', 'natoms': 64, 'density': 2.28}`` (g/cm^3) with an optional
    ``min_distance`` (Å); the cell is built by ``si-random`` or ``amorphous-carbon`` of :mod:`aiida_sianode.structures`.

    :raises ValueError: for missing or unknown keys, or an element without a random-cell builder.
    """
    missing = [key for key in ('element', 'natoms', 'density') if key not in random_cell]
    if missing:
        raise ValueError(f'`random_cell` needs the keys element, natoms and density; missing: {", ".join(missing)}')
    unknown = sorted(set(random_cell) - set(_RANDOM_CELL_KEYS))
    if unknown:
        raise ValueError(f'`random_cell` has unknown keys: {", ".join(unknown)}; known: {", ".join(_RANDOM_CELL_KEYS)}')
    element = random_cell['element']
    if element not in RANDOM_CELL_BUILDERS:
        known = ', '.join(RANDOM_CELL_BUILDERS)
        raise ValueError(f'no random-cell builder for `{element}` (known: {known}); give a `structure` instead')
    parameters = {'n_atoms': random_cell['natoms'], 'density': random_cell['density']}
    if 'min_distance' in random_cell:
        parameters['min_distance'] = random_cell['min_distance']
    return RANDOM_CELL_BUILDERS[element], parameters


def check_random_cell(random_cell: dict, seed: int) -> None:
    """Build the random cell once in Python so that an impossible request fails before anything runs.

    :raises ValueError: with the builder's reason (too dense, density out of range, ...).
    """
    from aiida_sianode.structures import StructureBuildError, build

    kind, parameters = random_cell_request(random_cell)
    try:
        build(kind, parameters, seed=seed)
    except StructureBuildError as exception:
        raise ValueError(str(exception)) from None


def parse_cutoffs(cutoffs: dict[str, float]) -> dict[tuple[str, str], float]:
    """Turn ``{'Si-Si': 2.85, 'Si-C': 2.3}`` into ``{('Si', 'Si'): 2.85, ('Si', 'C'): 2.3}``."""
    result = {}
    for key, value in cutoffs.items():
        parts = key.split('-')
        if len(parts) != 2 or any(part not in atomic_numbers for part in parts):
            raise ValueError(f'a pair cutoff key is `Element-Element`, like `Si-Si`; got `{key}`')
        if not float(value) > 0:
            raise ValueError(f'the cutoff of `{key}` must be positive, got {value}')
        result[(parts[0], parts[1])] = float(value)
    return result


def cutoffs_for_elements(elements, cutoffs: dict[str, float] | None = None) -> dict[str, float]:
    """Return the pair cutoffs of every pair of ``elements``: ``cutoffs`` where given, else the defaults.

    :raises ValueError: if a pair has no cutoff.
    """
    given = parse_cutoffs(cutoffs or {})
    defaults = parse_cutoffs(DEFAULT_COORDINATION_CUTOFFS)
    elements = sorted(set(elements))
    result = {}
    for index, first in enumerate(elements):
        for second in elements[index:]:
            for table in (given, defaults):
                value = table.get((first, second), table.get((second, first)))
                if value is not None:
                    result[f'{first}-{second}'] = value
                    break
            else:
                raise ValueError(f'no coordination cutoff for the pair {first}-{second}; give one in the cutoffs')
    return result
