"""``aiida-sianode potential show`` and ``potential plot`` on a tiny random-initialised MACE model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import calcfunction
from ase.build import bulk
from click.testing import CliRunner

from aiida_sianode.cli import cmd_root
from aiida_sianode.data.dataset import build_dataset
from aiida_sianode.data.label import LabelData
from aiida_sianode.data.potential import PotentialData

GPAW = {'code': 'gpaw', 'method': 'PBE', 'basis': 'plane-wave', 'cutoff_ev': 350, 'kpoint_spacing': 0.3}
MODEL = {}


@calcfunction
def train_stand_in(dataset) -> PotentialData:
    """Stands in for the training CalcJob: input ``dataset``, output ``potential``."""
    metrics = {'train': {'rmse_e_per_atom_mev': 1.5, 'rmse_f_mev_a': 60.0}, 'valid': {'rmse_e_per_atom_mev': 2.5}}
    return PotentialData.from_model_file(MODEL['path'], training_set_uuid=dataset.uuid, metrics=metrics, seed=5)


@pytest.fixture
def trained(aiida_profile, label_code, tiny_mace_model):
    """A potential trained (stand-in) on 10 labels: 6 made by a calculation with ``label_code``, 4 imported."""
    MODEL['path'] = tiny_mace_model((14,), seed=5)
    labels = []
    for index in range(10):
        atoms = bulk('Si', 'diamond', a=5.35 + 0.02 * index)
        atoms.rattle(0.05, seed=index)
        rng = np.random.default_rng(index)
        label = LabelData(
            atoms,
            energy=-10.9 + 0.05 * index,
            forces=rng.normal(scale=0.3, size=(2, 3)),
            stress=rng.normal(scale=0.01, size=6),
            level_of_theory=GPAW,
            source={'kind': 'calculation'} if index < 6 else {'kind': 'file', 'filename': 'old.extxyz', 'frame': index},
        )
        if index < 6:
            calcjob = orm.CalcJobNode(computer=label_code.computer, process_type='aiida.calculations:sianode.label')
            calcjob.set_process_state('finished')
            calcjob.set_option('resources', {'num_machines': 1})
            calcjob.base.links.add_incoming(label_code, LinkType.INPUT_CALC, 'code')
            calcjob.store()
            label.base.links.add_incoming(calcjob, LinkType.CREATE, 'label')
        labels.append(label.store())
    dataset = build_dataset(labels, valid_fraction=0.2, test_fraction=0.3, seed=0)
    return train_stand_in(dataset), dataset


def invoke(*args):
    return CliRunner().invoke(cmd_root, [str(arg) for arg in args], catch_exceptions=False)


def test_show_json(trained):
    potential, dataset = trained
    result = invoke('potential', 'show', potential.pk, '--json')
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data['elements'] == ['Si']
    assert data['r_max'] == 4.0
    assert data['num_parameters'] == potential.num_parameters
    assert data['architecture']['hidden_irreps'] == '4x0e+4x1o'
    assert data['metrics']['valid']['rmse_e_per_atom_mev'] == 2.5
    assert data['training_set']['uuid'] == dataset.uuid
    assert data['training_set']['split_counts'] == {'train': 5, 'valid': 2, 'test': 3}
    assert data['n_labels'] == 10
    made_by = {row['made_by']: row for row in data['made_by']}
    assert made_by['sianode-label@localhost']['n_labels'] == 6
    assert made_by['sianode-label@localhost']['n_calculations'] == 6
    assert made_by['file old.extxyz']['n_labels'] == 4
    assert [record['cutoff_ev'] for record in data['training_set']['levels_of_theory'].values()] == [350]

    text = invoke('potential', 'show', potential.pk)
    assert text.exit_code == 0
    assert 'sianode-label@localhost' in text.output and 'r_max        4.0 Å' in text.output


def test_plot_writes_png_with_rmse(trained, tmp_path):
    from PIL import Image

    from aiida_sianode.data.potential import Committee

    potential, dataset = trained
    output = tmp_path / 'parity.png'
    result = invoke('potential', 'plot', potential.pk, '--dataset', dataset.pk, '-o', output, '--json')
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data['split'] == 'test' and data['n_frames'] == 3
    expected = Committee([potential]).evaluate(dataset, split='test')['members'][0]
    assert data['rmse_e_per_atom_mev'] == pytest.approx(expected['rmse_e_per_atom_mev'], rel=1e-9)
    assert data['rmse_f_mev_a'] == pytest.approx(expected['rmse_f_mev_a'], rel=1e-9)
    assert data['rmse_stress_mev_a3'] == pytest.approx(expected['rmse_stress_mev_a3'], rel=1e-9)
    with Image.open(output) as image:
        assert image.format == 'PNG'
        assert image.size[0] > 2 * image.size[1]  # three panels side by side

    result = invoke(
        'potential', 'plot', potential.pk, '--dataset', dataset.pk, '-o', output, '--split', 'all', '--json'
    )
    assert json.loads(result.stdout)['n_frames'] == 10


def test_plot_refuses_bad_input(trained, tmp_path):
    _, dataset = trained
    result = invoke('potential', 'plot', dataset.pk, '--dataset', dataset.pk, '-o', tmp_path / 'x.png', '--json')
    assert result.exit_code == 1
    assert 'not a potential' in json.loads(result.stdout)['error']
    assert not (tmp_path / 'x.png').exists()
