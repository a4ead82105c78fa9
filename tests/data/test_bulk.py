"""The bulk path for labels stores what ``LabelData.store()`` stores, and a query answers the same on both backends."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_sianode.data.bulk import LabelRecord, store_labels
from aiida_sianode.data.importers import import_files
from aiida_sianode.data.label import LabelData
from aiida_sianode.query import find_labels

REPO = pathlib.Path(__file__).resolve().parents[2]
PBE = {'code': 'vasp', 'method': 'PBE', 'cutoff_ev': 520.0}


def _frames():
    """Three labelled cells: Si8 with stress, Li2Si6 with stress, Si8 without stress (a different level of theory)."""
    rng = np.random.default_rng(7)
    frames = []
    for index in range(3):
        atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
        if index == 1:
            atoms.numbers[:2] = 3
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        results = {'energy': -43.1 + index, 'forces': rng.normal(0.0, 0.5, (8, 3))}
        if index < 2:
            results['stress'] = rng.normal(0.0, 0.01, 6)
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    return frames


def _kwargs(index):
    record = PBE if index < 2 else {**PBE, 'method': 'PBEsol'}
    source = {'kind': 'file', 'filename': 'frames.extxyz', 'sha256': 'ab' * 32, 'frame': index, 'format': 'extxyz'}
    return {'level_of_theory': record, 'source': source, 'config_type': 'bulk-test'}


def _stored_state(pk):
    node = orm.load_node(pk)
    arrays = {name: node.get_array(name) for name in node.get_arraynames()}
    keys = {name: entry['k'] for name, entry in node.base.repository.metadata['o'].items()}
    return node, arrays, keys


def test_bulk_stores_what_store_stores(aiida_profile_clean):
    frames = _frames()
    one_by_one = [LabelData(atoms, **_kwargs(index)).store() for index, atoms in enumerate(frames)]
    nodes = [LabelData(atoms, **_kwargs(index)) for index, atoms in enumerate(frames[:2])]
    record = LabelRecord(frames[2], **_kwargs(2))
    group = orm.Group(label='bulk-test').store()
    pks = store_labels([*nodes, record], group=group, batch_size=2)

    assert len(pks) == 3 and record.pk == pks[2] and record.is_stored
    assert sorted(node.pk for node in group.nodes) == sorted(pks)
    for reference, pk in zip(one_by_one, pks):
        node, arrays, keys = _stored_state(pk)
        _, reference_arrays, reference_keys = _stored_state(reference.pk)
        assert type(node) is LabelData and node.uuid != reference.uuid
        assert node.base.attributes.all == reference.base.attributes.all
        assert node.energy == reference.energy and node.fingerprint == reference.fingerprint
        assert node.source == reference.source and node.source['sha256'] == 'ab' * 32
        assert node.level_of_theory == reference.level_of_theory
        # the same arrays are the same objects of the content-addressed store
        assert keys == reference_keys
        for name, array in reference_arrays.items():
            np.testing.assert_array_equal(arrays[name], array)
        if reference.stress is None:
            assert node.stress is None
        else:
            np.testing.assert_allclose(node.stress, reference.stress)
        # the caching hash is the one store() computes, and the one AiiDA recomputes from the stored node
        assert node.base.caching.get_hash() == reference.base.caching.get_hash() == node.base.caching.compute_hash()
        # neither path links a label imported from a file to anything
        assert node.base.links.get_incoming().all() == [] and reference.base.links.get_incoming().all() == []
    np.testing.assert_allclose(orm.load_node(pks[0]).forces, frames[0].get_forces())
    assert orm.load_node(pks[1]).elements == ['Li', 'Si']


def test_bulk_refuses_before_storing_and_rolls_back(aiida_profile_clean, monkeypatch):
    frames = _frames()
    stored = LabelData(frames[0], **_kwargs(0)).store()
    with pytest.raises(ValueError, match='already stored'):
        store_labels([LabelRecord(frames[1], **_kwargs(1)), stored])
    with pytest.raises(TypeError, match='LabelData or LabelRecord'):
        store_labels([frames[1]])
    with pytest.raises(ValueError, match='a label needs a finite energy'):
        LabelRecord(frames[1], energy=float('nan'), **_kwargs(1))
    assert orm.QueryBuilder().append(LabelData).count() == 1

    # the second batch fails: the first one is deleted again, so nothing is stored
    from aiida.manage import get_manager

    storage = get_manager().get_profile_storage()
    original = type(storage).bulk_insert
    calls = []

    def failing(self, entity_type, rows, allow_defaults=False):
        calls.append(len(rows))
        if len(calls) == 2:
            raise RuntimeError('disk full')
        return original(self, entity_type, rows, allow_defaults)

    monkeypatch.setattr(type(storage), 'bulk_insert', failing)
    records = [LabelRecord(atoms, **_kwargs(index)) for index, atoms in enumerate(frames)]
    with pytest.raises(RuntimeError, match='disk full'):
        store_labels(records, batch_size=2)
    assert calls == [2, 1]
    assert orm.QueryBuilder().append(LabelData).count() == 1
    assert all(record.pk is None for record in records)


def test_import_bulk_equals_import_one_by_one(aiida_profile_clean, fixtures_path):
    """The mlearn Si training set (real VASP labels) through import_files(records=True) and the old store()."""
    path = fixtures_path / 'datasets' / 'mlearn_Si_Li' / 'Si' / 'training.extxyz'
    options = {'energy_key': 'dft_energy', 'forces_key': 'dft_forces', 'level_of_theory': 'VASP PBE (mlearn)'}
    bulk_report = import_files(path, records=True, **options)
    nodes_report = import_files(path, **options)
    assert bulk_report.n_imported == nodes_report.n_imported > 100
    assert bulk_report.n_refused == nodes_report.n_refused
    group = bulk_report.store('bulk-import', batch_size=50)
    compared = 40  # store() takes 0.1-1 s per label on a shared machine: compare the stored objects of the first 40
    for label in nodes_report.labels[:compared]:
        label.store()
    assert group.count() == bulk_report.n_imported
    assert all(isinstance(label, LabelRecord) and label.is_stored for label in bulk_report.labels)
    columns = ['id', 'attributes', 'repository_metadata']
    query = orm.QueryBuilder().append(
        LabelData, filters={'id': {'in': [r.pk for r in bulk_report.labels]}}, project=columns
    )
    stored = {pk: (attributes, metadata) for pk, attributes, metadata in query.iterall()}
    for index, (record, reference) in enumerate(zip(bulk_report.labels, nodes_report.labels)):
        attributes, metadata = stored[record.pk]
        assert attributes['source'] == reference.source and attributes['source']['frame'] == index
        assert attributes['source']['sha256'] == bulk_report.files[0].sha256
        # SQLite's JSON keeps 15 significant digits, on either path: unstored values are compared to that precision
        assert attributes['energy'] == pytest.approx(reference.energy, rel=1e-14)
        assert attributes['max_force'] == pytest.approx(reference.max_force, rel=1e-14)
        if index < compared:
            assert attributes == orm.load_node(reference.pk).base.attributes.all
            assert metadata == reference.base.repository.metadata
    fingerprint = nodes_report.labels[0].fingerprint
    answer = find_labels(fingerprint=fingerprint, elements=['Si'], group='bulk-import', project=['id'])
    assert [row[0] for row in answer] == [record.pk for record in bulk_report.labels]
    assert find_labels(fingerprint=fingerprint, elements=['Li', 'Si']) == []


def test_import_store_gives_stored_nodes(aiida_profile_clean, fixtures_path):
    report = import_files(fixtures_path / 'vasp' / 'aiida-vasp' / 'Si_relax')
    group = report.store('bulk-vasp')
    assert report.n_imported > 0 and group.count() == report.n_imported
    assert all(isinstance(label, LabelData) and label.is_stored for label in report.labels)
    assert report.as_dict()['files'][0]['label_pks'] == [label.pk for label in report.files[0].labels]


def test_duplicates_found_across_a_cell_boundary_and_a_lattice_shift(aiida_profile):
    import ase.io

    frames = _frames()[:1]
    shifted = frames[0].copy()
    shifted.positions += frames[0].cell[0] + 3e-5  # a lattice vector and a step under the tolerance
    shifted.calc = SinglePointCalculator(shifted, energy=-43.0, forces=np.zeros((8, 3)))
    moved = frames[0].copy()
    moved.positions[0] += 0.01  # a different structure
    moved.calc = SinglePointCalculator(moved, energy=-43.0, forces=np.zeros((8, 3)))
    edge = frames[0].copy()
    edge.positions -= edge.positions[0]  # first atom on the cell corner: its bucket is at the grid's edge
    edge.calc = SinglePointCalculator(edge, energy=-43.0, forces=np.zeros((8, 3)))
    edge_twin = edge.copy()
    edge_twin.positions -= 2e-5  # wraps to the other side of the cell
    edge_twin.calc = SinglePointCalculator(edge_twin, energy=-43.0, forces=np.zeros((8, 3)))
    path = pathlib.Path(os.environ.get('TMPDIR', '/tmp')) / f'sianode-dup-{os.getpid()}.extxyz'
    ase.io.write(path, [frames[0], shifted, moved, edge, edge_twin], format='extxyz')
    try:
        report = import_files(path, level_of_theory=PBE, records=True)
    finally:
        path.unlink()
    refused = {refusal.frame: refusal.detail.get('repeats') for refusal in report.files[0].refused}
    assert refused == {1: 0, 4: 3}
    assert report.n_imported == 3


def _check(backend: str, tmp_path: pathlib.Path) -> dict:
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path / backend), 'OMP_NUM_THREADS': '1'}
    out = tmp_path / f'{backend}.json'
    command = [sys.executable, str(REPO / 'benchmarks' / 'scale.py'), 'check', '--backend', backend]
    result = subprocess.run([*command, '--json', str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def _postgres_reason() -> str | None:
    """Why the PostgreSQL half cannot run (``None``: it can)."""
    sys.path.insert(0, str(REPO / 'benchmarks'))
    try:
        import scale

        url = os.environ.get('SIANODE_SCALE_PG', scale.DEFAULT_PG)
        with scale.pg_connect(url):
            return None
    except Exception as exception:
        return (
            f'no PostgreSQL server reachable for the role in SIANODE_SCALE_PG (default {scale.DEFAULT_PG}): '
            f'{type(exception).__name__}: {str(exception).strip()[:200]}'
        )
    finally:
        sys.path.remove(str(REPO / 'benchmarks'))


def test_queries_answer_the_same_on_sqlite_and_postgresql(tmp_path):
    sqlite = _check('sqlite', tmp_path)
    assert len(sqlite['li_si_pbe']) == 20 and all(row[0] == 'Li8Si56' for row in sqlite['li_si_pbe'])
    assert len(sqlite['si_only']) == 180 and len(sqlite['pbesol']) == 40 and len(sqlite['group_pbe']) == 160
    # datasets of the same labels by the calcfunction and by the bulk path (scale.compare_dataset_paths)
    datasets = sqlite['datasets']
    for generation, frames, splits, links in ((0, 12, [9, 3, 0], 13), (1, 18, [14, 4, 0], 8)):
        answer = datasets[f'generation_{generation}']
        assert answer['frames'] == frames and list(answer['split_counts'].values()) == splits
        assert answer['n_input_links'] == links and answer['labels_of_dataset'] == frames
        assert all(answer[key] for key in answer if key.startswith(('same_', 'hash_'))), answer
        assert answer['sealed_finished_ok'] == [True, True]
    assert datasets['datasets_using_first_label'] == [[False, True], [True, False]]
    assert datasets['datasets_using_child_label'] == [[False, True], [True, False]]
    # the SQL path (aiida_sianode.query) answers as the QueryBuilder path (scale.compare_sql_path)
    sql = sqlite['sql_path']
    assert all(
        value is True or (isinstance(value, list) and set(value) == {True})
        for key, value in sql.items()
        if key.startswith('same_')
    ), sql
    assert sql['n_labels_of_child'] == 36
    summary = {group['made_by']: (group['n_labels'], group['n_calculations']) for group in sql['summary']}
    assert summary == {'PBE_000.extxyz': (30, 0), 'sianode-label@scale-host': (6, 6)}
    counts = {(row['code'], row['method'], *row['elements']): row['n_labels'] for row in sql['counts']}
    assert counts == {
        ('vasp', 'PBE', 'Si'): 140 + 6,
        ('vasp', 'PBE', 'Li', 'Si'): 20,
        ('vasp', 'PBEsol', 'Si'): 40,
    }
    reason = _postgres_reason()
    if reason is not None:
        pytest.skip(reason)
    assert _check('psql', tmp_path) == sqlite
