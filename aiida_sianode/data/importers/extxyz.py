"""Extended XYZ: energies, forces and stress (or the libAtoms virial) under the keys the user names."""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

import numpy as np

from aiida_sianode.data.importers.report import FileReport, FrameRefusal

if TYPE_CHECKING:
    from aiida_sianode.data.importers.core import Importer

__all__ = ('read_extxyz',)


def read_extxyz(importer: Importer, path: pathlib.Path, report: FileReport) -> None:
    import ase.io

    if importer.level_of_theory is None:
        report.error = 'an extxyz file carries no level of theory: give one (text, or a YAML/JSON file)'
        return
    frame = -1
    try:
        for frame, atoms in enumerate(ase.io.iread(str(path), index=':', format='extxyz')):
            report.frames_found += 1
            _extxyz_frame(importer, report, frame, atoms)
    except Exception as exception:
        report.refused.append(
            FrameRefusal(
                frame + 1, f'unreadable from here to the end of the file: {type(exception).__name__}: {exception}'
            )
        )


def _extxyz_frame(importer: Importer, report: FileReport, frame: int, atoms) -> None:
    results = dict(atoms.calc.results) if atoms.calc is not None else {}
    available = sorted(set(atoms.info) | set(results))
    energy_key = importer.energy_key or 'energy'
    energy = atoms.info.get(energy_key, results.get(energy_key))
    if energy is None:
        report.refused.append(
            FrameRefusal(frame, f'no energy under `{energy_key}` (keys present: {", ".join(available) or "none"})')
        )
        return
    forces_key = importer.forces_key or 'forces'
    forces = atoms.arrays.get(forces_key, results.get(forces_key))
    if forces is None:
        present = sorted(set(atoms.arrays) - {'numbers', 'positions'} | {key for key in results if key == 'forces'})
        report.refused.append(
            FrameRefusal(
                frame, f'no forces under `{forces_key}` (per-atom arrays present: {", ".join(present) or "none"})'
            )
        )
        return
    stress, reason = _extxyz_stress(importer, atoms, results)
    if reason is not None:
        report.refused.append(FrameRefusal(frame, reason))
        return
    try:
        energy = float(energy)
    except (TypeError, ValueError):
        report.refused.append(FrameRefusal(frame, f'the energy under `{energy_key}` is not a number: {energy!r}'))
        return
    plain = atoms.copy()
    plain.calc = None
    plain.info = {key: value for key, value in atoms.info.items() if key == 'config_type'}
    importer.make_label(report, frame, plain, importer.level_of_theory, energy=energy, forces=forces, stress=stress)


def _as_3x3(value) -> np.ndarray:
    """Return a 3x3 array from a 3x3 or a flat 9-component value."""
    array = np.asarray(value, dtype=float)
    return array.reshape(3, 3) if array.shape == (9,) else array


def _extxyz_stress(importer: Importer, atoms, results: dict) -> tuple[np.ndarray | None, str | None]:
    """Return ``(stress in eV/Å^3 with ASE's sign, None)`` of a frame, or ``(None, why it is refused)``.

    With ``virial_key`` the virial W (eV, libAtoms convention) is converted: ``stress = -W / V``, V the cell volume,
    ASE's sign (positive = tensile: a compressed cell has a positive virial and a negative stress). Otherwise the
    stress is read under ``stress_key`` (default: ``stress`` when the frame has one); a frame may have none.
    """
    if importer.virial_key is not None:
        virial = atoms.info.get(importer.virial_key, results.get(importer.virial_key))
        if virial is None:
            return None, f'no virial under `{importer.virial_key}`'
        volume = atoms.get_volume() if atoms.pbc.all() and atoms.cell.rank == 3 else 0.0
        if volume <= 0.0:
            return None, 'a virial needs a periodic cell with a volume, this frame has none'
        return -_as_3x3(virial) / volume, None
    stress_key = importer.stress_key or ('stress' if 'stress' in atoms.info or 'stress' in results else None)
    if stress_key is None:
        return None, None
    stress = atoms.info.get(stress_key, results.get(stress_key))
    if stress is None:
        return None, f'no stress under `{stress_key}`'
    return _as_3x3(stress), None
