"""Provenance queries: labels behind a potential, the calculations behind labels, potentials using a label."""

from __future__ import annotations

import time

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import calcfunction
from ase.build import bulk

from aiida_sianode import provenance
from aiida_sianode.data.dataset import build_dataset
from aiida_sianode.data.label import LabelData
from aiida_sianode.data.potential import PotentialData
from aiida_sianode.engines.committee import save_untrained_mace

GPAW = {'code': 'gpaw', 'method': 'PBE', 'basis': 'plane-wave', 'cutoff_ev': 300, 'kpoint_spacing': 0.3}
MODEL = {}


def tiny_mace(path, seed: int):
    """Save a tiny untrained MACE model for Si (provenance only needs a real file)."""
    return save_untrained_mace(
        path,
        [14],
        seed=seed,
        num_channels=4,
        max_L=0,
        r_max=4.0,
        num_interactions=1,
        correlation=1,
        max_ell=1,
        atomic_energies=[-4.5],
    )


@calcfunction
def train_stand_in(dataset, seed: orm.Int) -> PotentialData:
    """Stands in for the training CalcJob: input ``dataset``, output ``potential``."""
    return PotentialData.from_model_file(MODEL['path'], training_set_uuid=dataset.uuid, seed=seed.value)


@calcfunction
def label_from_outputs(arrays: orm.ArrayData) -> LabelData:
    """A calcfunction that turns a calculation's raw outputs into a label (as a vasp/castep work chain would)."""
    atoms = bulk('Si', 'diamond', a=5.43)
    return LabelData(
        atoms,
        energy=float(arrays.get_array('energy')[0]),
        forces=arrays.get_array('forces'),
        level_of_theory=GPAW,
        source={'kind': 'calculation'},
    )


def dft_calcjob(code, index: int, with_label: bool):
    """Store a finished CalcJobNode run with ``code``; it creates a label itself or only raw arrays."""
    node = orm.CalcJobNode(computer=code.computer, process_type='aiida.calculations:sianode.label')
    node.set_process_state('finished')
    node.set_exit_status(0)
    node.set_option('resources', {'num_machines': 1})
    node.base.links.add_incoming(code, LinkType.INPUT_CALC, 'code')
    node.store()
    atoms = bulk('Si', 'diamond', a=5.43 + 0.01 * index)
    if with_label:
        output = LabelData(
            atoms,
            energy=-10.0 - index,
            forces=np.zeros((2, 3)),
            level_of_theory=GPAW,
            source={'kind': 'calculation'},
        )
        output.base.links.add_incoming(node, LinkType.CREATE, 'label')
        return node, output.store()
    arrays = orm.ArrayData()
    arrays.set_array('energy', np.array([-20.0 - index]))
    arrays.set_array('forces', np.full((2, 3), 0.01 * index))
    arrays.base.links.add_incoming(node, LinkType.CREATE, 'output_arrays')
    arrays.store()
    node.seal()
    return node, label_from_outputs(arrays)


def imported_label(index: int):
    """A label imported from a file: no calculation behind it in AiiDA."""
    atoms = bulk('Si', 'diamond', a=5.5 + 0.01 * index)
    return LabelData(
        atoms,
        energy=-9.0 - index,
        forces=np.zeros((2, 3)),
        level_of_theory=GPAW,
        source={'kind': 'file', 'filename': 'si_md.extxyz', 'sha256': 'ef56', 'frame': index},
    ).store()


@pytest.fixture
def campaign(aiida_profile, label_code, tmp_path):
    """Three dataset generations and two potentials: one on the first generation, one on the third."""
    MODEL['path'] = tiny_mace(tmp_path / 'si.model', 0)
    direct = [dft_calcjob(label_code, i, with_label=True) for i in range(3)]
    through_function = [dft_calcjob(label_code, 10 + i, with_label=False) for i in range(2)]
    imported = [imported_label(i) for i in range(3)]
    first = [label for _, label in direct] + imported[:1]
    second = [label for _, label in through_function]
    third = imported[1:]
    generation_1 = build_dataset(first, seed=1)
    generation_2 = build_dataset(second, seed=2, parent=generation_1)
    generation_3 = build_dataset(third, seed=3, parent=generation_2)
    potential_1 = train_stand_in(generation_1, orm.Int(1))
    potential_3 = train_stand_in(generation_3, orm.Int(3))
    return {
        'direct': direct,
        'through_function': through_function,
        'imported': imported,
        'generations': [generation_1, generation_2, generation_3],
        'labels': [first, second, third],
        'potentials': [potential_1, potential_3],
    }


def test_labels_behind_potential_are_exactly_the_training_labels(campaign):
    potential_1, potential_3 = campaign['potentials']
    first, second, third = campaign['labels']
    labels = provenance.labels_behind_potential(potential_3)
    assert [label.uuid for label in labels] == [label.uuid for label in first + second + third]
    assert [label.uuid for label in provenance.labels_behind_potential(potential_1)] == [label.uuid for label in first]
    assert provenance.dataset_of_potential(potential_3).uuid == campaign['generations'][2].uuid
    chain = provenance.dataset_generations(campaign['generations'][2])
    assert [dataset.uuid for dataset in chain] == [dataset.uuid for dataset in reversed(campaign['generations'])]


def test_calculations_behind_labels(campaign):
    rows = {row['label_uuid']: row for row in provenance.calculations_behind_labels(campaign['labels'][0])}
    for calcjob, label in campaign['direct']:
        assert rows[label.uuid]['calculation_uuid'] == calcjob.uuid
        assert rows[label.uuid]['code'] == 'sianode-label@localhost'
        assert rows[label.uuid]['level_of_theory']['cutoff_ev'] == 300
    imported = campaign['imported'][0]
    assert rows[imported.uuid]['calculation_uuid'] is None
    assert rows[imported.uuid]['source']['filename'] == 'si_md.extxyz'

    # a label made by a calcfunction from a calculation's outputs leads back to that calculation
    rows = provenance.calculations_behind_labels(campaign['labels'][1])
    assert [row['calculation_uuid'] for row in rows] == [calcjob.uuid for calcjob, _ in campaign['through_function']]
    assert {row['code'] for row in rows} == {'sianode-label@localhost'}

    summary = provenance.summarise_calculations(
        provenance.calculations_behind_labels(provenance.labels_behind_potential(campaign['potentials'][1]))
    )
    by_source = {group['made_by']: group for group in summary}
    assert by_source['sianode-label@localhost']['n_labels'] == 5
    assert by_source['sianode-label@localhost']['n_calculations'] == 5
    assert by_source['file si_md.extxyz']['n_labels'] == 3


def test_dataset_frames_name_the_labelling_calculation(campaign):
    frames = campaign['generations'][2].get_frames()
    by_label = {atoms.info['label_uuid']: atoms.info['source_uuid'] for atoms in frames}
    for calcjob, label in campaign['direct']:
        assert by_label[label.uuid] == calcjob.uuid
    for (calcjob, _), label in zip(campaign['through_function'], campaign['labels'][1]):
        assert by_label[label.uuid] == calcjob.uuid
    assert by_label[campaign['imported'][0].uuid] == ''


def test_potentials_using_label(campaign):
    potential_1, potential_3 = campaign['potentials']
    early = campaign['labels'][0][0]
    late = campaign['labels'][2][0]
    assert [p.uuid for p in provenance.potentials_using_label(early)] == [potential_1.uuid, potential_3.uuid]
    assert [p.uuid for p in provenance.potentials_using_label(late)] == [potential_3.uuid]
    unused = imported_label(99)
    assert provenance.potentials_using_label(unused) == []


@pytest.mark.slow
def test_labels_behind_potential_scales(aiida_profile, tmp_path):
    """300 labels in two generations: the query is a few calls, not one per label."""
    from sqlalchemy import event

    MODEL['path'] = tiny_mace(tmp_path / 'si.model', 1)
    labels = [imported_label(1000 + i) for i in range(300)]
    parent = build_dataset(labels[:200], seed=0)
    child = build_dataset(labels[200:], seed=0, parent=parent)
    potential = train_stand_in(child, orm.Int(0))

    from aiida.manage import get_manager

    bind = get_manager().get_profile_storage().get_session().get_bind()
    statements = []

    def count(_connection, _cursor, statement, *_):
        if statement.lstrip().upper().startswith('SELECT'):
            statements.append(statement)

    event.listen(bind, 'before_cursor_execute', count)
    try:
        start = time.perf_counter()
        found = provenance.labels_behind_potential(potential)
        elapsed = time.perf_counter() - start
        rows = provenance.calculations_behind_potential(potential)
    finally:
        event.remove(bind, 'before_cursor_execute', count)
    assert len(statements) < 25, len(statements)  # a constant number of SELECTs, not one per label
    assert elapsed < 30.0
    assert [label.pk for label in found] == [label.pk for label in labels]
    assert [row['label_uuid'] for row in rows] == [label.uuid for label in labels]
    assert {row['source']['filename'] for row in rows} == {'si_md.extxyz'}
