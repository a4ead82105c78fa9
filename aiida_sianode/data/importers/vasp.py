"""VASP ``vasprun.xml`` and ``OUTCAR``: the numbers come from ASE's readers, the settings and the per-step electronic
convergence from the small readers here (the ``<parameters>``, ``<incar>``, ``<kpoints>`` and ``<atominfo>`` blocks of
``vasprun.xml``; the header and iteration lines of an ``OUTCAR``)."""

from __future__ import annotations

import dataclasses
import pathlib
import re
import warnings
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from aiida_sianode.common.level_of_theory import vasp_level_of_theory
from aiida_sianode.data.importers.report import FileReport, FrameRefusal

if TYPE_CHECKING:
    from aiida_sianode.data.importers.core import Importer

__all__ = ('read_outcar', 'read_outcar_metadata', 'read_vasprun', 'read_vasprun_metadata', 'vasp_file_level_of_theory')


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


def read_vasprun_metadata(path: pathlib.Path) -> _VaspMetadata:
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
                meta.incar = {item.get('name'): _xml_value(item) for item in element if item.tag in ('i', 'v')}
            elif element.tag == 'parameters' and parent == 'modeling':
                # The first occurrence of a name is the one VASP used (``NELM`` also appears under response
                # functions, for instance).
                for item in element.iter():
                    if item.tag in ('i', 'v'):
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
    # DFT+U, as VASP prints it under "LDA+U is selected" (one value per species for L, U and J)
    'LDAUTYPE': re.compile(r'LDAUTYPE\s*=\s*(\d+)'),
    'LDAUL': re.compile(r'LDAUL\s*=\s*([-\d.\s]+?)\s*$'),
    'LDAUU': re.compile(r'LDAUU\s*=\s*([-\d.\s]+?)\s*$'),
    'LDAUJ': re.compile(r'LDAUJ\s*=\s*([-\d.\s]+?)\s*$'),
    # dispersion corrections
    'IVDW': re.compile(r'^\s*IVDW\s*=\s*(\d+)'),
    'LUSE_VDW': re.compile(r'^\s*LUSE_VDW\s*=\s*(\S+)'),
    'AGGAC': re.compile(r'^\s*AGGAC\s*=\s*([-\d.Ee+]+)'),
}

_OUTCAR_KSPACING = re.compile(r'^\s*KSPACING\s*=\s*([\d.Ee+-]+)')

_OUTCAR_ITERATION = re.compile(r'Iteration\s+(\d+)\(\s*(\d+)\)')

_OUTCAR_TITEL = re.compile(r'^\s*TITEL\s*=\s*(.+?)\s*$')

_OUTCAR_MESH = re.compile(r'generate k-points for:\s+(\d+)\s+(\d+)\s+(\d+)')


def read_outcar_metadata(path: pathlib.Path) -> _VaspMetadata:
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
            if 'LDA+U is selected' in line:
                meta.parameters['LDAU'] = True
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


def read_vasprun(importer: Importer, path: pathlib.Path, report: FileReport) -> None:
    meta = read_vasprun_metadata(path)
    _read_vasp(importer, path, report, meta, 'vasp-xml', 'vasprun.xml')
    if meta.truncated:
        index = sum(1 for step in meta.steps if step.complete)
        report.refused.append(
            FrameRefusal(
                index,
                f'incomplete: the file ends inside this ionic step (XML not closed: {meta.truncated}); '
                'nothing of it is imported',
            )
        )


def read_outcar(importer: Importer, path: pathlib.Path, report: FileReport) -> None:
    meta = read_outcar_metadata(path)
    frames = _read_vasp(importer, path, report, meta, 'vasp-out', 'the OUTCAR')
    if frames is not None and len(meta.steps) > frames:
        report.refused.append(
            FrameRefusal(frames, 'incomplete: the file ends inside this ionic step; nothing of it is imported')
        )
    if not meta.finished:
        report.notes.append('the OUTCAR has no timing summary: the run did not finish')


def _read_vasp(importer: Importer, path, report, meta: _VaspMetadata, ase_format: str, source: str) -> int | None:
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
        importer.make_label(report, frame, atoms, record)
    return len(frames)


def vasp_file_level_of_theory(path: str | pathlib.Path) -> dict:
    """Return the level of theory a ``vasprun.xml`` or an ``OUTCAR`` says its run used, as the importer records it.

    The file kind is told from its name (``vasprun*.xml``, else an OUTCAR).
    """
    path = pathlib.Path(path)
    is_xml = path.name.lower().endswith('.xml')
    meta = read_vasprun_metadata(path) if is_xml else read_outcar_metadata(path)
    return meta.level_of_theory()
