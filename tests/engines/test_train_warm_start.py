"""A warm start of the training engine begins from the previous model's weights (mace's --foundation_model)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from aiida_sianode.engines import train as engine

#: a model small enough to train an epoch in seconds on one core (as in test_train.py)
TINY = {
    'num_channels': 8,
    'max_L': 0,
    'correlation': 2,
    'num_interactions': 2,
    'r_max': 4.0,
    'batch_size': 4,
    'valid_batch_size': 4,
    'default_dtype': 'float64',
}


def _to_training_frame(atoms):
    frame = atoms.copy()
    frame.calc = None
    frame.info = {'REF_energy': atoms.info['dft_energy']}
    frame.arrays = {'numbers': atoms.arrays['numbers'], 'positions': atoms.arrays['positions']}
    frame.arrays['REF_forces'] = np.array(atoms.arrays['dft_forces'])
    return frame


def _write(directory, training, valid, parameters, init_model=None):
    from ase.io import write

    directory.mkdir()
    write(directory / 'train.extxyz', training, format='extxyz')
    write(directory / 'valid.extxyz', valid, format='extxyz')
    config = {
        'parameters': {**TINY, **parameters},
        'train_file': 'train.extxyz',
        'valid_file': 'valid.extxyz',
    }
    if init_model is not None:
        shutil.copy(init_model, directory / 'init.model')
        config['init_model'] = 'init.model'
    (directory / 'config.json').write_text(json.dumps(config))
    return config


@pytest.fixture(scope='module')
def frames(fixtures_path):
    from ase.io import read

    folder = fixtures_path / 'datasets' / 'mlearn_Si_Li' / 'Si'
    training = [_to_training_frame(atoms) for atoms in read(folder / 'training.extxyz', ':') if len(atoms) <= 40]
    return training[:8], training[8:]


def test_warm_start_begins_from_the_previous_weights(tmp_path, frames):
    training, valid = frames
    cold = engine.run_training(
        _write(tmp_path / 'cold', training, valid, {'max_num_epochs': 1, 'seed': 1}), tmp_path / 'cold'
    )
    assert cold['status'] == 'ok'
    warm_config = _write(
        tmp_path / 'warm',
        training,
        valid,
        {'max_num_epochs': 1, 'seed': 2},
        init_model=tmp_path / 'cold' / 'mace.model',
    )
    warm = engine.run_training(warm_config, tmp_path / 'warm')
    assert warm['status'] == 'ok', warm.get('error')
    assert warm['init_model'] == 'init.model'
    assert '--foundation_model' in warm['mace_arguments']
    # Before its first epoch the warm start scores exactly what the previous model scored at its best epoch, on the
    # same validation frames: it holds the previous weights (a cold start with its seed begins elsewhere).
    assert warm['initial_valid_loss'] == pytest.approx(cold['best_valid_loss'], rel=1e-9)
    assert cold['initial_valid_loss'] != pytest.approx(cold['best_valid_loss'], rel=1e-6)


def test_missing_warm_start_model_is_refused_before_training(tmp_path, frames):
    training, valid = frames
    config = _write(tmp_path / 'run', training, valid, {'max_num_epochs': 1})
    config['init_model'] = 'missing.model'
    metrics = engine.run_training(config, tmp_path / 'run')
    assert metrics['status'] == 'invalid_input'
    assert 'warm-start model `missing.model`' in metrics['error']
