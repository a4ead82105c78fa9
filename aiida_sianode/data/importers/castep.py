"""CASTEP ``.castep``, ``.geom`` and ``.md``: the numbers come from ASE's readers, the settings from ASE's header
reader and aiida-castep's text parser, the per-step SCF verdict from CASTEP's warning lines."""

from __future__ import annotations

import pathlib
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiida_sianode.common.level_of_theory import castep_level_of_theory
from aiida_sianode.data.importers.report import FileReport, FrameRefusal

if TYPE_CHECKING:
    from aiida_sianode.data.importers.core import Importer

__all__ = ('CASTEP_TRAJECTORY_ENERGY', 'castep_file_level_of_theory', 'read_castep', 'read_castep_trajectory')

#: The description given to labels read from CASTEP ``.geom``/``.md`` files (part of their fingerprint).
CASTEP_TRAJECTORY_ENERGY = (
    'energy as written in a CASTEP .geom/.md file: the free energy E-TS (finite-basis corrected when the run '
    'applied the correction), not extrapolated to zero smearing'
)

_CASTEP_SCF_FAILURE = 'SCF cycles performed but system has not reached the groundstate'

_CASTEP_STEP_MARKERS = ('BFGS: starting iteration', 'BFGS: improving iteration', 'Starting MD iteration')


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
        dispersion=header.get('sedc_scheme', 'TS') if header.get('sedc_apply') else None,
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


def read_castep(importer: Importer, path: pathlib.Path, report: FileReport) -> None:
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
            importer.make_label(
                report, frame, plain, record, energy=results['energy'], forces=results['forces'], stress=stress
            )


def read_castep_trajectory(importer: Importer, path: pathlib.Path, report: FileReport) -> None:
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
        if importer.level_of_theory is None:
            report.error = (
                f'no {companion.name} beside this file to read the level of theory from: give one '
                '(text, or a YAML/JSON file)'
            )
            return
        record = dict(importer.level_of_theory)
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
        importer.make_label(
            report, frame, plain, record, energy=energy, forces=results['forces'], stress=results.get('stress')
        )


def castep_file_level_of_theory(path: str | pathlib.Path) -> dict:
    """Return the level of theory a ``.castep`` file says its last run used (cut-off, functional, smearing, spin,
    MP grid, pseudopotentials, SEDC, version), as the importer records it.

    :raises ValueError: when ASE cannot read a configuration from the file.
    """
    import ase.io

    path = pathlib.Path(path)
    lines = path.read_text(errors='replace').splitlines()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            first = ase.io.read(str(path), index=0, format='castep-castep')
    except Exception as exception:
        raise ValueError(f'{path.name} cannot be read as CASTEP output: {exception}') from exception
    return _castep_record_from_frame(first, _castep_last_record(lines))
