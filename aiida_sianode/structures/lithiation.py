"""Lithiated silicon: Li inserted into Si hosts for any x in Li_xSi (0 <= x <= 4.4), and the crystalline Li-Si phases.

Volume model
------------
The volume per Si atom of Li_xSi grows linearly with x (Obrovac & Christensen, Electrochem. Solid-State Lett. 7,
A93 (2004); Obrovac, Christensen, Le & Dahn, J. Electrochem. Soc. 154, A849 (2007), where each Li adds about
9 cm^3/mol whatever the host). We anchor the line on two measured crystals: c-Si (a = 5.431 Å, 20.02 Å^3/Si) and
c-Li15Si4 at room temperature (a = 10.685 Å from Obrovac & Christensen 2004: 76.24 Å^3/Si at x = 3.75). That gives

    V(x) / N_Si = V_host / N_Si + x * v_Li,   v_Li = (76.24 - 20.02) / 3.75 = 14.99 Å^3 (9.03 cm^3/mol),

i.e. +281 % at x = 3.75 and +329 % at x = 4.4 for a c-Si host.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.spacegroup import crystal

from aiida_sianode.structures.common import (
    StructureBuildError,
    check_choice,
    check_int,
    check_number,
    check_size,
    insert_at_largest_voids,
    make_rng,
)
from aiida_sianode.structures.silicon import A_SI_DENSITY, SI_LATTICE_CONSTANT, diamond_silicon, si_random

#: Largest Li content per Si the builders accept (Li22Si5 = Li4.4Si).
X_MAX = 4.4

#: Volume per Si atom in c-Si, Å^3 (a = 5.431 Å).
SI_VOLUME_PER_ATOM = SI_LATTICE_CONSTANT**3 / 8

#: Room-temperature lattice constant of c-Li15Si4 in Å (Obrovac & Christensen 2004).
LI15SI4_LATTICE_CONSTANT_RT = 10.685

#: Volume each Li adds to Li_xSi, Å^3: the slope between c-Si and c-Li15Si4 (see the module docstring).
LI_VOLUME_IN_SILICON = round((LI15SI4_LATTICE_CONSTANT_RT**3 / 16 - SI_VOLUME_PER_ATOM) / 3.75, 4)

HOSTS = ('crystal', 'random')


def volume_per_si(x: float, host_volume_per_si: float = SI_VOLUME_PER_ATOM, li_volume=LI_VOLUME_IN_SILICON) -> float:
    """Expected volume per Si atom (Å^3) of Li_xSi from the linear model of the module docstring."""
    return host_volume_per_si + x * li_volume


def lixsi(
    x: float = 1.0,
    host_kind: str = 'crystal',
    size: Sequence[int] = (2, 2, 2),
    n_si: int = 64,
    lattice_constant: float = SI_LATTICE_CONSTANT,
    host_density: float = A_SI_DENSITY,
    li_volume: float = LI_VOLUME_IN_SILICON,
    expand: bool = True,
    min_distance: float = 1.9,
    grid_spacing: float = 0.25,
    seed: int = 0,
    host_atoms: Atoms | None = None,
) -> Atoms:
    """Li_xSi made by inserting Li into a Si host at the largest empty sites.

    The host is a diamond c-Si supercell of ``size`` conventional cells (``host_kind='crystal'``), a random-placement
    a-Si start of ``n_si`` atoms at ``host_density`` (``host_kind='random'``), or any periodic structure containing Si
    given as ``host_atoms`` (for example a melt-quenched a-Si; Li already in it counts towards x). With ``expand``
    the host is first scaled isotropically to the volume of the linear model (``li_volume`` Å^3 per Li, see the
    module docstring); then ``round(x * N_Si)`` Li atoms are added one at a time, each at the centre of the
    largest empty sphere, none closer than ``min_distance`` Å to another atom. The realised x is in
    ``atoms.info['x']``. A starting structure for relaxation and MD, not an equilibrium one.
    """
    rng = make_rng(seed)
    x = check_number('x', x, 0.0, X_MAX)
    min_distance = check_number('min_distance', min_distance, 0.5, 3.0)
    grid_spacing = check_number('grid_spacing', grid_spacing, 0.05, 1.0)
    li_volume = check_number('li_volume', li_volume, 1.0, 40.0)
    if not isinstance(expand, bool):
        raise StructureBuildError(f'expand must be true or false, got {expand!r}')
    if host_atoms is None:
        host_kind = check_choice('host_kind', host_kind, HOSTS)
        if host_kind == 'crystal':
            size = check_size('size', size)
            lattice_constant = check_number('lattice_constant', lattice_constant, 4.5, 6.5)
            atoms = diamond_silicon(size, lattice_constant)
        else:
            atoms = si_random(check_int('n_si', n_si, 1, 20_000), host_density, seed=seed)
    else:
        atoms = host_atoms.copy()
        atoms.calc = None
        if not atoms.pbc.all():
            raise StructureBuildError('host_atoms must be periodic in all three directions')
        foreign = sorted(set(atoms.get_chemical_symbols()) - {'Si', 'Li'})
        if foreign:
            raise StructureBuildError(f'host_atoms may contain only Si and Li, found {", ".join(foreign)}')
    symbols = np.array(atoms.get_chemical_symbols())
    n_si_host = int((symbols == 'Si').sum())
    if n_si_host == 0:
        raise StructureBuildError('the host contains no Si')
    n_li_present = int((symbols == 'Li').sum())
    n_li_target = round(x * n_si_host)
    if n_li_target < n_li_present:
        raise StructureBuildError(
            f'the host already holds {n_li_present} Li (x = {n_li_present / n_si_host:.3f}), more than x = {x} asks'
        )
    if expand:
        x_present = n_li_present / n_si_host
        empty_volume_per_si = atoms.get_volume() / n_si_host - x_present * li_volume
        target = n_si_host * volume_per_si(n_li_target / n_si_host, empty_volume_per_si, li_volume)
        atoms.set_cell(atoms.cell.array * (target / atoms.get_volume()) ** (1 / 3), scale_atoms=True)
    atoms = insert_at_largest_voids(
        atoms, 'Li', n_li_target - n_li_present, min_distance, rng, grid_spacing=grid_spacing, what='lixsi'
    )
    atoms.info['x'] = n_li_target / n_si_host
    return atoms


# ---------------------------------------------------------------------------------------------------------------
# Crystalline lithium silicides
# ---------------------------------------------------------------------------------------------------------------

#: Crystal data entered in this package: space group, lattice, Wyckoff sites and the source of each.
CRYSTAL_PHASES = {
    'Li15Si4': {
        'spacegroup': 220,  # I-43d, Cu15Si4 type, Z = 4 (76 atoms in the cubic cell)
        'lattice_constant': 10.6322,  # Å, single crystal at 123 K
        'basis': [
            ('Li', (0.375, 0.0, 0.25)),  # Li1, 12a
            ('Li', (0.1210, 0.1583, 0.9607)),  # Li2, 48e
            ('Si', (0.4583, 0.4583, 0.4583)),  # Si, 16c
        ],
        'source': (
            'M. Zeilinger, V. Baran, L. van Wüllen, U. Häussermann, T. F. Fässler, Chem. Mater. 25, 4113 (2013) '
            '(single crystal, 123 K); room-temperature a = 10.685 Å: M. N. Obrovac, L. Christensen, Electrochem. '
            'Solid-State Lett. 7, A93 (2004)'
        ),
    },
}

#: Directory of the crystal files shipped with the package (byte-for-byte copies; licences and provenance beside
#: them in its README.md).
CRYSTAL_FILES_DIR = Path(__file__).parent / 'crystals'

#: Li-Si phases read from a shipped crystal file: the file, its space group (checked on reading) and its source.
CRYSTAL_FILES = {
    'LiSi': {
        'file': 'matador/LiSi_mp-795_symmetrized.res',
        'spacegroup': 88,  # I4_1/a, 32 atoms in the conventional cell
        'source': (
            'Materials Project mp-795 relaxed with CASTEP (PBE), symmetrised, from ml-evs/matador @8fa5384 '
            '(MIT); experimental structure: J. Evers, G. Oehlinger, G. Sextl, Angew. Chem. Int. Ed. 32, 1442 (1993)'
        ),
    },
    'Li12Si7': {
        'file': 'DFTB_LiSi_crystal/Li12Si7.xyz',
        'spacegroup': 62,  # Pnma, 152 atoms
        'source': (
            'DFT-relaxed Materials Project structure from alexispaz/DFTB_LiSi @87468db (CC BY-SA 4.0; M. B. Oviedo '
            'et al., J. Phys. Chem. A 127, 2637 (2023)); experimental structure: R. Nesper, H. G. von Schnering, '
            'J. Curda, Chem. Ber. 119, 3576 (1986)'
        ),
    },
    'Li7Si3': {
        'file': 'DFTB_LiSi_crystal/Li7Si3.xyz',
        'spacegroup': 153,  # P3_212, 60 atoms: an ordered model of the partially occupied R-3m structure
        'source': (
            'DFT-relaxed Materials Project structure (ordered P3_212 model) from alexispaz/DFTB_LiSi @87468db '
            '(CC BY-SA 4.0; M. B. Oviedo et al., J. Phys. Chem. A 127, 2637 (2023)); experimental structure '
            '(R-3m, a Li site partly occupied): H. G. von Schnering et al., Z. Metallkd. 71, 357 (1980)'
        ),
    },
    'Li13Si4': {
        'file': 'matador/LiSi-LiGeAg-CollCode167673.res',
        'spacegroup': 55,  # Pbam, 34 atoms
        'source': (
            'ICSD 167673 prototype with Li and Si swapped in, relaxed with CASTEP, from ml-evs/matador @8fa5384 '
            '(MIT); experimental structure: M. Zeilinger, T. F. Fässler, Acta Cryst. E69, i81 (2013)'
        ),
    },
    'Li17Si4': {
        'file': 'matador/LiSi-Li17Pb4_F4-3m.res',
        'spacegroup': 216,  # F-43m (Li17Pb4 type), 105-atom primitive cell; symmetry found at 1e-2 Å
        'source': (
            'Li17Pb4 prototype with Si for Pb, relaxed with CASTEP, from ml-evs/matador @8fa5384 (MIT); Li17Si4: '
            'M. Zeilinger, D. Benson, U. Häussermann, T. F. Fässler, Chem. Mater. 25, 1960 (2013) (the phase formerly '
            'reported as Li22Si5 / Li21Si5)'
        ),
    },
}

#: Known Li-Si phases that are not built in, and why.
PHASES_NOT_BUILT_IN = {
    'Li22Si5': 'F-43m, 432 atoms in the cubic cell, re-assigned as Li17Si4 (Zeilinger et al., Chem. Mater. 25, '
    '1960 (2013)); build Li17Si4 instead',
    'Li21Si5': 'F-43m with mixed Li/Si occupancy, re-assigned as Li17Si4 (Zeilinger et al., Chem. Mater. 25, 1960 '
    '(2013)); build Li17Si4 instead',
}

#: Every crystalline Li-Si phase the builder makes, from Li-poorest to Li-richest.
LIXSI_PHASES = ('LiSi', 'Li12Si7', 'Li7Si3', 'Li13Si4', 'Li15Si4', 'Li17Si4')


def lixsi_crystal(
    phase: str = 'Li15Si4',
    size: Sequence[int] = (1, 1, 1),
    lattice_constant: float | None = None,
    primitive: bool = False,
) -> Atoms:
    """A crystalline lithium silicide: LiSi, Li12Si7, Li7Si3, Li13Si4, Li15Si4 or Li17Si4, repeated ``size`` times.

    ``Li15Si4`` (I-43d, 76 atoms in the cubic cell) is built from its published space group, lattice and Wyckoff
    positions (single crystal at 123 K, a = 10.6322 Å; ``lattice_constant`` in Å overrides it, e.g. 10.685 for room
    temperature). The other phases are read from DFT-relaxed crystal files shipped with the package (Materials
    Project structures relaxed with PBE-like functionals; sources in ``atoms.info['source']`` and
    ``aiida_sianode/structures/crystals/README.md``): their cells are DFT cells, not experimental ones, and
    ``lattice_constant`` is refused for them. With ``primitive`` the primitive cell is returned (LiSi 16 atoms,
    Li15Si4 38; the others are primitive already). Li22Si5 and Li21Si5 are refused: both were re-assigned as
    Li17Si4. ``atoms.info['x']`` is Li per Si.
    """
    if phase in PHASES_NOT_BUILT_IN:
        raise StructureBuildError(f'crystal data for {phase} is not built in: {PHASES_NOT_BUILT_IN[phase]}')
    check_choice('phase', phase, LIXSI_PHASES)
    size = check_size('size', size)
    if not isinstance(primitive, bool):
        raise StructureBuildError(f'primitive must be true or false, got {primitive!r}')
    if phase in CRYSTAL_PHASES:
        data = CRYSTAL_PHASES[phase]
        a = (
            data['lattice_constant']
            if lattice_constant is None
            else check_number('lattice_constant', lattice_constant, 9, 12)
        )
        symbols, positions = zip(*data['basis'])
        atoms = crystal(symbols, positions, spacegroup=data['spacegroup'], cellpar=[a, a, a, 90, 90, 90])
    else:
        if lattice_constant is not None:
            raise StructureBuildError(
                f'lattice_constant applies only to the cubic Li15Si4; {phase} is read with its DFT-relaxed cell'
            )
        data = CRYSTAL_FILES[phase]
        atoms = read_crystal_file(data['file'])
    if primitive:
        atoms = _primitive_cell(atoms)
    atoms.info['source'] = data['source']
    atoms = atoms.repeat(size)
    atoms.info['x'] = _x_of(phase)
    return atoms


def read_crystal_file(name: str) -> Atoms:
    """Read one of the shipped crystal files (``name`` relative to :data:`CRYSTAL_FILES_DIR`) as bare, wrapped Atoms.

    Energies and forces stored in the file are dropped: a builder returns structures only.
    """
    from ase.io import read

    atoms = read(CRYSTAL_FILES_DIR / name)
    atoms.calc = None
    atoms.info = {}
    atoms.pbc = True
    atoms.wrap()  # some .res files list fractional coordinates outside [0, 1)
    return atoms


def _primitive_cell(atoms: Atoms) -> Atoms:
    """The primitive cell spglib finds (1e-3 Å), positions unchanged up to the symmetry tolerance."""
    import spglib

    cell = (atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers)
    lattice, scaled, numbers = spglib.standardize_cell(cell, to_primitive=True, no_idealize=True, symprec=1e-3)
    return Atoms(numbers=numbers, scaled_positions=scaled, cell=lattice, pbc=True)


def _x_of(phase: str) -> float:
    from ase.formula import Formula

    counts = Formula(phase).count()
    return counts['Li'] / counts['Si']
