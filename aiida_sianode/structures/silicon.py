"""Silicon: diamond c-Si supercells (strained, rattled, with vacancies or interstitials) and random a-Si starts.

Lengths in Å, densities in g/cm^3. Experimental room-temperature lattice constant of c-Si: 5.431 Å.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_masses, atomic_numbers

from aiida_sianode.structures.common import (
    StructureBuildError,
    check_choice,
    check_int,
    check_number,
    check_packable,
    check_size,
    make_rng,
    random_sequential_packing,
    uniform_in_box,
    volume_for_density,
)

#: Room-temperature lattice constant of crystalline silicon in Å.
SI_LATTICE_CONSTANT = 5.431

#: Typical density of amorphous silicon in g/cm^3 (about 1.8 % below c-Si's 2.329).
A_SI_DENSITY = 2.285

INTERSTITIAL_SITES = ('tetrahedral', 'hexagonal')


def diamond_silicon(size: Sequence[int] = (1, 1, 1), lattice_constant: float = SI_LATTICE_CONSTANT) -> Atoms:
    """The conventional 8-atom cubic cell of diamond silicon repeated ``size`` times."""
    return bulk('Si', 'diamond', a=lattice_constant, cubic=True).repeat(tuple(size))


def strain_matrix(strain) -> np.ndarray:
    """The symmetric 3x3 strain tensor from a number (isotropic), 3 normal strains, 6 Voigt components or 3x3.

    Voigt order is ``xx, yy, zz, yz, xz, xy`` with tensor (not engineering) shear components.
    """
    array = np.asarray(strain, float)
    if array.shape == ():
        return np.eye(3) * float(array)
    if array.shape == (3,):
        return np.diag(array)
    if array.shape == (6,):
        xx, yy, zz, yz, xz, xy = array
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    if array.shape == (3, 3):
        if not np.allclose(array, array.T):
            raise StructureBuildError('strain given as a 3x3 matrix must be symmetric')
        return array
    raise StructureBuildError(f'strain must be a number, 3 normal strains, 6 Voigt components or 3x3; got {strain!r}')


def interstitial_sites(size: Sequence[int], lattice_constant: float, kind: str) -> np.ndarray:
    """Cartesian positions of the tetrahedral or hexagonal interstitial sites of a diamond supercell.

    Tetrahedral sites sit at the diamond sites shifted by (1/2, 1/2, 1/2) a, four Si at one bond length;
    hexagonal sites sit half way between two neighbouring tetrahedral sites, six Si at a*sqrt(11)/8.
    """
    host = diamond_silicon(size, lattice_constant)
    tetrahedral = host.positions + 0.5 * lattice_constant
    tetrahedral = Atoms('X' * len(tetrahedral), positions=tetrahedral, cell=host.cell, pbc=True)
    tetrahedral.wrap()
    if kind == 'tetrahedral':
        return tetrahedral.positions
    from ase.neighborlist import neighbor_list

    i, j, vectors = neighbor_list('ijD', tetrahedral, lattice_constant * np.sqrt(3) / 4 + 0.01)
    keep = i < j
    midpoints = tetrahedral.positions[i[keep]] + 0.5 * vectors[keep]
    hexagonal = Atoms('X' * len(midpoints), positions=midpoints, cell=host.cell, pbc=True)
    hexagonal.wrap()
    return hexagonal.positions


def si_crystal(
    size: Sequence[int] = (2, 2, 2),
    lattice_constant: float = SI_LATTICE_CONSTANT,
    strain=0.0,
    rattle: float = 0.0,
    vacancies: int = 0,
    interstitials: int = 0,
    interstitial_site: str = 'tetrahedral',
    seed: int = 0,
) -> Atoms:
    """A diamond c-Si supercell of ``size`` conventional cells, optionally strained, rattled and defective.

    ``strain`` (see :func:`strain_matrix`, each component within ±0.2) deforms the cell homogeneously;
    ``vacancies`` Si atoms are removed at random; ``interstitials`` Si atoms are added at randomly drawn
    ``interstitial_site`` sites (``tetrahedral`` or ``hexagonal``); ``rattle`` is the standard deviation in Å of
    Gaussian displacements applied last (at most 0.3 Å). All random choices come from ``seed``.
    """
    rng = make_rng(seed)
    size = check_size('size', size)
    lattice_constant = check_number('lattice_constant', lattice_constant, 4.5, 6.5)
    epsilon = strain_matrix(strain)
    if np.abs(epsilon).max() > 0.2:
        raise StructureBuildError(f'strain components must be within ±0.2, got a largest of {np.abs(epsilon).max()}')
    rattle = check_number('rattle', rattle, 0.0, 0.3)
    n_sites = 8 * int(np.prod(size))
    vacancies = check_int('vacancies', vacancies, 0, n_sites - 1)
    interstitial_site = check_choice('interstitial_site', interstitial_site, INTERSTITIAL_SITES)
    sites = interstitial_sites(size, lattice_constant, interstitial_site)
    interstitials = check_int('interstitials', interstitials, 0)
    if interstitials > len(sites) // 8:
        raise StructureBuildError(
            f'interstitials must be at most {len(sites) // 8} for a {size} supercell (one in eight '
            f'{interstitial_site} sites), got {interstitials}'
        )

    atoms = diamond_silicon(size, lattice_constant)
    if vacancies:
        del atoms[sorted(rng.choice(len(atoms), size=vacancies, replace=False).tolist())]
    if interstitials:
        chosen = _spread_choice(sites, interstitials, 2.0 * lattice_constant * np.sqrt(3) / 4, atoms.cell, rng)
        atoms += Atoms('Si' * interstitials, positions=sites[chosen])
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + epsilon), scale_atoms=True)
    if rattle:
        atoms.positions += rng.normal(scale=rattle, size=atoms.positions.shape)
    atoms.wrap()
    return atoms


def _spread_choice(sites: np.ndarray, count: int, min_separation: float, cell, rng: np.random.Generator) -> list[int]:
    """Draw ``count`` site indices at random such that no two chosen sites are closer than ``min_separation``."""
    from ase.geometry import get_distances

    order = rng.permutation(len(sites))
    chosen: list[int] = []
    for index in order:
        if chosen:
            _, distances = get_distances(sites[index], sites[chosen], cell=cell, pbc=True)
            if distances.min() < min_separation:
                continue
        chosen.append(int(index))
        if len(chosen) == count:
            return chosen
    raise StructureBuildError(f'could not place {count} interstitials at least {min_separation:.2f} Å apart')


def si_random(
    n_atoms: int = 64,
    density: float = A_SI_DENSITY,
    min_distance: float = 2.0,
    seed: int = 0,
) -> Atoms:
    """``n_atoms`` Si placed at random in a cubic periodic box at ``density`` g/cm^3, none closer than ``min_distance``.

    A starting point for a melt-quench to a-Si (it is not amorphous silicon by itself: it has no tetrahedral
    order until it is melted and quenched with a potential).
    """
    rng = make_rng(seed)
    n_atoms = check_int('n_atoms', n_atoms, 1, 200_000)
    density = check_number('density', density, 1.0, 3.0)
    min_distance = check_number('min_distance', min_distance, 0.5, 3.0)
    volume = volume_for_density(n_atoms * atomic_masses[atomic_numbers['Si']], density)
    check_packable('si-random', n_atoms, volume, min_distance)
    length = volume ** (1 / 3)
    positions = random_sequential_packing(
        n_atoms, uniform_in_box((0, 0, 0), (length,) * 3), min_distance, rng, box=(length,) * 3, what='si-random'
    )
    return Atoms('Si' * n_atoms, positions=positions, cell=[length] * 3, pbc=True)
