"""Random a-C, graphite, LiC6 / LiC12 and hard-carbon models, measured on the output."""

import numpy as np
import pytest

from aiida_sianode.structures.carbon import amorphous_carbon, graphite, hard_carbon, lic6, lic12
from aiida_sianode.structures.common import (
    StructureBuildError,
    mass_density,
    minimum_distance,
    minimum_distances_by_pair,
)


@pytest.mark.parametrize(('density', 'floor'), [(1.5, 1.4), (2.0, 1.4), (3.3, 1.4)])
def test_amorphous_carbon_density_and_distance_floor(density, floor):
    atoms = amorphous_carbon(n_atoms=200, density=density, min_distance=floor, seed=1)
    assert atoms.get_chemical_formula() == 'C200'
    assert mass_density(atoms) == pytest.approx(density, rel=1e-9)
    assert minimum_distance(atoms) >= floor


def test_amorphous_carbon_is_reproducible_from_the_seed():
    first = amorphous_carbon(n_atoms=64, seed=5)
    assert np.array_equal(first.positions, amorphous_carbon(n_atoms=64, seed=5).positions)
    assert not np.allclose(first.positions, amorphous_carbon(n_atoms=64, seed=6).positions)


@pytest.mark.parametrize(
    ('parameters', 'message'),
    [
        ({'density': 3.5}, 'density must be <= 3.3'),
        ({'density': 1.0}, 'density must be >= 1.5'),
        ({'density': 3.3, 'min_distance': 1.9}, 'packing fraction'),
        ({'n_atoms': 0}, 'n_atoms'),
    ],
)
def test_impossible_carbon_requests_are_refused(parameters, message):
    with pytest.raises(StructureBuildError, match=message):
        amorphous_carbon(**parameters)


def test_graphite_bond_length_layer_spacing_and_density():
    atoms = graphite(size=(2, 2, 1))
    assert atoms.get_chemical_formula() == 'C16'
    assert minimum_distance(atoms) == pytest.approx(2.464 / np.sqrt(3), abs=1e-6)
    assert sorted(set(np.round(atoms.positions[:, 2], 6))) == pytest.approx([6.711 / 4, 3 * 6.711 / 4])
    assert mass_density(atoms) == pytest.approx(2.26, abs=0.005)


def test_lic6_and_lic12_compositions_and_li_sites():
    stage_one = lic6()
    assert stage_one.get_chemical_formula() == 'C6Li'
    distances = minimum_distances_by_pair(stage_one)
    # Li sits over a hexagon centre: 4.305/3 Å in-plane from six C, half a gallery (3.706/2 Å) above.
    assert distances[('C', 'Li')] == pytest.approx(np.hypot(4.305 / 3, 3.706 / 2), abs=1e-6)
    assert distances[('C', 'C')] == pytest.approx(4.305 / 3, abs=1e-6)

    stage_two = lic12(size=(2, 2, 1))
    assert stage_two.get_chemical_formula() == 'C48Li4'
    assert stage_two.cell.lengths()[2] == pytest.approx(3.706 + 3.35)
    assert minimum_distances_by_pair(stage_two)[('C', 'Li')] == pytest.approx(np.hypot(4.305 / 3, 3.706 / 2))


def test_hard_carbon_with_a_pore_holds_the_alkali_atoms_at_a_distance():
    atoms = hard_carbon(n_carbon=150, density=1.6, pore_radius=3.5, alkali='Na', n_alkali=6, seed=2)
    symbols = np.array(atoms.get_chemical_symbols())
    assert (symbols == 'C').sum() == 150
    assert (symbols == 'Na').sum() == 6
    carbon = atoms[symbols == 'C']
    assert mass_density(carbon) == pytest.approx(1.6, rel=1e-9)
    center = np.full(3, carbon.cell.lengths()[0] / 2)
    assert np.linalg.norm(carbon.positions - center, axis=1).min() >= 3.5
    sodium = atoms.positions[symbols == 'Na']
    # The first Na goes to the largest void: the pore.
    assert np.linalg.norm(sodium - center, axis=1).min() < 3.5
    distances = minimum_distances_by_pair(atoms)
    assert distances[('C', 'Na')] >= 2.2
    assert distances[('C', 'C')] >= 1.4

    lithium = hard_carbon(n_carbon=100, alkali='Li', n_alkali=3, seed=2)
    assert lithium.get_chemical_formula() == 'C100Li3'


@pytest.mark.parametrize(
    ('parameters', 'message'),
    [
        ({'alkali': 'K'}, 'alkali'),
        ({'pore_radius': 20.0}, 'does not fit'),
        ({'n_alkali': 500, 'n_carbon': 64}, 'largest empty site'),
    ],
)
def test_impossible_hard_carbon_requests_are_refused(parameters, message):
    with pytest.raises(StructureBuildError, match=message):
        hard_carbon(**parameters)
