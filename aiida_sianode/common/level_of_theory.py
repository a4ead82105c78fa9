"""The level of theory of a label: what a training set compares before it mixes two labels.

A level of theory is a plain ``dict`` with these keys (all optional except ``code``):

``code``              name of the program (``vasp``, ``castep``, ``gpaw``, ``xtb``)
``code_version``      version string; recorded, but *not* part of the fingerprint
``method``            functional or Hamiltonian (``PBE``, ``GFN1-xTB``)
``basis``             ``plane-wave``, ``tight-binding``, ...
``cutoff_ev``         plane-wave cutoff in eV
``kpoint_spacing``    k-point spacing in 1/Å, with the 2π included (ASE's ``kptdensity`` / VASP KSPACING
                      convention); ``None`` for Γ-only
``smearing``          ``{'type': ..., 'width_ev': ...}``
``spin``              ``True`` when spin polarised
``pseudopotentials``  ``{element: name}``; compared per element, so Si labels and Li-Si labels made with the
                      same Si pseudopotential are compatible
``description``       free text, for imported data whose settings are only known in words
``hubbard``           DFT+U settings, absent without them: ``{'scheme': 'dudarev', 'species': {element:
                      {'orbital': 'd', 'u_ev': 6.2, 'j_ev': 0.0}}}`` (only species with a U or J that is not zero)
``dispersion``        the dispersion correction, absent without one: ``'DFT-D3(BJ) (IVDW=12)'``,
                      ``'vdW-DF (LUSE_VDW, AGGAC=0)'``, ``'SEDC G06'``
``kpoints_mesh``      the k-point mesh the code used; recorded, checked against the code's output, not part of the
                      fingerprint (the spacing is)

Numbers are compared after rounding (:data:`ROUNDING`), so ``520`` and ``520.0000001`` agree. ``hubbard`` and
``dispersion`` enter the fingerprint only when present, so records without them keep the fingerprint they had before
these keys existed, and a PBE+U or PBE+D3 label never shares a fingerprint with a plain PBE one.

This module also builds the records of the plane-wave codes from their settings (:func:`vasp_level_of_theory`,
:func:`castep_level_of_theory`), for labels made by the work chains and for labels imported from files alike, reads
a user's record (:func:`read_level_of_theory`), and compares a record with what a code reports it ran with
(:func:`contradictions`).
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = (
    'FINGERPRINT_KEYS',
    'OPTIONAL_FINGERPRINT_KEYS',
    'castep_hubbard_from_block',
    'castep_level_of_theory',
    'contradictions',
    'differences',
    'fingerprint',
    'normalise',
    'read_level_of_theory',
    'vasp_level_of_theory',
)

FINGERPRINT_KEYS = ('code', 'method', 'basis', 'cutoff_ev', 'kpoint_spacing', 'smearing', 'spin', 'description')
#: Keys that are part of the fingerprint when a record has them (settings added on top of a functional).
OPTIONAL_FINGERPRINT_KEYS = ('hubbard', 'dispersion')
ROUNDING = 6


def _canonical(value: Any) -> Any:
    """Return ``value`` with floats rounded and dicts sorted, so equal settings serialise equally."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        rounded = round(float(value), ROUNDING)
        return int(rounded) if rounded.is_integer() else rounded
    if isinstance(value, dict):
        return {str(key): _canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    return str(value)


def normalise(level_of_theory: dict) -> dict:
    """Return a canonical copy of ``level_of_theory``: rounded numbers, lower-case code name."""
    if not isinstance(level_of_theory, dict):
        raise TypeError(f'a level of theory is a dict, got {type(level_of_theory).__name__}')
    if 'code' not in level_of_theory:
        raise ValueError('a level of theory needs at least the key `code`')
    result = _canonical(level_of_theory)
    result['code'] = str(result['code']).lower()
    return result


def fingerprint(level_of_theory: dict) -> str:
    """Return the SHA-256 over the settings that change energies (:data:`FINGERPRINT_KEYS`), pseudopotentials aside.

    Pseudopotentials are compared per element by :func:`differences` instead, because a Si label and a LiSi label
    carry different element sets but can share one Si pseudopotential.
    """
    canonical = normalise(level_of_theory)
    subset = {key: canonical.get(key) for key in FINGERPRINT_KEYS}
    subset.update({key: canonical[key] for key in OPTIONAL_FINGERPRINT_KEYS if canonical.get(key) is not None})
    return hashlib.sha256(json.dumps(subset, sort_keys=True).encode()).hexdigest()


def differences(first: dict, second: dict) -> list[str]:
    """Return human-readable differences between two levels of theory; an empty list means compatible."""
    one, two = normalise(first), normalise(second)
    keys = FINGERPRINT_KEYS + OPTIONAL_FINGERPRINT_KEYS
    found = [f'{key}: {one.get(key)!r} != {two.get(key)!r}' for key in keys if one.get(key) != two.get(key)]
    pseudos_one, pseudos_two = one.get('pseudopotentials') or {}, two.get('pseudopotentials') or {}
    for element in sorted(set(pseudos_one) & set(pseudos_two)):
        if pseudos_one[element] != pseudos_two[element]:
            found.append(f'pseudopotentials[{element}]: {pseudos_one[element]!r} != {pseudos_two[element]!r}')
    return found


#: Keys a code's output can confirm: compared by :func:`contradictions` when the output states them.
REPORTED_KEYS = ('method', 'cutoff_ev', 'kpoints_mesh', 'smearing', 'spin', 'hubbard', 'dispersion')


def contradictions(recorded: dict, reported: dict, keys: Sequence[str] = REPORTED_KEYS) -> list[str]:
    """Return how the ``recorded`` level of theory contradicts what the code ``reported`` it ran with.

    A key is compared when ``reported`` has it (a ``None`` value for ``hubbard`` or ``dispersion`` means the code ran
    without them; for the other keys it means the output does not say). Each entry names both values, e.g.
    ``cutoff_ev: the label records 520.0, the code ran with 300.0``.
    """
    one, two = _canonical(dict(recorded)), _canonical(dict(reported))
    found = []
    for key in keys:
        if key not in two or (two[key] is None and key not in OPTIONAL_FINGERPRINT_KEYS):
            continue
        if one.get(key) != two[key]:
            found.append(f'{key}: the label records {one.get(key)!r}, the code ran with {two[key]!r}')
    return found


# --------------------------------------------------------------------------------------------------------------
# The records of VASP and CASTEP runs, from their settings
# --------------------------------------------------------------------------------------------------------------

_VASP_GGA = {
    'PE': 'PBE',
    'PS': 'PBEsol',
    'RP': 'RPBE',
    'RE': 'revPBE',
    '91': 'PW91',
    'AM': 'AM05',
    'CA': 'LDA',
    'PZ': 'LDA',
    'B3': 'B3LYP',
    'BO': 'optB86b',
    'OR': 'optPBE',
    'MK': 'optB88',
}

_VASP_SMEARING = {
    0: 'gaussian',
    -1: 'fermi-dirac',
    -2: 'fixed-occupations',
    -4: 'tetrahedron',
    -5: 'tetrahedron-blochl',
}


def _is_set(value) -> bool:
    """Return whether a VASP tag value means 'on' (``True``, ``T``, ``.TRUE.``)."""
    if isinstance(value, str):
        return value.strip().upper().strip('.').startswith('T')
    return bool(value)


def _vasp_functional(parameters: Mapping[str, Any], potcar_titles: Mapping[str, str]) -> str:
    """Return the functional of a VASP run from its tags, falling back on the POTCAR type when GGA is not set."""
    if _is_set(parameters.get('LHFCALC', False)):
        screen = float(parameters.get('HFSCREEN', 0.0) or 0.0)
        if abs(screen - 0.2) < 1e-6:
            return 'HSE06'
        if abs(screen - 0.3) < 1e-6:
            return 'HSE03'
        if screen == 0.0 and abs(float(parameters.get('AEXX', 0.25) or 0.25) - 0.25) < 1e-6:
            return 'PBE0'
        return f'hybrid (HFSCREEN={screen}, AEXX={parameters.get("AEXX")})'
    metagga = str(parameters.get('METAGGA', '') or '').strip().upper()
    if metagga and metagga not in ('--', 'NONE', 'F', 'FALSE'):
        return {'R2SCAN': 'r2SCAN', 'RSCAN': 'rSCAN'}.get(metagga, metagga)
    gga = str(parameters.get('GGA', '') or '').strip().upper()
    if gga and gga != '--':
        return _VASP_GGA.get(gga, f'GGA={gga}')
    kinds = {str(title).split()[0] for title in potcar_titles.values() if str(title).strip()}
    if kinds == {'PAW_PBE'}:
        return 'PBE'
    if kinds == {'PAW_GGA'}:
        return 'PW91'
    if kinds == {'PAW'}:
        return 'LDA'
    return 'unknown (GGA not set and POTCAR types ' + ', '.join(sorted(kinds)) + ')'


def _vasp_smearing(ismear, sigma) -> dict | None:
    """Return ``{'type', 'width_ev'}`` for VASP's ISMEAR/SIGMA (VASP's defaults ISMEAR=1, SIGMA=0.2)."""
    ismear = 1 if ismear is None else int(ismear)
    sigma = 0.2 if sigma is None else float(sigma)
    if ismear > 0:
        return {'type': f'methfessel-paxton-{ismear}', 'width_ev': sigma}
    kind = _VASP_SMEARING.get(ismear, f'ISMEAR={ismear}')
    if ismear in (0, -1):
        return {'type': kind, 'width_ev': sigma}
    return {'type': kind, 'width_ev': None}


#: VASP's LDAUTYPE values.
_VASP_LDAUTYPE = {1: 'liechtenstein', 2: 'dudarev', 4: 'liechtenstein-no-exchange'}
_ORBITALS = 'spdf'
#: VASP's IVDW values (the VASP wiki's IVDW page).
_VASP_IVDW = {
    1: 'DFT-D2',
    10: 'DFT-D2',
    11: 'DFT-D3(zero)',
    12: 'DFT-D3(BJ)',
    13: 'DFT-D4',
    2: 'TS',
    20: 'TS',
    21: 'TS (iterative Hirshfeld)',
    202: 'MBD@rsSCS',
    4: 'dDsC',
}
#: Zab_VDW of the two nonlocal functionals VASP offers through LUSE_VDW.
_VDW_DF_ZAB = {-0.8491: 'vdW-DF', -1.8867: 'vdW-DF2'}


def _numbers(value) -> list[float]:
    """Return a VASP per-species value (``'2 -1'``, ``[2, -1]``, ``6.2``) as a list of floats."""
    if value is None:
        return []
    if isinstance(value, str):
        return [float(item) for item in value.replace(',', ' ').split()]
    if isinstance(value, int | float):
        return [float(value)]
    return [float(item) for item in value]


def _vasp_hubbard(tags: Mapping[str, Any], species: Sequence[str]) -> dict | None:
    """Return the DFT+U record of VASP tags (LDAU, LDAUTYPE, LDAUL, LDAUU, LDAUJ), ``None`` when no U acts.

    LDAUL/LDAUU/LDAUJ hold one value per species in POTCAR order (``species``); a species with ``L = -1`` or with
    U and J both zero has no U, so a run that switches LDAU on without a U on any of its species is plain DFT.
    """
    if not _is_set(tags.get('LDAU', False)):
        return None
    kind = int(float(tags.get('LDAUTYPE', 2) or 2))
    ls, us, js = (_numbers(tags.get(name)) for name in ('LDAUL', 'LDAUU', 'LDAUJ'))
    entries = {}
    for index, element in enumerate(species):
        l_value = int(ls[index]) if index < len(ls) else -1
        u_value = us[index] if index < len(us) else 0.0
        j_value = js[index] if index < len(js) else 0.0
        if 0 <= l_value < len(_ORBITALS) and (u_value != 0.0 or j_value != 0.0):
            entries[str(element)] = {'orbital': _ORBITALS[l_value], 'u_ev': u_value, 'j_ev': j_value}
    if not entries:
        return None
    return {'scheme': _VASP_LDAUTYPE.get(kind, f'LDAUTYPE={kind}'), 'species': entries}


def _vasp_dispersion(tags: Mapping[str, Any]) -> str | None:
    """Return the dispersion correction of VASP tags (IVDW; LUSE_VDW with Zab_VDW and AGGAC), ``None`` for none."""
    found = []
    ivdw = tags.get('IVDW')
    if ivdw not in (None, '') and int(float(ivdw)) != 0:
        ivdw = int(float(ivdw))
        found.append(f'{_VASP_IVDW.get(ivdw, "IVDW")} (IVDW={ivdw})')
    if _is_set(tags.get('LUSE_VDW', False)):
        zab = float(tags.get('ZAB_VDW', -0.8491) or -0.8491)
        name = next((value for key, value in _VDW_DF_ZAB.items() if abs(key - zab) < 1e-3), f'Zab_VDW={zab:g}')
        aggac = float(tags.get('AGGAC', 1.0) if tags.get('AGGAC') is not None else 1.0)
        found.append(f'{name} (LUSE_VDW, AGGAC={aggac:g})')
    return ' + '.join(found) if found else None


_CASTEP_HUBBARD_LINE = re.compile(r'^\s*([A-Z][a-z]?)\S*\s+((?:[spdf]\s*:\s*[-+\d.eE]+\s*)+)')
_CASTEP_HUBBARD_VALUE = re.compile(r'([spdf])\s*:\s*([-+\d.eE]+)')


def castep_hubbard_from_block(block) -> dict[str, dict[str, float]]:
    """Return ``{element: {orbital: U in eV}}`` of a CASTEP ``hubbard_u`` block (lines such as ``Ni d: 6.2``).

    :param block: the block's lines (a list, or one string); an optional first line gives the unit (``eV`` or
        ``Ha``/``Hartree``).
    """
    lines = block.splitlines() if isinstance(block, str) else [str(line) for line in block or []]
    scale = 1.0
    result: dict[str, dict[str, float]] = {}
    for line in lines:
        text = line.split('!')[0].split('#')[0].strip()
        if text.lower() in ('ev', 'ha', 'hartree'):
            scale = 1.0 if text.lower() == 'ev' else 27.211386245988
            continue
        match = _CASTEP_HUBBARD_LINE.match(text)
        if not match:
            raise ValueError(f'cannot read the hubbard_u line `{line}`: expected e.g. `Ni d: 6.2`')
        for orbital, value in _CASTEP_HUBBARD_VALUE.findall(match.group(2)):
            result.setdefault(match.group(1), {})[orbital] = float(value) * scale
    return result


def vasp_level_of_theory(
    parameters: Mapping[str, Any],
    *,
    potcar_titles: Mapping[str, str],
    kpoint_spacing: float | None = None,
    kpoints_mesh: Sequence[int] | None = None,
    version: str | None = None,
) -> dict:
    """Return the level-of-theory record of a VASP calculation.

    Used both for labels made by :class:`~aiida_sianode.workflows.label.vasp.VaspLabelWorkChain` (from its INCAR)
    and for labels imported from files (from the parameters VASP wrote), so the two agree when the settings do.

    :param parameters: INCAR tags, any case (``ENCUT``, ``GGA``, ``METAGGA``, ``LHFCALC``, ``ISMEAR``, ``SIGMA``,
        ``ISPIN``).
    :param potcar_titles: ``{element: POTCAR TITEL}``, e.g. ``{'Si': 'PAW_PBE Si 05Jan2001'}``.
    :param kpoint_spacing: k-point spacing in 1/Å with the 2π included (VASP's KSPACING convention), when the
        mesh was made from one; ``None`` otherwise.
    :param kpoints_mesh: the Monkhorst-Pack/Γ mesh actually used, recorded for information.
    :param version: the VASP version string.
    """
    tags = {str(key).upper(): value for key, value in parameters.items()}
    encut = tags.get('ENCUT')
    hubbard = _vasp_hubbard(tags, list(potcar_titles))
    dispersion = _vasp_dispersion(tags)
    record = {
        'code': 'vasp',
        'method': _vasp_functional(tags, potcar_titles),
        'basis': 'plane-wave',
        'cutoff_ev': float(encut) if encut is not None else None,
        'kpoint_spacing': float(kpoint_spacing) if kpoint_spacing is not None else None,
        'smearing': _vasp_smearing(tags.get('ISMEAR'), tags.get('SIGMA')),
        'spin': int(tags.get('ISPIN', 1) or 1) == 2,
        'pseudopotentials': {str(element): str(title).strip() for element, title in potcar_titles.items()},
    }
    if hubbard is not None:
        record['hubbard'] = hubbard
    if dispersion is not None:
        record['dispersion'] = dispersion
    if kpoints_mesh is not None:
        record['kpoints_mesh'] = [int(value) for value in kpoints_mesh]
    if version:
        record['code_version'] = str(version).strip()
    return record


_CASTEP_SMEARING = {
    'gaussian': 'gaussian',
    'fermidirac': 'fermi-dirac',
    'fermi-dirac': 'fermi-dirac',
    'methfesselpaxton': 'methfessel-paxton',
    'coldsmearing': 'cold',
    'cold': 'cold',
    'gaussiansplines': 'gaussian-splines',
    'hermitepolynomials': 'hermite-polynomials',
}

#: CASTEP's names (``xc_functional`` values and the long names newer versions print) to the usual short names.
_CASTEP_FUNCTIONALS = {
    'PBESOL': 'PBEsol',
    'RSCAN': 'rSCAN',
    'LOCAL DENSITY APPROXIMATION': 'LDA',
    'PERDEW-ZUNGER LOCAL DENSITY APPROXIMATION': 'LDA',
    'PERDEW BURKE ERNZERHOF': 'PBE',
    'PERDEW BURKE ERNZERHOF FOR SOLIDS': 'PBEsol',
    'PERDEW WANG (1991)': 'PW91',
}


def castep_level_of_theory(
    *,
    cutoff_ev: float | None,
    xc_functional: str | None,
    spin: bool = False,
    smearing: Mapping[str, Any] | None = None,
    pseudopotentials: Mapping[str, str] | None = None,
    kpoint_spacing: float | None = None,
    kpoints_mesh: Sequence[int] | None = None,
    version: str | None = None,
    description: str | None = None,
    hubbard: Mapping[str, Any] | None = None,
    dispersion: str | None = None,
) -> dict:
    """Return the level-of-theory record of a CASTEP calculation.

    :param cutoff_ev: plane-wave cut-off in eV.
    :param xc_functional: CASTEP's ``xc_functional`` name (``PBE``, ``LDA``, ``PBESOL``...).
    :param spin: whether the run was spin polarised.
    :param smearing: ``{'type': scheme, 'width_ev': width}`` for a metallic treatment; ``None`` for fixed
        occupancies (CASTEP's "non-metallic").
    :param pseudopotentials: ``{element: pseudopotential}``: the file name or the on-the-fly string CASTEP used.
    :param kpoint_spacing: 1/Å with the 2π included, when the mesh was made from a spacing.
    :param kpoints_mesh: the MP grid used, for information.
    :param version: the CASTEP version.
    :param description: free text that is part of the fingerprint (set for ``.geom``/``.md`` energies).
    :param hubbard: ``{element: {orbital: U in eV}}`` of the ``hubbard_u`` block (see
        :func:`castep_hubbard_from_block`); ``None`` or empty without DFT+U.
    :param dispersion: the SEDC scheme when ``sedc_apply`` is on (``G06``, ``TS``, ``D3``...), else ``None``.
    """
    functional = str(xc_functional).strip().upper() if xc_functional else None
    if smearing is not None:
        kind = str(smearing.get('type', 'gaussian')).replace('_', '').replace(' ', '').lower()
        width = smearing.get('width_ev')
        smearing = {'type': _CASTEP_SMEARING.get(kind, kind), 'width_ev': float(width) if width is not None else None}
    record = {
        'code': 'castep',
        'method': _CASTEP_FUNCTIONALS.get(functional, functional) if functional else None,
        'basis': 'plane-wave',
        'cutoff_ev': float(cutoff_ev) if cutoff_ev is not None else None,
        'kpoint_spacing': float(kpoint_spacing) if kpoint_spacing is not None else None,
        'smearing': smearing,
        'spin': bool(spin),
        'pseudopotentials': {str(element): str(name).strip() for element, name in (pseudopotentials or {}).items()},
    }
    species = {
        str(element): {'orbital': orbital, 'u_ev': float(value), 'j_ev': 0.0}
        for element, orbitals in (hubbard or {}).items()
        for orbital, value in orbitals.items()
        if float(value) != 0.0
    }
    if species:
        record['hubbard'] = {'scheme': 'castep hubbard_u', 'species': species}
    if dispersion:
        record['dispersion'] = f'SEDC {dispersion}'
    if kpoints_mesh is not None:
        record['kpoints_mesh'] = [int(value) for value in kpoints_mesh]
    if version:
        record['code_version'] = str(version)
    if description:
        record['description'] = description
    return record


def read_level_of_theory(value: str | Mapping | pathlib.Path | None) -> dict | None:
    """Return a level-of-theory record from a dict, a YAML/JSON file path, or free text.

    Free text (``'VASP PBE 520 eV, mlearn'``) becomes ``{'code': 'unspecified', 'description': text}``: what is
    known only in words is kept in words, and is part of the fingerprint. A file must hold a mapping with at least
    ``code``.
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        record = dict(value)
    else:
        path = pathlib.Path(str(value))
        if path.suffix.lower() in ('.yaml', '.yml', '.json') or path.is_file():
            if not path.is_file():
                raise ValueError(f'level-of-theory file {path} does not exist')
            import yaml

            with path.open() as handle:
                record = json.load(handle) if path.suffix.lower() == '.json' else yaml.safe_load(handle)
            if not isinstance(record, Mapping):
                raise ValueError(f'level-of-theory file {path} must hold a mapping, got {type(record).__name__}')
            record = dict(record)
        else:
            text = str(value).strip()
            if not text:
                raise ValueError('the level of theory is empty')
            record = {'code': 'unspecified', 'description': text}
    if 'code' not in record:
        raise ValueError(f'a level of theory needs at least the key `code`, got keys: {", ".join(map(str, record))}')
    return record
