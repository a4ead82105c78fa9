"""The property engine: one property computed by every committee member on its own, then committee statistics.

Run as ``python -m aiida_sianode.engines.property input.json`` in the calculation's working folder. ``input.json``::

    {"kind": "eos", "structures": ["structure_0.extxyz", ...], "models": ["member_0.model", ...],
     "settings": {...}}

``settings`` are the merged protocol settings; the engine's own keys are ``device`` (``auto``, ``cpu``, ``cuda``...)
and ``dtype`` (``float64`` or ``float32``), the rest goes to the kernel ``aiida_sianode.properties.<kind>``.

Each member is loaded alone (one ``MACECalculator`` per model file) and runs the kernel's ``run_member`` in its own
folder ``member_<i>/``. A kernel that watches the rest of the committee (``md``, ``neb``: ``committee_models`` among
its ``DEFAULTS``) gets the committee's model files, as absolute paths, in ``committee_models`` and the member's
position among them in ``member_index``; its result is written to ``member_<i>.json`` as soon as it finishes. A
``member_<i>.json`` already present (copied from an interrupted run) is kept and not recomputed, and a kernel may pick
up its own checkpoint files in ``member_<i>/``. Last come ``results.json`` and one PNG per curve (``<curve>.png``).

Status keys in ``results.json`` (the parser maps them to exit codes): ``ok``; ``invalid_input`` (refused before any
compute); ``model_error`` (a model file could not be loaded); ``member_failed`` (some members failed, the others are
kept and aggregated); ``all_members_failed``; ``error`` (anything else).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pathlib
import sys
import time
import traceback
from typing import Any

import numpy as np

from aiida_sianode.engines.once import once
from aiida_sianode.properties import load_kind
from aiida_sianode.properties.common import InvalidPropertyInput, aggregate_members, plot_curve, split_settings

RESULTS_FILENAME = 'results.json'
INPUT_KEYS = ('kind', 'structures', 'models', 'settings')


def member_filename(index: int) -> str:
    """Name of the JSON file holding member ``index``'s result."""
    return f'member_{index}.json'


def sha256(path: pathlib.Path) -> str:
    """SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def clean_json(value):
    """Return ``value`` made JSON-safe: numpy to Python, NaN and infinities to ``None``."""
    if isinstance(value, dict):
        return {str(key): clean_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(item) for item in value]
    if isinstance(value, np.ndarray):
        return clean_json(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: pathlib.Path, data: dict) -> None:
    """Write ``data`` as JSON atomically (a killed job never leaves half a file)."""
    temporary = path.with_suffix(path.suffix + '.part')
    temporary.write_text(json.dumps(clean_json(data), indent=1, allow_nan=False))
    os.replace(temporary, path)


def resolve_device(device: str) -> str:
    """Return the torch device: ``auto`` is ``cuda`` when torch sees a GPU, else ``cpu``."""
    if device != 'auto':
        return device
    import torch

    return 'cuda' if torch.cuda.is_available() else 'cpu'


def load_member_calculator(path: pathlib.Path, device: str, dtype: str):
    """Return a ``MACECalculator`` of one model file (never a committee mean)."""
    import mace  # noqa: F401  (sets torch's weights-only switch before the model is unpickled)
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=[str(path)], device=device, default_dtype=dtype)


def write_input(
    directory: pathlib.Path, kind: str, structures: list, models: list[pathlib.Path], settings: dict
) -> dict:
    """Write a run folder as the ``sianode.property`` CalcJob does, for running the engine without AiiDA: the
    structures (``ase.Atoms``) as ``structure_<i>.extxyz``, copies of the model files as ``member_<i>.model`` and
    ``input.json``; return the request written to ``input.json``."""
    import shutil

    from ase.io import write

    directory.mkdir(parents=True, exist_ok=True)
    structure_names, model_names = [], []
    for index, atoms in enumerate(structures):
        structure_names.append(f'structure_{index}.extxyz')
        write(directory / structure_names[-1], atoms, format='extxyz')
    for index, model in enumerate(models):
        model_names.append(f'member_{index}.model')
        shutil.copy(model, directory / model_names[-1])
    request = {'kind': kind, 'structures': structure_names, 'models': model_names, 'settings': settings}
    (directory / 'input.json').write_text(json.dumps(request))
    return request


def read_input(path: pathlib.Path) -> tuple[str, list, list[pathlib.Path], dict]:
    """Read ``input.json``; return ``(kind, structures, model_paths, settings)``.

    :raises InvalidPropertyInput: a missing or unknown key, an unreadable structure, a missing model file.
    """
    from ase.io import read

    data = json.loads(path.read_text())
    unknown = sorted(set(data) - set(INPUT_KEYS))
    if unknown:
        raise InvalidPropertyInput(f'unknown key(s) in {path.name}: {", ".join(unknown)}')
    missing = [key for key in INPUT_KEYS if key not in data]
    if missing:
        raise InvalidPropertyInput(f'{path.name} lacks {", ".join(missing)}')
    base = path.parent
    structures = []
    for name in data['structures']:
        try:
            structures.append(read(base / name, index=0, format='extxyz'))
        except Exception as exception:
            raise InvalidPropertyInput(f'cannot read the structure {name}: {exception}') from exception
    models = [base / name for name in data['models']]
    absent = [model.name for model in models if not model.is_file()]
    if absent:
        raise InvalidPropertyInput(f'model file(s) missing: {", ".join(absent)}')
    if not models:
        raise InvalidPropertyInput('no model: the committee needs at least one member')
    return data['kind'], structures, models, dict(data['settings'])


def member_settings(module, settings: dict, models: list[pathlib.Path], index: int) -> dict:
    """Return the kernel settings for member ``index``: for a kernel that watches the committee (``committee_models``
    among its ``DEFAULTS``) the committee's model files (absolute paths, whatever the settings said: the committee is
    the one this engine runs) and ``member_index``; for a kernel that runs production MD under its ``md`` settings
    (``diffusion``) the same inside ``md``, so that its MD watches the committee too; the settings unchanged for every
    other kernel."""
    defaults = getattr(module, 'DEFAULTS', {})
    committee = {'committee_models': [str(path.resolve()) for path in models], 'member_index': index}
    if 'committee_models' in defaults:
        return {**settings, **committee}
    if isinstance(defaults.get('md'), dict):
        return {**settings, 'md': {**(settings.get('md') or {}), **committee}}
    return settings


def read_finished_member(path: pathlib.Path, digest: str) -> dict | None:
    """Return the record in ``member_<i>.json`` when it is a finished result of the same model, else ``None``."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (ValueError, OSError):
        return None
    if record.get('status') != 'ok' or record.get('sha256') != digest:
        return None
    return record


def run(directory: pathlib.Path, input_name: str = 'input.json') -> dict:
    """Run the property described by ``directory/input_name``; write and return ``results.json``'s content."""
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    kind, structures, models, settings = read_input(directory / input_name)
    module = load_kind(kind)
    engine_settings, kernel_settings = split_settings(settings)
    try:
        module.validate_settings(kernel_settings, [atoms.copy() for atoms in structures])
    except KeyError as exception:
        raise InvalidPropertyInput(f'the settings of the property {kind} lack {exception}') from exception
    device = resolve_device(str(engine_settings['device']))
    dtype = str(engine_settings['dtype'])
    digests = [sha256(path) for path in models]

    records: list[dict] = []
    for index, (model, digest) in enumerate(zip(models, digests)):
        target = directory / member_filename(index)
        finished = read_finished_member(target, digest)
        if finished is not None:
            print(f'member {index}: kept from the previous run ({target.name})', flush=True)
            records.append({**finished, 'kept': True})
            continue
        workdir = directory / f'member_{index}'
        workdir.mkdir(exist_ok=True)
        member_wall, member_cpu = time.perf_counter(), time.process_time()
        record: dict[str, Any] = {'index': index, 'model': model.name, 'sha256': digest}
        try:
            calculator = load_member_calculator(model, device, dtype)
        except Exception as exception:
            record.update(status='model_error', message=f'cannot load {model.name}: {exception}')
            write_json(target, record)
            return finish(directory, kind, [*records, record], digests, device, start_wall, start_cpu, module)
        try:
            result = module.run_member(
                [atoms.copy() for atoms in structures],
                calculator,
                member_settings(module, kernel_settings, models, index),
                workdir,
            )
            record.update(status='ok', result=clean_json(result))
        except InvalidPropertyInput as exception:
            record.update(status='invalid_input', message=str(exception))
        except Exception as exception:
            record.update(
                status='error', message=f'{type(exception).__name__}: {exception}', traceback=traceback.format_exc()
            )
            traceback.print_exc()
        record['wall_time_s'] = time.perf_counter() - member_wall
        record['cpu_time_s'] = time.process_time() - member_cpu
        write_json(target, record)
        print(f'member {index}: {record["status"]} in {record["wall_time_s"]:.1f} s', flush=True)
        records.append(record)
        if record['status'] == 'invalid_input':
            break
    return finish(directory, kind, records, digests, device, start_wall, start_cpu, module)


def finish(directory, kind, records, digests, device, start_wall, start_cpu, module) -> dict:
    """Aggregate the finished members, plot every curve, write ``results.json``; return it."""
    finished = [record for record in records if record.get('status') == 'ok']
    failed = [record for record in records if record.get('status') != 'ok']
    if any(record.get('status') == 'model_error' for record in failed):
        status = 'model_error'
    elif any(record.get('status') == 'invalid_input' for record in failed):
        status = 'invalid_input'
    elif not finished:
        status = 'all_members_failed'
    elif failed or len(records) < len(digests):
        status = 'member_failed'
    else:
        status = 'ok'
    results: dict[str, Any] = {
        'status': status,
        'kind': kind,
        'members': [record.get('result') for record in finished],
        'member_indices': [record['index'] for record in finished],
        'failures': [{key: record.get(key) for key in ('index', 'status', 'message')} for record in failed],
        'model_sha256': digests,
        'device': device,
    }
    if failed:
        results['message'] = '; '.join(f'member {record["index"]}: {record.get("message")}' for record in failed)
    plots = []
    if finished:
        aggregate = getattr(module, 'aggregate', aggregate_members)
        results['aggregate'] = aggregate([record['result'] for record in finished])
        for name, curve in results['aggregate'].get('curves', {}).items():
            try:
                plots.append(plot_curve(curve, directory / f'{name}.png', title=f'{kind}: {name}').name)
            except Exception as exception:  # a plot never costs the numbers
                print(f'could not plot {name}: {exception}', file=sys.stderr)
    results['plots'] = plots
    results['member_wall_time_s'] = [record.get('wall_time_s') for record in records]
    results['members_kept'] = [record['index'] for record in records if record.get('kept')]
    results['wall_time_s'] = time.perf_counter() - start_wall
    results['cpu_time_s'] = time.process_time() - start_cpu
    write_json(directory / RESULTS_FILENAME, results)
    return results


@once(RESULTS_FILENAME, 'property')
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: ``python -m aiida_sianode.engines.property input.json``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print('usage: python -m aiida_sianode.engines.property input.json', file=sys.stderr)
        return 2
    input_path = pathlib.Path(argv[0]).resolve()
    directory = input_path.parent
    threads = int(os.environ.get('OMP_NUM_THREADS', '0') or 0)
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    try:
        results = run(directory, input_path.name)
    except InvalidPropertyInput as exception:
        write_json(directory / RESULTS_FILENAME, {'status': 'invalid_input', 'message': str(exception)})
        print(f'invalid input: {exception}', file=sys.stderr)
        return 1
    except Exception as exception:
        write_json(
            directory / RESULTS_FILENAME,
            {
                'status': 'error',
                'message': f'{type(exception).__name__}: {exception}',
                'traceback': traceback.format_exc(),
            },
        )
        traceback.print_exc()
        return 1
    print(
        f'{results["kind"]}: {results["status"]}, {len(results["members"])} member(s), {results["wall_time_s"]:.1f} s'
    )
    return 0 if results['status'] == 'ok' else 1


if __name__ == '__main__':
    sys.exit(main())
