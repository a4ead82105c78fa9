"""Li_xSi by insertion (composition, volume model, distance floor, seeds, refusals) and the crystalline Li-Si phases."""

import numpy as np
import pytest
import spglib
from ase.geometry import get_distances
from ase.io import read

from aiida_sianode.structures.common import (
    StructureBuildError,
    mass_density,
    minimum_distance,
    minimum_distances_by_pair,
)
from aiida_sianode.structures.lithiation import (
    LI_VOLUME_IN_SILICON,
    LIXSI_PHASES,
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


# phase: formula of the cell, space group, atoms in the primitive cell, the source file in fixtures/structures/
SHIPPED_PHASES = {
    'LiSi': ('Li16Si16', 88, 16, 'matador/LiSi_mp-795_symmetrized.res'),
    'Li12Si7': ('Li96Si56', 62, 152, 'DFTB_LiSi_crystal/Li12Si7.xyz'),
    'Li7Si3': ('Li42Si18', 153, 60, 'DFTB_LiSi_crystal/Li7Si3.xyz'),
    'Li13Si4': ('Li26Si8', 55, 34, 'matador/LiSi-LiGeAg-CollCode167673.res'),
    'Li17Si4': ('Li85Si20', 216, 105, 'matador/LiSi-Li17Pb4_F4-3m.res'),
}


@pytest.mark.parametrize('phase', sorted(SHIPPED_PHASES))
def test_phases_read_from_the_shipped_files_match_their_source(phase, fixtures_path):
    formula, spacegroup, n_primitive, source = SHIPPED_PHASES[phase]
    atoms = lixsi_crystal(phase)
    assert atoms.get_chemical_formula() == formula
    x_expected = {'LiSi': 1, 'Li12Si7': 12 / 7, 'Li7Si3': 7 / 3, 'Li13Si4': 3.25, 'Li17Si4': 4.25}[phase]
    assert atoms.info['x'] == pytest.approx(x_expected)
    dataset = spglib.get_symmetry_dataset((atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers), 1e-2)
    assert dataset.number == spacegroup
    reference = read(fixtures_path / 'structures' / source)
    assert atoms.get_volume() == pytest.approx(reference.get_volume(), rel=1e-9)
    assert mass_density(atoms) == pytest.approx(mass_density(reference), rel=1e-9)
    assert (atoms.get_scaled_positions() >= 0).all() and (atoms.get_scaled_positions() < 1).all()
    assert minimum_distance(atoms) > 2.2  # no overlaps after wrapping
    primitive = lixsi_crystal(phase, primitive=True, size=(1, 1, 2))
    assert len(primitive) == 2 * n_primitive
    assert primitive.get_volume() / len(primitive) == pytest.approx(atoms.get_volume() / len(atoms), rel=1e-6)
    with pytest.raises(StructureBuildError, match='DFT-relaxed cell'):
        lixsi_crystal(phase, lattice_constant=10.0)


def test_every_phase_is_built_from_li_poorest_to_li_richest():
    x_values = [lixsi_crystal(phase, primitive=True).info['x'] for phase in LIXSI_PHASES]
    assert x_values == sorted(x_values)
    assert x_values == pytest.approx([1.0, 12 / 7, 7 / 3, 3.25, 3.75, 4.25])


def test_entered_li15si4_positions_agree_with_the_dft_relaxed_file(fixtures_path):
    """The Wyckoff positions entered by hand (single crystal, 123 K) and those of Materials Project mp-569849
    (PBE-relaxed) give the same structure: on a common cell no atom is more than 0.07 Å from its counterpart."""
    entered = lixsi_crystal('Li15Si4')
    dft = read(fixtures_path / 'structures/matador/Li15Si4_mp-569849_symmetrized.res')
    assert dft.cell.lengths() == pytest.approx([10.650335] * 3)
    dft.set_cell(entered.cell, scale_atoms=True)
    for symbol, largest in (('Si', 1e-3), ('Li', 0.07)):
        mine = entered.positions[np.array(entered.get_chemical_symbols()) == symbol]
        theirs = dft.positions[np.array(dft.get_chemical_symbols()) == symbol]
        _, distances = get_distances(mine, theirs, cell=entered.cell, pbc=True)
        assert len(mine) == len(theirs)
        assert distances.min(axis=1).max() < largest
