"""Scale benchmark: import, size and query times of 10^3-10^5 labels of 64 atoms on SQLite and PostgreSQL.

One command runs every size on every backend, each in a fresh profile in its own process, and writes the JSON
results and the Markdown table::

    OMP_NUM_THREADS=1 python benchmarks/scale.py run --sizes 1000 10000 100000 --backends sqlite psql \
        --json benchmarks/scale.json --md benchmarks/scale.md

The PostgreSQL profile needs a server on 127.0.0.1 and a role that may create databases, given as
``--pg-url postgresql://USER:PASSWORD@127.0.0.1:5432`` or the environment variable ``SIANODE_SCALE_PG``; each run
creates its own database ``sianode_scale_<random>`` and drops it at the end.

The frames: a 64-atom diamond Si cell (a = 5.43 Å) rattled by 0.1 Å, one frame in ten a Li8Si56 cell, with random
energies, forces and stresses; one frame in five is labelled with a second level of theory (PBEsol instead of
PBE). They are written as extended XYZ files of at most 10^4 frames and imported with
``import_files(records=True)`` and ``ImportReport.store`` (the bulk path). ``check`` imports a small fixed set and
prints the answers of the queries, for the test that compares the two backends.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import secrets
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_PG = 'postgresql://sianode_scale:sianode_scale@127.0.0.1:5432'
PBE = {'code': 'vasp', 'method': 'PBE', 'cutoff_ev': 520.0}
PBESOL = {'code': 'vasp', 'method': 'PBEsol', 'cutoff_ev': 520.0}
CHUNK = 10_000


def pg_parts(url: str) -> dict:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return {
        'database_hostname': parsed.hostname or '127.0.0.1',
        'database_port': parsed.port or 5432,
        'database_username': parsed.username,
        'database_password': parsed.password or '',
    }


def pg_connect(url: str, database: str = 'postgres'):
    import psycopg

    parts = pg_parts(url)
    return psycopg.connect(
        host=parts['database_hostname'],
        port=parts['database_port'],
        user=parts['database_username'],
        password=parts['database_password'],
        dbname=database,
        autocommit=True,
        connect_timeout=5,
    )


def make_profile(backend: str, workdir: pathlib.Path, pg_url: str | None):
    """Create and load a fresh profile in ``workdir`` (AIIDA_PATH must point there); return (profile, database)."""
    from aiida import load_profile
    from aiida.manage.configuration import create_profile, get_config

    config = get_config(create=True)
    name = f'scale-{secrets.token_hex(4)}'
    database = None
    if backend == 'sqlite':
        storage, storage_config = 'core.sqlite_dos', {'filepath': str(workdir / 'storage')}
    elif backend == 'psql':
        database = f'sianode_scale_{secrets.token_hex(4)}'
        with pg_connect(pg_url) as connection:
            connection.execute(f'CREATE DATABASE {database}')
        storage = 'core.psql_dos'
        storage_config = {
            **pg_parts(pg_url),
            'database_name': database,
            'repository_uri': f'file://{workdir / "repository"}',
        }
    else:
        raise ValueError(f'unknown backend {backend!r}: sqlite or psql')
    create_profile(
        config, name=name, email='scale@sianode.invalid', storage_backend=storage, storage_config=storage_config
    )
    config.set_default_profile(name, overwrite=True)
    config.store()
    return load_profile(name, allow_switch=True), database


def drop_database(pg_url: str, database: str) -> None:
    from aiida.manage import get_manager

    get_manager().get_profile_storage().close()
    with pg_connect(pg_url) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS {database} WITH (FORCE)')


def make_frames(n: int, seed: int = 0) -> list:
    """``n`` labelled 64-atom frames (see the module docstring)."""
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(seed)
    silicon = bulk('Si', 'diamond', a=5.43, cubic=True).repeat(2)
    lithiated = silicon.copy()
    lithiated.numbers[:8] = 3
    frames = []
    for index in range(n):
        atoms = (lithiated if index % 10 == 3 else silicon).copy()
        atoms.positions += rng.normal(0.0, 0.1, atoms.positions.shape)
        atoms.calc = SinglePointCalculator(
            atoms,
            energy=-5.42 * len(atoms) + rng.normal(0.0, 0.5),
            forces=rng.normal(0.0, 1.0, (len(atoms), 3)),
            stress=rng.normal(0.0, 0.01, 6),
        )
        frames.append(atoms)
    return frames


def write_files(frames: list, folder: pathlib.Path) -> dict[str, list[pathlib.Path]]:
    """Write the frames as extxyz files of at most :data:`CHUNK` frames: ``{'PBE': [...], 'PBEsol': [...]}``."""
    import ase.io

    folder.mkdir(parents=True, exist_ok=True)
    sets = {
        'PBE': [a for i, a in enumerate(frames) if i % 5 != 4],
        'PBEsol': [a for i, a in enumerate(frames) if i % 5 == 4],
    }
    paths: dict[str, list[pathlib.Path]] = {}
    for name, selected in sets.items():
        paths[name] = []
        for start in range(0, len(selected), CHUNK):
            path = folder / f'{name}_{start // CHUNK:03d}.extxyz'
            ase.io.write(path, selected[start : start + CHUNK], format='extxyz')
            paths[name].append(path)
    return paths


def du(path: pathlib.Path) -> int:
    return sum(item.stat().st_size for item in path.rglob('*') if item.is_file())


def database_size(backend: str, workdir: pathlib.Path, pg_url: str | None, database: str | None) -> int:
    if backend == 'sqlite':
        return sum(item.stat().st_size for item in (workdir / 'storage').glob('database.sqlite*'))
    with pg_connect(pg_url, database) as connection:
        return connection.execute('SELECT pg_database_size(current_database())').fetchone()[0]


def repository_size(backend: str, workdir: pathlib.Path) -> int:
    return du(workdir / 'storage' / 'container' if backend == 'sqlite' else workdir / 'repository')


#: CPU seconds of this process per timed phase (the machine is shared: wall time alone says little)
CPU: dict[str, float] = {}


def timed(function, *args, **kwargs):
    """Return ``(result, wall seconds)``; the CPU seconds of this process are added to ``CPU[function name]``."""
    start, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    name = getattr(function, '__name__', str(function))
    CPU[name] = CPU.get(name, 0.0) + time.process_time() - cpu
    return result, time.perf_counter() - start


def one(backend: str, size: int, pg_url: str | None, one_by_one: int, dataset_labels: int) -> dict:
    """Run the whole measurement for one backend and size in a fresh profile; return the results."""
    workdir = pathlib.Path(os.environ['AIIDA_PATH'])
    _, database = make_profile(backend, workdir, pg_url)
    try:
        return _measure(backend, size, pg_url, database, workdir, one_by_one, dataset_labels)
    finally:
        if database is not None:
            drop_database(pg_url, database)


def _measure(backend, size, pg_url, database, workdir, one_by_one, dataset_labels) -> dict:
    from aiida import orm

    from aiida_sianode.common import level_of_theory as lot
    from aiida_sianode.data.dataset import build_dataset
    from aiida_sianode.data.importers import import_files
    from aiida_sianode.data.label import LabelData
    from aiida_sianode.provenance import calculations_behind_labels, label_ids_of_dataset, potentials_using_label
    from aiida_sianode.query import find_labels

    result: dict = {'backend': backend, 'size': size}
    frames, result['generate_s'] = timed(make_frames, size)
    paths, result['write_s'] = timed(write_files, frames, workdir / 'frames')
    del frames
    db0, repo0 = database_size(backend, workdir, pg_url, database), repository_size(backend, workdir)

    read_s = store_s = 0.0
    for name, record in (('PBE', PBE), ('PBEsol', PBESOL)):
        for path in paths[name]:
            report, seconds = timed(import_files, path, level_of_theory=record, records=True)
            read_s += seconds
            _, seconds = timed(report.store, f'scale-{name}')
            store_s += seconds
            del report
    result.update({'read_s': read_s, 'store_s': store_s, 'import_s': read_s + store_s})
    result['labels'] = orm.QueryBuilder().append(LabelData).count()
    db1, repo1 = database_size(backend, workdir, pg_url, database), repository_size(backend, workdir)
    result.update({'database_bytes': db1 - db0, 'repository_bytes': repo1 - repo0})
    result['bytes_per_label'] = (db1 - db0 + repo1 - repo0) / result['labels']
    row = orm.QueryBuilder().append(LabelData, project=['attributes', 'repository_metadata']).first()
    result['attributes_json_bytes'] = len(json.dumps(row[0]))
    result['arrays_npy_bytes'] = sum(
        orm.load_node(orm.QueryBuilder().append(LabelData, project='id').first()[0])
        .base.repository.get_object_content(name, 'rb')
        .__len__()
        for name in row[1]['o']
    )

    if one_by_one:  # the old path, for comparison: LabelData.store() one by one
        import ase.io

        sample = ase.io.read(paths['PBE'][0], index=f':{one_by_one}')
        nodes = [LabelData(atoms, level_of_theory=PBE, source={'kind': 'benchmark'}) for atoms in sample]
        start = time.perf_counter()
        for node in nodes:
            node.store()
        result['one_by_one_s_per_label'] = (time.perf_counter() - start) / len(nodes)
        orm.Group.collection.get_or_create(label='scale-one-by-one')[0].add_nodes(nodes)

    fingerprint = lot.fingerprint(lot.normalise(PBE))
    queries = {}
    rows, queries['by_fingerprint_and_elements_s'] = timed(find_labels, fingerprint=fingerprint, elements=['Li', 'Si'])
    queries['by_fingerprint_and_elements_rows'] = len(rows)
    rows, queries['by_method_s'] = timed(find_labels, method='PBEsol')
    queries['by_method_rows'] = len(rows)
    result['queries'] = queries

    # a dataset of (up to) `dataset_labels` PBE labels and the provenance walks over it: build_dataset (a calcfunction
    # with one input per label) costs about 0.2 s of CPU per label, so it is not run over all the labels
    if dataset_labels:  # 0: no dataset (its build is the slow part, see scale.md)
        subset = [pk for pk, *_ in find_labels(fingerprint=fingerprint, project=['id'])][:dataset_labels]
        labels = list(orm.QueryBuilder().append(LabelData, filters={'id': {'in': subset}}).all(flat=True))
        dataset, result['build_dataset_s'] = timed(build_dataset, labels, valid_fraction=0.1)
        result['dataset_frames'] = dataset.n_frames
        ids, queries['labels_of_dataset_s'] = timed(label_ids_of_dataset, dataset)
        rows, queries['calculations_behind_labels_s'] = timed(calculations_behind_labels, [pk for pk, _ in ids])
        queries['calculations_behind_labels_rows'] = len(rows)
        _, queries['potentials_using_label_s'] = timed(potentials_using_label, labels[0])
        frames, export_s = timed(dataset.export, workdir / 'export.extxyz')
        result['export_s_per_1e4_frames'] = export_s * 10_000 / frames
    result['load_average'] = os.getloadavg()
    result['cpu_s'] = dict(CPU)
    result['cpu_total_s'] = time.process_time()
    return result


def run(args) -> list[dict]:
    results = []
    for size in args.sizes:
        for backend in args.backends:
            with tempfile.TemporaryDirectory(prefix='sianode-scale-') as workdir:
                out = pathlib.Path(workdir) / 'result.json'
                env = {**os.environ, 'AIIDA_PATH': workdir, 'OMP_NUM_THREADS': '1'}
                command = [sys.executable, __file__, 'one', '--backend', backend, '--size', str(size)]
                command += ['--json', str(out), '--pg-url', args.pg_url, '--one-by-one', str(args.one_by_one)]
                command += ['--dataset-labels', str(args.dataset_labels)]
                start = time.perf_counter()
                subprocess.run(command, env=env, check=True)
                result = json.loads(out.read_text())
                result['wall_s'] = time.perf_counter() - start
                print(json.dumps(result), flush=True)
                results.append(result)
                if args.json:
                    previous = (
                        json.loads(pathlib.Path(args.json).read_text()) if pathlib.Path(args.json).exists() else []
                    )
                    kept = [r for r in previous if (r['backend'], r['size']) != (backend, size)]
                    pathlib.Path(args.json).write_text(json.dumps([*kept, result], indent=1) + '\n')
    return results


def check(args) -> dict:
    """Import a fixed set of 200 frames with the bulk path and return the answers of the queries (for the tests)."""
    from aiida_sianode.common import level_of_theory as lot
    from aiida_sianode.data.importers import import_files
    from aiida_sianode.query import find_labels

    workdir = pathlib.Path(os.environ['AIIDA_PATH'])
    _, database = make_profile(args.backend, workdir, args.pg_url)
    try:
        paths = write_files(make_frames(200, seed=1), workdir / 'frames')
        for name, record in (('PBE', PBE), ('PBEsol', PBESOL)):
            import_files(paths[name], level_of_theory=record, records=True).store(f'check-{name}', batch_size=64)
        columns = ['attributes.formula', 'attributes.energy', 'attributes.source.frame', 'attributes.source.filename']
        fingerprint = lot.fingerprint(lot.normalise(PBE))
        answers = {
            'li_si_pbe': find_labels(fingerprint=fingerprint, elements=['Si', 'Li'], project=columns),
            'si_only': find_labels(elements=['Si'], project=columns),
            'pbesol': find_labels(method='PBEsol', project=columns),
            'group_pbe': find_labels(group='check-PBE', project=columns),
        }
        # file names differ between runs (temporary folders): keep the base name; SQLite's JSON keeps 15 significant
        # digits of a float, PostgreSQL's all 17: compare energies to 1e-9 eV
        for key, rows in answers.items():
            answers[key] = sorted([row[0], round(row[1], 9), row[2], pathlib.Path(row[3]).name] for row in rows)
        return answers
    finally:
        if database is not None:
            drop_database(args.pg_url, database)


def markdown(results: list[dict]) -> str:
    header = (
        '| backend | labels | import (s) | read (s) | store (s) | ms/label | import CPU (s) | one-by-one ms/label '
        '| kB/label (db + repo) '
        '| Li-Si PBE query (s, rows) | PBEsol query (s, rows) | dataset build (s, frames) | labels of dataset (s) '
        '| calculations behind (s) | potentials using a label (s) | export s/10^4 frames | load avg |\n'
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
    )
    lines = []
    for r in sorted(results, key=lambda r: (r['backend'], r['size'])):
        q = r['queries']
        one_by_one = r.get('one_by_one_s_per_label')
        cpu = r.get('cpu_s') or {}
        import_cpu = f'{cpu["import_files"] + cpu["store"]:.1f}' if 'store' in cpu else '-'
        lines.append(
            f'| {r["backend"]} | {r["labels"]} | {r["import_s"]:.1f} | {r["read_s"]:.1f} | {r["store_s"]:.1f} '
            f'| {1000 * r["import_s"] / r["labels"]:.2f} | {import_cpu} '
            f'| {f"{1000 * one_by_one:.0f}" if one_by_one else "-"} '
            f'| {r["bytes_per_label"] / 1000:.1f} ({r["database_bytes"] / r["labels"] / 1000:.1f} + '
            f'{r["repository_bytes"] / r["labels"] / 1000:.1f}) '
            f'| {q["by_fingerprint_and_elements_s"]:.3f}, {q["by_fingerprint_and_elements_rows"]} '
            f'| {q["by_method_s"]:.3f}, {q["by_method_rows"]} '
            + (
                f'| {r["build_dataset_s"]:.1f}, {r["dataset_frames"]} | {q["labels_of_dataset_s"]:.3f} '
                f'| {q["calculations_behind_labels_s"]:.3f} | {q["potentials_using_label_s"]:.3f} '
                f'| {r["export_s_per_1e4_frames"]:.1f} '
                if 'build_dataset_s' in r
                else '| - | - | - | - | - '
            )
            + f'| {r["load_average"][0]:.1f} |'
        )
    return header + '\n'.join(lines) + '\n'


BEGIN, END = '<!-- scale.py table: begin -->', '<!-- scale.py table: end -->'


def write_table(path: pathlib.Path, table: str) -> None:
    """Put ``table`` between the markers in ``path`` (the text around them is kept), or write a new file."""
    text = path.read_text() if path.exists() else f'# Scale benchmark\n\n{BEGIN}\n{END}\n'
    if BEGIN not in text or END not in text:
        raise SystemExit(f'{path} has no table markers ({BEGIN} ... {END}): add them where the table goes')
    head, rest = text.split(BEGIN, 1)
    path.write_text(f'{head}{BEGIN}\n{table}{END}{rest.split(END, 1)[1]}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    for name in ('run', 'one', 'check'):
        command = sub.add_parser(name)
        command.add_argument('--pg-url', default=os.environ.get('SIANODE_SCALE_PG', DEFAULT_PG))
        command.add_argument('--json')
        if name == 'run':
            command.add_argument('--sizes', type=int, nargs='+', default=[1000, 10_000])
            command.add_argument('--backends', nargs='+', default=['sqlite', 'psql'], choices=['sqlite', 'psql'])
            command.add_argument('--md', help='write the Markdown table of all results in --json here')
            command.add_argument('--one-by-one', type=int, default=200, help='labels stored the old way, to compare')
            command.add_argument('--dataset-labels', type=int, default=1000, help='labels in the benchmark dataset')
        else:
            command.add_argument('--backend', required=True, choices=['sqlite', 'psql'])
        if name == 'one':
            command.add_argument('--size', type=int, required=True)
            command.add_argument('--one-by-one', type=int, default=200)
            command.add_argument('--dataset-labels', type=int, default=1000)
    args = parser.parse_args()
    if args.command == 'run':
        if args.md and not args.json:
            parser.error('--md needs --json (the table is made from every result in it)')
        run(args)
        if args.md:
            table = markdown(json.loads(pathlib.Path(args.json).read_text()))
            write_table(pathlib.Path(args.md), table)
            print(table)
        return
    result = (
        one(args.backend, args.size, args.pg_url, args.one_by_one, args.dataset_labels)
        if args.command == 'one'
        else check(args)
    )
    text = json.dumps(result, default=float)
    if args.json:
        pathlib.Path(args.json).write_text(text)
    else:
        print(text)


if __name__ == '__main__':
    main()
