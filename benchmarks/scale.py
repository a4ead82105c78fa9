"""Scale benchmark: import, size and query times of 10^3-10^5 labels of 64 atoms on SQLite and PostgreSQL.

One command runs every size on every backend, each in a fresh profile in its own process, and writes the JSON
results and the Markdown table::

    OMP_NUM_THREADS=1 python benchmarks/scale.py run --sizes 1000 10000 100000 --backends sqlite psql \
        --json benchmarks/scale.json --md benchmarks/scale.md

``run --keep DIR`` leaves each profile (and its PostgreSQL database) in ``DIR/<backend>-<size>``; ``requery --json
X`` then re-times only the SQL-path queries on those profiles with the current code and replaces those columns of
their rows in ``X`` (no import of 10^5 labels again); remove ``DIR`` and drop the database by hand afterwards.

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
import contextlib
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
#: a trained model file (gitignored; copy /work/models/si_fast/member_0.model or pass --model)
MODEL = HERE / 'models' / 'si_fast_member_0.model'


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


def time_find_labels_sql(queries: dict, fingerprint: str) -> None:
    """Time ``find_labels_sql`` (Li-Si at ``fingerprint``; PBEsol) into ``queries``, checked against ``find_labels``."""
    from aiida_sianode.query import find_labels, find_labels_sql

    for name, kwargs in (
        ('by_fingerprint_and_elements_sql', {'fingerprint': fingerprint, 'elements': ['Li', 'Si']}),
        ('by_method_sql', {'method': 'PBEsol'}),
    ):
        cpu = time.process_time()
        rows, queries[f'{name}_s'] = timed(find_labels_sql, **kwargs)
        queries[f'{name}_cpu_s'] = time.process_time() - cpu
        queries[f'{name}_rows'] = len(rows)
        queries[f'{name}_same'] = rows == find_labels(**kwargs)


def timed(function, *args, **kwargs):
    """Return ``(result, wall seconds)``; the CPU seconds of this process are added to ``CPU[function name]``."""
    start, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    name = getattr(function, '__name__', str(function))
    CPU[name] = CPU.get(name, 0.0) + time.process_time() - cpu
    return result, time.perf_counter() - start


def one(
    backend: str, size: int, pg_url: str | None, one_by_one: int, dataset_labels: int, model=None, keep: bool = False
) -> dict:
    """Run the whole measurement for one backend and size in a fresh profile; return the results. ``keep``: leave
    the profile (and its PostgreSQL database) in place for ``requery``."""
    workdir = pathlib.Path(os.environ['AIIDA_PATH'])
    _, database = make_profile(backend, workdir, pg_url)
    try:
        result = _measure(backend, size, pg_url, database, workdir, one_by_one, dataset_labels, model)
        if keep:
            result['kept_profile'] = {'aiida_path': str(workdir), 'database': database}
        return result
    finally:
        if database is not None and not keep:
            drop_database(pg_url, database)


def measure_sql(queries: dict, potential, reference_rows: list[dict]) -> None:
    """Time the SQL path of ``aiida_sianode.query`` (wall and CPU of this process) and check its answers against the
    QueryBuilder path's ``reference_rows``; add the results to ``queries``."""
    from aiida_sianode import provenance, query

    def label_ids_behind_potential_sql(potential):
        return query.label_ids_of_dataset_sql(query.dataset_pk_of_potential(potential))

    def label_pks_behind_potential(potential):
        return query.label_pks_of_dataset(query.dataset_pk_of_potential(potential))

    def bare_link_ids(potential):
        """The floor: the label ids of the dataset's build links, a bare SELECT through the same session and the
        same DBAPI fetch as the SQL path (timed last, after every other statement has warmed the caches)."""
        import sqlalchemy as sa

        link = query._storage()[2]
        builds = query._builds(query.dataset_pk_of_potential(potential))
        return query._fetch(sa.select(link.c.input_id).where(link.c.output_id.in_(builds), link.c.type == 'input_calc'))

    def first_calculation_row(potential):
        """Time to the first row of the streamed calculations (the statement runs before the first row)."""
        rows = query.iter_calculations_behind_dataset(query.dataset_pk_of_potential(potential))
        first = [next(rows)]
        rows.close()
        return first

    query.label_counts(group='scale-no-such-group')  # one unrelated statement first: the imports and the session
    for name, function in (
        ('label_pks_behind_potential', label_pks_behind_potential),
        ('labels_behind_potential_sql', label_ids_behind_potential_sql),
        ('first_calculation_row', first_calculation_row),
        ('calculations_behind_potential_sql', query.calculations_behind_potential_sql),
        ('summarise_potential_sql', query.summarise_potential_sql),
        ('label_counts_sql', lambda _: query.label_counts()),
        ('bare_link_ids', bare_link_ids),
    ):
        cpu = time.process_time()
        answer, queries[f'{name}_s'] = timed(function, potential)
        queries[f'{name}_cpu_s'] = time.process_time() - cpu
        queries[f'{name}_rows'] = len(answer)
        if name == 'label_pks_behind_potential':
            queries[f'{name}_same'] = answer.tolist() == [row['label_pk'] for row in reference_rows]
        elif name == 'first_calculation_row':
            queries[f'{name}_same'] = answer == reference_rows[:1]
        elif name == 'labels_behind_potential_sql':
            queries[f'{name}_same'] = [pk for pk, _ in answer] == [row['label_pk'] for row in reference_rows]
        elif name == 'calculations_behind_potential_sql':
            queries[f'{name}_same'] = answer == reference_rows
        elif name == 'summarise_potential_sql':
            queries[f'{name}_same'] = answer == provenance.summarise_calculations(reference_rows)


def labels_ids_behind_potential(potential) -> list[tuple[int, str]]:
    """``(pk, uuid)`` of the labels a potential was trained on: its dataset, then the dataset's build links."""
    from aiida_sianode.provenance import dataset_of_potential, label_ids_of_dataset

    return label_ids_of_dataset(dataset_of_potential(potential))


def register_potential(dataset, model):
    """Store the model file at ``model`` as a PotentialData created by a calcfunction with the ``dataset`` input.

    The benchmark does not train on 10^5 frames: this gives the provenance a training run leaves (the potential's
    creator has the dataset as input ``dataset``), so that the queries from a potential walk the real links.
    """
    from aiida.engine import calcfunction

    from aiida_sianode.data.potential import PotentialData

    @calcfunction
    def scale_benchmark_training(dataset, model):
        return PotentialData.from_model_file(model.value, training_set_uuid=dataset.uuid)

    return scale_benchmark_training(dataset=dataset, model=model)


def prepare_in_child(uuid: str, workdir: pathlib.Path) -> dict:
    """Time ``write_training_files`` of dataset ``uuid`` in a fresh process, for its own peak memory."""
    out = workdir / 'prepare.json'
    command = [sys.executable, __file__, 'prepare', '--dataset', uuid, '--json', str(out)]
    subprocess.run(command, check=True)
    return json.loads(out.read_text())


def prepare(args) -> dict:
    """Write the training files of dataset ``args.dataset``; report time, CPU and peak memory of this process."""
    import resource

    from aiida import load_profile, orm

    load_profile()
    dataset = orm.load_node(args.dataset)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory(prefix='sianode-prepare-') as directory:
        start, cpu = time.perf_counter(), time.process_time()
        paths = dataset.write_training_files(directory)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        sizes = {split: pathlib.Path(path).stat().st_size if path else 0 for split, path in paths.items()}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        'frames': dataset.n_frames,
        'wall_s': wall,
        'cpu_s': cpu,
        'peak_rss_mb': peak / 1024,
        'rss_before_mb': before / 1024,
        'file_bytes': sizes,
    }


def _measure(backend, size, pg_url, database, workdir, one_by_one, dataset_labels, model=None) -> dict:
    from aiida import orm

    from aiida_sianode.common import level_of_theory as lot
    from aiida_sianode.data.dataset import build_dataset
    from aiida_sianode.data.importers import import_files
    from aiida_sianode.data.label import LabelData
    from aiida_sianode.provenance import (
        calculations_behind_labels,
        calculations_behind_potential,
        label_ids_of_dataset,
        potentials_using_label,
    )
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

    time_find_labels_sql(queries, fingerprint)
    result['queries'] = queries

    # a dataset of the PBE labels (all of them, or the first `dataset_labels`), built from their PKs: no label node is
    # loaded; then a potential trained on it (a real model file registered by a calcfunction whose input is the
    # dataset, as the training CalcJob links it) and the provenance walks
    if dataset_labels != 0:
        subset = [pk for (pk,) in find_labels(fingerprint=fingerprint, project=['id'])]
        subset = subset[:dataset_labels] if dataset_labels > 0 else subset
        repo_before = repository_size(backend, workdir)
        dataset, result['build_dataset_s'] = timed(build_dataset, subset, valid_fraction=0.1)
        result['dataset_repository_bytes'] = repository_size(backend, workdir) - repo_before
        result['dataset_frames'] = dataset.n_frames
        result['dataset_split_counts'] = dataset.split_counts
        result['build_links'] = (
            orm.QueryBuilder()
            .append(orm.CalcFunctionNode, filters={'id': dataset.creator.pk}, tag='build')
            .append(LabelData, with_outgoing='build')
            .count()
        )
        ids, queries['labels_of_dataset_s'] = timed(label_ids_of_dataset, dataset)
        queries['labels_of_dataset_rows'] = len(ids)
        rows, queries['calculations_behind_labels_s'] = timed(calculations_behind_labels, [pk for pk, _ in ids])
        queries['calculations_behind_labels_rows'] = len(rows)
        label = orm.load_node(subset[0])
        if model is not None and model.exists():
            potential = register_potential(dataset, orm.Str(str(model)))
            rows, queries['labels_behind_potential_s'] = timed(labels_ids_behind_potential, potential)
            queries['labels_behind_potential_rows'] = len(rows)
            rows, queries['calculations_behind_potential_s'] = timed(calculations_behind_potential, potential)
            queries['calculations_behind_potential_rows'] = len(rows)
            # the SQL path (aiida_sianode.query): the same answers, computed in the database
            measure_sql(queries, potential, rows)
        found, queries['potentials_using_label_s'] = timed(potentials_using_label, label)
        queries['potentials_using_label_rows'] = len(found)
        frames, export_s = timed(dataset.export, workdir / 'export.extxyz')
        result['export_s_per_1e4_frames'] = export_s * 10_000 / frames
        result['export_cpu_s_per_1e4_frames'] = CPU['export'] * 10_000 / frames
        result['prepare_training'] = prepare_in_child(dataset.uuid, workdir)
    result['load_average'] = os.getloadavg()
    result['cpu_s'] = dict(CPU)
    result['cpu_total_s'] = time.process_time()
    return result


def run(args) -> list[dict]:
    results = []
    for size in args.sizes:
        for backend in args.backends:
            with contextlib.ExitStack() as stack:
                if args.keep:  # the profile stays for `requery`: one folder per backend and size
                    workdir = str(pathlib.Path(args.keep).resolve() / f'{backend}-{size}')
                    if pathlib.Path(workdir).exists():
                        raise SystemExit(f'--keep: {workdir} exists (a kept profile); remove it or choose another')
                    pathlib.Path(workdir).mkdir(parents=True)
                else:
                    workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix='sianode-scale-'))
                out = pathlib.Path(workdir) / 'result.json'
                env = {**os.environ, 'AIIDA_PATH': workdir, 'OMP_NUM_THREADS': '1'}
                command = [sys.executable, __file__, 'one', '--backend', backend, '--size', str(size)]
                command += ['--json', str(out), '--pg-url', args.pg_url, '--one-by-one', str(args.one_by_one)]
                command += ['--dataset-labels', str(args.dataset_labels), '--model', str(args.model)]
                command += ['--keep'] if args.keep else []
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


def requery(args) -> None:
    """Re-time the SQL path on the profiles kept by ``run --keep`` (no import, no dataset build) and replace those
    columns of each kept profile's row in ``--json``; the row records when and at which load they were re-timed."""
    results = json.loads(pathlib.Path(args.json).read_text()) if pathlib.Path(args.json).exists() else []
    for result in results:
        kept = result.get('kept_profile')
        if not kept or result['backend'] not in args.backends or result['size'] not in args.sizes:
            continue
        if not pathlib.Path(kept['aiida_path']).exists():
            raise SystemExit(f'requery: the kept profile {kept["aiida_path"]} is gone; run with --keep again')
        with tempfile.TemporaryDirectory(prefix='sianode-requery-') as directory:
            out = pathlib.Path(directory) / 'queries.json'
            env = {**os.environ, 'AIIDA_PATH': kept['aiida_path'], 'OMP_NUM_THREADS': '1'}
            subprocess.run([sys.executable, __file__, 'requery-one', '--json', str(out)], env=env, check=True)
            timed_again = json.loads(out.read_text())
        result['queries'].update(timed_again['queries'])
        result['requeried'] = {key: timed_again[key] for key in ('when', 'load_average', 'keys')}
        print(json.dumps({'backend': result['backend'], 'size': result['size'], **timed_again}), flush=True)
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1) + '\n')


def requery_one() -> dict:
    """In the kept profile (AIIDA_PATH): time the SQL path from the benchmark's potential, and ``find_labels_sql``."""
    from aiida import load_profile, orm

    load_profile()
    from aiida_sianode.common import level_of_theory as lot
    from aiida_sianode.data.potential import PotentialData
    from aiida_sianode.provenance import calculations_behind_potential

    query = orm.QueryBuilder().append(PotentialData, project='id').order_by({PotentialData: {'id': 'desc'}})
    potential = orm.load_node(query.first()[0])
    reference = calculations_behind_potential(potential)  # the QueryBuilder path, for the *_same checks
    queries: dict = {}
    fingerprint = lot.fingerprint(lot.normalise(PBE))
    time_find_labels_sql(queries, fingerprint)
    measure_sql(queries, potential, reference)
    return {
        'queries': queries,
        'keys': sorted(queries),
        'when': time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()),
        'load_average': os.getloadavg(),
    }


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
        pks = [pk for (pk,) in find_labels(fingerprint=fingerprint, project=['id'])]
        answers['datasets'] = compare_dataset_paths(pks)
        answers['sql_path'] = compare_sql_path(pks)
        return answers
    finally:
        if database is not None:
            drop_database(args.pg_url, database)


def compare_dataset_paths(pks: list[int]) -> dict:
    """Build datasets of the same labels by the calcfunction and by the bulk path (a first generation of 12 labels
    and a child of 6 more) and return what is the same in both (for the test that runs this on both backends)."""
    from aiida import orm

    from aiida_sianode.data.dataset import DatasetData, build_dataset
    from aiida_sianode.data.label import LabelData
    from aiida_sianode.provenance import label_ids_of_dataset

    def links(node):
        query = orm.QueryBuilder().append(orm.CalcFunctionNode, filters={'id': node.pk}, tag='build')
        query.append(orm.Node, with_outgoing='build', edge_project=['type', 'label'], project=['uuid'])
        return sorted(query.all())

    def datasets_using(pk):
        query = orm.QueryBuilder().append(LabelData, filters={'id': pk}, tag='label')
        query.append(orm.CalcFunctionNode, with_incoming='label', tag='build')
        query.append(DatasetData, with_incoming='build', project=['uuid'])
        return set(query.all(flat=True))

    built = {}
    for bulk in (False, True):
        parent = build_dataset(pks[:12], valid_fraction=0.25, seed=3, bulk=bulk)
        child = build_dataset(pks[12:18], valid_fraction=0.25, seed=4, parent=parent, bulk=bulk)
        built[bulk] = (parent, child)
    answer = {}
    for generation, (slow, fast) in enumerate(zip(built[False], built[True])):
        slow_node, fast_node = slow.creator, fast.creator
        answer[f'generation_{generation}'] = {
            'frames': fast.n_frames,
            'split_counts': fast.split_counts,
            'same_file': slow.get_content('rb') == fast.get_content('rb'),
            'same_attributes': {**slow.base.attributes.all, 'parent_uuid': None}
            == {**fast.base.attributes.all, 'parent_uuid': None},
            'same_process_attributes': slow_node.base.attributes.all == fast_node.base.attributes.all,
            'same_process_type': (slow_node.process_type, slow_node.label) == (fast_node.process_type, fast_node.label),
            'same_hash': slow_node.base.caching.get_hash() == fast_node.base.caching.get_hash(),
            'hash_recomputed_equal': fast_node.base.caching.compute_hash() == fast_node.base.caching.get_hash(),
            'sealed_finished_ok': [node.is_sealed and node.is_finished_ok for node in (slow_node, fast_node)],
            'n_input_links': len(links(fast_node)),
            'same_label_links': [row for row in links(slow_node) if row[2].startswith('label_')]
            == [row for row in links(fast_node) if row[2].startswith('label_')],
            'same_labels_of_dataset': label_ids_of_dataset(slow) == label_ids_of_dataset(fast),
            'labels_of_dataset': len(label_ids_of_dataset(fast)),
        }
    # a label is a direct input of the build of its own generation only, by either path:
    # [is the calcfunction's dataset, is the bulk path's] for each dataset whose build took the label
    for name, pk, generation in (('first', pks[0], 0), ('child', pks[17], 1)):
        answer[f'datasets_using_{name}_label'] = sorted(
            [uuid == built[False][generation].uuid, uuid == built[True][generation].uuid] for uuid in datasets_using(pk)
        )
    return answer


def calculated_labels(n: int) -> list:
    """``n`` labels made by a CalcJob (``sianode-label@scale-host``), then ``n`` made by a calcfunction from a CalcJob's
    raw outputs, at the PBE level of theory of the imported labels: the provenance a labelling campaign leaves, for
    the tests of the SQL path."""
    from aiida import orm
    from aiida.common.links import LinkType
    from aiida.engine import calcfunction
    from ase.build import bulk

    from aiida_sianode.data.label import LabelData

    computer = orm.Computer(
        'scale-host', hostname='localhost', transport_type='core.local', scheduler_type='core.direct'
    )
    computer.set_workdir('/tmp/scale-host')
    computer.store()
    code = orm.InstalledCode(label='sianode-label', computer=computer, filepath_executable='/bin/true').store()

    @calcfunction
    def label_from_arrays(arrays):
        atoms = bulk('Si', 'diamond', a=5.43)
        energy = float(arrays.get_array('energy')[0])
        return LabelData(
            atoms,
            energy=energy,
            forces=arrays.get_array('forces'),
            level_of_theory=PBE,
            source={'kind': 'calculation'},
        )

    labels = []
    for index in range(2 * n):
        job = orm.CalcJobNode(computer=computer, process_type='aiida.calculations:sianode.label')
        job.set_process_state('finished')
        job.set_exit_status(0)
        job.set_option('resources', {'num_machines': 1})
        job.base.links.add_incoming(code, LinkType.INPUT_CALC, 'code')
        job.store()
        if index < n:
            atoms = bulk('Si', 'diamond', a=5.40 + 0.01 * index)
            label = LabelData(
                atoms,
                energy=-10.0 - index,
                forces=np.zeros((2, 3)),
                level_of_theory=PBE,
                source={'kind': 'calculation'},
            )
            label.base.links.add_incoming(job, LinkType.CREATE, 'label')
            labels.append(label.store())
        else:
            arrays = orm.ArrayData()
            arrays.set_array('energy', np.array([-20.0 - index]))
            arrays.set_array('forces', np.full((2, 3), 0.01 * index))
            arrays.base.links.add_incoming(job, LinkType.CREATE, 'output_arrays')
            arrays.store()
            job.seal()
            labels.append(label_from_arrays(arrays))
    return labels


def compare_sql_path(pks: list[int]) -> dict:
    """The SQL path of ``aiida_sianode.query`` against the QueryBuilder path of ``aiida_sianode.provenance`` on a
    dataset of imported labels and labels made by calculations, in two generations, and a potential trained on it:
    which answers are equal, and the SQL answers with the profile's own pks and uuids taken out (for the test that
    compares the backends)."""
    from aiida_sianode import provenance, query
    from aiida_sianode.common import level_of_theory as lot
    from aiida_sianode.data.dataset import build_dataset

    pbe = lot.fingerprint(lot.normalise(PBE))
    columns = ['attributes.formula', 'attributes.energy', 'attributes.source.frame', 'attributes.source.filename']
    made = calculated_labels(3)
    parent = build_dataset(pks[:20] + [label.pk for label in made[:3]], valid_fraction=0.25, seed=5)
    child = build_dataset(pks[20:30] + [label.pk for label in made[3:]], valid_fraction=0.25, seed=6, parent=parent)
    slow_rows = provenance.calculations_behind_labels(pks[:40] + [label.pk for label in made])
    fast_rows = query.calculations_behind_labels_sql(pks[:40] + [label.pk for label in made])
    answer = {
        'same_label_ids': [
            query.label_ids_of_dataset_sql(dataset) == provenance.label_ids_of_dataset(dataset)
            for dataset in (parent, child)
        ],
        'same_calculations_of_dataset': query.calculations_behind_dataset_sql(child)
        == provenance.calculations_behind_labels([pk for pk, _ in provenance.label_ids_of_dataset(child)]),
        'same_calculations_of_labels': fast_rows == slow_rows,
        'same_label_pks': [
            query.label_pks_of_dataset(dataset).tolist() == [pk for pk, _ in provenance.label_ids_of_dataset(dataset)]
            for dataset in (parent, child)
        ],
        'same_streamed_calculations': list(query.iter_calculations_behind_dataset(child, batch=7))
        == query.calculations_behind_dataset_sql(child),
        'same_summary': query.summarise_dataset_sql(child)
        == provenance.summarise_calculations(
            provenance.calculations_behind_labels([pk for pk, _ in provenance.label_ids_of_dataset(child)])
        ),
        'same_find_labels': [
            query.find_labels_sql(**filters) == query.find_labels(**filters)
            for filters in (
                {'fingerprint': pbe, 'elements': ['Si', 'Li'], 'project': columns},
                {'elements': ['Si'], 'project': columns},
                {'method': 'PBEsol', 'project': columns},
                {'group': 'check-PBE', 'project': columns},
                {'code': 'vasp', 'project': ['id', 'uuid']},
            )
        ],
        'same_counts': query.label_counts() == query.label_counts_querybuilder(),
        'same_group_counts': query.label_counts(group='check-PBE')
        == query.label_counts_querybuilder(group='check-PBE'),
        'n_labels_of_child': len(query.label_ids_of_dataset_sql(child)),
        # imported labels are made by their file, whose folder differs between runs: keep the file's name
        'summary': [
            {**group, 'made_by': pathlib.Path(group['made_by']).name} for group in query.summarise_dataset_sql(child)
        ],
        'counts': query.label_counts(),
        'calculations': [
            [row['formula'], row['process_label'], row['code'], row['calculation_pk'] is None] for row in fast_rows
        ],
    }
    return answer


def _cell(value, form: str = '.3f') -> str:
    return '-' if value is None else format(value, form)


def markdown(results: list[dict]) -> str:
    """The table of ``results``: times in s (wall, then this process's CPU where given), sizes in kB per label."""
    header = (
        '| backend | labels | import s (CPU s) | ms/label | one-by-one ms/label | kB/label (db + repo) '
        '| Li-Si PBE query s (rows) | PBEsol query s (rows) | dataset build s (CPU s) | frames | dataset kB/frame '
        '| labels behind potential s (rows) | calculations behind potential s | potentials using a label s '
        '| SQL: Li-Si PBE query s (CPU) | SQL: PBEsol query s (CPU) '
        '| SQL: labels behind potential s (CPU) | SQL: calculations behind potential s (CPU) '
        '| SQL: made-by summary s (CPU) | SQL: label counts s (CPU) '
        '| SQL: label pks as array s (CPU) | SQL: first streamed calculation row s (CPU) '
        '| floor: bare SELECT of the link ids s (CPU) '
        '| export s/10^4 frames (CPU) | training input s (CPU, peak MB) | load avg |\n'
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
    )
    lines = []
    for r in sorted(results, key=lambda r: (r['backend'], r['size'])):
        q = r['queries']
        cpu = r.get('cpu_s') or {}
        one_by_one = r.get('one_by_one_s_per_label')
        import_cpu = cpu['import_files'] + cpu['store'] if 'store' in cpu else None
        prepare = r.get('prepare_training')
        behind = q.get('labels_behind_potential_s')
        export_cpu = r.get('export_cpu_s_per_1e4_frames')
        dataset_kb = (
            r['dataset_repository_bytes'] / r['dataset_frames'] / 1000 if 'dataset_repository_bytes' in r else None
        )
        lines.append(
            f'| {r["backend"]} | {r["labels"]} | {r["import_s"]:.1f} ({_cell(import_cpu, ".1f")}) '
            f'| {1000 * r["import_s"] / r["labels"]:.2f} | {_cell(one_by_one and 1000 * one_by_one, ".0f")} '
            f'| {r["bytes_per_label"] / 1000:.1f} ({r["database_bytes"] / r["labels"] / 1000:.1f} + '
            f'{r["repository_bytes"] / r["labels"] / 1000:.1f}) '
            f'| {q["by_fingerprint_and_elements_s"]:.3f} ({q["by_fingerprint_and_elements_rows"]}) '
            f'| {q["by_method_s"]:.3f} ({q["by_method_rows"]}) '
            f'| {_cell(r.get("build_dataset_s"), ".1f")} ({_cell(cpu.get("build_dataset"), ".1f")}) '
            f'| {r.get("dataset_frames", "-")} '
            f'| {_cell(dataset_kb, ".1f")} '
            f'| {_cell(behind)} ({q.get("labels_behind_potential_rows", "-")}) '
            f'| {_cell(q.get("calculations_behind_potential_s"))} | {_cell(q.get("potentials_using_label_s"))} '
            + ''.join(
                f'| {_cell(q.get(f"{name}_s"))} ({_cell(q.get(f"{name}_cpu_s"))}) ' if f'{name}_s' in q else '| - '
                for name in (
                    'by_fingerprint_and_elements_sql',
                    'by_method_sql',
                    'labels_behind_potential_sql',
                    'calculations_behind_potential_sql',
                    'summarise_potential_sql',
                    'label_counts_sql',
                    'label_pks_behind_potential',
                    'first_calculation_row',
                    'bare_link_ids',
                )
            )
            + f'| {_cell(r.get("export_s_per_1e4_frames"), ".1f")} ({_cell(export_cpu, ".1f")}) '
            + (
                f'| {prepare["wall_s"]:.1f} ({prepare["cpu_s"]:.1f}, {prepare["peak_rss_mb"]:.0f}) '
                if prepare
                else '| - '
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
    table = sub.add_parser('table', help='merge result files of runs made in parallel and write the table')
    table.add_argument('inputs', nargs='+', help='JSON result files of `run --json`')
    table.add_argument('--json', required=True, help='the merged results (a row per backend and size, newest wins)')
    table.add_argument('--md', required=True)
    again = sub.add_parser('requery', help='re-time the SQL path on the profiles kept by `run --keep`')
    again.add_argument('--json', required=True, help='the results of `run --keep`; their SQL columns are replaced')
    again.add_argument('--sizes', type=int, nargs='+', default=[100_000])
    again.add_argument('--backends', nargs='+', default=['sqlite', 'psql'], choices=['sqlite', 'psql'])
    again.add_argument('--md', help='write the Markdown table of all results in --json here')
    sub.add_parser('requery-one').add_argument('--json', required=True)
    for name in ('run', 'one', 'check', 'prepare'):
        command = sub.add_parser(name)
        if name == 'prepare':
            command.add_argument('--dataset', required=True, help='UUID of the dataset (in the loaded profile)')
            command.add_argument('--json')
            continue
        command.add_argument('--pg-url', default=os.environ.get('SIANODE_SCALE_PG', DEFAULT_PG))
        command.add_argument('--json')
        if name == 'run':
            command.add_argument('--sizes', type=int, nargs='+', default=[1000, 10_000])
            command.add_argument('--backends', nargs='+', default=['sqlite', 'psql'], choices=['sqlite', 'psql'])
            command.add_argument('--md', help='write the Markdown table of all results in --json here')
            command.add_argument('--one-by-one', type=int, default=200, help='labels stored the old way, to compare')
            command.add_argument(
                '--dataset-labels', type=int, default=-1, help='PBE labels in the dataset: -1 all, 0 no dataset'
            )
            command.add_argument('--model', type=pathlib.Path, default=MODEL, help='model file of the potential')
            command.add_argument('--keep', help='keep each profile in KEEP/<backend>-<size> (for `requery`)')
        else:
            command.add_argument('--backend', required=True, choices=['sqlite', 'psql'])
        if name == 'one':
            command.add_argument('--size', type=int, required=True)
            command.add_argument('--one-by-one', type=int, default=200)
            command.add_argument('--dataset-labels', type=int, default=-1)
            command.add_argument('--model', type=pathlib.Path, default=MODEL)
            command.add_argument('--keep', action='store_true', help='leave the profile and its database in place')
    args = parser.parse_args()
    if args.command == 'table':
        merged = {}
        for path in args.inputs:
            for result in json.loads(pathlib.Path(path).read_text()):
                merged[(result['backend'], result['size'])] = result
        pathlib.Path(args.json).write_text(json.dumps(list(merged.values()), indent=1) + '\n')
        write_table(pathlib.Path(args.md), markdown(list(merged.values())))
        return
    if args.command == 'requery':
        requery(args)
        if args.md:
            write_table(pathlib.Path(args.md), markdown(json.loads(pathlib.Path(args.json).read_text())))
        return
    if args.command == 'requery-one':
        pathlib.Path(args.json).write_text(json.dumps(requery_one(), default=float))
        return
    if args.command == 'run':
        if args.md and not args.json:
            parser.error('--md needs --json (the table is made from every result in it)')
        run(args)
        if args.md:
            table = markdown(json.loads(pathlib.Path(args.json).read_text()))
            write_table(pathlib.Path(args.md), table)
            print(table)
        return
    if args.command == 'one':
        result = one(args.backend, args.size, args.pg_url, args.one_by_one, args.dataset_labels, args.model, args.keep)
    else:
        result = check(args) if args.command == 'check' else prepare(args)
    text = json.dumps(result, default=float)
    if args.json:
        pathlib.Path(args.json).write_text(text)
    else:
        print(text)


if __name__ == '__main__':
    main()
