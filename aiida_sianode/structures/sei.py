"""SEI: random packings of molecular / formula units at low density, SEI crystals and lithium metal.

The packings follow the recipe of the SEI potential papers: blend and pack units (Li2EDC, Li2CO3, LiF, Li2O,
LiPF6, Li atoms) into a large, low-density periodic box with a distance floor between units, then compress it
(e.g. NPT at 50 kbar) and relax. Each unit is a rigid, idealised gas-phase-like geometry built from standard bond
lengths (listed in :data:`UNIT_GEOMETRY_NOTES`); its shape relaxes in the compression.

Lengths in Å, densities in g/cm^3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.spacegroup import crystal
from scipy.spatial import cKDTree

from aiida_sianode.structures.common import (
    StructureBuildError,
    check_choice,
    check_int,
    check_number,
    check_size,
    make_rng,
    random_rotation_matrices,
    volume_for_density,
)

UNIT_GEOMETRY_NOTES = {
    'Li': 'a single Li atom',
    'LiF': 'Li-F 1.564 Å (the gas-phase diatomic)',
    'Li2O': 'linear Li-O-Li, Li-O 1.61 Å (the gas-phase molecule is linear)',
    'Li2CO3': 'planar CO3 (C-O 1.29 Å, 120°) with each Li bridging one O-O edge at Li-O 1.85 Å',
    'LiPF6': 'octahedral PF6 (P-F 1.60 Å) with Li capping one F3 face at Li-F 1.85 Å',
    'Li2EDC': (
        'all-trans planar (CH2OCO2Li)2: C-C 1.52, C-O(ester) 1.43 and 1.36, C-O(carbonate) 1.26, C-H 1.09, '
        'Li-O 1.90 Å; each Li bridges the two terminal O of one carbonate'
    ),
}

#: Crystalline SEI phases: space group, cell and Wyckoff positions, with their sources.
SEI_CRYSTALS = {
    'Li2CO3': {
        'symbols': ['Li', 'C', 'O', 'O'],
        'basis': [
            (0.19713, 0.44861, 0.83629),
            (0.0, 0.06518, 0.25),
            (0.0, 0.32290, 0.25),
            (0.14662, -0.06370, 0.31318),
        ],
        'spacegroup': 15,  # C2/c
        'cellpar': [8.359, 4.973, 6.194, 90.0, 114.83, 90.0],
        'source': 'H. Effenberger, J. Zemann, Z. Kristallogr. 150, 133 (1979) (synthetic Li2CO3, zabuyelite structure)',
    },
    'LiF': {
        'symbols': ['Li', 'F'],
        'basis': [(0, 0, 0), (0.5, 0.5, 0.5)],
        'spacegroup': 225,  # Fm-3m, rock salt
        'cellpar': [4.0263, 4.0263, 4.0263, 90, 90, 90],
        'source': 'rock salt, room-temperature lattice constant 4.0263 Å',
    },
    'Li2O': {
        'symbols': ['O', 'Li'],
        'basis': [(0, 0, 0), (0.25, 0.25, 0.25)],
        'spacegroup': 225,  # Fm-3m, antifluorite
        'cellpar': [4.611, 4.611, 4.611, 90, 90, 90],
        'source': 'antifluorite, room-temperature lattice constant 4.611 Å',
    },
}

#: Lattice constant of bcc Li at room temperature, Å.
LI_BCC_LATTICE_CONSTANT = 3.51


def _li2co3_unit() -> Atoms:
    angles = np.radians([90.0, 210.0, 330.0])
    oxygens = 1.29 * np.stack([np.cos(angles), np.sin(angles), np.zeros(3)], axis=1)
    lithiums = [_bridge(np.zeros(3), oxygens[0], oxygens[1], 1.85), _bridge(np.zeros(3), oxygens[1], oxygens[2], 1.85)]
    return Atoms('CO3Li2', positions=[np.zeros(3), *oxygens, *lithiums])


def _bridge(center: np.ndarray, first: np.ndarray, second: np.ndarray, bond: float) -> np.ndarray:
    """A cation bridging the edge ``first``-``second`` on the side away from ``center`` at distance ``bond``."""
    midpoint = 0.5 * (first + second)
    half_edge = 0.5 * np.linalg.norm(second - first)
    outward = midpoint - center
    outward /= np.linalg.norm(outward)
    return midpoint + outward * np.sqrt(bond**2 - half_edge**2)


def _lipf6_unit() -> Atoms:
    fluorines = 1.60 * np.concatenate([np.eye(3), -np.eye(3)])
    face = np.ones(3) / np.sqrt(3)
    face_distance = 1.60 / np.sqrt(3)
    in_face = 1.60 * np.sqrt(2 / 3)
    lithium = face * (face_distance + np.sqrt(1.85**2 - in_face**2))
    return Atoms('PF6Li', positions=[np.zeros(3), *fluorines, lithium])


def _rotate_in_plane(vector: np.ndarray, degrees: float) -> np.ndarray:
    angle = np.radians(degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    return rotation @ vector


def _li2edc_unit() -> Atoms:
    """Lithium ethylene dicarbonate, built centrosymmetric around the middle of the C-C bond."""
    c_ch2 = np.array([0.76, 0.0, 0.0])
    other_ch2 = -c_ch2
    to_ester = _rotate_in_plane(np.array([1.0, 0.0, 0.0]), 180.0 - 109.5)
    o_ester = c_ch2 + 1.43 * to_ester
    to_carbonate = _rotate_in_plane(to_ester, -(180.0 - 116.0))
    c_carbonate = o_ester + 1.36 * to_carbonate
    back = -to_carbonate
    o_first = c_carbonate + 1.26 * _rotate_in_plane(back, 120.0)
    o_second = c_carbonate + 1.26 * _rotate_in_plane(back, -120.0)
    lithium = _bridge(c_carbonate, o_first, o_second, 1.90)
    neighbours = [(other_ch2 - c_ch2), (o_ester - c_ch2)]
    bisector = -sum(vector / np.linalg.norm(vector) for vector in neighbours)
    bisector /= np.linalg.norm(bisector)
    half_angle = np.radians(54.75)
    hydrogens = [
        c_ch2 + 1.09 * (np.cos(half_angle) * bisector + sign * np.sin(half_angle) * np.array([0, 0, 1.0]))
        for sign in (1, -1)
    ]
    # One half of the molecule; the other half is its inversion image.
    half = [('C', c_ch2), ('O', o_ester), ('C', c_carbonate), ('O', o_first), ('O', o_second), ('Li', lithium)]
    half += [('H', hydrogen) for hydrogen in hydrogens]
    symbols = [symbol for symbol, _ in half] * 2
    positions = [position for _, position in half] + [-position for _, position in half]
    return Atoms(symbols, positions=positions)


UNIT_BUILDERS = {
    'Li': lambda: Atoms('Li', positions=[[0, 0, 0]]),
    'LiF': lambda: Atoms('LiF', positions=[[0, 0, 0], [1.564, 0, 0]]),
    'Li2O': lambda: Atoms('LiOLi', positions=[[-1.61, 0, 0], [0, 0, 0], [1.61, 0, 0]]),
    'Li2CO3': _li2co3_unit,
    'LiPF6': _lipf6_unit,
    'Li2EDC': _li2edc_unit,
}

SEI_UNITS = tuple(UNIT_BUILDERS)

#: Default units of a packing (read-only).
DEFAULT_COMPOSITION = MappingProxyType({'Li2EDC': 2, 'Li2CO3': 4, 'LiF': 2, 'Li': 8})


def sei_unit(name: str) -> Atoms:
    """The rigid geometry of one SEI unit, centred on its centre of mass (see :data:`UNIT_GEOMETRY_NOTES`)."""
    check_choice('unit', name, SEI_UNITS)
    atoms = UNIT_BUILDERS[name]()
    atoms.positions -= atoms.get_center_of_mass()
    return atoms


def sei_pack(
    composition: Mapping[str, int] = DEFAULT_COMPOSITION,
    density: float = 0.5,
    min_distance: float = 1.8,
    max_attempts: int = 5000,
    seed: int = 0,
) -> Atoms:
    """Randomly oriented, randomly placed SEI units in a cubic periodic box at a low ``density`` g/cm^3.

    ``composition`` maps unit names (Li, LiF, Li2O, Li2CO3, LiPF6, Li2EDC) to counts (default: 2 Li2EDC,
    4 Li2CO3, 2 LiF, 8 Li). The box volume holds the total mass at ``density`` (0.05 to 2.5; the seed recipe packs
    loosely and then compresses). Units are placed largest first; each gets up to ``max_attempts`` random
    orientations and positions, and is accepted when all its atoms are at least ``min_distance`` Å from the atoms
    of every other unit (periodic images included). ``atoms.arrays['unit_id']`` numbers the units; the order of
    units is recorded in ``atoms.info['units']``.
    """
    rng = make_rng(seed)
    if not isinstance(composition, Mapping) or not composition:
        raise StructureBuildError(f'composition must map unit names to counts, got {composition!r}')
    counts = {}
    for name, count in composition.items():
        if name not in UNIT_BUILDERS:
            raise StructureBuildError(f'unknown SEI unit {name!r}; known units: {", ".join(SEI_UNITS)}')
        counts[name] = check_int(f'composition[{name}]', count, 0, 10_000)
    if sum(counts.values()) == 0:
        raise StructureBuildError('composition holds no units (all counts are zero)')
    density = check_number('density', density, 0.05, 2.5)
    min_distance = check_number('min_distance', min_distance, 0.5, 3.0)
    max_attempts = check_int('max_attempts', max_attempts, 1, 1_000_000)

    units = {name: sei_unit(name) for name, count in counts.items() if count}
    total_mass = sum(units[name].get_masses().sum() * count for name, count in counts.items() if count)
    length = volume_for_density(total_mass, density) ** (1 / 3)
    largest = max(2 * np.linalg.norm(unit.positions, axis=1).max() for unit in units.values())
    if length < largest + min_distance:
        raise StructureBuildError(
            f'the {length:.2f} Å box of this composition at {density} g/cm^3 is smaller than its largest unit '
            f'({largest:.2f} Å) plus the {min_distance} Å floor; lower the density or add units'
        )
    order = sorted((name for name in counts if counts[name]), key=lambda name: (-len(units[name]), name))
    box = np.full(3, length)
    symbols: list[str] = []
    positions = np.empty((0, 3))
    unit_ids: list[int] = []
    placed_names: list[str] = []
    batch = 64
    for name in order:
        unit = units[name]
        for _ in range(counts[name]):
            placed = None
            for _start in range(0, max_attempts, batch):
                trials = min(batch, max_attempts - _start)
                rotations = random_rotation_matrices(rng, trials)
                centres = rng.random((trials, 3)) * length
                candidates = np.einsum('kij,nj->kni', rotations, unit.positions) + centres[:, None, :]
                candidates = np.mod(candidates, box)
                candidates[candidates >= box] = 0.0
                if len(positions):
                    tree = cKDTree(positions, boxsize=box)
                    distances, _ = tree.query(candidates.reshape(-1, 3), k=1, distance_upper_bound=min_distance)
                    clash = (distances < min_distance).reshape(trials, len(unit)).any(axis=1)
                    free = np.flatnonzero(~clash)
                else:
                    free = np.arange(trials)
                if len(free):
                    placed = candidates[free[0]]
                    break
            if placed is None:
                raise StructureBuildError(
                    f'sei-pack: could not place {name} unit {len(placed_names) + 1} after {max_attempts} attempts '
                    f'with a {min_distance} Å floor at {density} g/cm^3; lower the density or the floor'
                )
            symbols += unit.get_chemical_symbols()
            positions = np.concatenate([positions, placed])
            unit_ids += [len(placed_names)] * len(unit)
            placed_names.append(name)
    atoms = Atoms(symbols, positions=positions, cell=[length] * 3, pbc=True)
    atoms.arrays['unit_id'] = np.array(unit_ids, dtype=int)
    atoms.info['units'] = ' '.join(placed_names)
    return atoms


def sei_crystal(phase: str = 'Li2CO3', size: Sequence[int] = (1, 1, 1)) -> Atoms:
    """A crystalline SEI compound repeated ``size`` times: Li2CO3 (C2/c), LiF (rock salt) or Li2O (antifluorite)."""
    check_choice('phase', phase, sorted(SEI_CRYSTALS))
    size = check_size('size', size)
    data = SEI_CRYSTALS[phase]
    atoms = crystal(data['symbols'], data['basis'], spacegroup=data['spacegroup'], cellpar=data['cellpar'])
    atoms.info['source'] = data['source']
    return atoms.repeat(size)


def li_metal(structure: str = 'bcc', size: Sequence[int] = (3, 3, 3), lattice_constant: float | None = None) -> Atoms:
    """Lithium metal, cubic cells repeated ``size`` times: ``bcc`` (a = 3.51 Å) or ``fcc``.

    The fcc default lattice constant keeps bcc's volume per atom (a_fcc = 2^(1/3) a_bcc = 4.42 Å), since the
    two phases differ little in density; give ``lattice_constant`` to override.
    """
    structure = check_choice('structure', structure, ('bcc', 'fcc'))
    size = check_size('size', size)
    if lattice_constant is None:
        lattice_constant = LI_BCC_LATTICE_CONSTANT * (2 ** (1 / 3) if structure == 'fcc' else 1.0)
    lattice_constant = check_number('lattice_constant', lattice_constant, 2.5, 6.0)
    return bulk('Li', structure, a=lattice_constant, cubic=True).repeat(size)
