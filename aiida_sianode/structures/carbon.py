"""Carbon: random a-C starts at a target density, graphite, LiC6 / LiC12, and hard-carbon-like models with Na or Li.

Lengths in Å, densities in g/cm^3.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers
from ase.spacegroup import crystal

from aiida_sianode.structures.common import (
    StructureBuildError,
    check_choice,
    check_int,
    check_number,
    check_packable,
    check_size,
    insert_at_largest_voids,
    make_rng,
    random_sequential_packing,
    volume_for_density,
)

#: Mass of a carbon atom in amu (ASE's value, so that measured densities match requested ones).
CARBON_MASS = float(atomic_masses[atomic_numbers['C']])

#: Density range of amorphous carbon the builders accept (from low-density a-C to tetrahedral ta-C).
A_C_DENSITY_RANGE = (1.5, 3.3)

#: Hexagonal (Bernal, AB) graphite at room temperature, Å (Trucano & Chen, Nature 258, 136 (1975)).
GRAPHITE_A = 2.464
GRAPHITE_C = 6.711

#: Stage-1 LiC6, P6/mmm, Å (Guérard & Hérold, Carbon 13, 337 (1975)).
LIC6_A = 4.305
LIC6_C = 3.706

ALKALI = ('Na', 'Li')


def amorphous_carbon(n_atoms: int = 64, density: float = 2.0, min_distance: float = 1.4, seed: int = 0) -> Atoms:
    """``n_atoms`` carbon atoms placed at random in a cubic periodic box at ``density`` g/cm^3 (1.5 to 3.3).

    No two atoms are closer than ``min_distance`` Å. A starting point for a melt-quench (e.g. with a Tersoff
    potential or the committee), not an a-C model by itself: the bonding network forms in the quench.
    """
    rng = make_rng(seed)
    n_atoms = check_int('n_atoms', n_atoms, 1, 500_000)
    density = check_number('density', density, *A_C_DENSITY_RANGE)
    min_distance = check_number('min_distance', min_distance, 0.5, 2.5)
    volume = volume_for_density(n_atoms * CARBON_MASS, density)
    check_packable('amorphous-carbon', n_atoms, volume, min_distance)
    length = volume ** (1 / 3)
    positions = random_sequential_packing(
        n_atoms, _box_sampler(length), min_distance, rng, box=(length,) * 3, what='amorphous-carbon'
    )
    return Atoms('C' * n_atoms, positions=positions, cell=[length] * 3, pbc=True)


def _box_sampler(length: float, pore_center=None, pore_radius: float = 0.0):
    def sample(rng: np.random.Generator, m: int) -> np.ndarray:
        points = rng.random((m, 3)) * length
        if pore_radius > 0:
            points = points[np.linalg.norm(points - pore_center, axis=1) >= pore_radius]
        return points

    return sample


def graphite(size: Sequence[int] = (1, 1, 1), a: float = GRAPHITE_A, c: float = GRAPHITE_C) -> Atoms:
    """AB (Bernal) graphite, P6_3/mmc with C on 2b and 2c: the 4-atom hexagonal cell repeated ``size`` times."""
    size = check_size('size', size)
    a = check_number('a', a, 2.0, 3.0)
    c = check_number('c', c, 5.0, 10.0)
    atoms = crystal(['C', 'C'], [(0, 0, 0.25), (1 / 3, 2 / 3, 0.25)], spacegroup=194, cellpar=[a, a, c, 90, 90, 120])
    return atoms.repeat(size)


def lithiated_graphite(
    stage: int = 1, size: Sequence[int] = (1, 1, 1), a: float = LIC6_A, c: float | None = None
) -> Atoms:
    """Li-graphite intercalation compounds: stage 1 LiC6 or stage 2 LiC12 (P6/mmm), repeated ``size`` times.

    LiC6: graphene layers in AA stacking with Li over the centre of every third hexagon of every gallery
    (Li 1a, C 6k with x = 1/3, z = 1/2; a = 4.305 Å, c = 3.706 Å). LiC12 is an idealised stage-2 model: the same
    in-plane cell, all layers AA, Li in every second gallery; ``c`` defaults to 3.706 + 3.35 = 7.056 Å (a filled
    LiC6-like gallery plus an empty graphite-like one), close to the measured stage-2 repeat of about 7.0 Å.
    """
    stage = check_int('stage', stage, 1, 2)
    size = check_size('size', size)
    a = check_number('a', a, 3.5, 5.0)
    if stage == 1:
        c = LIC6_C if c is None else check_number('c', c, 3.0, 5.0)
        atoms = crystal(['Li', 'C'], [(0, 0, 0), (1 / 3, 0, 0.5)], spacegroup=191, cellpar=[a, a, c, 90, 90, 120])
    else:
        c = LIC6_C + 3.35 if c is None else check_number('c', c, 6.0, 9.0)
        z = 0.5 * LIC6_C / c
        atoms = crystal(['Li', 'C'], [(0, 0, 0), (1 / 3, 0, z)], spacegroup=191, cellpar=[a, a, c, 90, 90, 120])
    return atoms.repeat(size)


def lic6(size: Sequence[int] = (1, 1, 1), a: float = LIC6_A, c: float = LIC6_C) -> Atoms:
    """Stage-1 LiC6 (see :func:`lithiated_graphite`)."""
    return lithiated_graphite(1, size, a, c)


def lic12(size: Sequence[int] = (1, 1, 1), a: float = LIC6_A, c: float = LIC6_C + 3.35) -> Atoms:
    """Idealised stage-2 LiC12 (see :func:`lithiated_graphite`)."""
    return lithiated_graphite(2, size, a, c)


def hard_carbon(
    n_carbon: int = 128,
    density: float = 1.6,
    pore_radius: float = 0.0,
    alkali: str = 'Na',
    n_alkali: int = 4,
    min_distance: float = 1.4,
    alkali_min_distance: float = 2.2,
    grid_spacing: float = 0.25,
    seed: int = 0,
    host_atoms: Atoms | None = None,
) -> Atoms:
    """A hard-carbon-like model: random a-C with an optional closed pore, with Na or Li at the largest voids.

    ``n_carbon`` C atoms are placed at random (distance floor ``min_distance``) in a cubic periodic box whose
    volume gives an overall ``density`` g/cm^3 (1.5 to 3.3); with ``pore_radius`` > 0 Å no carbon is placed within
    that radius of the box centre, which models a closed nanopore. Then ``n_alkali`` atoms of ``alkali`` (Na or
    Li) go one at a time to the centre of the largest empty sphere, none closer than ``alkali_min_distance`` Å
    to another atom, so they fill the pore first and then the voids of the matrix. ``host_atoms`` replaces the
    random carbon with any periodic carbon structure (a melt-quenched a-C for instance). The carbon still needs
    melting and quenching with a potential to become a bonded network.
    """
    rng = make_rng(seed)
    alkali = check_choice('alkali', alkali, ALKALI)
    n_alkali = check_int('n_alkali', n_alkali, 0, 100_000)
    alkali_min_distance = check_number('alkali_min_distance', alkali_min_distance, 0.5, 4.0)
    grid_spacing = check_number('grid_spacing', grid_spacing, 0.05, 1.0)
    if host_atoms is not None:
        atoms = host_atoms.copy()
        atoms.calc = None
        foreign = sorted(set(atoms.get_chemical_symbols()) - {'C', 'Na', 'Li'})
        if foreign:
            raise StructureBuildError(f'host_atoms may contain only C, Na and Li, found {", ".join(foreign)}')
    else:
        n_carbon = check_int('n_carbon', n_carbon, 1, 500_000)
        density = check_number('density', density, *A_C_DENSITY_RANGE)
        min_distance = check_number('min_distance', min_distance, 0.5, 2.5)
        pore_radius = check_number('pore_radius', pore_radius, 0.0)
        length = volume_for_density(n_carbon * CARBON_MASS, density) ** (1 / 3)
        if pore_radius > 0.4 * length:
            raise StructureBuildError(
                f'pore_radius {pore_radius} Å does not fit in the {length:.2f} Å box of {n_carbon} C at {density} '
                f'g/cm^3 (at most {0.4 * length:.2f} Å); add carbon or shrink the pore'
            )
        matrix_volume = length**3 - 4 / 3 * np.pi * pore_radius**3
        check_packable('hard-carbon', n_carbon, matrix_volume, min_distance)
        center = np.full(3, length / 2)
        positions = random_sequential_packing(
            n_carbon,
            _box_sampler(length, center, pore_radius),
            min_distance,
            rng,
            box=(length,) * 3,
            what='hard-carbon',
        )
        atoms = Atoms('C' * n_carbon, positions=positions, cell=[length] * 3, pbc=True)
    return insert_at_largest_voids(
        atoms, alkali, n_alkali, alkali_min_distance, rng, grid_spacing=grid_spacing, what='hard-carbon'
    )
