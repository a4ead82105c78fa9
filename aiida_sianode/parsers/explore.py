"""``ExploreParser``: the frames and results of :class:`~aiida_sianode.calculations.explore.ExploreCalculation`.

Outputs (one node each per run, never one node per frame):

* ``trajectory`` (``TrajectoryData``): positions, cells, symbols, ``stepids``, ``times`` (fs) of every sampled frame,
  plus arrays ``energy`` (committee mean, eV), ``forces`` (committee mean, eV/Å) and ``atomic_force_deviation``
  (eV/Å, per atom);
* ``deviations`` (``ArrayData``): ``max_force_deviation`` (eV/Å), ``energy_std_per_atom`` (eV/atom),
  ``temperature`` (K), ``pressure_gpa``, ``volume`` (Å^3), ``time_fs``, ``step``, and ``physically_broken`` (1 for
  the frame a physically broken run ended on, else 0: selection never labels it);
* ``stop_reason`` (``Str``) and ``summary`` (``Dict``).

The frames are read from ``frames.extxyz`` as far as they are complete, so a run that crashed or was killed still
gives its frames, together with an exit code that names the problem.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_sianode.engines import explore as engine

#: the arrays of the ``deviations`` output, read from each frame's ``info``
DEVIATION_KEYS = ('max_force_deviation', 'energy_std_per_atom', 'temperature', 'pressure_gpa', 'volume', 'time_fs')

#: exit code label of each stop reason of a physically broken run
PHYSICAL_EXIT_CODES = {'min_distance': 'ERROR_MIN_DISTANCE', 'nan': 'ERROR_NAN', 'temperature': 'ERROR_TEMPERATURE'}


def read_frames(path: pathlib.Path) -> list:
    """Return the complete frames of an extended XYZ file; a truncated last frame is dropped."""
    from ase.io import iread

    frames = []
    if not path.is_file():
        return frames
    try:
        for atoms in iread(str(path), index=':', format='extxyz'):
            frames.append(atoms)
    except Exception:  # a frame cut short by a crash: keep everything before it
        pass
    return frames


def frames_to_nodes(frames: list) -> tuple[orm.TrajectoryData, orm.ArrayData]:
    """Return the ``trajectory`` and ``deviations`` nodes (unstored) of a list of sampled frames."""
    steps = np.array([int(atoms.info['step']) for atoms in frames], dtype=int)
    trajectory = orm.TrajectoryData()
    trajectory.set_trajectory(
        symbols=frames[0].get_chemical_symbols(),
        positions=np.array([atoms.get_positions() for atoms in frames], dtype=float),
        stepids=steps,
        cells=np.array([atoms.get_cell()[:] for atoms in frames], dtype=float),
        times=np.array([float(atoms.info['time_fs']) for atoms in frames], dtype=float),
        pbc=[bool(flag) for flag in frames[0].pbc],
    )
    trajectory.set_array('energy', np.array([atoms.get_potential_energy() for atoms in frames], dtype=float))
    trajectory.set_array('forces', np.array([atoms.get_forces() for atoms in frames], dtype=float))
    trajectory.set_array(
        'atomic_force_deviation', np.array([atoms.arrays['force_deviation'] for atoms in frames], dtype=float)
    )

    deviations = orm.ArrayData()
    for key in DEVIATION_KEYS:
        deviations.set_array(key, np.array([float(atoms.info.get(key, np.nan)) for atoms in frames], dtype=float))
    deviations.set_array('step', steps)
    return trajectory, deviations


class ExploreParser(Parser):
    """Parse ``frames.extxyz`` (retrieved temporarily) and ``results.json`` of a committee MD exploration."""

    def parse(self, **kwargs):
        """Attach the outputs that the frames allow, then return the exit code that the engine's status implies."""
        retrieved = self.retrieved
        temporary = kwargs.get('retrieved_temporary_folder')
        frames_path = pathlib.Path(temporary or '') / engine.FRAMES_FILENAME
        frames = read_frames(frames_path) if temporary else []

        results, unreadable = None, None
        if engine.RESULTS_FILENAME in retrieved.base.repository.list_object_names():
            try:
                results = json.loads(retrieved.base.repository.get_object_content(engine.RESULTS_FILENAME))
            except (ValueError, OSError) as exception:
                unreadable = str(exception)
        status = results.get('status') if results else None
        if status == 'invalid_input':
            return self.exit_codes.ERROR_INVALID_INPUT.format(message=results.get('message', ''))

        if status is None:
            stop_reason = 'interrupted'
        elif status == 'error':
            stop_reason = 'error'
        else:
            stop_reason = results.get('stop_reason', status)
        if frames:
            trajectory, deviations = frames_to_nodes(frames)
            # The frame that broke a run (atoms too close, NaN, runaway temperature) is kept for the record but marked,
            # so that selection never sends it to a labeler.
            broken = np.zeros(len(frames), dtype=int)
            if stop_reason in engine.PHYSICAL_STOPS:
                broken[-1] = 1
            deviations.set_array('physically_broken', broken)
            self.out('trajectory', trajectory)
            self.out('deviations', deviations)
            self.out('stop_reason', orm.Str(stop_reason))
            self.out('summary', orm.Dict(self._summary(results, frames, stop_reason)))

        if unreadable is not None:
            return self.exit_codes.ERROR_UNREADABLE_RESULTS.format(message=unreadable)
        if results is None:
            if not frames:
                return self.exit_codes.ERROR_NO_FRAMES.format(message='and no results.json')
            return self.exit_codes.ERROR_INTERRUPTED.format(n_frames=len(frames))
        if status == 'error':
            return self.exit_codes.ERROR_ENGINE_FAILED.format(message=results.get('message', ''), n_frames=len(frames))
        if not frames:
            return self.exit_codes.ERROR_NO_FRAMES.format(message=f'status {status}')
        if status in PHYSICAL_EXIT_CODES:
            return getattr(self.exit_codes, PHYSICAL_EXIT_CODES[status]).format(message=results.get('message', ''))
        if status != 'ok':
            return self.exit_codes.ERROR_ENGINE_FAILED.format(
                message=f'unknown status {status!r}', n_frames=len(frames)
            )
        return None

    def _summary(self, results: dict | None, frames: list, stop_reason: str) -> dict:
        """Return the ``summary``: the engine's results (without the echoed parameters) and counts from the frames."""
        from aiida_sianode.engines.committee import count_trust_levels

        summary = {key: value for key, value in (results or {}).items() if key not in ('parameters', 'traceback')}
        given = self.node.inputs.parameters.get_dict() if 'parameters' in self.node.inputs else {}
        parameters = engine.validate_parameters(given)
        lower, upper = parameters['force_deviation_lower'], parameters['force_deviation_upper']
        deviations = [float(atoms.info['max_force_deviation']) for atoms in frames]
        summary.update(count_trust_levels(deviations, lower, upper))
        summary['stop_reason'] = stop_reason
        summary['natoms'] = len(frames[0])
        summary['n_members'] = len(self.node.inputs.potentials)
        summary['last_step'] = int(frames[-1].info['step'])
        summary['last_time_fs'] = float(frames[-1].info['time_fs'])
        summary['max_force_deviation_max'] = float(np.nanmax(deviations)) if np.isfinite(deviations).any() else None
        summary['force_deviation_lower'] = lower
        summary['force_deviation_upper'] = upper
        summary.setdefault('ensemble', parameters['ensemble'])
        summary.setdefault('message', 'the engine stopped without writing results.json')
        return summary
