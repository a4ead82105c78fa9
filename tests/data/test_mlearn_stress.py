"""The reading of the mlearn virial that `benchmarks/train_mlearn_si.py --with-stress` trains on, checked against the
DFT energies of the strained c-Si frames of the set itself."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest
from ase.io import read, write
from ase.units import GPa

REPO = pathlib.Path(__file__).resolve().parents[2]
TRAINING = REPO / 'fixtures' / 'datasets' / 'mlearn_Si_Li' / 'Si' / 'training.extxyz'


@pytest.fixture(scope='module')
def script():
    """The benchmark script as a module (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location('train_mlearn_si', REPO / 'benchmarks' / 'train_mlearn_si.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mlearn_stress_is_vasp_kilobar_turned_into_the_ase_convention(script):
    """kB, order xx yy zz xy yz zx, positive under compression -> eV/Å^3, order xx yy zz yz xz xy, positive under
    tension."""
    stress = script.mlearn_stress([10.0, 20.0, 30.0, 1.0, 2.0, 3.0]) / GPa
    np.testing.assert_allclose(stress, [-1.0, -2.0, -3.0, -0.2, -0.3, -0.1], rtol=1e-12)


def test_the_virial_reading_agrees_with_the_energy_derivative_of_the_strained_frames(script):
    check = script.check_mlearn_virial(TRAINING)
    # three stretches and three shears of c-Si, 7 interior frames each with more than 1 GPa of stress
    assert check['frames_compared'] == 42
    assert len(check['families_gpa']) == 6
    assert check['max_relative_difference'] < 0.04
    # a 2 % stretch along x: 2.98 GPa from the energies, 2.95 GPa from the virial
    from_energy, from_virial = check['families_gpa']['cell[0,0] -> stress[0]'][4]
    assert from_energy == pytest.approx(2.976, abs=0.01)
    assert from_virial == pytest.approx(2.95, abs=0.01)


@pytest.mark.parametrize(
    ('name', 'tamper'),
    [
        ('sign', lambda raw: -raw),
        ('shear order of ASE', lambda raw: raw[[0, 1, 2, 5, 3, 4]]),
        ('GPa, not kB', lambda raw: raw / 10.0),
    ],
)
def test_a_wrong_reading_of_the_virial_is_refused(script, tmp_path, name, tamper):
    """A file whose virial follows another convention fails the check with a message that says so."""
    frames = [atoms for atoms in read(TRAINING, index=':') if atoms.info['config_type'] == 'Elastic']
    for atoms in frames:
        atoms.info['mlearn_virial_stress_raw'] = tamper(np.asarray(atoms.info['mlearn_virial_stress_raw']))
    path = tmp_path / 'tampered.extxyz'
    write(path, frames, format='extxyz')
    with pytest.raises(ValueError, match='not that convention'):
        script.check_mlearn_virial(path)
