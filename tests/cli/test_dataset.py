"""``aiida-sianode dataset show`` and ``dataset export`` (in-process, on the test profile)."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from click.testing import CliRunner

from aiida_sianode.cli import cmd_root
from aiida_sianode.data.dataset import build_dataset
from aiida_sianode.data.label import LabelData

XTB = {'code': 'xtb', 'method': 'GFN1-xTB', 'basis': 'tight-binding'}


@pytest.fixture
def dataset(aiida_profile):
    """Two generations: 8 labels from an extxyz file, then 4 more."""
    labels = []
    for index in range(12):
        atoms = bulk('Si', 'diamond', a=5.40 + 0.01 * index)
        labels.append(
            LabelData(
                atoms,
                energy=-9.5 - 0.1 * index,
                forces=np.full((2, 3), 0.01 * index),
                stress=np.full(6, 0.001 * index),
                level_of_theory=XTB,
                source={'kind': 'file', 'filename': 'si.extxyz', 'sha256': '99aa', 'frame': index},
                config_type='crystal',
            ).store()
        )
    parent = build_dataset(labels[:8], valid_fraction=0.25, seed=4)
    return build_dataset(labels[8:], valid_fraction=0.25, seed=5, parent=parent), labels


def invoke(*args):
    result = CliRunner().invoke(cmd_root, [str(arg) for arg in args], catch_exceptions=False)
    return result


def test_show_json(dataset):
    node, _ = dataset
    result = invoke('dataset', 'show', node.pk, '--json')
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data['n_frames'] == 12
    assert data['n_labels'] == 12
    assert data['n_new'] == 4
    assert data['generations'] == 2
    assert data['split_counts'] == {'train': 9, 'valid': 3, 'test': 0}
    assert data['elements'] == ['Si']
    assert data['mixed'] is False
    assert data['sources'] == {'file:si.extxyz': 12}
    assert [record['method'] for record in data['levels_of_theory'].values()] == ['GFN1-xTB']

    text = invoke('dataset', 'show', node.uuid)
    assert text.exit_code == 0
    assert 'train 9, valid 3, test 0' in text.output
    assert 'xtb, GFN1-xTB' in text.output


def test_export_with_split(dataset, tmp_path):
    node, labels = dataset
    path = tmp_path / 'valid.extxyz'
    result = invoke('dataset', 'export', node.pk, '-o', path, '--split', 'valid', '--json')
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)['n_frames'] == 3
    frames = ase.io.read(path, index=':')
    assert len(frames) == 3 and {atoms.info['split'] for atoms in frames} == {'valid'}
    by_uuid = {label.uuid: label for label in labels}
    for atoms in frames:
        label = by_uuid[atoms.info['label_uuid']]
        assert atoms.get_potential_energy() == pytest.approx(label.energy, abs=1e-10)
        assert atoms.info['source_frame'] == label.source['frame']


def test_errors_are_reported(dataset, aiida_profile):
    _, labels = dataset
    result = invoke('dataset', 'show', labels[0].pk, '--json')
    assert result.exit_code == 1
    assert 'not a dataset' in json.loads(result.stdout)['error']
    result = invoke('dataset', 'show', 999999, '--json')
    assert result.exit_code == 1
    assert 'no dataset' in json.loads(result.stdout)['error']
