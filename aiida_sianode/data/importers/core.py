"""The importer: files and folders to :class:`~aiida_sianode.data.importers.report.FileReport` s, one reader per
format, duplicates refused across all files of one import."""

from __future__ import annotations

import pathlib
from collections.abc import Iterable, Mapping

import numpy as np

from aiida_sianode.common.hashing import sha256_file
from aiida_sianode.common.level_of_theory import read_level_of_theory
from aiida_sianode.data.importers.castep import read_castep, read_castep_trajectory
from aiida_sianode.data.importers.extxyz import read_extxyz
from aiida_sianode.data.importers.report import FileReport, FrameRefusal, ImportReport
from aiida_sianode.data.importers.vasp import read_outcar, read_vasprun

__all__ = ('DUPLICATE_TOLERANCE', 'FORMATS', 'Importer', 'detect_format', 'import_files')

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
#: grid cells per cell vector of the duplicate finder's buckets (see ``_DuplicateFinder``): 0.01 Å for a 10 Å cell
_GRID = 1000
#: the bucket of a frame first, then its 26 neighbours
_SHIFTS = np.array([(i, j, k) for i in (0, -1, 1) for j in (0, -1, 1) for k in (0, -1, 1)])


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
    """Finds frames whose structure equals one already imported (same atoms, cell and positions within a tolerance).

    Frames are kept in buckets keyed by their atoms, pbc and the fractional position of their first atom on a grid
    of :data:`_GRID` cells per cell vector; a new frame is compared with the frames of its bucket and the 26 around
    it, not with every frame of the import (10^5 frames of one cell would otherwise cost 10^10 comparisons). A frame
    whose cell is too thin for the grid (a height under ``2 * _GRID * tolerance``) goes to one bucket compared in
    full.
    """

    def __init__(self, tolerance: float = DUPLICATE_TOLERANCE):
        self.tolerance = tolerance
        self.seen: dict[tuple, list[tuple[np.ndarray, np.ndarray, str, int, float]]] = {}
        self._last: tuple | None = None

    def _keys(self, atoms) -> tuple[list[tuple], np.ndarray]:
        """Return the bucket keys to search (the frame's own first) and its fractional positions.

        As ASE's ``get_scaled_positions`` does, missing cell vectors (molecules) are completed by unit vectors. The
        result for the last frame is kept, since :meth:`find` and :meth:`add` ask for the same frame in turn.
        """
        if self._last is not None and self._last[0] is atoms:
            return self._last[1], self._last[2]
        numbers = np.asarray(atoms.numbers)
        base = (len(atoms), numbers.tobytes(), np.asarray(atoms.pbc, dtype=bool).tobytes())
        cell = np.asarray(atoms.cell.complete()[:], dtype=float)
        scaled = np.linalg.solve(cell.T, np.asarray(atoms.positions, dtype=float).T).T
        volume = abs(np.linalg.det(cell))
        heights = volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
        # a Cartesian step of `tolerance` per axis moves a fractional coordinate by at most sqrt(3) tolerance / height
        if heights.min() < 2 * _GRID * self.tolerance:
            keys = [(*base, None)]
        else:
            own = np.floor(np.mod(scaled[0], 1.0) * _GRID).astype(int) % _GRID
            keys = [(*base, *row) for row in ((own + _SHIFTS) % _GRID).tolist()]
        self._last = (atoms, keys, scaled)
        return keys, scaled

    def find(self, atoms) -> tuple[str, int, float] | None:
        """Return ``(file, frame, energy)`` of an earlier frame with the same structure as ``atoms``, or ``None``."""
        keys, scaled = self._keys(atoms)
        cell = np.asarray(atoms.cell[:], dtype=float)
        for key in keys:
            for other_cell, other_scaled, path, frame, energy in self.seen.get(key, []):
                if np.abs(other_cell - cell).max() > self.tolerance:
                    continue
                delta = scaled - other_scaled
                delta -= np.round(delta)
                if np.abs(delta @ atoms.cell[:]).max() <= self.tolerance:
                    return path, frame, energy
        return None

    def add(self, atoms, path: str, frame: int, energy: float) -> None:
        """Remember ``atoms`` as imported from ``path`` frame ``frame``."""
        keys, scaled = self._keys(atoms)
        self.seen.setdefault(keys[0], []).append((np.asarray(atoms.cell[:], dtype=float), scaled, path, frame, energy))


class Importer:
    """Reads files one by one into a :class:`FileReport` each, sharing the duplicate finder."""

    def __init__(
        self,
        *,
        energy_key,
        forces_key,
        stress_key,
        level_of_theory,
        config_type,
        deduplicate,
        virial_key=None,
        records=False,
    ):
        self.energy_key = energy_key
        self.forces_key = forces_key
        self.stress_key = stress_key
        self.virial_key = virial_key
        self.level_of_theory = level_of_theory
        self.config_type = config_type
        self.records = records
        self.duplicates = _DuplicateFinder() if deduplicate else None

    def read(self, path: pathlib.Path, fmt: str) -> FileReport:
        """Read one file into a report; a problem with the whole file is put in ``report.error``."""
        report = FileReport(path=str(path), format=fmt, sha256=sha256_file(path))
        reader = {
            'extxyz': read_extxyz,
            'vasp-xml': read_vasprun,
            'vasp-out': read_outcar,
            'castep-castep': read_castep,
            'castep-geom': read_castep_trajectory,
            'castep-md': read_castep_trajectory,
        }[fmt]
        if self.level_of_theory is not None and fmt in ('vasp-xml', 'vasp-out', 'castep-castep'):
            report.notes.append('the level of theory given is not used: the file carries its own')
        try:
            reader(self, path, report)
        except Exception as exception:
            if not report.error:
                report.error = f'unreadable: {type(exception).__name__}: {exception}'
            report.labels.clear()
        return report

    def make_label(self, report: FileReport, frame: int, atoms, record: dict, **numbers) -> None:
        """Turn one frame into a label, or record why it is refused (no energy/forces, duplicate)."""
        from aiida_sianode.data.bulk import LabelRecord
        from aiida_sianode.data.label import LabelData

        kind = LabelRecord if self.records else LabelData
        config_type = self.config_type or atoms.info.get('config_type')
        source = {'kind': 'file', 'filename': report.path, 'sha256': report.sha256, 'frame': frame}
        source['format'] = report.format
        try:
            label = kind(atoms, level_of_theory=record, source=source, config_type=config_type, **numbers)
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


def import_files(
    paths: str | pathlib.Path | Iterable[str | pathlib.Path],
    *,
    fmt: str | None = None,
    energy_key: str | None = None,
    forces_key: str | None = None,
    stress_key: str | None = None,
    virial_key: str | None = None,
    level_of_theory: str | Mapping | pathlib.Path | None = None,
    config_type: str | None = None,
    deduplicate: bool = True,
    records: bool = False,
) -> ImportReport:
    """Read DFT results from files into (unstored) labels, one per whole frame, and report what was refused.

    :param paths: files or folders (a folder is searched for files of known formats, see :data:`FORMATS`).
    :param fmt: the format of every given file (one of :data:`FORMATS`); by default told from each file name.
    :param energy_key: extxyz ``info`` key of the total energy in eV (default ``energy``; mlearn: ``dft_energy``).
    :param forces_key: extxyz per-atom array of the forces in eV/Å (default ``forces``; mlearn: ``dft_forces``).
    :param stress_key: extxyz ``info`` key of the stress in eV/Å^3, ASE sign (default: ``stress`` when present).
    :param virial_key: extxyz ``info`` key of the virial in eV (the libAtoms convention, e.g. ``virial``), converted
        to the stress ``-virial / volume``; not together with ``stress_key``.
    :param level_of_theory: a dict, a YAML/JSON file or free text (see :func:`read_level_of_theory`); required
        for extxyz files, used for ``.geom``/``.md`` files without their ``.castep``; VASP and CASTEP files give
        their own and do not use it.
    :param config_type: the ``config_type`` of every label; by default the frame's ``config_type`` when it has
        one.
    :param deduplicate: refuse frames whose structure equals one imported earlier in this call.
    :param records: make each label a :class:`~aiida_sianode.data.bulk.LabelRecord` (the same checked content,
        held in memory) instead of an unstored ``LabelData``, which writes its arrays to a temporary folder: for
        imports of 10^4 frames and more, stored by :meth:`ImportReport.store` all the same.
    :raises ValueError: before anything is read, for a missing path, an unknown format, an extxyz file without a
        level of theory, or both a stress and a virial key.
    """
    if isinstance(paths, str | pathlib.Path):
        paths = [paths]
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f'unknown format `{fmt}`; choose one of {", ".join(FORMATS)}')
    if stress_key is not None and virial_key is not None:
        raise ValueError('give the stress (stress_key) or the virial (virial_key) of the frames, not both')
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
    importer = Importer(
        energy_key=energy_key,
        forces_key=forces_key,
        stress_key=stress_key,
        virial_key=virial_key,
        level_of_theory=record,
        config_type=config_type,
        deduplicate=deduplicate,
        records=records,
    )
    return ImportReport(files=[importer.read(path, kind) for path, kind in files])
