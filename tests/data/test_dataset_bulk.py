"""The bulk path of ``build_dataset``: the same node, links, hash and dataset as the calcfunction, no node loads."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import workfunction

from aiida_sianode.data.dataset import build_dataset
from aiida_sianode.data.label import LabelData
from aiida_sianode.provenance import label_ids_of_dataset

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from test_dataset import isolated_atom, make_label


def _incoming(node) -> list[tuple[str, str, str]]:
    return sorted(
        (link.link_type.value, link.link_label, link.node.uuid) for link in node.base.links.get_incoming().all()
    )


def test_bulk_build_equals_calcfunction_build(aiida_profile):
    labels = [isolated_atom('Si', -0.85), *[make_label(300 + i) for i in range(7)]]
    slow = build_dataset(labels, valid_fraction=0.3, test_fraction=0.15, seed=5, bulk=False)
    fast = build_dataset([label.pk for label in labels], valid_fraction=0.3, test_fraction=0.15, seed=5, bulk=True)
    assert fast.get_content('rb') == slow.get_content('rb')
    assert fast.base.attributes.all == slow.base.attributes.all
    assert fast.split_counts == {'train': 5, 'valid': 2, 'test': 1}
    slow_node, fast_node = slow.creator, fast.creator
    assert isinstance(fast_node, orm.CalcFunctionNode) and fast_node.is_sealed and fast_node.is_finished_ok
    assert (fast_node.process_type, fast_node.label) == (slow_node.process_type, slow_node.label)
    assert fast_node.base.attributes.all == slow_node.base.attributes.all
    assert fast_node.base.repository.metadata == slow_node.base.repository.metadata  # the same source file
    # the hash written from the inputs' stored hashes is the one AiiDA computes, and the calcfunction's
    assert fast_node.base.caching.get_hash() == slow_node.base.caching.get_hash()
    assert fast_node.base.caching.compute_hash() == fast_node.base.caching.get_hash()
    slow_links, fast_links = _incoming(slow_node), _incoming(fast_node)
    assert len(fast_links) == 9 and [link for link in fast_links if link[1] != 'settings'] == [
        link for link in slow_links if link[1] != 'settings'
    ]
    assert [(link.link_type, link.link_label) for link in fast_node.base.links.get_outgoing().all()] == [
        (LinkType.CREATE, 'result')
    ]
    assert label_ids_of_dataset(fast) == label_ids_of_dataset(slow) == [(label.pk, label.uuid) for label in labels]

    # growth: the child's `parent` link and hash agree too
    new = [make_label(320 + i) for i in range(3)]
    slow_child = build_dataset(new, valid_fraction=0.3, seed=6, parent=slow, bulk=False)
    fast_child = build_dataset(new, valid_fraction=0.3, seed=6, parent=fast, bulk=True)
    assert fast_child.get_content('rb') == slow_child.get_content('rb')
    assert fast_child.creator.base.caching.compute_hash() == fast_child.creator.base.caching.get_hash()
    assert ('input_calc', 'parent', fast.uuid) in _incoming(fast_child.creator)
    assert [pk for pk, _ in label_ids_of_dataset(fast_child)] == [label.pk for label in [*labels, *new]]


def test_bulk_build_from_pks_loads_no_label(aiida_profile, monkeypatch):
    pks = [make_label(400 + i).pk for i in range(5)]
    from aiida.orm import convert

    loaded = []
    original = convert.from_backend_entity

    def counting(cls, backend_entity):  # every node a query or load_node returns is made here
        if issubclass(cls, LabelData):
            loaded.append(backend_entity.pk)
        return original(cls, backend_entity)

    monkeypatch.setattr(convert, 'from_backend_entity', counting)
    assert orm.load_node(pks[0]).pk == loaded.pop() == pks[0]  # the counter sees a load
    dataset = build_dataset(pks, valid_fraction=0.2, bulk=True)
    assert loaded == []
    assert dataset.n_frames == 5 and dataset.split_counts == {'train': 4, 'valid': 1, 'test': 0}
    energies = [frame.get_potential_energy() for frame in dataset.get_frames()]
    assert energies == pytest.approx([-10.8 + 0.01 * (400 + i) for i in range(5)], abs=1e-10)


def test_bulk_build_in_a_workflow_is_called_by_it(aiida_profile):
    pks = [make_label(500 + i).pk for i in range(3)]

    @workfunction
    def grow(count: orm.Int):
        return build_dataset(pks[: count.value], valid_fraction=0.0, bulk=True)

    dataset = grow(orm.Int(3))
    build = dataset.creator
    assert build.caller is not None and build.caller.process_label.endswith('grow')
    assert [link.link_label for link in build.base.links.get_incoming(link_type=LinkType.CALL_CALC).all()] == ['CALL']
    assert dataset.n_frames == 3


def test_bulk_threshold_and_bad_input(aiida_profile):
    from aiida_sianode.data import dataset as module

    labels = [make_label(600 + i) for i in range(2)]
    assert module.BULK_MIN_LABELS == 100
    with pytest.raises(ValueError, match=r'not stored LabelData nodes, e\.g\. PK'):
        build_dataset([labels[0].pk, orm.Int(1).store().pk])
    with pytest.raises(TypeError, match='LabelData nodes or their PKs, got bool'):
        build_dataset([True])
    with pytest.raises(ValueError, match='is given twice'):
        build_dataset([labels[0], labels[0].pk])
    dataset = build_dataset(np.array([label.pk for label in labels]))  # small: the calcfunction runs
    assert dataset.creator.process_label == 'build_dataset_calcfunction' and dataset.n_frames == 2
