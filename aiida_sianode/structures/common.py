"""Shared pieces of the structure builders: input checks, distance measures and random packing.

Everything here is plain numpy/scipy/ASE (no AiiDA). Lengths are in Å, densities in g/cm^3, masses in amu.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from scipy.spatial import cKDTree

# One coordination count for the whole package (builders re-use the analysis one; it handles open boundaries too).
from aiida_sianode.analysis.structure import coordination_numbers  # noqa: F401

#: 1 amu/Å^3 in g/cm^3.
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660

#: Jamming coverage of random sequential addition of equal spheres in 3D (Torquato, Uche & Stillinger,
#: Phys. Rev. E 74, 061308 (2006): 0.3841). A request that needs a larger packing fraction cannot be met.
RSA_JAMMING_FRACTION = 0.3841

#: We refuse a little below the jamming limit: close to it, random sequential addition needs an unbounded
#: number of trials.
RSA_PRACTICAL_FRACTION = 0.34

#: Largest search grid of the void insertion (memory: about 100 bytes per point).
MAX_GRID_POINTS = 20_000_000


class StructureBuildError(ValueError):
    """A builder refused a request that is impossible or out of range; the message says which and why."""


# ---------------------------------------------------------------------------------------------------------------
# Input checks: each raises StructureBuildError naming the parameter, before any work is done.
# ---------------------------------------------------------------------------------------------------------------


def make_rng(seed) -> np.random.Generator:
    """Return numpy's default generator for ``seed`` (a non-negative integer)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise StructureBuildError(f'seed must be a non-negative integer, got {seed!r}')
    return np.random.default_rng(int(seed))


def check_number(name: str, value, low: float | None = None, high: float | None = None, *, low_open=False) -> float:
    """Return ``value`` as a float after checking that it is a finite number within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise StructureBuildError(f'{name} must be a number, got {value!r}')
    value = float(value)
    if not math.isfinite(value):
        raise StructureBuildError(f'{name} must be finite, got {value}')
    if low is not None and (value < low or (low_open and value == low)):
        bound = f'> {low}' if low_open else f'>= {low}'
        raise StructureBuildError(f'{name} must be {bound}, got {value}')
    if high is not None and value > high:
        raise StructureBuildError(f'{name} must be <= {high}, got {value}')
    return value


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int after checking that it is an integer within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise StructureBuildError(f'{name} must be an integer, got {value!r}')
    value = int(value)
    if low is not None and value < low:
        raise StructureBuildError(f'{name} must be >= {low}, got {value}')
    if high is not None and value > high:
        raise StructureBuildError(f'{name} must be <= {high}, got {value}')
    return value


def check_size(name: str, value, length: int = 3, high: int = 50) -> tuple[int, ...]:
    """Return a repetition tuple of ``length`` positive integers; a single integer is repeated."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = (int(value),) * length
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != length:
        raise StructureBuildError(f'{name} must be {length} positive integers (or one), got {value!r}')
    return tuple(check_int(f'{name}[{index}]', item, 1, high) for index, item in enumerate(value))


def check_choice(name: str, value, choices: Sequence[str]) -> str:
    """Return ``value`` after checking that it is one of ``choices``."""
    if value not in choices:
        raise StructureBuildError(f'{name} must be one of {", ".join(map(str, choices))}; got {value!r}')
    return value


def check_element(name: str, value) -> str:
    """Return ``value`` after checking that it is a chemical symbol."""
    if not isinstance(value, str) or value not in atomic_numbers:
        raise StructureBuildError(f'{name} must be a chemical symbol, got {value!r}')
    return value


# ---------------------------------------------------------------------------------------------------------------
# Measures
# ---------------------------------------------------------------------------------------------------------------


def mass_density(atoms: Atoms, volume: float | None = None) -> float:
    """Mass density in g/cm^3 of ``atoms`` in its cell (or in ``volume`` Å^3 when given)."""
    volume = atoms.get_volume() if volume is None else volume
    return float(atoms.get_masses().sum() / volume * AMU_PER_A3_TO_G_PER_CM3)


def volume_for_density(mass_amu: float, density: float) -> float:
    """Volume in Å^3 that holds ``mass_amu`` at ``density`` g/cm^3."""
    return mass_amu * AMU_PER_A3_TO_G_PER_CM3 / density


def _pairs(atoms: Atoms, cutoff: float):
    from matscipy.neighbours import neighbour_list

    if len(atoms) < 2:
        return np.empty(0, int), np.empty(0, int), np.empty(0)
    if not atoms.pbc.any():
        # matscipy wants a cell even without periodicity; a padded box around the atoms is equivalent.
        atoms = atoms.copy()
        span = np.ptp(atoms.positions, axis=0) + 2 * cutoff + 1.0
        atoms.set_cell(np.diag(span))
        atoms.positions = atoms.positions - atoms.positions.min(axis=0) + cutoff
    return neighbour_list('ijd', atoms, cutoff)


def minimum_distance(atoms: Atoms, cutoff: float = 4.0) -> float:
    """Smallest interatomic distance in Å (periodic images included); ``inf`` when none is below ``cutoff``."""
    _, _, distances = _pairs(atoms, cutoff)
    return float(distances.min()) if len(distances) else math.inf


def minimum_distances_by_pair(atoms: Atoms, cutoff: float = 4.0) -> dict[tuple[str, str], float]:
    """Smallest distance for each pair of elements, keyed by the alphabetically sorted pair of symbols."""
    i, j, distances = _pairs(atoms, cutoff)
    symbols = np.array(atoms.get_chemical_symbols())
    result: dict[tuple[str, str], float] = {}
    for a, b, distance in zip(symbols[i], symbols[j], distances):
        key = tuple(sorted((str(a), str(b))))
        if distance < result.get(key, math.inf):
            result[key] = float(distance)
    return result


def minimum_distance_between(atoms: Atoms, group_a, group_b, cutoff: float = 6.0) -> float:
    """Smallest distance between the atoms selected by the boolean masks ``group_a`` and ``group_b``."""
    i, j, distances = _pairs(atoms, cutoff)
    group_a = np.asarray(group_a, bool)
    group_b = np.asarray(group_b, bool)
    mask = group_a[i] & group_b[j]
    return float(distances[mask].min()) if mask.any() else math.inf


# ---------------------------------------------------------------------------------------------------------------
# Random sequential addition with a distance floor
# ---------------------------------------------------------------------------------------------------------------


def packing_fraction(number_density: float, min_distance: float) -> float:
    """Fraction of space filled by spheres of diameter ``min_distance`` at ``number_density`` (1/Å^3)."""
    return number_density * math.pi / 6.0 * min_distance**3


def check_packable(what: str, n_atoms: int, volume: float, min_distance: float) -> None:
    """Refuse a random packing of ``n_atoms`` in ``volume`` whose distance floor cannot be met."""
    fraction = packing_fraction(n_atoms / volume, min_distance)
    if fraction > RSA_PRACTICAL_FRACTION:
        limit = (RSA_PRACTICAL_FRACTION / (n_atoms / volume) * 6 / math.pi) ** (1 / 3)
        raise StructureBuildError(
            f'{what}: {n_atoms} atoms in {volume:.1f} Å^3 with a {min_distance} Å distance floor need a packing '
            f'fraction of {fraction:.3f}, above what random placement can reach ({RSA_PRACTICAL_FRACTION}; jamming at '
            f'{RSA_JAMMING_FRACTION}); lower the density or use min_distance <= {limit:.2f} Å'
        )


def random_sequential_packing(
    n_points: int,
    sampler: Callable[[np.random.Generator, int], np.ndarray],
    min_distance: float,
    rng: np.random.Generator,
    *,
    obstacles: np.ndarray | None = None,
    obstacle_distance: float | None = None,
    box: Sequence[float] | None = None,
    max_rounds: int = 400,
    what: str = 'random packing',
) -> np.ndarray:
    """Place ``n_points`` points at random, no two closer than ``min_distance``, and return their positions.

    Random sequential addition done in vectorised rounds: each round draws a batch of candidates from
    ``sampler(rng, m)`` (an ``(m, 3)`` array of positions uniformly distributed in the target region), drops those
    closer than ``min_distance`` to an accepted point or closer than ``obstacle_distance`` to one of ``obstacles``,
    then drops the later member of every pair of candidates that clash with each other. The order of acceptance
    follows the order of drawing, so the result depends only on the generator's state.

    ``box`` (three lengths) makes the space periodic and orthorhombic (positions are wrapped into it); without it
    the space is open. Raises :class:`StructureBuildError` when fewer than ``n_points`` fit after ``max_rounds``.
    """
    box_array = None if box is None else np.asarray(box, float)
    accepted = np.empty((0, 3))
    if n_points <= 0:
        return accepted
    obstacle_tree = None
    if obstacles is not None and len(obstacles):
        obstacle_distance = min_distance if obstacle_distance is None else obstacle_distance
        obstacle_tree = cKDTree(_wrap(np.asarray(obstacles, float), box_array), boxsize=box_array)
    acceptance = 1.0
    stalled = 0
    for _ in range(max_rounds):
        need = n_points - len(accepted)
        batch = int(min(2_000_000, max(64, 1.3 * need / max(acceptance, 1e-4))))
        candidates = _wrap(np.asarray(sampler(rng, batch), float), box_array)
        keep = np.ones(len(candidates), bool)
        if obstacle_tree is not None:
            keep &= ~_has_neighbour(obstacle_tree, candidates, obstacle_distance)
        if len(accepted):
            tree = cKDTree(accepted, boxsize=box_array)
            keep[keep] = ~_has_neighbour(tree, candidates[keep], min_distance)
        candidates = candidates[keep]
        if len(candidates) > 1:
            pairs = cKDTree(candidates, boxsize=box_array).query_pairs(min_distance, output_type='ndarray')
            if len(pairs):
                later = np.zeros(len(candidates), bool)
                later[pairs.max(axis=1)] = True
                candidates = candidates[~later]
        candidates = candidates[:need]
        acceptance = max(len(candidates) / batch, 0.5 * acceptance if len(candidates) == 0 else 0.0)
        accepted = np.concatenate([accepted, candidates])
        if len(accepted) >= n_points:
            return accepted
        stalled = stalled + 1 if len(candidates) == 0 else 0
        if stalled >= 8:
            break
    raise StructureBuildError(
        f'{what}: placed only {len(accepted)} of {n_points} atoms with a {min_distance} Å distance floor; the region '
        f'is too crowded, lower the density or the distance floor'
    )


def _wrap(points: np.ndarray, box: np.ndarray | None) -> np.ndarray:
    if box is None:
        return points
    wrapped = np.mod(points, box)
    # np.mod can return exactly box for tiny negative inputs; cKDTree needs [0, box).
    wrapped[wrapped >= box] = 0.0
    return wrapped


def _has_neighbour(tree: cKDTree, points: np.ndarray, radius: float) -> np.ndarray:
    if not len(points):
        return np.zeros(0, bool)
    distances, _ = tree.query(points, k=1, distance_upper_bound=radius)
    return distances < radius


def uniform_in_box(low: Sequence[float], high: Sequence[float]) -> Callable[[np.random.Generator, int], np.ndarray]:
    """A sampler of points uniformly distributed in the axis-aligned box ``[low, high)``."""
    low = np.asarray(low, float)
    high = np.asarray(high, float)

    def sample(rng: np.random.Generator, m: int) -> np.ndarray:
        return low + rng.random((m, 3)) * (high - low)

    return sample


def uniform_in_spherical_shell(
    center: Sequence[float], inner: float, outer: float
) -> Callable[[np.random.Generator, int], np.ndarray]:
    """A sampler of points uniformly distributed between radii ``inner`` and ``outer`` around ``center``."""
    center = np.asarray(center, float)

    def sample(rng: np.random.Generator, m: int) -> np.ndarray:
        directions = rng.normal(size=(m, 3))
        directions /= np.linalg.norm(directions, axis=1)[:, None]
        radii = (inner**3 + rng.random(m) * (outer**3 - inner**3)) ** (1 / 3)
        return center + directions * radii[:, None]

    return sample


# ---------------------------------------------------------------------------------------------------------------
# Insertion at the largest empty sites
# ---------------------------------------------------------------------------------------------------------------


def fill_largest_voids(
    grid: np.ndarray,
    distance: np.ndarray,
    count: int,
    min_distance: float,
    rng: np.random.Generator,
    update,
    too_full,
    tie_tolerance: float = 0.05,
) -> list[np.ndarray]:
    """Choose ``count`` grid points one at a time, each the centre of the largest empty sphere left.

    ``distance`` holds each grid point's distance to its nearest atom; after each choice ``update(position,
    largest)`` must lower it for the new atom (in place). Points within ``tie_tolerance`` Å of the largest distance
    tie, and one is drawn with ``rng``. Raises :class:`StructureBuildError` with ``too_full(inserted, largest)``
    when the largest empty sphere gets smaller than ``min_distance``.
    """
    chosen = []
    for inserted in range(count):
        largest = distance.max()
        if largest < min_distance:
            raise StructureBuildError(too_full(inserted, largest))
        ties = np.flatnonzero(distance >= largest - tie_tolerance) if np.isfinite(largest) else np.arange(len(grid))
        position = grid[int(ties[rng.integers(len(ties))])]
        chosen.append(position)
        update(position, largest)
    return chosen


def insert_at_largest_voids(
    atoms: Atoms,
    symbol: str,
    count: int,
    min_distance: float,
    rng: np.random.Generator,
    *,
    grid_spacing: float = 0.25,
    tie_tolerance: float = 0.05,
    what: str = 'insertion',
    region=None,
) -> Atoms:
    """Return a copy of the periodic ``atoms`` with ``count`` atoms of ``symbol`` added one at a time.

    Each new atom goes to the centre of the largest empty sphere, found on a grid of points (``grid_spacing`` Å,
    shifted by a random offset) whose distance to the nearest atom is kept up to date after every insertion. Grid
    points within ``tie_tolerance`` Å of the largest distance count as equally good and one of them is drawn at
    random, so symmetric hosts give different (but equally valid) results for different seeds. Raises
    :class:`StructureBuildError` when the largest empty sphere gets smaller than ``min_distance`` before ``count``
    atoms are in. ``region``, if given, is a function of the grid's Cartesian positions (shape ``(n, 3)``) that
    returns a boolean mask: only those grid points are candidate sites (the distances still count every atom).
    """
    result = atoms.copy()
    if count <= 0:
        return result
    if not result.pbc.all():
        raise StructureBuildError(f'{what}: the host must be periodic in all three directions')
    cell = result.cell.array
    divisions = np.maximum(1, np.ceil(result.cell.lengths() / grid_spacing).astype(int))
    if np.prod(divisions) > MAX_GRID_POINTS:
        raise StructureBuildError(
            f'{what}: a {grid_spacing} Å grid over this cell has {int(np.prod(divisions)):,} points (at most '
            f'{MAX_GRID_POINTS:,}); use a larger grid_spacing or a smaller cell'
        )
    offset = rng.random(3) / divisions
    axes = [np.arange(n) / n for n in divisions]
    fractional = np.stack(np.meshgrid(*axes, indexing='ij'), axis=-1).reshape(-1, 3) + offset
    grid = fractional @ cell
    if region is not None:
        grid = grid[np.asarray(region(grid), dtype=bool)]
        if not len(grid):
            raise StructureBuildError(f'{what}: no grid point lies in the region allowed for {symbol}')
    shifts = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], float) @ cell

    if len(result):
        wrapped = result.get_positions(wrap=True)
        images = (wrapped[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
        distance, _ = cKDTree(images).query(grid, k=1)
    else:
        distance = np.full(len(grid), np.inf)
    grid_tree = cKDTree(grid)

    def update(position, largest):
        # Only grid points closer to the new atom than their current nearest atom change; none is farther than
        # the current largest distance (or, in an empty cell, the cell's longest diagonal).
        radius = min(largest, float(np.linalg.norm(cell.sum(axis=0))) + 1.0)
        for image in position + shifts:
            nearby = grid_tree.query_ball_point(image, radius)
            if nearby:
                nearby = np.asarray(nearby)
                distance[nearby] = np.minimum(distance[nearby], np.linalg.norm(grid[nearby] - image, axis=1))

    new_positions = fill_largest_voids(
        grid,
        distance,
        count,
        min_distance,
        rng,
        update,
        lambda inserted, largest: (
            f'{what}: after {inserted} of {count} {symbol} atoms the largest empty site has a radius of '
            f'{largest:.2f} Å, below the {min_distance} Å distance floor; the cell is too full (lower the '
            f'amount of {symbol}, enlarge the cell or lower min_distance)'
        ),
        tie_tolerance,
    )
    result += Atoms([symbol] * count, positions=np.array(new_positions))
    result.wrap()
    return result


def random_rotation_matrices(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` rotation matrices drawn uniformly from SO(3) (shape ``(count, 3, 3)``)."""
    from scipy.spatial.transform import Rotation

    return Rotation.random(count, random_state=rng).as_matrix().reshape(count, 3, 3)
