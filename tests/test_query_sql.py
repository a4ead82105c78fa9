"""The SQL path of :mod:`aiida_sianode.query` answers exactly what the QueryBuilder path of
:mod:`aiida_sianode.provenance` answers (SQLite here; PostgreSQL in ``tests/data/test_bulk.py`` through
``benchmarks/scale.py check``)."""

from __future__ import annotations

import importlib.util
import json
import pathlib

import numpy as np
import pytest
from aiida import orm

from aiida_sianode import provenance, query
from aiida_sianode.data.dataset import build_dataset


def _provenance_tests():
    """The campaign fixture and label maker of ``tests/test_provenance.py`` (the tests are not a package)."""
    spec = importlib.util.spec_from_file_location(
        '_provenance_tests', pathlib.Path(__file__).with_name('test_provenance.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_TESTS = _provenance_tests()
campaign, imported_label = _TESTS.campaign, _TESTS.imported_label


def test_sql_path_answers_as_the_querybuilder_path(campaign):
    labels = [label for generation in campaign['labels'] for label in generation]
    for dataset in campaign['generations']:
        assert query.label_ids_of_dataset_sql(dataset) == provenance.label_ids_of_dataset(dataset)
        pks = query.label_pks_of_dataset(dataset)  # the link table alone, as an array, in frame order
        assert pks.dtype == np.int64 and pks.tolist() == [pk for pk, _ in provenance.label_ids_of_dataset(dataset)]
    assert [uuid for _, uuid in query.label_ids_of_dataset_sql(campaign['generations'][2])] == [
        label.uuid for label in labels
    ]
    for potential in campaign['potentials']:
        dataset = provenance.dataset_of_potential(potential)
        assert query.dataset_pk_of_potential(potential) == dataset.pk
        assert query.label_ids_of_dataset_sql(dataset.pk) == provenance.label_ids_of_dataset(dataset)
        slow = provenance.calculations_behind_potential(potential)
        fast = query.calculations_behind_potential_sql(potential)
        assert fast == slow
        assert list(query.iter_calculations_behind_dataset(dataset.pk, batch=3)) == slow  # streamed, 3 rows a batch
        assert query.summarise_potential_sql(potential) == provenance.summarise_calculations(slow)
    rows = query.calculations_behind_potential_sql(campaign['potentials'][1])
    assert len(rows) == 8
    by_label = {row['label_uuid']: row for row in rows}
    for calcjob, label in campaign['direct']:
        assert by_label[label.uuid]['calculation_uuid'] == calcjob.uuid
        assert by_label[label.uuid]['code'] == 'sianode-label@localhost'
    for (calcjob, _), label in zip(campaign['through_function'], campaign['labels'][1]):
        assert by_label[label.uuid]['calculation_pk'] == calcjob.pk  # through the calcfunction to the CalcJob
    summary = {group['made_by']: group for group in query.summarise_potential_sql(campaign['potentials'][1])}
    assert summary['sianode-label@localhost']['n_labels'] == 5
    assert summary['sianode-label@localhost']['n_calculations'] == 5
    assert summary['file si_md.extxyz']['n_labels'] == 3 and summary['file si_md.extxyz']['n_calculations'] == 0
    # a potential stored by hand (no creator): its training_set_uuid attribute names the dataset
    from aiida_sianode.data.potential import PotentialData

    by_hand = PotentialData.from_model_file(
        _TESTS.MODEL['path'], training_set_uuid=campaign['generations'][1].uuid
    ).store()
    assert query.dataset_pk_of_potential(by_hand) == campaign['generations'][1].pk
    assert query.summarise_potential_sql(by_hand) == provenance.summarise_calculations(
        provenance.calculations_behind_potential(by_hand)
    )
    # a subset of labels, given as nodes and pks in any order
    subset = [labels[6], labels[0].pk, labels[3]]
    assert query.calculations_behind_labels_sql(subset) == provenance.calculations_behind_labels(subset)
    assert query.calculations_behind_labels_sql([]) == []

    # label counts per level of theory and element set, by GROUP BY, equal the QueryBuilder rows counted in Python
    counts = query.label_counts()
    assert counts == query.label_counts_querybuilder()
    ours = [row for row in counts if row['code'] == 'gpaw']
    assert sum(row['n_labels'] for row in ours) >= 8 and all(row['elements'] == ['Si'] for row in ours)
    group, _ = orm.Group.collection.get_or_create(label='query-sql-counts')
    group.add_nodes(campaign['imported'])
    assert query.label_counts(group='query-sql-counts') == query.label_counts_querybuilder(group='query-sql-counts')
    assert [row['n_labels'] for row in query.label_counts(group='query-sql-counts')] == [3]
    assert query.label_counts(group='no-such-group') == []

    # find_labels in one SQL statement: the same rows as through QueryBuilder
    gpaw_fingerprint = campaign['imported'][0].fingerprint
    for filters in (
        {'fingerprint': gpaw_fingerprint},
        {'fingerprint': gpaw_fingerprint, 'elements': ['Si']},
        {'method': 'PBE', 'code': 'gpaw', 'elements': ('Si', 'Si')},
        {'elements': ['Li', 'Si']},
        {'group': 'query-sql-counts'},
        {'group': 'query-sql-counts', 'project': ['uuid', 'attributes.source.frame', 'attributes.energy', 'label']},
    ):
        assert query.find_labels_sql(**filters) == query.find_labels(**filters), filters
    assert len(query.find_labels_sql(group='query-sql-counts', project=['id'])) == 3
    assert query.find_labels_sql(elements=['Li', 'Si']) == []
    for bad, message in (
        ({}, 'at least one'),
        ({'elements': []}, 'at least one element'),
        ({'method': 'PBE', 'project': ['nope']}, 'unknown column'),
    ):
        with pytest.raises(ValueError, match=message):
            query.find_labels_sql(**bad)

    # the CLI lists through the SQL path
    potential = campaign['potentials'][1]
    listed = json.loads(_invoke('provenance', 'labels', potential.pk, '--json').stdout)
    assert listed['n_labels'] == 8 and listed['labels'] == provenance.calculations_behind_potential(potential)
    assert listed['by_code'] == provenance.summarise_calculations(listed['labels'])
    summary = json.loads(_invoke('provenance', 'labels', potential.pk, '--summary', '--json').stdout)
    assert 'labels' not in summary and summary['by_code'] == listed['by_code']
    text = _invoke('provenance', 'labels', potential.pk).stdout
    assert '8 labels' in text and 'file si_md.extxyz' in text
    counted = json.loads(_invoke('provenance', 'label-counts', '--group', 'query-sql-counts', '--json').stdout)
    assert [(row['method'], row['elements'], row['n_labels']) for row in counted] == [('PBE', ['Si'], 3)]
    assert 'Si' in _invoke('provenance', 'label-counts').stdout


def _invoke(*args):
    from click.testing import CliRunner

    from aiida_sianode.cli import cmd_root

    result = CliRunner().invoke(cmd_root, [str(arg) for arg in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_hand_made_dataset_falls_back_to_its_label_uuids(aiida_profile):
    labels = [imported_label(500 + index) for index in range(4)]
    built = build_dataset(labels, seed=0)
    copy = orm.load_node(built.pk).clone()  # the same file and attributes, no build calcfunction behind it
    copy.store()
    assert query.label_ids_of_dataset_sql(copy) == provenance.label_ids_of_dataset(copy)
    assert [uuid for _, uuid in query.label_ids_of_dataset_sql(copy)] == [label.uuid for label in labels]
    assert query.label_pks_of_dataset(copy).tolist() == [label.pk for label in labels]
    assert list(query.iter_calculations_behind_dataset(copy)) == query.calculations_behind_dataset_sql(copy)
    assert [row['label_pk'] for row in query.calculations_behind_dataset_sql(copy)] == [label.pk for label in labels]
    assert query.summarise_dataset_sql(copy) == provenance.summarise_calculations(
        provenance.calculations_behind_labels([pk for pk, _ in provenance.label_ids_of_dataset(copy)])
    )


def test_more_labels_than_one_statement_takes(aiida_profile):
    """12,000 pks (10^4 per statement; repeated pks of 3 labels): the rows come back in the order given."""
    labels = [imported_label(700 + index) for index in range(3)]
    wanted = [labels[index % 3].pk for index in range(12_000)]
    rows = query.calculations_behind_labels_sql(wanted)
    assert [row['label_pk'] for row in rows] == wanted
    assert rows[:3] == provenance.calculations_behind_labels(labels)
