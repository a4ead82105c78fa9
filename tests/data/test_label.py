"""Tests of ``LabelData``: construction from ASE, validation, round trip and querying."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_sianode.data.label import LabelData

LOT = {'code': 'gpaw', 'method': 'PBE', 'cutoff_ev': 300}


@pytest.fixture
def si2():
    atoms = bulk('Si', 'diamond', a=5.43)
    forces = np.array([[0.1, -0.2, 0.3], [-0.1, 0.2, -0.3]])
    stress = np.array([0.01, 0.02, 0.03, 0.001, 0.002, 0.003])
    atoms.calc = SinglePointCalculator(atoms, energy=-10.5, forces=forces, stress=stress)
    return atoms


def test_label_from_atoms_keeps_numbers(aiida_profile, si2):
    label = LabelData(si2, level_of_theory=LOT, source={'kind': 'file', 'filename': 'x', 'frame': 0}).store()
    assert label.energy == -10.5
    assert label.energy_per_atom == pytest.approx(-5.25)
    assert label.natoms == 2
    assert label.formula == 'Si2'
    assert label.elements == ['Si']
    assert label.max_force == pytest.approx(np.sqrt(0.14))
    np.testing.assert_allclose(label.stress[0], [0.01, 0.003, 0.002])
    assert label.level_of_theory['code'] == 'gpaw'
    assert label.source['frame'] == 0

    atoms = label.get_atoms()
    assert atoms.get_potential_energy() == -10.5
    np.testing.assert_allclose(atoms.get_forces(), si2.get_forces())
    np.testing.assert_allclose(atoms.get_stress(), si2.get_stress())
    np.testing.assert_allclose(atoms.cell[:], si2.cell[:])


def test_labels_are_queryable_by_fingerprint(aiida_profile_clean, si2):
    from aiida import orm

    first = LabelData(si2, level_of_theory=LOT).store()
    LabelData(si2, level_of_theory={**LOT, 'cutoff_ev': 500}).store()
    query = orm.QueryBuilder().append(LabelData, filters={'attributes.fingerprint': first.fingerprint})
    assert [node.uuid for node in query.all(flat=True)] == [first.uuid]


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'energy': float('nan')}, 'finite energy'),
        ({'forces': np.zeros((3, 3))}, r'shape \(2, 3\)'),
        ({'stress': np.zeros(4)}, '3x3 or Voigt-6'),
        ({'level_of_theory': None}, 'level of theory'),
    ],
)
def test_label_refuses_bad_numbers(si2, kwargs, message):
    arguments = {'level_of_theory': LOT, **kwargs}
    with pytest.raises(ValueError, match=message):
        LabelData(si2, **arguments)


def test_label_refuses_empty_structure():
    from ase import Atoms

    with pytest.raises(ValueError, match='at least one atom'):
        LabelData(Atoms(), energy=0.0, forces=np.zeros((0, 3)), level_of_theory=LOT)
