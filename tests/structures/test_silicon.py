"""c-Si supercells (strain, rattle, vacancies, interstitials) and random a-Si starts, measured on the output."""

import numpy as np
import pytest

from aiida_sianode.structures.common import (
    StructureBuildError,
    mass_density,
    minimum_distance,
    minimum_distance_between,
)
from aiida_sianode.structures.silicon import si_crystal, si_random

A = 5.431
BOND = A * np.sqrt(3) / 4


def test_perfect_crystal_composition_density_and_bond_length():
    atoms = si_crystal(size=(2, 2, 2))
    assert atoms.get_chemical_formula() == 'Si64'
    assert atoms.get_volume() == pytest.approx((2 * A) ** 3)
    assert mass_density(atoms) == pytest.approx(2.3290, abs=5e-4)
    assert minimum_distance(atoms) == pytest.approx(BOND, abs=1e-6)


def test_lattice_constant_and_strain_deform_the_cell():
    assert si_crystal(size=1, lattice_constant=5.5).get_volume() == pytest.approx(5.5**3)
    isotropic = si_crystal(size=1, strain=0.01)
    assert isotropic.get_volume() == pytest.approx(A**3 * 1.01**3)
    sheared = si_crystal(size=1, strain=[0, 0, 0, 0, 0, 0.02])
    assert sheared.cell.array[0, 1] == pytest.approx(A * 0.02)
    assert sheared.cell.array[1, 0] == pytest.approx(A * 0.02)
    assert len(sheared) == 8


def test_vacancies_and_interstitials_change_the_count_and_the_local_distances():
    defective = si_crystal(size=2, vacancies=3, seed=1)
    assert len(defective) == 61

    tetrahedral = si_crystal(size=2, interstitials=2, interstitial_site='tetrahedral', seed=4)
    assert len(tetrahedral) == 66
    added = np.arange(len(tetrahedral)) >= 64
    # A tetrahedral interstitial sits one bond length from four lattice atoms.
    assert minimum_distance_between(tetrahedral, added, ~added) == pytest.approx(BOND, abs=1e-6)

    hexagonal = si_crystal(size=2, interstitials=1, interstitial_site='hexagonal', seed=4)
    added = np.arange(len(hexagonal)) >= 64
    assert minimum_distance_between(hexagonal, added, ~added) == pytest.approx(A * np.sqrt(11) / 8, abs=1e-6)


def test_rattle_is_reproducible_from_the_seed_and_has_the_requested_size():
    first = si_crystal(size=2, rattle=0.05, seed=7)
    again = si_crystal(size=2, rattle=0.05, seed=7)
    other = si_crystal(size=2, rattle=0.05, seed=8)
    assert np.array_equal(first.positions, again.positions)
    assert not np.allclose(first.positions, other.positions)
    perfect = si_crystal(size=2)
    displacement = first.positions - perfect.positions
    displacement -= np.round(displacement @ np.linalg.inv(first.cell.array)) @ first.cell.array
    assert np.sqrt((displacement**2).mean()) == pytest.approx(0.05, rel=0.25)


@pytest.mark.parametrize(
    ('parameters', 'message'),
    [
        ({'size': (0, 1, 1)}, 'size'),
        ({'strain': 0.3}, 'strain'),
        ({'strain': [0.0, 0.1]}, 'strain'),
        ({'rattle': 0.5}, 'rattle'),
        ({'vacancies': 8, 'size': 1}, 'vacancies'),
        ({'interstitials': 2, 'size': 1}, 'interstitials'),
        ({'interstitial_site': 'octahedral'}, 'interstitial_site'),
        ({'lattice_constant': 3.0}, 'lattice_constant'),
        ({'seed': -1}, 'seed'),
    ],
)
def test_impossible_crystal_requests_are_refused(parameters, message):
    with pytest.raises(StructureBuildError, match=message):
        si_crystal(**parameters)


def test_random_silicon_density_floor_and_reproducibility():
    atoms = si_random(n_atoms=100, density=2.285, min_distance=2.1, seed=3)
    assert atoms.get_chemical_formula() == 'Si100'
    assert mass_density(atoms) == pytest.approx(2.285, rel=1e-9)
    assert minimum_distance(atoms) >= 2.1
    assert np.array_equal(atoms.positions, si_random(n_atoms=100, density=2.285, min_distance=2.1, seed=3).positions)
    assert not np.allclose(atoms.positions, si_random(n_atoms=100, density=2.285, min_distance=2.1, seed=4).positions)


def test_random_silicon_refuses_a_floor_that_cannot_be_packed():
    with pytest.raises(StructureBuildError, match='packing fraction'):
        si_random(n_atoms=64, density=2.285, min_distance=2.9)
