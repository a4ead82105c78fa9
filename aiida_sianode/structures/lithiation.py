"""Lithiated silicon: Li inserted into Si hosts for any x in Li_xSi (0 <= x <= 4.4), and crystalline Li15Si4.

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

#: Known Li-Si phases whose crystal data is not built in, and why.
PHASES_NOT_BUILT_IN = {
    'LiSi': 'I4_1/a, 32 atoms in the cell (J. Evers, G. Oehlinger, G. Sextl, Angew. Chem. Int. Ed. 32, 1442 (1993))',
    'Li12Si7': 'Pnma, 152 atoms in the cell (R. Nesper, H. G. von Schnering, J. Curda, Chem. Ber. 119, 3576 (1986))',
    'Li7Si3': 'R-3m with a partially occupied Li site, so it has no single ordered cell (H. G. von Schnering, '
    'R. Nesper, K.-F. Tebbe, J. Curda, Z. Metallkd. 71, 357 (1980))',
    'Li13Si4': 'Pbam, 34 atoms in the cell with a split Li site (M. Zeilinger, T. F. Fässler, Acta Cryst. E69, i81 '
    '(2013))',
    'Li22Si5': 'F-43m, 432 atoms in the cubic cell, later re-assigned as Li21Si5 / Li17Si4',
}


def lixsi_crystal(
    phase: str = 'Li15Si4', size: Sequence[int] = (1, 1, 1), lattice_constant: float | None = None
) -> Atoms:
    """A crystalline lithium silicide from its published space group, lattice and Wyckoff positions.

    Built in: ``Li15Si4`` (I-43d; the cubic cell of 76 atoms repeated ``size`` times; ``lattice_constant`` in Å
    overrides the 123 K single-crystal value 10.6322, e.g. 10.685 for room temperature). The other known phases
    (LiSi, Li12Si7, Li7Si3, Li13Si4, Li22Si5) are refused with the reason: their full coordinate sets are not
    entered here, and we do not make crystallography up. Read those from a CIF (``ase.io.read``) instead.
    """
    if phase in PHASES_NOT_BUILT_IN:
        raise StructureBuildError(
            f'crystal data for {phase} is not built in ({PHASES_NOT_BUILT_IN[phase]}): its Wyckoff coordinates were '
            f'not entered here. Read a CIF of it (ICSD, COD or the Materials Project) with ase.io.read, or use the '
            f'lixsi builder with x = {_x_of(phase):.3f} for an insertion model.'
        )
    check_choice('phase', phase, sorted(CRYSTAL_PHASES))
    size = check_size('size', size)
    data = CRYSTAL_PHASES[phase]
    a = (
        data['lattice_constant']
        if lattice_constant is None
        else check_number('lattice_constant', lattice_constant, 9, 12)
    )
    symbols, positions = zip(*data['basis'])
    atoms = crystal(symbols, positions, spacegroup=data['spacegroup'], cellpar=[a, a, a, 90, 90, 90])
    atoms.info['source'] = data['source']
    return atoms.repeat(size)


def _x_of(phase: str) -> float:
    from ase.formula import Formula

    counts = Formula(phase).count()
    return counts['Li'] / counts['Si']
