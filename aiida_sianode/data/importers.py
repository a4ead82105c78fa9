"""Import existing DFT work as labels: extended XYZ datasets, VASP ``vasprun.xml``/``OUTCAR``, CASTEP
``.castep``/``.geom``/``.md``.

Every ionic step (frame) of a file becomes one :class:`~aiida_sianode.data.label.LabelData`, or is refused with the
reason. Nothing half-read becomes a label:

* the numbers (positions, cell, energy, forces, stress) are read by ASE's readers (``vasp-xml``, ``vasp-out``,
  ``castep-castep``, ``castep-geom``, ``castep-md``, ``extxyz``), never by a parser of our own, and converted by
  them to eV, eV/Å and eV/Å^3 with ASE's sign convention (for VASP the energy is ``energy(sigma->0)``, for a
  ``.castep`` file ASE's ``energy``: the 0 K estimate E-0.5TS with smearing, otherwise the final energy);
* a frame whose electronic self-consistency did not converge is refused: VASP steps that used all ``NELM``
  electronic steps (VASP 6 OUTCARs, which say "EDIFF was not reached", are taken at their word), CASTEP steps
  with the warning "SCF cycles performed but system has not reached the groundstate";
* a file cut off in the middle (a killed job, XML not closed) gives its whole ionic steps and the incomplete one
  is reported; a CASTEP file without a regular end is refused whole, with the warnings aiida-castep's parser
  finds in it;
* a frame without energy or forces (CASTEP prints no forces for BFGS trial steps) is refused;
* a frame whose structure equals one imported earlier in the same import (a ``vasprun.xml`` and the ``OUTCAR``
  of the same run, a ``.castep`` and its ``.md``) is refused as a duplicate.

The level of theory of each label is read from the file where the file has it: VASP ENCUT, GGA/METAGGA/LHFCALC,
ISMEAR/SIGMA, ISPIN, KSPACING or the k-point mesh, POTCAR titles and the version (from the ``<parameters>``,
``<incar>``, ``<kpoints>`` and ``<atominfo>`` blocks of ``vasprun.xml`` or the OUTCAR header); CASTEP cut-off,
functional, spin, smearing, pseudopotentials, MP grid and version (ASE's header reader, plus the smearing lines
and aiida-castep's version pattern). An extxyz file carries none: pass ``level_of_theory``. A ``.geom``/``.md``
file takes it from the ``.castep`` of the same seed beside it (or from ``level_of_theory``); its energies are the
free energy CASTEP writes there, so its record carries a ``description`` saying so and its labels do not mix
silently with labels read from ``.castep`` files.

Each label records ``source = {'kind': 'file', 'filename', 'sha256', 'frame', 'format'}``; frames are counted
from 0, as ``ase.io.read`` indexes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = (
    'FORMATS',
    'FileReport',
    'FrameRefusal',
    'ImportReport',
    'castep_level_of_theory',
    'detect_format',
    'import_files',
    'read_level_of_theory',
    'vasp_level_of_theory',
)

#: Formats :func:`import_files` reads, named as ASE names its readers.
FORMATS = {
    'extxyz': 'extended XYZ with energies and forces under given keys',
    'vasp-xml': 'VASP vasprun.xml',
    'vasp-out': 'VASP OUTCAR',
    'castep-castep': 'CASTEP .castep output',
    'castep-geom': 'CASTEP .geom trajectory of a geometry optimisation',
    'castep-md': 'CASTEP .md trajectory of molecular dynamics',
}

#: Two frames whose cells and positions (minimum image) agree within this many Å are the same structure.
DUPLICATE_TOLERANCE = 1e-4

#: The description given to labels read from CASTEP ``.geom``/``.md`` files (part of their fingerprint).
CASTEP_TRAJECTORY_ENERGY = (
    'energy as written in a CASTEP .geom/.md file: the free energy E-TS (finite-basis corrected when the run '
    'applied the correction), not extrapolated to zero smearing'
)

_CASTEP_SCF_FAILURE = 'SCF cycles performed but system has not reached the groundstate'
_CASTEP_STEP_MARKERS = ('BFGS: starting iteration', 'BFGS: improving iteration', 'Starting MD iteration')


@dataclasses.dataclass
class FrameRefusal:
    """A frame that did not become a label, and why; ``detail`` holds numbers that differ from frame to frame."""

    frame: int | None
    reason: str
    detail: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class FileReport:
    """What :func:`import_files` made of one file.

    ``labels`` are unstored ``LabelData`` until :meth:`ImportReport.store`; ``error`` is set when nothing of the
    file could be used (and says why); ``notes`` are facts worth knowing that did not refuse anything.
    """

    path: str
    format: str
    sha256: str = ''
    frames_found: int = 0
    labels: list = dataclasses.field(default_factory=list)
    refused: list[FrameRefusal] = dataclasses.field(default_factory=list)
    error: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def n_imported(self) -> int:
        """Number of frames that became labels."""
        return len(self.labels)

    @property
    def n_refused(self) -> int:
        """Number of frames refused (a whole-file error counts as one)."""
        return len(self.refused) + (1 if self.error and not self.refused else 0)

    def grouped_refusals(self) -> list[tuple[list[int | None], str]]:
        """Return the refusals as ``(frames, reason)``, runs of frames that share a reason grouped.

        For duplicates the reason ends with the frames they repeat and the range of the energy differences.
        """
        groups: list[tuple[list[FrameRefusal], str]] = []
        for refusal in self.refused:
            if groups and groups[-1][1] == refusal.reason:
                groups[-1][0].append(refusal)
            else:
                groups.append(([refusal], refusal.reason))
        result = []
        for members, reason in groups:
            repeats = [member.detail['repeats'] for member in members if 'repeats' in member.detail]
            if repeats:
                differences = [member.detail['energy_difference_ev'] for member in members]
                low, high = min(differences), max(differences)
                spread = f'{low:+.2e} eV' if low == high else f'{low:+.2e} to {high:+.2e} eV'
                reason = f'{reason}: {_describe_frames(sorted(set(repeats)))} there (energies differ by {spread})'
            result.append(([member.frame for member in members], reason))
        return result

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary (label PKs only when stored)."""
        return {
            'path': self.path,
            'format': self.format,
            'sha256': self.sha256,
            'frames_found': self.frames_found,
            'imported': self.n_imported,
            'refused': [
                {'frame': refusal.frame, 'reason': refusal.reason, **refusal.detail} for refusal in self.refused
            ],
            'error': self.error,
            'notes': list(self.notes),
            'label_pks': [label.pk for label in self.labels if label.is_stored],
        }

    def summary_lines(self) -> list[str]:
        """Return the human-readable lines the CLI prints for this file."""
        lines = [f'{self.path} [{self.format}]: {self.n_imported} imported, {len(self.refused)} refused']
        if self.error:
            lines[0] = f'{self.path} [{self.format}]: nothing imported'
            lines.append(f'  refused: {self.error}')
        for frames, reason in self.grouped_refusals():
            lines.append(f'  {_describe_frames(frames)}: {reason}')
        lines.extend(f'  note: {note}' for note in self.notes)
        return lines


@dataclasses.dataclass
class ImportReport:
    """The result of :func:`import_files`: one :class:`FileReport` per file, in the order read."""

    files: list[FileReport]

    @property
    def labels(self) -> list:
        """All labels made, in file and frame order."""
        return [label for report in self.files for label in report.labels]

    @property
    def n_imported(self) -> int:
        """Number of labels made."""
        return sum(report.n_imported for report in self.files)

    @property
    def n_refused(self) -> int:
        """Number of frames (or whole files) refused."""
        return sum(report.n_refused for report in self.files)

    def mixed_levels_of_theory(self) -> list[str]:
        """Return the differences between the levels of theory of the labels (empty: all compatible)."""
        from aiida_sianode.common import level_of_theory as lot

        found: list[str] = []
        reference = None
        seen = set()
        for report in self.files:
            for label in report.labels:
                if reference is None:
                    reference = (report.path, label.level_of_theory)
                    continue
                if label.fingerprint in seen:
                    continue
                differences = lot.differences(reference[1], label.level_of_theory)
                if differences:
                    seen.add(label.fingerprint)
                    found.append(f'{report.path} vs {reference[0]}: {"; ".join(differences)}')
        return found

    def store(self, group_label: str | None = None):
        """Store every label and, with ``group_label``, add them to that ``orm.Group`` (created when missing).

        The labels are stored in one database transaction: all of them or, on an error, none.

        :return: the group, or ``None`` without ``group_label``.
        """
        from aiida import orm
        from aiida.manage import get_manager

        labels = self.labels
        with get_manager().get_profile_storage().transaction():
            for label in labels:
                if not label.is_stored:
                    label.store()
        if group_label is None:
            return None
        group, _ = orm.Group.collection.get_or_create(label=group_label)
        if not group.description:
            group.description = f'labels imported by aiida-sianode from {len(self.files)} file(s)'
        group.add_nodes(labels)
        return group

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary."""
        return {
            'files': [report.as_dict() for report in self.files],
            'imported': self.n_imported,
            'refused': self.n_refused,
        }

    def summary_lines(self) -> list[str]:
        """Return the lines the CLI prints: per file, then the totals."""
        lines = [line for report in self.files for line in report.summary_lines()]
        lines.append(f'total: {self.n_imported} frames imported, {self.n_refused} refused, {len(self.files)} file(s)')
        return lines


# --------------------------------------------------------------------------------------------------------------
# Levels of theory
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


# --------------------------------------------------------------------------------------------------------------
# Metadata of VASP and CASTEP files (settings and per-step convergence; the numbers come from ASE)
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _IonicStep:
    """One ionic step as far as convergence goes."""

    electronic_steps: int = 0
    unconverged: bool | None = None  # True/False when the file says so explicitly (VASP 6 OUTCAR)
    complete: bool = True


@dataclasses.dataclass
class _VaspMetadata:
    version: str | None = None
    parameters: dict = dataclasses.field(default_factory=dict)
    incar: dict = dataclasses.field(default_factory=dict)
    potcar_titles: dict = dataclasses.field(default_factory=dict)
    kpoints_mesh: list[int] | None = None
    steps: list[_IonicStep] = dataclasses.field(default_factory=list)
    truncated: str | None = None
    finished: bool = True

    @property
    def nelm(self) -> int:
        """NELM of the run (VASP's default 60 when not written)."""
        value = self.incar.get('NELM', self.parameters.get('NELM', 60))
        return int(value)

    def level_of_theory(self) -> dict:
        """Return the level-of-theory record of the run."""
        spacing = self.incar.get('KSPACING') if 'KSPACING' in self.incar else None
        merged = dict(self.parameters)
        merged.update(self.incar)
        return vasp_level_of_theory(
            merged,
            potcar_titles=self.potcar_titles,
            kpoint_spacing=spacing,
            kpoints_mesh=self.kpoints_mesh if spacing is None else None,
            version=self.version,
        )


def _xml_value(element) -> Any:
    """Convert a vasprun ``<i>`` element to int, bool, float or str by its ``type`` attribute."""
    text = (element.text or '').strip()
    kind = element.get('type', 'float')
    try:
        if kind == 'int':
            return int(text)
        if kind == 'logical':
            return text.upper().startswith('T')
        if kind == 'string':
            return text
        return float(text)
    except ValueError:
        return text  # VASP writes ``******`` for numbers that overflow their field


def _element_symbol(token: str) -> str:
    """Return the element of a POTCAR symbol such as ``Li_sv`` or ``H1.25``."""
    match = re.match(r'[A-Z][a-z]?', token.strip())
    return match.group(0) if match else token.strip()


def _read_vasprun_metadata(path: pathlib.Path) -> _VaspMetadata:
    """Read the settings and the per-step electronic step counts of a ``vasprun.xml``; survive a cut-off file."""
    meta = _VaspMetadata()
    depth_tags: list[str] = []
    started = 0
    try:
        for event, element in ET.iterparse(str(path), events=('start', 'end')):
            if event == 'start':
                depth_tags.append(element.tag)
                if element.tag == 'calculation' and len(depth_tags) == 2:
                    started += 1
                continue
            depth_tags.pop()
            parent = depth_tags[-1] if depth_tags else None
            if element.tag == 'generator' and parent == 'modeling':
                for item in element.findall('i'):
                    if item.get('name') == 'version':
                        meta.version = (item.text or '').strip()
            elif element.tag == 'incar' and parent == 'modeling':
                meta.incar = {item.get('name'): _xml_value(item) for item in element.findall('i')}
            elif element.tag == 'parameters' and parent == 'modeling':
                # The first occurrence of a name is the one VASP used (``NELM`` also appears under response
                # functions, for instance).
                for item in element.iter('i'):
                    meta.parameters.setdefault(item.get('name'), _xml_value(item))
            elif element.tag == 'kpoints' and parent == 'modeling':
                divisions = element.find('generation/v[@name="divisions"]')
                if divisions is not None and divisions.text:
                    meta.kpoints_mesh = [int(value) for value in divisions.text.split()]
            elif element.tag == 'atominfo' and parent == 'modeling':
                for array in element.findall('array'):
                    if array.get('name') != 'atomtypes':
                        continue
                    fields = [field.text.strip() for field in array.findall('field')]
                    for row in array.findall('set/rc'):
                        values = dict(zip(fields, [(cell.text or '').strip() for cell in row.findall('c')]))
                        symbol = _element_symbol(values.get('element', ''))
                        meta.potcar_titles[symbol] = values.get('pseudopotential', '')
            elif element.tag == 'calculation' and parent == 'modeling':
                complete = element.find('varray[@name="forces"]') is not None
                meta.steps.append(_IonicStep(electronic_steps=len(element.findall('scstep')), complete=complete))
                element.clear()
    except ET.ParseError as exception:
        meta.truncated = str(exception)
        meta.finished = False
        if started > len(meta.steps):
            meta.steps.append(_IonicStep(complete=False))
    return meta


_OUTCAR_TAGS = {
    'ENCUT': re.compile(r'^\s*ENCUT\s*=\s*([-\d.Ee+]+)'),
    'ISMEAR': re.compile(r'^\s*ISMEAR\s*=\s*(-?\d+)'),
    'SIGMA': re.compile(r'SIGMA\s*=\s*([-\d.Ee+]+)'),
    'ISPIN': re.compile(r'^\s*ISPIN\s*=\s*(\d+)'),
    'NELM': re.compile(r'^\s*NELM\s*=\s*(\d+)'),
    'EDIFF': re.compile(r'^\s*EDIFF\s*=\s*([-\d.Ee+]+)'),
    'GGA': re.compile(r'^\s*GGA\s*=\s*(\S+)'),
    'METAGGA': re.compile(r'^\s*METAGGA\s*=\s*(\S+)'),
    'LHFCALC': re.compile(r'^\s*LHFCALC\s*=\s*(\S+)'),
    'HFSCREEN': re.compile(r'^\s*HFSCREEN\s*=\s*([-\d.Ee+]+)'),
    'AEXX': re.compile(r'^\s*AEXX\s*=\s*([-\d.Ee+]+)'),
}
_OUTCAR_KSPACING = re.compile(r'^\s*KSPACING\s*=\s*([\d.Ee+-]+)')
_OUTCAR_ITERATION = re.compile(r'Iteration\s+(\d+)\(\s*(\d+)\)')
_OUTCAR_TITEL = re.compile(r'^\s*TITEL\s*=\s*(.+?)\s*$')
_OUTCAR_MESH = re.compile(r'generate k-points for:\s+(\d+)\s+(\d+)\s+(\d+)')


def _read_outcar_metadata(path: pathlib.Path) -> _VaspMetadata:
    """Read the settings and, per ionic step, the electronic steps and VASP 6's convergence verdict of an OUTCAR."""
    meta = _VaspMetadata(finished=False)
    steps: dict[int, _IonicStep] = {}
    current = None
    in_incar_echo = False
    with path.open(errors='replace') as handle:
        for line in handle:
            if meta.version is None and line.strip().startswith('vasp.'):
                meta.version = line.split()[0][len('vasp.') :]
                continue
            match = _OUTCAR_ITERATION.search(line)
            if match:
                current = int(match.group(1))
                step = steps.setdefault(current, _IonicStep())
                step.electronic_steps = max(step.electronic_steps, int(match.group(2)))
                continue
            if 'aborting loop' in line and current is not None:
                if 'EDIFF was not reached' in line:
                    steps[current].unconverged = True
                elif 'EDIFF is reached' in line and not steps[current].unconverged:
                    steps[current].unconverged = False
                continue
            if 'General timing and accounting' in line:
                meta.finished = True
                continue
            if current is not None:
                continue  # the header is over; only the step markers above matter from here
            if line.strip() == 'INCAR:':
                in_incar_echo = True
                continue
            if in_incar_echo:
                if '=' not in line:
                    in_incar_echo = False
                else:
                    key, _, value = line.partition('=')
                    meta.incar[key.strip().upper()] = value.strip()
            match = _OUTCAR_TITEL.match(line)
            if match:
                title = match.group(1)
                parts = title.split()
                symbol = _element_symbol(parts[1]) if len(parts) > 1 else title
                meta.potcar_titles.setdefault(symbol, title)
                continue
            match = _OUTCAR_MESH.search(line)
            if match and meta.kpoints_mesh is None:
                meta.kpoints_mesh = [int(match.group(index)) for index in (1, 2, 3)]
                continue
            for tag, pattern in _OUTCAR_TAGS.items():
                if tag not in meta.parameters:
                    match = pattern.search(line)
                    if match:
                        meta.parameters[tag] = match.group(1)
            match = _OUTCAR_KSPACING.match(line)
            if match and 'KSPACING' not in meta.incar:
                meta.parameters['KSPACING'] = match.group(1)
    if not (meta.version or '').startswith('6'):
        # VASP 5 prints "aborting loop because EDIFF is reached" even when it stopped at NELM: not a verdict.
        for step in steps.values():
            step.unconverged = None
    for key in ('ENCUT', 'SIGMA', 'EDIFF', 'HFSCREEN', 'AEXX'):
        if key in meta.parameters:
            meta.parameters[key] = float(meta.parameters[key])
    for key in ('ISMEAR', 'ISPIN', 'NELM'):
        if key in meta.parameters:
            meta.parameters[key] = int(meta.parameters[key])
    # Only tags the user wrote in the INCAR (echoed by VASP 6) decide whether KSPACING made the mesh.
    meta.incar = {key: value for key, value in meta.incar.items() if key == 'KSPACING'}
    if 'KSPACING' in meta.incar:
        meta.incar['KSPACING'] = float(meta.incar['KSPACING'])
    meta.steps = [steps[index] for index in sorted(steps)]
    return meta


def _vasp_step_refusal(meta: _VaspMetadata, step: _IonicStep, source: str) -> str | None:
    """Return why an ionic step's electronic SCF is not converged, or ``None`` when it is."""
    if step.unconverged is True:
        return (
            f'electronic SCF not converged: the OUTCAR says "EDIFF was not reached" after {step.electronic_steps} steps'
        )
    if step.unconverged is False:
        return None
    if step.electronic_steps >= meta.nelm:
        return (
            f'electronic SCF not converged: the step used all NELM = {meta.nelm} electronic steps '
            f'(VASP stops there whether or not EDIFF was met, and {source} does not say which)'
        )
    return None


def _castep_version(lines: Sequence[str]) -> str | None:
    """Return the CASTEP version, found with aiida-castep's own pattern."""
    from aiida_castep.parsers.raw_parser import version_re

    for line in lines:
        match = version_re.search(line)
        if match:
            return match.group(1)
    return None


def _castep_run_starts(lines: Sequence[str]) -> list[int]:
    """Return the line indices where CASTEP runs start (CASTEP appends a continuation run to the same file)."""
    return [
        index
        for index, line in enumerate(lines)
        if ('Welcome' in line or 'Materials Studio' in line) and 'CASTEP' in line
    ]


def _castep_last_record(lines: Sequence[str]) -> list[str]:
    """Return the lines of the last run in a ``.castep`` file, the one ASE reads."""
    starts = _castep_run_starts(lines)
    return list(lines[starts[-1] if starts else 0 :])


def _castep_header_settings(lines: Sequence[str]) -> dict[str, Any]:
    """Return the settings ASE's header reader does not give: smearing scheme and width, MP grid, version, and the
    pseudopotentials (aiida-castep's parser reads the "Files used for pseudopotentials" block that ASE skips)."""
    from aiida_castep.parsers.raw_parser import parse_castep_text_output

    header_end = next((index for index, line in enumerate(lines) if 'MEMORY AND SCRATCH DISK ESTIMATES' in line), None)
    parsed, _, _ = parse_castep_text_output(list(lines[:header_end]) if header_end else list(lines), {})
    settings: dict[str, Any] = {
        'version': parsed.get('castep_version') or _castep_version(lines),
        'pseudopotentials': dict(parsed.get('pseudo_pots') or {}),
    }
    for line in lines[:header_end] if header_end else lines:
        if 'smearing scheme' in line and ':' in line and 'smearing_scheme' not in settings:
            settings['smearing_scheme'] = line.split(':', 1)[1].strip()
        elif 'smearing width' in line and ':' in line and 'smearing_width' not in settings:
            settings['smearing_width'] = float(line.split(':', 1)[1].split()[0])
        elif 'MP grid size for SCF calculation is' in line and 'kpoints_mesh' not in settings:
            settings['kpoints_mesh'] = [int(value) for value in line.split()[-3:]]
    return settings


def _castep_record_from_frame(atoms, lines: Sequence[str], description: str | None = None) -> dict:
    """Return the level of theory of a ``.castep`` run from ASE's header reading and the extra header lines."""
    header = dict(getattr(atoms.calc, '_parameters_header', {}) or {})
    settings = _castep_header_settings(lines)
    smearing = None
    if not header.get('fix_occupancy', False):
        smearing = {'type': settings.get('smearing_scheme', 'gaussian'), 'width_ev': settings.get('smearing_width')}
    pseudopotentials = settings['pseudopotentials']
    return castep_level_of_theory(
        cutoff_ev=getattr(atoms.calc, '_cut_off_energy', None) or header.get('cut_off_energy'),
        xc_functional=header.get('xc_functional'),
        spin=bool(header.get('spin_polarized', False)),
        smearing=smearing,
        pseudopotentials=pseudopotentials,
        kpoints_mesh=settings.get('kpoints_mesh'),
        version=settings.get('version'),
        description=description,
    )


def _castep_step_scf_failures(record_lines: Sequence[str]) -> list[bool]:
    """Return, per configuration ASE makes of a ``.castep`` record, whether its SCF reported a failure.

    ASE starts a new configuration at each BFGS/MD iteration marker, so the record is split at the same markers.
    """
    failed = [False]
    for line in record_lines:
        if any(marker in line for marker in _CASTEP_STEP_MARKERS):
            failed.append(False)
        elif _CASTEP_SCF_FAILURE in line:
            failed[-1] = True
    return failed


def _castep_unfinished_reason(lines: Sequence[str]) -> str:
    """Explain why a ``.castep`` file without a regular end cannot give labels, with aiida-castep's findings."""
    from aiida_castep.parsers.raw_parser import parse_castep_text_output

    record = _castep_last_record(lines)
    parsed, trajectory, _ = parse_castep_text_output([line.rstrip('\n') for line in record], {})
    problems = []
    if 'ERROR_SCF_NOT_CONVERGED' in parsed.get('warnings', []):
        problems.append(
            'the SCF did not converge ("max. SCF cycles performed but system has not reached the groundstate")'
        )
    if 'ERROR_TIMELIMIT_REACHED' in parsed.get('warnings', []):
        problems.append('it stopped at its time limit')
    if not any(trajectory.get(key) for key in ('total_energy', 'free_energy')):
        if trajectory.get('zero_K_energy'):
            problems.append('no final energy was written (only a 0 K estimate of the unconverged density)')
        else:
            problems.append('no final energy was written')
    if not any(key.endswith('forces') for key in trajectory):
        problems.append('no forces were written')
    detail = '; '.join(problems) if problems else 'the last run is incomplete'
    return f'CASTEP did not finish this run (no "Finalisation time" line): {detail}'


# --------------------------------------------------------------------------------------------------------------
# The importer
# --------------------------------------------------------------------------------------------------------------


def detect_format(path: str | pathlib.Path) -> str | None:
    """Return the format of ``path`` from its name (see :data:`FORMATS`), or ``None`` when not recognised."""
    name = pathlib.Path(path).name.lower()
    if name.endswith(('.extxyz', '.xyz')):
        return 'extxyz'
    if name.startswith('vasprun') and name.endswith('.xml'):
        return 'vasp-xml'
    if name.startswith('outcar'):
        return 'vasp-out'
    for suffix, fmt in (('.castep', 'castep-castep'), ('.geom', 'castep-geom'), ('.md', 'castep-md')):
        if name.endswith(suffix):
            return fmt
    return None


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open('rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _describe_frames(frames: list[int | None]) -> str:
    """Return ``frame 3`` / ``frames 0-89 (90)`` / ``frames 1, 4`` for a list of frame indices."""
    if frames == [None]:
        return 'file'
    if len(frames) == 1:
        return f'frame {frames[0]}'
    if all(isinstance(frame, int) for frame in frames) and frames == list(range(frames[0], frames[-1] + 1)):
        return f'frames {frames[0]}-{frames[-1]} ({len(frames)})'
    return 'frames ' + ', '.join(str(frame) for frame in frames)


def _expand_paths(paths: Iterable[str | pathlib.Path], fmt: str | None) -> list[tuple[pathlib.Path, str]]:
    """Return ``(file, format)`` for every path, folders expanded to the files in them that have a known format.

    In a folder holding both the ``vasprun.xml`` and an ``OUTCAR`` of a run, both are listed, ``vasprun.xml``
    first; a ``.castep`` comes before the ``.geom``/``.md`` of its seed. Duplicates are then refused frame by frame.
    """
    order = {'vasp-xml': 0, 'vasp-out': 1, 'castep-castep': 2, 'castep-geom': 3, 'castep-md': 3, 'extxyz': 4}
    found: list[tuple[pathlib.Path, str]] = []
    for given in paths:
        path = pathlib.Path(given)
        if not path.exists():
            raise ValueError(f'{path} does not exist')
        if path.is_dir():
            inside = [(item, detect_format(item)) for item in sorted(path.rglob('*')) if item.is_file()]
            inside = [(item, kind) for item, kind in inside if kind is not None]
            if not inside:
                raise ValueError(f'{path} holds no file of a known format ({", ".join(FORMATS)})')
            inside.sort(key=lambda entry: (str(entry[0].parent), order[entry[1]], entry[0].name))
            found.extend(inside)
            continue
        kind = fmt or detect_format(path)
        if kind is None:
            raise ValueError(
                f'cannot tell the format of {path} from its name; pass the format (one of {", ".join(FORMATS)})'
            )
        if kind not in FORMATS:
            raise ValueError(f'unknown format `{kind}`; choose one of {", ".join(FORMATS)}')
        found.append((path, kind))
    return found


class _DuplicateFinder:
    """Finds frames whose structure equals one already imported (same atoms, cell and positions within a tolerance)."""

    def __init__(self, tolerance: float = DUPLICATE_TOLERANCE):
        self.tolerance = tolerance
        self.seen: dict[tuple, list[tuple[Any, str, int, float]]] = {}

    def find(self, atoms) -> tuple[str, int, float] | None:
        """Return ``(file, frame, energy)`` of an earlier frame with the same structure as ``atoms``, or ``None``."""
        key = (len(atoms), tuple(atoms.get_atomic_numbers()), tuple(atoms.pbc))
        for other, path, frame, energy in self.seen.get(key, []):
            if np.abs(other.cell[:] - atoms.cell[:]).max() > self.tolerance:
                continue
            delta = atoms.get_scaled_positions(wrap=False) - other.get_scaled_positions(wrap=False)
            delta -= np.round(delta)
            if np.abs(delta @ atoms.cell[:]).max() <= self.tolerance:
                return path, frame, energy
        return None

    def add(self, atoms, path: str, frame: int, energy: float) -> None:
        """Remember ``atoms`` as imported from ``path`` frame ``frame``."""
        key = (len(atoms), tuple(atoms.get_atomic_numbers()), tuple(atoms.pbc))
        self.seen.setdefault(key, []).append((atoms.copy(), path, frame, energy))


class _Importer:
    """Reads files one by one into a :class:`FileReport` each, sharing the duplicate finder."""

    def __init__(self, *, energy_key, forces_key, stress_key, level_of_theory, config_type, deduplicate):
        self.energy_key = energy_key
        self.forces_key = forces_key
        self.stress_key = stress_key
        self.level_of_theory = level_of_theory
        self.config_type = config_type
        self.duplicates = _DuplicateFinder() if deduplicate else None

    def read(self, path: pathlib.Path, fmt: str) -> FileReport:
        """Read one file into a report; a problem with the whole file is put in ``report.error``."""
        report = FileReport(path=str(path), format=fmt, sha256=_sha256(path))
        reader = {
            'extxyz': self._read_extxyz,
            'vasp-xml': self._read_vasprun,
            'vasp-out': self._read_outcar,
            'castep-castep': self._read_castep,
            'castep-geom': self._read_castep_trajectory,
            'castep-md': self._read_castep_trajectory,
        }[fmt]
        if self.level_of_theory is not None and fmt in ('vasp-xml', 'vasp-out', 'castep-castep'):
            report.notes.append('the level of theory given is not used: the file carries its own')
        try:
            reader(path, report)
        except Exception as exception:
            if not report.error:
                report.error = f'unreadable: {type(exception).__name__}: {exception}'
            report.labels.clear()
        return report

    def _make_label(self, report: FileReport, frame: int, atoms, record: dict, **numbers) -> None:
        """Turn one frame into a label, or record why it is refused (no energy/forces, duplicate)."""
        from aiida_sianode.data.label import LabelData

        config_type = self.config_type or atoms.info.get('config_type')
        source = {'kind': 'file', 'filename': report.path, 'sha256': report.sha256, 'frame': frame}
        source['format'] = report.format
        try:
            label = LabelData(atoms, level_of_theory=record, source=source, config_type=config_type, **numbers)
        except ValueError as exception:
            report.refused.append(FrameRefusal(frame, str(exception)))
            return
        if self.duplicates is not None:
            earlier = self.duplicates.find(atoms)
            if earlier is not None:
                path, other, energy = earlier
                where = 'this file' if path == report.path else path
                detail = {'repeats': other, 'repeats_file': path, 'energy_difference_ev': label.energy - energy}
                reason = (
                    f'duplicate: same structure (within {DUPLICATE_TOLERANCE:.0e} Å) as imported above from {where}'
                )
                report.refused.append(FrameRefusal(frame, reason, detail))
                return
            self.duplicates.add(atoms, report.path, frame, label.energy)
        report.labels.append(label)

    # ---- extended XYZ ----

    def _read_extxyz(self, path: pathlib.Path, report: FileReport) -> None:
        import ase.io

        if self.level_of_theory is None:
            report.error = 'an extxyz file carries no level of theory: give one (text, or a YAML/JSON file)'
            return
        frame = -1
        try:
            for frame, atoms in enumerate(ase.io.iread(str(path), index=':', format='extxyz')):
                report.frames_found += 1
                self._extxyz_frame(report, frame, atoms)
        except Exception as exception:
            report.refused.append(
                FrameRefusal(
                    frame + 1, f'unreadable from here to the end of the file: {type(exception).__name__}: {exception}'
                )
            )

    def _extxyz_frame(self, report: FileReport, frame: int, atoms) -> None:
        results = dict(atoms.calc.results) if atoms.calc is not None else {}
        available = sorted(set(atoms.info) | set(results))
        energy_key = self.energy_key or 'energy'
        energy = atoms.info.get(energy_key, results.get(energy_key))
        if energy is None:
            report.refused.append(
                FrameRefusal(frame, f'no energy under `{energy_key}` (keys present: {", ".join(available) or "none"})')
            )
            return
        forces_key = self.forces_key or 'forces'
        forces = atoms.arrays.get(forces_key, results.get(forces_key))
        if forces is None:
            present = sorted(set(atoms.arrays) - {'numbers', 'positions'} | {key for key in results if key == 'forces'})
            report.refused.append(
                FrameRefusal(
                    frame, f'no forces under `{forces_key}` (per-atom arrays present: {", ".join(present) or "none"})'
                )
            )
            return
        stress = None
        stress_key = self.stress_key or ('stress' if 'stress' in atoms.info or 'stress' in results else None)
        if stress_key is not None:
            stress = atoms.info.get(stress_key, results.get(stress_key))
            if stress is None:
                report.refused.append(FrameRefusal(frame, f'no stress under `{stress_key}`'))
                return
            stress = np.asarray(stress, dtype=float)
            if stress.shape == (9,):
                stress = stress.reshape(3, 3)
        try:
            energy = float(energy)
        except (TypeError, ValueError):
            report.refused.append(FrameRefusal(frame, f'the energy under `{energy_key}` is not a number: {energy!r}'))
            return
        plain = atoms.copy()
        plain.calc = None
        plain.info = {key: value for key, value in atoms.info.items() if key == 'config_type'}
        self._make_label(report, frame, plain, self.level_of_theory, energy=energy, forces=forces, stress=stress)

    # ---- VASP ----

    def _read_vasprun(self, path: pathlib.Path, report: FileReport) -> None:
        meta = _read_vasprun_metadata(path)
        self._read_vasp(path, report, meta, 'vasp-xml', 'vasprun.xml')
        if meta.truncated:
            index = sum(1 for step in meta.steps if step.complete)
            report.refused.append(
                FrameRefusal(
                    index,
                    f'incomplete: the file ends inside this ionic step (XML not closed: {meta.truncated}); '
                    'nothing of it is imported',
                )
            )

    def _read_outcar(self, path: pathlib.Path, report: FileReport) -> None:
        meta = _read_outcar_metadata(path)
        frames = self._read_vasp(path, report, meta, 'vasp-out', 'the OUTCAR')
        if frames is not None and len(meta.steps) > frames:
            report.refused.append(
                FrameRefusal(frames, 'incomplete: the file ends inside this ionic step; nothing of it is imported')
            )
        if not meta.finished:
            report.notes.append('the OUTCAR has no timing summary: the run did not finish')

    def _read_vasp(self, path, report, meta: _VaspMetadata, ase_format: str, source: str) -> int | None:
        import ase.io

        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            frames = ase.io.read(str(path), index=':', format=ase_format)
        report.frames_found = len(frames)
        complete = [step for step in meta.steps if step.complete]
        if len(complete) != len(frames):
            report.error = (
                f'ASE read {len(frames)} ionic steps but the file has {len(complete)} complete ones: '
                'frames cannot be matched to their electronic convergence, so none is imported'
            )
            return None
        if not meta.potcar_titles:
            report.notes.append('no POTCAR titles found in the file: the level of theory has no pseudopotentials')
        record = meta.level_of_theory()
        for frame, (atoms, step) in enumerate(zip(frames, complete)):
            reason = _vasp_step_refusal(meta, step, source)
            if reason is not None:
                report.refused.append(FrameRefusal(frame, reason))
                continue
            self._make_label(report, frame, atoms, record)
        return len(frames)

    # ---- CASTEP ----

    def _read_castep(self, path: pathlib.Path, report: FileReport) -> None:
        import ase.io
        from ase.io import ParseError

        lines = path.read_text(errors='replace').splitlines()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                frames = ase.io.read(str(path), index=':', format='castep-castep')
        except ParseError:
            report.error = _castep_unfinished_reason(lines)
            return
        record_lines = _castep_last_record(lines)
        runs = len(_castep_run_starts(lines))
        if runs > 1:
            report.notes.append(f'the file holds {runs} CASTEP runs (continuations); only the last one is read')
        report.frames_found = len(frames)
        failures = _castep_step_scf_failures(record_lines)
        if len(failures) != len(frames):
            report.error = (
                f'ASE read {len(frames)} configurations but the file has {len(failures)} steps: frames cannot be '
                'matched to their SCF convergence, so none is imported'
            )
            return
        record = _castep_record_from_frame(frames[0], record_lines)
        for frame, (atoms, failed) in enumerate(zip(frames, failures)):
            results = atoms.calc.results
            if failed:
                report.refused.append(FrameRefusal(frame, f'SCF not converged: CASTEP warned "{_CASTEP_SCF_FAILURE}"'))
            elif 'forces' not in results:
                report.refused.append(
                    FrameRefusal(
                        frame,
                        'no forces: CASTEP printed none for this configuration (a BFGS trial or intermediate step; '
                        'the .geom/.md file of the run has them)',
                    )
                )
            elif 'energy' not in results:
                report.refused.append(FrameRefusal(frame, 'no final energy for this configuration'))
            else:
                plain = atoms.copy()
                plain.calc = None
                stress = results.get('stress')
                self._make_label(
                    report, frame, plain, record, energy=results['energy'], forces=results['forces'], stress=stress
                )

    def _read_castep_trajectory(self, path: pathlib.Path, report: FileReport) -> None:
        import ase.io

        companion = path.with_suffix('.castep')
        record = None
        if companion.is_file():
            lines = companion.read_text(errors='replace').splitlines()
            record_lines = _castep_last_record(lines)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore')
                    first = ase.io.read(str(companion), index=0, format='castep-castep')
            except Exception:
                first = None
            if first is not None:
                record = _castep_record_from_frame(first, record_lines, description=CASTEP_TRAJECTORY_ENERGY)
                report.notes.append(f'level of theory read from {companion.name}')
            if any(_CASTEP_SCF_FAILURE in line for line in record_lines):
                report.error = (
                    f'{companion.name} reports an unconverged SCF, and {path.suffix} frames cannot be matched to '
                    'its steps: none is imported'
                )
                return
        if record is None:
            if self.level_of_theory is None:
                report.error = (
                    f'no {companion.name} beside this file to read the level of theory from: give one '
                    '(text, or a YAML/JSON file)'
                )
                return
            record = dict(self.level_of_theory)
            record.setdefault('description', CASTEP_TRAJECTORY_ENERGY)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            frames = ase.io.read(str(path), index=':', format=report.format)
        report.frames_found = len(frames)
        for frame, atoms in enumerate(frames):
            results = atoms.calc.results if atoms.calc is not None else {}
            energy = results.get('energy', results.get('free_energy'))
            if energy is None or 'forces' not in results:
                report.refused.append(FrameRefusal(frame, 'no energy or no forces in this frame'))
                continue
            plain = atoms.copy()
            plain.calc = None
            self._make_label(
                report, frame, plain, record, energy=energy, forces=results['forces'], stress=results.get('stress')
            )


def import_files(
    paths: str | pathlib.Path | Iterable[str | pathlib.Path],
    *,
    fmt: str | None = None,
    energy_key: str | None = None,
    forces_key: str | None = None,
    stress_key: str | None = None,
    level_of_theory: str | Mapping | pathlib.Path | None = None,
    config_type: str | None = None,
    deduplicate: bool = True,
) -> ImportReport:
    """Read DFT results from files into (unstored) labels, one per whole frame, and report what was refused.

    :param paths: files or folders (a folder is searched for files of known formats, see :data:`FORMATS`).
    :param fmt: the format of every given file (one of :data:`FORMATS`); by default told from each file name.
    :param energy_key: extxyz ``info`` key of the total energy in eV (default ``energy``; mlearn: ``dft_energy``).
    :param forces_key: extxyz per-atom array of the forces in eV/Å (default ``forces``; mlearn: ``dft_forces``).
    :param stress_key: extxyz ``info`` key of the stress in eV/Å^3, ASE sign (default: ``stress`` when present).
    :param level_of_theory: a dict, a YAML/JSON file or free text (see :func:`read_level_of_theory`); required
        for extxyz files, used for ``.geom``/``.md`` files without their ``.castep``; VASP and CASTEP files give
        their own and do not use it.
    :param config_type: the ``config_type`` of every label; by default the frame's ``config_type`` when it has
        one.
    :param deduplicate: refuse frames whose structure equals one imported earlier in this call.
    :raises ValueError: before anything is read, for a missing path, an unknown format, or an extxyz file
        without a level of theory.
    """
    if isinstance(paths, str | pathlib.Path):
        paths = [paths]
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f'unknown format `{fmt}`; choose one of {", ".join(FORMATS)}')
    files = _expand_paths(paths, fmt)
    if not files:
        raise ValueError('no file to import')
    record = read_level_of_theory(level_of_theory)
    if record is None:
        needing = [str(path) for path, kind in files if kind == 'extxyz']
        if needing:
            raise ValueError(
                'extxyz files carry no level of theory; give one (text, or a YAML/JSON file) for: ' + ', '.join(needing)
            )
    importer = _Importer(
        energy_key=energy_key,
        forces_key=forces_key,
        stress_key=stress_key,
        level_of_theory=record,
        config_type=config_type,
        deduplicate=deduplicate,
    )
    return ImportReport(files=[importer.read(path, kind) for path, kind in files])
