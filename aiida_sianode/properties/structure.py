"""Structure of (disordered) phases: g(r), coordination, bond angles, rings, sp fractions and density.

From one structure or several frames (an MD or exploration output), averaged over the frames:

* total and partial radial distribution functions (``ase.geometry.rdf.get_rdf``, with atomic numbers for the
  partials); the cell is repeated where it is shorter than ``2 * rdf.rmax_a``, which leaves g(r) unchanged;
* coordination-number distributions per element, with per-pair cutoffs (``cutoffs``: ``{'Si-Si': 2.85, ...}``; a pair
  not listed is never bonded), mean and partial coordination (:mod:`aiida_sianode.analysis.structure`);
* the bond-angle distribution (every pair of bonds at an atom);
* shortest-path ring statistics (Franzblau, ``matscipy.rings.ring_statistics``) up to ``rings.max_size``;
* sp / sp2 / sp3 fractions of carbon: a carbon atom with 2, 3 or 4 bonded neighbours;
* the density.

With ``relax.enabled`` each member first relaxes every frame (positions, and the cell when ``relax.cell``), so the
analysis is of each member's own local minimum; without it the frames are analysed as they are, and every member gives
the same numbers.
"""

from __future__ import annotations

import itertools
import math
import pathlib

import numpy as np
from ase.data import atomic_numbers

from aiida_sianode.properties.common import InvalidPropertyInput, relax, require_keys

KIND = 'structure'
DESCRIPTION = 'g(r), coordination, bond angles, ring statistics, sp fractions and density of a structure'

SETTINGS = ('cutoffs', 'rdf', 'angles', 'rings', 'relax')
SECTION_SETTINGS = {
    'rdf': ('rmax_a', 'n_bins'),
    'angles': ('n_bins',),
    'rings': ('enabled', 'max_size'),
    'relax': ('enabled', 'cell', 'fmax_ev_a', 'stress_tol_gpa', 'max_steps'),
}


def parse_cutoffs(cutoffs: dict) -> dict[tuple[str, str], float]:
    """Return ``{(A, B): r}`` (both orders) from ``{'A-B': r}``.

    :raises InvalidPropertyInput: a key that is not two element symbols, or a cutoff that is not positive.
    """
    pairs: dict[tuple[str, str], float] = {}
    for key, value in (cutoffs or {}).items():
        parts = str(key).split('-')
        if len(parts) != 2 or any(part not in atomic_numbers for part in parts):
            raise InvalidPropertyInput(f'a cutoff key is two element symbols like Si-Si, got `{key}`')
        radius = float(value)
        if not radius > 0:
            raise InvalidPropertyInput(f'the cutoff of {key} must be a positive distance in Å, got {value}')
        pairs[(parts[0], parts[1])] = pairs[(parts[1], parts[0])] = radius
    return pairs


def _z_cutoffs(pairs: dict[tuple[str, str], float]) -> dict[tuple[int, int], float]:
    return {(atomic_numbers[a], atomic_numbers[b]): radius for (a, b), radius in pairs.items()}


def validate_settings(settings: dict, structures: list) -> None:
    """Refuse unknown keys, bad cutoffs, a non-positive rmax or bin count, and structures without atoms or without
    cutoffs for any of their element pairs."""
    require_keys(settings, SETTINGS, KIND)
    for section, keys in SECTION_SETTINGS.items():
        require_keys(settings.get(section, {}), keys, f'{KIND} ({section})')
    pairs = parse_cutoffs(settings.get('cutoffs', {}))
    if not pairs:
        raise InvalidPropertyInput('give at least one pair cutoff in `cutoffs`, e.g. {"Si-Si": 2.85}')
    if float(settings['rdf']['rmax_a']) <= 0 or int(settings['rdf']['n_bins']) < 10:
        raise InvalidPropertyInput('rdf.rmax_a must be positive and rdf.n_bins at least 10')
    if int(settings['angles']['n_bins']) < 10:
        raise InvalidPropertyInput('angles.n_bins must be at least 10')
    if not structures:
        raise InvalidPropertyInput('give at least one structure')
    for index, atoms in enumerate(structures):
        if len(atoms) == 0:
            raise InvalidPropertyInput(f'structure {index} has no atoms')
        symbols = set(atoms.get_chemical_symbols())
        if not any((a, b) in pairs for a in symbols for b in symbols):
            raise InvalidPropertyInput(
                f'structure {index} has {", ".join(sorted(symbols))} but `cutoffs` bonds none of their pairs'
            )


def _repeats(atoms, rmax: float) -> tuple[int, int, int]:
    """Repetitions making every periodic cell height larger than ``2 * rmax`` (what ``get_rdf`` needs)."""
    heights = atoms.cell.volume / np.linalg.norm(np.cross(atoms.cell[[1, 2, 0]], atoms.cell[[2, 0, 1]]), axis=1)
    return tuple(math.ceil(2 * rmax / height + 1e-9) if periodic else 1 for height, periodic in zip(heights, atoms.pbc))


def radial_distribution(frames: list, rmax: float, n_bins: int) -> dict:
    """Total and partial g(r) averaged over ``frames``: ``{'total': (r, g), 'Si-Si': (r, g), ...}``."""
    from ase.geometry.rdf import get_rdf

    symbols = sorted(set(frames[0].get_chemical_symbols()), key=lambda symbol: atomic_numbers[symbol])
    pairs = list(itertools.combinations_with_replacement(symbols, 2))
    sums: dict[str, np.ndarray] = {}
    distances = None
    for atoms in frames:
        big = atoms.repeat(_repeats(atoms, rmax)) if all(atoms.pbc) else atoms
        g, distances = get_rdf(big, rmax, n_bins)
        sums['total'] = sums.get('total', 0) + g
        if len(pairs) > 1:
            for a, b in pairs:
                g, _ = get_rdf(big, rmax, n_bins, elements=(atomic_numbers[a], atomic_numbers[b]))
                sums[f'{a}-{b}'] = sums.get(f'{a}-{b}', 0) + g
    return {name: (distances, total / len(frames)) for name, total in sums.items()}


def bonds(atoms, pairs: dict[tuple[str, str], float]):
    """Bonded pairs ``(i, j, D)`` (every bond both ways, ``D`` the vector from i to j) with per-pair cutoffs."""
    from ase.neighborlist import neighbor_list

    return neighbor_list('ijD', atoms, _z_cutoffs(pairs), self_interaction=False)


def bond_angles(atoms, pairs: dict[tuple[str, str], float]) -> np.ndarray:
    """Every bond angle (degrees): the angle j-i-k for each atom i and each pair of its bonded neighbours."""
    first, _, vectors = bonds(atoms, pairs)
    angles = []
    for atom in range(len(atoms)):
        selected = vectors[first == atom]
        if len(selected) < 2:
            continue
        units = selected / np.linalg.norm(selected, axis=1)[:, None]
        cosines = units @ units.T
        upper = np.triu_indices(len(units), k=1)
        angles.append(np.degrees(np.arccos(np.clip(cosines[upper], -1.0, 1.0))))
    return np.concatenate(angles) if angles else np.zeros(0)


def ring_counts(atoms, pairs: dict[tuple[str, str], float], max_size: int) -> tuple[np.ndarray, int]:
    """Number of shortest-path rings of each size ``0..max_size`` (index = ring size) and the number of atoms they
    were counted in.

    A small periodic cell is repeated first until every height exceeds ``max_size / 2`` times the longest cutoff:
    a ring of ``n`` bonds spans at most ``n / 2`` bond lengths, so no ring can then close through a periodic image
    of itself (in the 8-atom cell of diamond Si every 6-ring does, and none is found).
    """
    from matscipy.rings import distances_on_graph, find_sp_rings, neighbour_list

    if all(atoms.pbc):
        atoms = atoms.repeat(_repeats(atoms, max_size * max(pairs.values()) / 4))
    # matscipy's ring_statistics(maxlength=n) adds an array of n + 1 counts into one of n and fails (matscipy 1.1.1)
    # whenever a ring of the largest size exists; its own three steps, called here, have no such limit
    first, second, vectors = neighbour_list('ijD', atoms, _z_cutoffs(pairs))
    graph_distances = distances_on_graph(first, second)
    counts = np.asarray(find_sp_rings(first, second, vectors, graph_distances, max_size + 1), dtype=float)
    result = np.zeros(max_size + 1)
    result[: min(len(counts), max_size + 1)] = counts[: max_size + 1]
    return result, len(atoms)


def analyse(frames: list, settings: dict) -> dict:
    """The structure analysis of ``frames`` (a ``run_member`` dict without relaxation)."""
    from aiida_sianode.analysis.structure import coordination_numbers, density_g_cm3, partial_coordination

    pairs = parse_cutoffs(settings['cutoffs'])
    frames = [atoms.copy() for atoms in frames]
    for atoms in frames:
        atoms.set_constraint()  # constraints (fixed centre of mass...) would stop the cell from being repeated
    symbols = sorted(set(frames[0].get_chemical_symbols()), key=lambda symbol: atomic_numbers[symbol])
    scalars: dict[str, float] = {}
    curves: dict[str, dict] = {}

    rdf = radial_distribution(frames, float(settings['rdf']['rmax_a']), int(settings['rdf']['n_bins']))
    for name, (r, g) in rdf.items():
        curves[f'rdf_{name.replace("-", "_")}'] = {
            'x': r.tolist(),
            'y': g.tolist(),
            'x_label': 'r (Å)',
            'y_label': f'g(r) {name}' if name != 'total' else 'g(r)',
        }

    max_cn = 12
    histograms = {symbol: np.zeros(max_cn + 1) for symbol in symbols}
    all_cn = []
    partial_sums: dict[str, float] = {}
    for atoms in frames:
        numbers = coordination_numbers(atoms, pairs)
        all_cn.append(numbers)
        chemical = np.array(atoms.get_chemical_symbols())
        for symbol in symbols:
            values = np.clip(numbers[chemical == symbol], 0, max_cn)
            histograms[symbol] += np.bincount(values, minlength=max_cn + 1)
        for a, neighbours in partial_coordination(atoms, pairs).items():
            for b, value in neighbours.items():
                partial_sums[f'{a}_{b}'] = partial_sums.get(f'{a}_{b}', 0.0) + value / len(frames)
    all_cn = np.concatenate(all_cn)
    scalars['mean_coordination'] = float(all_cn.mean())
    for symbol in symbols:
        histogram = histograms[symbol]
        if histogram.sum() == 0:
            continue
        fractions = histogram / histogram.sum()
        scalars[f'mean_coordination_{symbol}'] = float((np.arange(max_cn + 1) * fractions).sum())
        curves[f'coordination_{symbol}'] = {
            'x': list(range(max_cn + 1)),
            'y': fractions.tolist(),
            'x_label': f'coordination number of {symbol}',
            'y_label': 'fraction of atoms',
        }
    for name, value in sorted(partial_sums.items()):
        scalars[f'coordination_{name}'] = float(value)
    if 'C' in histograms and histograms['C'].sum() > 0:
        fractions = histograms['C'] / histograms['C'].sum()
        scalars['sp_fraction_c'] = float(fractions[2])
        scalars['sp2_fraction_c'] = float(fractions[3])
        scalars['sp3_fraction_c'] = float(fractions[4])

    n_bins = int(settings['angles']['n_bins'])
    angles = np.concatenate([bond_angles(atoms, pairs) for atoms in frames])
    edges = np.linspace(0.0, 180.0, n_bins + 1)
    density, _ = np.histogram(angles, bins=edges, density=True) if angles.size else (np.zeros(n_bins), None)
    curves['bond_angles'] = {
        'x': ((edges[:-1] + edges[1:]) / 2).tolist(),
        'y': density.tolist(),
        'x_label': 'bond angle (degrees)',
        'y_label': 'probability density (1/degree)',
    }
    if angles.size:
        scalars['mean_bond_angle_deg'] = float(angles.mean())
        scalars['std_bond_angle_deg'] = float(angles.std())

    if settings['rings'].get('enabled', True):
        max_size = int(settings['rings']['max_size'])
        counted = [ring_counts(atoms, pairs, max_size) for atoms in frames]
        per_atom = sum(counts for counts, _ in counted) / sum(natoms for _, natoms in counted)
        scalars['rings_per_atom'] = float(per_atom.sum())
        curves['ring_statistics'] = {
            'x': list(range(3, max_size + 1)),
            'y': per_atom[3:].tolist(),
            'x_label': 'ring size',
            'y_label': 'rings per atom',
        }

    if all(all(atoms.pbc) for atoms in frames):
        scalars['density_g_cm3'] = float(np.mean([density_g_cm3(atoms) for atoms in frames]))
        scalars['volume_a3_per_atom'] = float(np.mean([atoms.get_volume() / len(atoms) for atoms in frames]))
    return {'scalars': scalars, 'curves': curves, 'extra': {'n_frames': len(frames), 'natoms': len(frames[0])}}


def run_member(structures: list, calculator, settings: dict, workdir: pathlib.Path) -> dict:
    """Relax the frames with this member when ``relax.enabled``, then analyse them (see the module docstring)."""
    options = settings.get('relax', {})
    frames = [atoms.copy() for atoms in structures]
    relaxations = []
    if options.get('enabled'):
        for index, atoms in enumerate(frames):
            atoms.calc = calculator
            relaxations.append(
                relax(
                    atoms,
                    fmax=options['fmax_ev_a'],
                    stress_tol_gpa=options.get('stress_tol_gpa'),
                    max_steps=options['max_steps'],
                    cell=bool(options.get('cell')),
                    logfile=str(pathlib.Path(workdir) / f'relax_{index}.log'),
                )
            )
    result = analyse(frames, settings)
    result['extra']['relaxations'] = relaxations
    return result
