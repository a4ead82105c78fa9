"""Checks a structure must pass before a labeler spends any compute on it.

Every label work chain calls :func:`validate_structure` twice: when a builder is made from a protocol and in the
input validator of its process spec, so that a hand-made builder with a bad structure is refused before anything
runs. The checks, in order:

* the structure has at least one atom;
* a plane-wave code gets a structure that is periodic in all three directions with a cell of non-zero volume;
* every element is one the labeler can do (:func:`labeler_elements`);
* no two atoms, periodic images included, are closer than ``min_distance`` (0.5 Å by default): such a pair is
  a broken structure, and a DFT code either crashes on it or returns nonsense forces.

Nothing here imports AiiDA; :func:`validate_structure` takes an ``ase.Atoms``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import pathlib
import re
from collections.abc import Iterable, Mapping

import numpy as np
from ase.data import chemical_symbols

#: Labelers known to the project: the local codes and the cluster codes.
LABELERS = ('gpaw', 'xtb', 'vasp', 'castep')

#: Plane-wave codes need a periodic cell.
PLANE_WAVE_LABELERS = frozenset({'gpaw', 'vasp', 'castep'})

#: GFN1-xTB is parametrised for hydrogen to radon (Z = 1-86).
XTB_GFN1_ELEMENTS = frozenset(chemical_symbols[1:87])

DEFAULT_MIN_DISTANCE = 0.5


class StructureValidationError(ValueError):
    """A structure that a labeler must not be given; the message names the problem."""


def _gpaw_setup_directories() -> list[pathlib.Path]:
    """Return the folders GPAW searches for PAW setups: ``$GPAW_SETUP_PATH`` first, then the gpaw-data package."""
    directories = [pathlib.Path(entry) for entry in os.environ.get('GPAW_SETUP_PATH', '').split(os.pathsep) if entry]
    spec = importlib.util.find_spec('gpaw_data')
    if spec is not None and spec.submodule_search_locations:
        directories.extend(pathlib.Path(location) / 'setups' for location in spec.submodule_search_locations)
    return [directory for directory in directories if directory.is_dir()]


@functools.cache
def gpaw_elements(xc: str = 'PBE') -> frozenset[str]:
    """Return the elements that have a GPAW PAW setup for the functional ``xc`` (files ``<El>.<xc>[.gz]``)."""
    found = set()
    known = set(chemical_symbols[1:])
    for directory in _gpaw_setup_directories():
        for path in directory.iterdir():
            parts = path.name.split('.')
            # Default setups are ``Si.PBE.gz``; ``Si.4.PBE.gz`` style names are alternative valence setups.
            if len(parts) >= 2 and parts[0] in known and parts[1] == xc:
                found.add(parts[0])
    return frozenset(found)


@functools.cache
def vasp_default_elements() -> frozenset[str]:
    """Return the elements of aiida-vasp's default POTCAR mapping (``default_potential_mapping`` in its protocol).

    The YAML file is read without importing aiida-vasp, so this module stays free of AiiDA imports.
    """
    import yaml

    spec = importlib.util.find_spec('aiida_vasp')
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    for location in spec.submodule_search_locations:
        path = pathlib.Path(location) / 'protocols' / 'vasp.yaml'
        if path.is_file():
            with path.open() as handle:
                return frozenset(yaml.safe_load(handle).get('default_potential_mapping', {}))
    return frozenset()


def labeler_elements(labeler: str, pseudopotentials: Mapping[str, str] | str | None = None) -> frozenset[str] | None:
    """Return the elements ``labeler`` can label, or ``None`` when it cannot be known here (no restriction).

    :param labeler: one of :data:`LABELERS`.
    :param pseudopotentials: for ``vasp`` and ``castep``, the chosen pseudopotential mapping ``{element: name}``;
        its keys are the supported elements. Without a mapping, ``vasp`` uses aiida-vasp's default mapping. For
        ``castep`` a single library name (``'C19'``) or no mapping means CASTEP's on-the-fly generator, which this
        function does not restrict (``None``).
    """
    if labeler not in LABELERS:
        raise ValueError(f'unknown labeler `{labeler}`; choose one of: {", ".join(LABELERS)}')
    if labeler == 'gpaw':
        return gpaw_elements('PBE')
    if labeler == 'xtb':
        return XTB_GFN1_ELEMENTS
    if isinstance(pseudopotentials, Mapping):
        return frozenset(pseudopotentials)
    if labeler == 'vasp':
        return vasp_default_elements()
    return None


def _close_pairs(atoms, min_distance: float) -> list[tuple[int, int, float]]:
    """Return ``(i, j, distance)`` for atom pairs (periodic images included) closer than ``min_distance``."""
    from ase.neighborlist import neighbor_list

    if len(atoms) == 1 and not atoms.pbc.any():
        return []
    first, second, distances = neighbor_list('ijd', atoms, min_distance, self_interaction=False)
    pairs = {}
    for i, j, distance in zip(first.tolist(), second.tolist(), distances.tolist()):
        key = (min(i, j), max(i, j))
        if key not in pairs or distance < pairs[key]:
            pairs[key] = distance
    return sorted(((i, j, d) for (i, j), d in pairs.items()), key=lambda item: item[2])


def validate_structure(
    atoms,
    *,
    labeler: str,
    supported_elements: Iterable[str] | None = None,
    needs_periodic: bool = True,
    min_distance: float = DEFAULT_MIN_DISTANCE,
) -> None:
    """Raise :class:`StructureValidationError` when ``atoms`` is not fit to be labelled by ``labeler``.

    :param atoms: an ``ase.Atoms``.
    :param labeler: name used in the messages (``gpaw``, ``xtb``, ``vasp``, ``castep``).
    :param supported_elements: elements the labeler can do; ``None`` takes :func:`labeler_elements` of ``labeler``
        (which itself may be ``None``: no element check).
    :param needs_periodic: refuse structures that are not periodic in all three directions (plane-wave codes).
    :param min_distance: smallest allowed interatomic distance in Å, periodic images included.
    """
    if len(atoms) == 0:
        raise StructureValidationError(f'the structure is empty: {labeler} needs at least one atom')

    if needs_periodic:
        if not all(atoms.pbc):
            raise StructureValidationError(
                f'the structure is not periodic in all directions (pbc={[bool(p) for p in atoms.pbc]}); '
                f'{labeler} is a plane-wave code and needs a periodic cell'
            )
        volume = abs(np.linalg.det(atoms.cell[:]))
        if volume < 1e-6:
            raise StructureValidationError(
                f'the structure is periodic but its cell has no volume ({volume:.3g} Å^3); {labeler} needs a cell'
            )

    if supported_elements is None and labeler in LABELERS:
        supported_elements = labeler_elements(labeler)
    if supported_elements is not None:
        supported = set(supported_elements)
        unsupported = sorted(set(atoms.get_chemical_symbols()) - supported)
        if unsupported:
            raise StructureValidationError(
                f'element{"s" if len(unsupported) > 1 else ""} {", ".join(unsupported)} cannot be labelled by '
                f'{labeler}: no parameters or pseudopotential for {"them" if len(unsupported) > 1 else "it"}'
            )

    if atoms.pbc.any() and abs(np.linalg.det(atoms.cell[:])) < 1e-6:
        # A periodic direction without a cell vector: the neighbour list cannot handle it; check without images.
        atoms = atoms.copy()
        atoms.pbc = False
    pairs = _close_pairs(atoms, min_distance)
    if pairs:
        i, j, distance = pairs[0]
        where = f'atom {i} and its own periodic image' if i == j else f'atoms {i} and {j}'
        symbols = atoms.get_chemical_symbols()
        more = f' ({len(pairs) - 1} more such pair{"s" if len(pairs) > 2 else ""})' if len(pairs) > 1 else ''
        raise StructureValidationError(
            f'{where} ({symbols[i]}-{symbols[j]}) are {distance:.3f} Å apart, closer than {min_distance} Å{more}: '
            'the structure is broken'
        )


def link_label(text: str) -> str:
    """Return ``text`` as a valid AiiDA link label (letters, digits and single underscores, at most 200 characters)."""
    cleaned = re.sub(r'[^A-Za-z0-9_]', '_', text)
    return re.sub(r'_+', '_', cleaned).strip('_')[:200]
