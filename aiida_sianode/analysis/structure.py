"""Coordination numbers and density of a structure: small pure functions on ``ase.Atoms``.

Two atoms are neighbours when they are closer than a cutoff, periodic images included (ASE's neighbour list,
which also works for cells smaller than twice the cutoff). A cutoff is either one distance in Å for every pair
of elements, or a mapping ``{('Si', 'C'): 2.2, ('C', 'C'): 1.85, ...}``; a pair missing from the mapping is never
bonded, and ``(a, b)`` also stands for ``(b, a)``.

Usual choices: 2.85 Å for Si-Si (between the first and second shells of c-Si, 2.35 and 3.84 Å; the first minimum
of the a-Si radial distribution function lies near 2.9 Å) and 1.85 Å for C-C (between the 1.42-1.54 Å bonds of
graphite and diamond and the 2.5 Å second shell), with which the coordination of a carbon atom tells sp (2),
sp2 (3) and sp3 (4) apart.

Nothing here imports AiiDA.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from ase.neighborlist import neighbor_list
from ase.units import _amu

__all__ = (
    'coordination_fractions',
    'coordination_histogram',
    'coordination_numbers',
    'density_g_cm3',
    'mean_coordination',
    'partial_coordination',
)

Cutoff = float | Mapping[tuple[str, str], float]


def _check_atoms(atoms: Atoms) -> None:
    if not isinstance(atoms, Atoms):
        raise TypeError(f'expected an ase.Atoms, got {type(atoms).__name__}')
    if len(atoms) == 0:
        raise ValueError('the structure has no atoms')


def _normalise_cutoff(cutoff: Cutoff) -> float | dict[tuple[int, int], float]:
    """Return a positive float, or a ``{(Z1, Z2): r}`` dict with both orders, as ``neighbor_list`` wants."""
    if isinstance(cutoff, Mapping):
        if not cutoff:
            raise ValueError('the pair cutoff mapping is empty')
        result: dict[tuple[int, int], float] = {}
        for pair, radius in cutoff.items():
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise ValueError(f'pair cutoff keys are (element, element) tuples, got {pair!r}')
            unknown = [element for element in pair if element not in atomic_numbers]
            if unknown:
                raise ValueError(f'unknown element(s) {unknown} in the pair cutoff {pair!r}')
            radius = float(radius)
            if not radius > 0:
                raise ValueError(f'the cutoff of the pair {pair} must be positive, got {radius}')
            first, second = (atomic_numbers[element] for element in pair)
            result[(first, second)] = result[(second, first)] = radius
        return result
    radius = float(cutoff)
    if not radius > 0:
        raise ValueError(f'the cutoff must be a positive distance in Å, got {radius}')
    return radius


def _neighbour_pairs(atoms: Atoms, cutoff: Cutoff) -> tuple[np.ndarray, np.ndarray]:
    _check_atoms(atoms)
    return neighbor_list('ij', atoms, _normalise_cutoff(cutoff), self_interaction=False)


def _select(atoms: Atoms, element: str | None) -> np.ndarray:
    """Return the indices of the atoms of ``element`` (all atoms when ``None``)."""
    if element is None:
        return np.arange(len(atoms))
    symbols = np.array(atoms.get_chemical_symbols())
    selected = np.flatnonzero(symbols == element)
    if selected.size == 0:
        present = ', '.join(sorted(set(symbols)))
        raise ValueError(f'the structure has no {element} atoms; it has {present}')
    return selected


def coordination_numbers(atoms: Atoms, cutoff: Cutoff) -> np.ndarray:
    """Return the number of neighbours of every atom within ``cutoff`` (Å), periodic images included.

    :param atoms: the structure.
    :param cutoff: one distance for all pairs, or ``{(element, element): distance}``.
    :return: integer array of length ``len(atoms)``.
    """
    first, _ = _neighbour_pairs(atoms, cutoff)
    return np.bincount(first, minlength=len(atoms))


def mean_coordination(atoms: Atoms, cutoff: Cutoff, element: str | None = None) -> float:
    """Return the mean coordination number, over all atoms or over the atoms of ``element``.

    c-Si gives exactly 4 with a cutoff of 2.85 Å; fcc metals give 12 with a cutoff between the first and
    second shells.
    """
    numbers = coordination_numbers(atoms, cutoff)
    return float(numbers[_select(atoms, element)].mean())


def partial_coordination(atoms: Atoms, cutoff: Cutoff) -> dict[str, dict[str, float]]:
    """Return the mean number of ``B`` neighbours around an ``A`` atom as ``{A: {B: value}}``.

    For every element ``A`` the values over ``B`` sum to :func:`mean_coordination` of ``A``. In SiC (zincblende,
    cutoff 2.2 Å) every Si has 4 C neighbours and 0 Si neighbours.
    """
    first, second = _neighbour_pairs(atoms, cutoff)
    symbols = np.array(atoms.get_chemical_symbols())
    elements = sorted(set(symbols))
    result: dict[str, dict[str, float]] = {}
    for centre in elements:
        centre_count = int(np.count_nonzero(symbols == centre))
        around = symbols[second[symbols[first] == centre]]
        result[centre] = {
            neighbour: float(np.count_nonzero(around == neighbour)) / centre_count for neighbour in elements
        }
    return result


def coordination_histogram(atoms: Atoms, cutoff: Cutoff, element: str | None = None) -> dict[int, int]:
    """Return ``{coordination number: number of atoms}``, sorted by coordination number.

    Only the atoms of ``element`` are counted when it is given. c-Si at 2.85 Å gives ``{4: len(atoms)}``.
    """
    numbers = coordination_numbers(atoms, cutoff)[_select(atoms, element)]
    counts = Counter(int(value) for value in numbers)
    return dict(sorted(counts.items()))


def coordination_fractions(atoms: Atoms, cutoff: Cutoff, element: str | None = None) -> dict[int, float]:
    """Return ``{coordination number: fraction of atoms}``; the fractions sum to 1.

    For carbon with a 1.85 Å cutoff the fractions at 2, 3 and 4 are the sp, sp2 and sp3 fractions.
    """
    histogram = coordination_histogram(atoms, cutoff, element)
    total = sum(histogram.values())
    return {number: count / total for number, count in histogram.items()}


def density_g_cm3(atoms: Atoms) -> float:
    """Return the mass density in g/cm^3 of a periodic structure: total mass over cell volume.

    Uses ``atoms.get_masses()``, so custom masses are honoured. c-Si (a = 5.431 Å) gives 2.329 g/cm^3.

    :raises ValueError: if the cell has no volume (a molecule or a slab without a full cell).
    """
    _check_atoms(atoms)
    if not all(atoms.pbc):
        raise ValueError(f'a density needs a structure periodic in three directions, got pbc={list(atoms.pbc)}')
    volume = abs(atoms.cell.volume)
    if volume < 1e-8:
        raise ValueError('the cell has no volume; cannot compute a density')
    mass_g = atoms.get_masses().sum() * _amu * 1e3
    return float(mass_g / (volume * 1e-24))
