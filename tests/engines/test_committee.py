"""Committee deviations (DP-GEN definitions) against hand computations and against single-model predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase.build import bulk

from aiida_sianode.engines import committee
from aiida_sianode.selection.trust import classify_frames


def test_force_deviation_by_hand():
    """Three members, two atoms: the per-atom deviations are sqrt(2/3) and sqrt(2), the frame's max sqrt(2)."""
    forces = np.array(
        [
            [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
            [[-1.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
            [[0.0, 0.0, 0.0], [0.0, 0.0, 3.0]],
        ]
    )
    # atom 0: mean (0, 0, 0), squared distances 1, 1, 0 -> sqrt(2/3); atom 1: mean (0, 0, 1), 1, 1, 4 -> sqrt(2)
    atomic = committee.atomic_force_deviation(forces)
    assert atomic == pytest.approx([math.sqrt(2 / 3), math.sqrt(2)], abs=1e-12)
    assert committee.max_force_deviation(forces) == pytest.approx(math.sqrt(2), abs=1e-12)


def test_energy_deviation_by_hand():
    """Energies -10, -11, -12 eV of two atoms: -5, -5.5, -6 eV/atom, population std sqrt(1/6) eV/atom."""
    assert committee.energy_deviation_per_atom([-10.0, -11.0, -12.0], 2) == pytest.approx(math.sqrt(1 / 6))


def test_force_deviation_shape_refused():
    """Forces that are not (members, atoms, 3) are refused with the shape in the message."""
    with pytest.raises(ValueError, match=r'\(n_members, natoms, 3\)'):
        committee.atomic_force_deviation(np.zeros((3, 4)))


def test_trust_levels():
    """accurate < lower <= candidate < upper <= failed; NaN is failed; fractions add up to one."""
    deviations = [0.01, 0.05, 0.2, 0.25, 0.3, float('nan')]
    assert classify_frames(deviations, 0.05, 0.25).tolist() == [0, 1, 1, 2, 2, 2]
    counts = committee.count_trust_levels(deviations, 0.05, 0.25)
    assert (counts['frames'], counts['accurate'], counts['candidate'], counts['failed']) == (6, 1, 2, 3)
    assert counts['accurate_fraction'] + counts['candidate_fraction'] + counts['failed_fraction'] == pytest.approx(1)
    assert committee.count_trust_levels([], 0.05, 0.25)['accurate_fraction'] == 0.0
    with pytest.raises(ValueError, match='above the lower one'):
        committee.count_trust_levels(deviations, 0.3, 0.25)


@pytest.fixture(scope='module')
def model_files(tmp_path_factory):
    """Three untrained Si models of different seeds, and a copy of the first (an identical member)."""
    import shutil

    directory = tmp_path_factory.mktemp('committee')
    paths = [
        committee.save_untrained_mace(
            directory / f'seed{seed}.model', [14], seed=seed, num_channels=8, max_L=0, r_max=4.0, num_interactions=1
        )
        for seed in range(3)
    ]
    twin = directory / 'seed0_copy.model'
    shutil.copy(paths[0], twin)
    return paths, twin


def test_committee_predict_against_members(model_files):
    """The committee's member energies/forces are the single models' own, and its deviations follow from them."""
    from mace.calculators import MACECalculator

    paths, _ = model_files
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(0.1, seed=3)
    energies, forces = [], []
    for path in paths:
        single = atoms.copy()
        single.calc = MACECalculator(model_paths=[str(path)], device='cpu', default_dtype='float64')
        energies.append(single.get_potential_energy())
        forces.append(single.get_forces())
    forces = np.array(forces)

    result = committee.committee_predict(committee.load_committee_calculator(paths), atoms)
    assert result['energies'] == pytest.approx(energies, abs=1e-8)
    assert result['energy'] == pytest.approx(np.mean(energies), abs=1e-8)
    assert result['member_forces'] == pytest.approx(forces, abs=1e-8)
    assert result['forces'] == pytest.approx(forces.mean(axis=0), abs=1e-8)
    by_hand = np.sqrt(((forces - forces.mean(axis=0)) ** 2).sum(axis=-1).mean(axis=0))
    assert result['atomic_force_deviation'] == pytest.approx(by_hand, abs=1e-8)
    assert result['max_force_deviation'] == pytest.approx(by_hand.max(), abs=1e-8)
    assert result['max_force_deviation'] > 1e-3  # differently seeded members disagree
    assert result['energy_std_per_atom'] == pytest.approx(np.std(np.array(energies) / len(atoms)), abs=1e-10)
    assert result['stress'].shape == (6,)
    assert result['stress_std_max'] > 0


def test_identical_members_agree(model_files):
    """Two copies of one model: every deviation is zero."""
    paths, twin = model_files
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(0.1, seed=4)
    result = committee.committee_predict(committee.load_committee_calculator([paths[0], twin]), atoms)
    assert result['max_force_deviation'] == pytest.approx(0.0, abs=1e-12)
    assert result['energy_std_per_atom'] == pytest.approx(0.0, abs=1e-12)
    assert len(result['energies']) == 2


def test_single_model_is_a_committee_of_one(model_files):
    """One model: one member energy, zero deviations."""
    paths, _ = model_files
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(0.1, seed=5)
    result = committee.committee_predict(committee.load_committee_calculator(paths[:1]), atoms)
    assert len(result['energies']) == 1
    assert result['energies'][0] == pytest.approx(result['energy'])
    assert result['max_force_deviation'] == 0.0


def test_load_committee_refuses_missing_files(tmp_path):
    """No models, or a missing file, is refused with the file named."""
    with pytest.raises(ValueError, match='at least one'):
        committee.load_committee_calculator([])
    with pytest.raises(ValueError, match=r'nothere\.model'):
        committee.load_committee_calculator([tmp_path / 'nothere.model'])


def test_untrained_model_size():
    """The builder makes the architecture it is asked for (channels, L, cutoff, interactions, elements)."""
    model = committee.build_untrained_mace([3, 14], seed=1, num_channels=4, max_L=1, r_max=4.5, num_interactions=2)
    assert [int(z) for z in model.atomic_numbers] == [3, 14]
    assert float(model.r_max) == pytest.approx(4.5)
    assert int(model.num_interactions) == 2
    with pytest.raises(ValueError, match='atomic energies'):
        committee.build_untrained_mace([14], atomic_energies=[1.0, 2.0])
