"""The files of a production MD run (:mod:`aiida_sianode.properties.md`): checkpoints with the integrator's and the
random generator's state, the trajectory chunks and JSON-lines series, and cutting them back to a checkpoint's step
so that a continued run has no gap and no repeat. Plain Python on ASE and numpy, no AiiDA.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

CHECKPOINT = 'checkpoint.npz'
RESULT = 'md_result.json'
THERMO = 'thermo.jsonl'
COMMITTEE = 'committee.jsonl'
FLAGGED = 'flagged.extxyz'
TRAJECTORY_DIR = 'trajectory'
#: integrator parts whose numeric state a checkpoint keeps
INTEGRATOR_PARTS = ('dynamics', '_thermostat', '_barostat')
#: integrator attributes never put in a checkpoint (objects, or rebuilt from the atoms)
SKIPPED_ATTRIBUTES = {'atoms', 'masses', 'rng', 'comm', 'observers', 'logfile', 'trajectory'}


def _numeric_state(obj) -> dict[str, Any]:
    state = {}
    for name, value in vars(obj).items():
        if name in SKIPPED_ATTRIBUTES:
            continue
        if isinstance(value, np.ndarray) and value.dtype.kind in 'fiu':
            state[name] = value.copy()
        elif isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool):
            state[name] = value.item() if isinstance(value, np.generic) else value
    return state


def integrator_state(dynamics) -> dict[str, dict[str, Any]]:
    """The numeric state of the integrator and of its thermostat and barostat (ASE keeps e.g. the Nosé-Hoover chain
    variables, the MTK strain and their momenta as private attributes): ``{part: {attribute: value}}``."""
    parts = {'dynamics': dynamics}
    for name in INTEGRATOR_PARTS[1:]:
        if hasattr(dynamics, name):
            parts[name] = getattr(dynamics, name)
    return {name: _numeric_state(obj) for name, obj in parts.items()}


def restore_integrator_state(dynamics, state: Mapping[str, Mapping[str, Any]]) -> None:
    """Set back what :func:`integrator_state` saved."""
    for part, values in state.items():
        obj = dynamics if part == 'dynamics' else getattr(dynamics, part)
        for name, value in values.items():
            setattr(obj, name, value.copy() if isinstance(value, np.ndarray) else value)


def write_checkpoint(path: pathlib.Path, atoms, dynamics, rng: np.random.Generator, step: int, extra: dict) -> None:
    """Write the restart point of ``step`` atomically (``<path>.part`` then renamed)."""
    arrays = {
        'positions': atoms.get_positions(),
        'momenta': atoms.get_momenta(),
        'cell': np.asarray(atoms.cell),
    }
    scalars: dict[str, Any] = {'step': step, 'rng': rng.bit_generator.state, 'extra': extra, 'integrator': {}}
    for part, values in integrator_state(dynamics).items():
        scalars['integrator'][part] = {}
        for name, value in values.items():
            if isinstance(value, np.ndarray):
                arrays[f'{part}/{name}'] = value
            else:
                scalars['integrator'][part][name] = value
    temporary = path.with_name(path.name + '.part')
    with open(temporary, 'wb') as handle:
        np.savez(handle, state=np.array(json.dumps(scalars)), **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def read_checkpoint(path: pathlib.Path) -> dict:
    """Return ``{'step', 'positions', 'momenta', 'cell', 'rng', 'integrator', 'extra'}`` of a checkpoint."""
    with np.load(path, allow_pickle=False) as data:
        scalars = json.loads(str(data['state']))
        integrator: dict[str, dict[str, Any]] = {part: dict(values) for part, values in scalars['integrator'].items()}
        for key in data.files:
            if '/' in key:
                part, name = key.split('/', 1)
                integrator.setdefault(part, {})[name] = data[key].copy()
        return {
            'step': int(scalars['step']),
            'positions': data['positions'].copy(),
            'momenta': data['momenta'].copy(),
            'cell': data['cell'].copy(),
            'rng': scalars['rng'],
            'integrator': integrator,
            'extra': scalars.get('extra', {}),
        }


# --------------------------------------------------------------------------------------------------------------------
# append-only outputs, cut back to a checkpoint on restart


_STEP = re.compile(r'\bstep=(\d+)')


def truncate_jsonl(path: pathlib.Path, last_step: int) -> None:
    """Keep the complete lines of ``path`` whose ``step`` is ``<= last_step``."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines(keepends=True):
        if not line.endswith('\n'):
            break  # a line cut by the kill
        try:
            record = json.loads(line)
        except ValueError:
            break
        if record['step'] <= last_step:
            kept.append(line)
    path.write_text(''.join(kept))


def truncate_extxyz(path: pathlib.Path, last_step: int) -> int:
    """Keep the complete frames of ``path`` whose ``step`` is ``<= last_step`` (removing an empty file); return the
    number kept."""
    if not path.exists():
        return 0
    lines = path.read_text().splitlines(keepends=True)
    kept, index, count = [], 0, 0
    while index < len(lines):
        try:
            natoms = int(lines[index])
        except ValueError:
            break
        block = lines[index : index + natoms + 2]
        if len(block) < natoms + 2 or not block[-1].endswith('\n'):
            break
        match = _STEP.search(block[1])
        if match is None or int(match.group(1)) > last_step:
            break
        kept.extend(block)
        index += natoms + 2
        count += 1
    if kept:
        path.write_text(''.join(kept))
    else:
        path.unlink()
    return count


def clear_outputs(workdir: pathlib.Path) -> None:
    """Remove every output of an earlier run (a start without a checkpoint)."""
    for name in (THERMO, COMMITTEE, FLAGGED, RESULT, CHECKPOINT):
        (workdir / name).unlink(missing_ok=True)
    trajectory = workdir / TRAJECTORY_DIR
    if trajectory.is_dir():
        for chunk in trajectory.glob('chunk_*.extxyz'):
            chunk.unlink()


def cut_back_outputs(workdir: pathlib.Path, last_step: int) -> None:
    """Cut every append-only output back to ``last_step`` (the checkpoint the run continues from)."""
    truncate_jsonl(workdir / THERMO, last_step)
    truncate_jsonl(workdir / COMMITTEE, last_step)
    truncate_extxyz(workdir / FLAGGED, last_step)
    for chunk in sorted((workdir / TRAJECTORY_DIR).glob('chunk_*.extxyz')):
        truncate_extxyz(chunk, last_step)
    (workdir / RESULT).unlink(missing_ok=True)


def write_frame(handle, atoms, info: dict, arrays: Mapping[str, np.ndarray] | None = None) -> None:
    """Append one frame (positions, momenta, ``info``, extra per-atom ``arrays``) to an open extxyz file."""
    from ase.io import write

    frame = atoms.copy()
    frame.calc = None
    frame.constraints = []
    frame.info = dict(info)
    for name, value in (arrays or {}).items():
        frame.set_array(name, np.asarray(value, dtype=float))
    write(handle, frame, format='extxyz')
    handle.flush()


def read_trajectory(workdir: pathlib.Path) -> list:
    """Return every frame of ``workdir/trajectory/chunk_*.extxyz`` in order (``ase.Atoms`` with momenta)."""
    from ase.io import read

    frames = []
    for chunk in sorted((pathlib.Path(workdir) / TRAJECTORY_DIR).glob('chunk_*.extxyz')):
        frames += read(chunk, index=':', format='extxyz')
    return frames


def read_jsonl(path: pathlib.Path) -> list[dict]:
    """Return the records of a JSON-lines file (none when it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_json(path: pathlib.Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON atomically, NaN as ``null``."""

    def clean(value):
        if isinstance(value, dict):
            return {str(key): clean(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [clean(item) for item in value]
        if isinstance(value, np.generic):
            value = value.item()
        return None if isinstance(value, float) and not math.isfinite(value) else value

    temporary = path.with_name(path.name + '.part')
    temporary.write_text(json.dumps(clean(dict(data)), indent=1))
    os.replace(temporary, path)
