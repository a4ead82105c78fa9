"""Li_xSi by insertion (composition, volume model, distance floor, seeds, refusals) and crystalline Li15Si4."""

import numpy as np
import pytest
import spglib

from aiida_sianode.structures.common import (
    StructureBuildError,
    mass_density,
    minimum_distance,
    minimum_distances_by_pair,
)
from aiida_sianode.structures.lithiation import (
    LI_VOLUME_IN_SILICON,
    PHASES_NOT_BUILT_IN,
    lixsi,
    lixsi_crystal,
)

SI_VOLUME = 5.431**3 / 8


def test_volume_model_reproduces_the_two_anchor_crystals():
    # c-Si at x = 0 and room-temperature c-Li15Si4 (a = 10.685 Å, 16 Si per cell) at x = 3.75.
    assert SI_VOLUME + 3.75 * LI_VOLUME_IN_SILICON == pytest.approx(10.685**3 / 16, rel=1e-5)
    # About 9 cm^3 per mole of Li (Obrovac et al. 2007).
    assert LI_VOLUME_IN_SILICON * 0.602214076 == pytest.approx(9.0, abs=0.1)


@pytest.mark.parametrize('x', [0.0, 1.0, 3.75, 4.4])
def test_insertion_into_crystalline_silicon(x):
    atoms = lixsi(x=x, size=(2, 2, 2), seed=0)
    symbols = np.array(atoms.get_chemical_symbols())
    n_si, n_li = (symbols == 'Si').sum(), (symbols == 'Li').sum()
    assert n_si == 64
    assert n_li == round(x * 64)
    assert atoms.info['x'] == pytest.approx(n_li / 64)
    # The volume follows the realised x (whole Li atoms: x = 4.4 gives 282 Li, x = 4.406).
    assert atoms.get_volume() / n_si == pytest.approx(SI_VOLUME + n_li / 64 * LI_VOLUME_IN_SILICON, rel=1e-9)
    assert minimum_distance(atoms) >= 1.9 if n_li else minimum_distance(atoms) == pytest.approx(2.3517, abs=1e-3)


def test_full_lithiation_expands_by_the_known_amount():
    atoms = lixsi(x=3.75, size=(2, 2, 2), seed=0)
    expansion = atoms.get_volume() / (64 * SI_VOLUME) - 1
    assert expansion == pytest.approx(2.81, abs=0.01)
    distances = minimum_distances_by_pair(atoms)
    assert distances[('Li', 'Si')] >= 1.9
    assert distances[('Li', 'Li')] >= 1.9


def test_insertion_is_reproducible_from_the_seed():
    first = lixsi(x=0.5, size=(1, 1, 1), seed=11)
    assert np.array_equal(first.positions, lixsi(x=0.5, size=(1, 1, 1), seed=11).positions)
    assert not np.allclose(first.positions, lixsi(x=0.5, size=(1, 1, 1), seed=12).positions)


def test_random_host_and_continued_lithiation_of_a_given_host():
    atoms = lixsi(x=1.0, host_kind='random', n_si=40, seed=2)
    assert atoms.get_chemical_formula() == 'Li40Si40'
    assert minimum_distance(atoms) >= 1.9

    partial = lixsi(x=1.0, size=(1, 1, 1), seed=5)
    further = lixsi(x=2.0, host_atoms=partial, seed=5)
    assert further.get_chemical_formula() == 'Li16Si8'
    # The Li already present is kept and the volume follows the model from the implied Li-free volume.
    assert np.allclose(further.positions[:16] / further.cell.lengths(), partial.positions / partial.cell.lengths())
    assert further.get_volume() / 8 == pytest.approx(SI_VOLUME + 2.0 * LI_VOLUME_IN_SILICON, rel=1e-9)


@pytest.mark.parametrize(
    ('parameters', 'message'),
    [
        ({'x': 4.5}, 'x must be <= 4.4'),
        ({'x': -0.1}, 'x must be >= 0'),
        ({'host_kind': 'glass'}, 'host_kind'),
        ({'x': 3.75, 'min_distance': 2.8, 'size': (1, 1, 1)}, 'largest empty site'),
        ({'expand': 'yes'}, 'expand'),
    ],
)
def test_impossible_lithiation_requests_are_refused(parameters, message):
    with pytest.raises(StructureBuildError, match=message):
        lixsi(**parameters)


def test_hosts_that_cannot_be_lithiated_are_refused():
    from ase.build import bulk

    with pytest.raises(StructureBuildError, match='only Si and Li'):
        lixsi(x=1.0, host_atoms=bulk('C', 'diamond', cubic=True))
    with pytest.raises(StructureBuildError, match='already holds'):
        lixsi(x=0.5, host_atoms=lixsi(x=1.0, size=(1, 1, 1)))


def test_li15si4_crystal_matches_its_published_structure():
    atoms = lixsi_crystal('Li15Si4')
    assert atoms.get_chemical_formula() == 'Li60Si16'
    assert atoms.cell.lengths() == pytest.approx([10.6322] * 3)
    dataset = spglib.get_symmetry_dataset((atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers), 1e-3)
    assert dataset.number == 220  # I-43d
    assert mass_density(atoms) == pytest.approx(1.1961, abs=1e-3)
    distances = minimum_distances_by_pair(atoms, cutoff=5.0)
    # Isolated Si, each with twelve Li neighbours at 2.6-2.9 Å.
    assert distances[('Si', 'Si')] > 4.0
    assert distances[('Li', 'Si')] == pytest.approx(2.609, abs=0.01)
    assert distances[('Li', 'Li')] == pytest.approx(2.71, abs=0.02)
    room_temperature = lixsi_crystal('Li15Si4', size=(1, 1, 2), lattice_constant=10.685)
    assert room_temperature.get_volume() == pytest.approx(2 * 10.685**3)
    assert len(room_temperature) == 152


@pytest.mark.parametrize('phase', sorted(PHASES_NOT_BUILT_IN))
def test_phases_without_entered_crystal_data_are_refused_with_the_reason(phase):
    with pytest.raises(StructureBuildError, match='not built in'):
        lixsi_crystal(phase)


def test_unknown_phase_is_refused():
    with pytest.raises(StructureBuildError, match='phase'):
        lixsi_crystal('Li3Si')
