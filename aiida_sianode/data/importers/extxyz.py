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
    stress = None
    stress_key = importer.stress_key or ('stress' if 'stress' in atoms.info or 'stress' in results else None)
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
    importer.make_label(report, frame, plain, importer.level_of_theory, energy=energy, forces=forces, stress=stress)
