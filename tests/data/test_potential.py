"""Tests for ``PotentialData`` and ``Committee`` on tiny random-initialised MACE models (no training, no download)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from aiida_sianode.data.potential import Committee, PotentialData, error_metrics
from aiida_sianode.engines.committee import save_untrained_mace

ELEMENTS = (3, 14)


def tiny_mace(path, seed: int, r_max: float = 4.0):
    """Save a tiny untrained ScaleShiftMACE (Li, Si; 8 channels, L=1) as ``mace_run_train`` would."""
    return save_untrained_mace(
        path,
        ELEMENTS,
        seed=seed,
        num_channels=8,
        max_L=1,
        r_max=r_max,
        num_interactions=2,
        correlation=2,
        max_ell=2,
        num_radial_basis=4,
        avg_num_neighbors=8.0,
        atomic_energies=[-1.9, -4.5],
    )


@pytest.fixture(scope='module')
def model_files(tmp_path_factory):
    """Three members from different seeds, a copy of the first, and one with a different cutoff."""
    import shutil

    directory = tmp_path_factory.mktemp('models')
    files = {seed: tiny_mace(directory / f'seed{seed}.model', seed) for seed in (1, 2, 3)}
    files['copy'] = shutil.copy(files[1], directory / 'copy.model')
    files['r5'] = tiny_mace(directory / 'r5.model', 4, r_max=5.0)
    return files


@pytest.fixture(scope='module')
def frames():
    """A rattled Si cell, a LiSi cell and a Li2 molecule (no cell)."""
    silicon = bulk('Si', 'diamond', a=5.43)
    silicon.rattle(0.08, seed=1)
    lisi = bulk('Si', 'diamond', a=5.6)
    lisi.set_chemical_symbols(['Li', 'Si'])
    lisi.rattle(0.05, seed=2)
    molecule = Atoms('Li2', positions=[[0, 0, 0], [0, 0, 2.6]], pbc=False)
    return [silicon, lisi, molecule]


def single(path):
    """A plain mace calculator on one model file, independent of our code."""
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=[str(path)], device='cpu', default_dtype='float64')


def test_from_model_file_records_what_the_model_is(aiida_profile, model_files):
    path = model_files[1]
    metrics = {'valid': {'rmse_e_per_atom_mev': 2.5, 'rmse_f_mev_a': 70.0}}
    node = PotentialData.from_model_file(path, training_set_uuid='abc', metrics=metrics, seed=1).store()
    assert node.r_max == 4.0
    assert node.elements == ['Li', 'Si']
    assert node.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    with node.open(mode='rb') as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == node.sha256
    assert node.dtype == 'float64'
    assert node.seed == 1
    assert node.training_set_uuid == 'abc'
    assert node.metrics == metrics
    architecture = node.architecture
    assert architecture['class'] == 'ScaleShiftMACE'
    assert architecture['num_interactions'] == 2
    assert architecture['hidden_irreps'] == '8x0e+8x1o'
    assert architecture['max_L'] == 1
    assert architecture['num_channels'] == 8
    assert architecture['correlation'] == 2
    assert node.base.attributes.get('atomic_energies') == {'Li': -1.9, 'Si': -4.5}
    model = node.get_model()
    assert node.num_parameters == sum(p.numel() for p in model.parameters()) > 1000


def test_calculator_from_node_reproduces_the_file_exactly(aiida_profile, model_files, frames):
    node = PotentialData.from_model_file(model_files[2], seed=2).store()
    loaded = PotentialData.collection.get(pk=node.pk)
    ours, theirs = loaded.get_calculator(), single(model_files[2])
    for atoms in frames:
        a, b = atoms.copy(), atoms.copy()
        a.calc, b.calc = ours, theirs
        assert a.get_potential_energy() == b.get_potential_energy()
        assert np.array_equal(a.get_forces(), b.get_forces())
        if atoms.pbc.all():
            assert np.array_equal(a.get_stress(), b.get_stress())


def test_committee_mean_and_spread_against_members(aiida_profile, model_files, frames):
    members = [PotentialData.from_model_file(model_files[seed], seed=seed).store() for seed in (1, 2, 3)]
    committee = Committee(members)
    calculators = [single(model_files[seed]) for seed in (1, 2, 3)]
    for atoms in frames:
        prediction = committee.predict(atoms)
        energies, forces, stresses = [], [], []
        for calculator in calculators:
            copy = atoms.copy()
            copy.calc = calculator
            energies.append(copy.get_potential_energy())
            forces.append(copy.get_forces())
            if atoms.pbc.all():
                stresses.append(copy.get_stress())
        energies, forces = np.array(energies), np.array(forces)
        natoms = len(atoms)
        np.testing.assert_allclose(prediction['energies'], energies, rtol=0, atol=1e-10)
        assert prediction['energy'] == pytest.approx(energies.mean(), abs=1e-10)
        assert prediction['energy_std'] == pytest.approx(np.sqrt(((energies - energies.mean()) ** 2).mean()), abs=1e-12)
        assert prediction['energy_std_per_atom'] == pytest.approx(prediction['energy_std'] / natoms, abs=1e-12)
        np.testing.assert_allclose(prediction['forces'], forces.mean(axis=0), atol=1e-10)
        np.testing.assert_allclose(prediction['forces_std'], forces.std(axis=0), atol=1e-10)
        by_hand = max(
            np.sqrt(np.mean([np.sum((forces[k, i] - forces[:, i].mean(axis=0)) ** 2) for k in range(3)]))
            for i in range(natoms)
        )
        assert prediction['max_force_deviation'] == pytest.approx(by_hand, abs=1e-10)
        assert prediction['energy_std'] > 1e-4 and prediction['max_force_deviation'] > 1e-5
        if atoms.pbc.all():
            stresses = np.array(stresses)
            np.testing.assert_allclose(prediction['stress'], stresses.mean(axis=0), atol=1e-10)
            np.testing.assert_allclose(prediction['stress_std'], stresses.std(axis=0), atol=1e-10)
            assert prediction['stress_std_max'] == pytest.approx(stresses.std(axis=0).max(), abs=1e-10)
        else:
            assert prediction['stress'] is None and prediction['stress_std'] is None


def test_identical_members_have_zero_spread(aiida_profile, model_files, frames):
    first = PotentialData.from_model_file(model_files[1]).store()
    copy = PotentialData.from_model_file(model_files['copy']).store()
    assert first.sha256 == copy.sha256
    prediction = Committee([first, copy]).predict(frames[0])
    assert prediction['energy_std'] == 0.0
    assert prediction['max_force_deviation'] == 0.0
    assert prediction['stress_std_max'] == 0.0


def test_evaluate_errors_by_hand(aiida_profile, model_files, frames):
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(0)
    references = []
    for atoms in frames:
        reference = atoms.copy()
        results = {'energy': -4.0 * len(atoms) + rng.normal(), 'forces': rng.normal(size=(len(atoms), 3))}
        if atoms.pbc.all():
            results['stress'] = rng.normal(scale=0.01, size=6)
        reference.calc = SinglePointCalculator(reference, **results)
        references.append(reference)
    members = [PotentialData.from_model_file(model_files[seed], seed=seed).store() for seed in (1, 2)]
    report = Committee(members).evaluate(references)
    assert report['n_frames'] == 3 and report['n_atoms'] == 6

    calculator = single(model_files[2])
    errors_e, errors_f, errors_s = [], [], []
    for reference in references:
        copy = reference.copy()
        copy.calc = calculator
        errors_e.append((copy.get_potential_energy() - reference.get_potential_energy()) / len(copy))
        errors_f.extend((copy.get_forces() - reference.get_forces()).ravel())
        if reference.pbc.all():
            errors_s.extend(copy.get_stress() - reference.get_stress())
    member = report['members'][1]
    assert member['seed'] == 2
    assert member['rmse_e_per_atom_mev'] == pytest.approx(1000 * np.sqrt(np.mean(np.square(errors_e))), rel=1e-9)
    assert member['mae_e_per_atom_mev'] == pytest.approx(1000 * np.mean(np.abs(errors_e)), rel=1e-9)
    assert member['rmse_f_mev_a'] == pytest.approx(1000 * np.sqrt(np.mean(np.square(errors_f))), rel=1e-9)
    assert member['rmse_stress_mev_a3'] == pytest.approx(1000 * np.sqrt(np.mean(np.square(errors_s))), rel=1e-9)
    assert report['committee']['rmse_e_per_atom_mev'] != member['rmse_e_per_atom_mev']


def test_error_metrics_units():
    reference = {'e_per_atom': np.array([1.0, 2.0]), 'forces': np.array([0.0, 0.0]), 'stress': np.zeros(0)}
    predicted = {'e_per_atom': np.array([1.001, 1.997]), 'forces': np.array([0.1, -0.1]), 'stress': np.zeros(0)}
    metrics = error_metrics(reference, predicted)
    assert metrics['rmse_e_per_atom_mev'] == pytest.approx(np.sqrt((1 + 9) / 2))
    assert metrics['mae_e_per_atom_mev'] == pytest.approx(2.0)
    assert metrics['rmse_f_mev_a'] == pytest.approx(100.0)
    assert metrics['rmse_stress_mev_a3'] is None


def test_bad_input_refused(aiida_profile, model_files, tmp_path, frames):
    import torch

    with pytest.raises(FileNotFoundError):
        PotentialData.from_model_file(tmp_path / 'missing.model')
    not_a_model = tmp_path / 'dict.model'
    torch.save({'weights': torch.zeros(3)}, not_a_model)
    with pytest.raises(ValueError, match='not a mace model'):
        PotentialData.from_model_file(not_a_model)
    garbage = tmp_path / 'garbage.model'
    garbage.write_text('hello')
    with pytest.raises(ValueError, match='not a readable mace model'):
        PotentialData.from_model_file(garbage)
    with pytest.raises(ValueError, match='finite number'):
        PotentialData.from_model_file(model_files[1], metrics={'valid': {'rmse_f_mev_a': float('nan')}})
    members = [PotentialData.from_model_file(model_files[1]), PotentialData.from_model_file(model_files['r5'])]
    with pytest.raises(ValueError, match='different r_max'):
        Committee(members)
    with pytest.raises(ValueError, match='at least one'):
        Committee([])
    committee = Committee([PotentialData.from_model_file(model_files[1])])
    with pytest.raises(ValueError, match='structure has C'):
        committee.predict(bulk('C', 'diamond', a=3.57))
