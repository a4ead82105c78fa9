"""SEI packings (composition, density, distance floor between units, seeds, refusals), SEI crystals, Li metal."""

import numpy as np
import pytest
import spglib
from ase.formula import Formula

from aiida_sianode.structures.common import (
    StructureBuildError,
    mass_density,
    minimum_distance,
    minimum_distances_by_pair,
)
from aiida_sianode.structures.sei import SEI_UNITS, li_metal, sei_crystal, sei_pack, sei_unit


def _inter_unit_minimum(atoms) -> float:
    from matscipy.neighbours import neighbour_list

    i, j, d = neighbour_list('ijd', atoms, 4.0)
    unit = atoms.arrays['unit_id']
    different = unit[i] != unit[j]
    return float(d[different].min())


@pytest.mark.parametrize('name', SEI_UNITS)
def test_unit_geometries_have_their_formula_and_no_overlapping_atoms(name):
    unit = sei_unit(name)
    expected = {'Li2EDC': 'C4H4Li2O6'}.get(name, name)
    assert Formula(unit.get_chemical_formula()).count() == Formula(expected).count()
    if len(unit) > 1:
        assert minimum_distance(unit) > 1.0


def test_carbonate_and_edc_bond_lengths():
    carbonate = minimum_distances_by_pair(sei_unit('Li2CO3'))
    assert carbonate[('C', 'O')] == pytest.approx(1.29)
    assert carbonate[('Li', 'O')] == pytest.approx(1.85)
    edc = minimum_distances_by_pair(sei_unit('Li2EDC'))
    assert edc[('C', 'C')] == pytest.approx(1.52)
    assert edc[('C', 'H')] == pytest.approx(1.09)
    assert edc[('C', 'O')] == pytest.approx(1.26)
    assert edc[('Li', 'O')] == pytest.approx(1.90)


def test_packing_composition_density_and_floor_between_units():
    composition = {'Li2EDC': 2, 'Li2CO3': 3, 'LiF': 2, 'Li2O': 1, 'LiPF6': 1, 'Li': 5}
    atoms = sei_pack(composition=composition, density=0.6, min_distance=1.9, seed=4)
    counts = Formula(atoms.get_chemical_formula()).count()
    assert counts == {'C': 2 * 4 + 3, 'H': 2 * 4, 'Li': 4 + 6 + 2 + 2 + 1 + 5, 'O': 12 + 9 + 1, 'F': 2 + 6, 'P': 1}
    assert atoms.info['units'].split().count('Li2EDC') == 2
    assert len(set(atoms.arrays['unit_id'])) == sum(composition.values())
    assert mass_density(atoms) == pytest.approx(0.6, rel=1e-9)
    assert _inter_unit_minimum(atoms) >= 1.9


def test_the_seed_paper_packing_of_8_li2edc_16_li2co3_and_64_li():
    atoms = sei_pack(composition={'Li2EDC': 8, 'Li2CO3': 16, 'Li': 64}, density=0.5, seed=0)
    assert Formula(atoms.get_chemical_formula()).count() == {'C': 48, 'H': 32, 'Li': 112, 'O': 96}
    assert _inter_unit_minimum(atoms) >= 1.8


def test_packing_is_reproducible_from_the_seed():
    first = sei_pack(seed=9)
    assert np.array_equal(first.positions, sei_pack(seed=9).positions)
    assert not np.allclose(first.positions, sei_pack(seed=10).positions)


@pytest.mark.parametrize(
    ('parameters', 'message'),
    [
        ({'composition': {'LiClO4': 1}}, 'unknown SEI unit'),
        ({'composition': {'Li2CO3': 0}}, 'no units'),
        ({'composition': {'Li2CO3': -1}}, 'composition\\[Li2CO3\\]'),
        ({'composition': {'Li2EDC': 1}, 'density': 1.0}, 'smaller than its largest unit'),
        ({'composition': {'Li2CO3': 30}, 'density': 2.0, 'max_attempts': 200}, 'could not place'),
        ({'density': 3.0}, 'density'),
    ],
)
def test_impossible_packings_are_refused(parameters, message):
    with pytest.raises(StructureBuildError, match=message):
        sei_pack(**parameters)


def test_li2co3_crystal_is_c2c_with_carbonate_groups_and_its_density():
    atoms = sei_crystal('Li2CO3')
    assert atoms.get_chemical_formula() == 'C4Li8O12'
    dataset = spglib.get_symmetry_dataset((atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers), 1e-3)
    assert dataset.number == 15
    assert mass_density(atoms) == pytest.approx(2.10, abs=0.01)
    distances = minimum_distances_by_pair(atoms)
    assert distances[('C', 'O')] == pytest.approx(1.28, abs=0.01)
    assert distances[('Li', 'O')] == pytest.approx(1.885, abs=0.01)


def test_lif_li2o_and_lithium_metal():
    lif = sei_crystal('LiF', size=(2, 2, 2))
    assert lif.get_chemical_formula() == 'F32Li32'
    assert minimum_distance(lif) == pytest.approx(4.0263 / 2)
    li2o = sei_crystal('Li2O')
    assert li2o.get_chemical_formula() == 'Li8O4'
    assert minimum_distances_by_pair(li2o)[('Li', 'O')] == pytest.approx(4.611 * np.sqrt(3) / 4)
    bcc = li_metal('bcc', size=(2, 2, 2))
    assert len(bcc) == 16
    assert mass_density(bcc) == pytest.approx(0.533, abs=0.002)
    fcc = li_metal('fcc', size=(2, 2, 2))
    assert len(fcc) == 32
    assert fcc.get_volume() / len(fcc) == pytest.approx(bcc.get_volume() / len(bcc))
    with pytest.raises(StructureBuildError, match='structure'):
        li_metal('hcp')
    with pytest.raises(StructureBuildError, match='phase'):
        sei_crystal('Li2C2')
