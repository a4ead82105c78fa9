"""Tests of the coordination and density kernels on structures whose answers are known exactly."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, graphene

from aiida_sianode.analysis.structure import (
    coordination_fractions,
    coordination_histogram,
    coordination_numbers,
    density_g_cm3,
    mean_coordination,
    partial_coordination,
)


@pytest.fixture
def silicon():
    """Diamond silicon, 64 atoms, a = 5.431 Å."""
    return bulk('Si', 'diamond', a=5.431, cubic=True).repeat(2)


def test_crystalline_silicon_is_four_fold(silicon):
    """Every atom of c-Si has exactly 4 neighbours at 2.85 Å and 16 when the second shell (3.84 Å) is included."""
    assert mean_coordination(silicon, 2.85) == 4.0
    assert coordination_histogram(silicon, 2.85) == {4: 64}
    assert coordination_fractions(silicon, 2.85) == {4: 1.0}
    assert coordination_histogram(silicon, 4.0) == {16: 64}
    assert mean_coordination(silicon, 2.0) == 0.0


def test_primitive_cell_smaller_than_cutoff():
    """A 2-atom primitive cell (shorter than twice the cutoff) still counts the periodic images."""
    primitive = bulk('Si', 'diamond', a=5.431)
    assert len(primitive) == 2
    assert coordination_numbers(primitive, 2.85).tolist() == [4, 4]


def test_fcc_and_bcc_shells():
    """fcc: 12 first neighbours; bcc: 8 first + 6 second neighbours."""
    copper = bulk('Cu', 'fcc', a=3.615)
    assert mean_coordination(copper, 3.0) == 12.0
    iron = bulk('Fe', 'bcc', a=2.87)
    assert mean_coordination(iron, 2.6) == 8.0
    assert mean_coordination(iron, 3.0) == 14.0


def test_carbon_hybridisation_fractions():
    """Graphene is all sp2 (3) and diamond all sp3 (4) with the 1.85 Å carbon cutoff."""
    sheet = graphene(a=2.46, vacuum=5.0)
    sheet.pbc = True
    assert coordination_fractions(sheet, 1.85) == {3: 1.0}
    diamond = bulk('C', 'diamond', a=3.567, cubic=True)
    assert coordination_fractions(diamond, 1.85) == {4: 1.0}


def test_partial_coordination_of_silicon_carbide():
    """Zincblende SiC: every Si has 4 C and no Si within 2.3 Å; per-element means agree."""
    sic = bulk('SiC', 'zincblende', a=4.36, cubic=True)
    cutoffs = {('Si', 'C'): 2.3, ('Si', 'Si'): 2.85, ('C', 'C'): 1.85}
    assert partial_coordination(sic, cutoffs) == {'C': {'C': 0.0, 'Si': 4.0}, 'Si': {'C': 4.0, 'Si': 0.0}}
    assert mean_coordination(sic, cutoffs, element='Si') == 4.0
    assert coordination_histogram(sic, cutoffs, element='C') == {4: 4}
    # Only the Si-Si pair is bonded: second neighbours are 3.08 Å apart, beyond every cutoff here.
    assert mean_coordination(sic, {('Si', 'Si'): 2.85}) == 0.0
    # One number for every pair: the 3.08 Å like-atom second shell (12 atoms) joins the 4 bonds.
    assert mean_coordination(sic, 3.2) == 16.0


def test_pair_cutoff_order_does_not_matter():
    """``('C', 'Si')`` and ``('Si', 'C')`` are the same pair."""
    sic = bulk('SiC', 'zincblende', a=4.36)
    assert mean_coordination(sic, {('C', 'Si'): 2.3}) == mean_coordination(sic, {('Si', 'C'): 2.3}) == 4.0


def test_density_of_known_crystals(silicon):
    """c-Si (a = 5.431 Å) 2.329 g/cm^3, diamond (a = 3.567 Å) 3.516 g/cm^3, whatever the supercell."""
    assert density_g_cm3(silicon) == pytest.approx(2.3290, abs=5e-4)
    assert density_g_cm3(bulk('Si', 'diamond', a=5.431)) == pytest.approx(density_g_cm3(silicon), rel=1e-12)
    assert density_g_cm3(bulk('C', 'diamond', a=3.567)) == pytest.approx(3.5157, abs=5e-4)


def test_density_scales_with_volume(silicon):
    """Stretching every cell vector by 1 % lowers the density by a factor 1.01^3."""
    stretched = silicon.copy()
    stretched.set_cell(silicon.cell * 1.01, scale_atoms=True)
    assert density_g_cm3(stretched) == pytest.approx(density_g_cm3(silicon) / 1.01**3, rel=1e-12)


def test_bad_inputs_are_refused(silicon):
    """Empty structures, non-positive cutoffs, unknown elements and non-periodic cells give clear errors."""
    with pytest.raises(ValueError, match='no atoms'):
        mean_coordination(Atoms(), 2.85)
    with pytest.raises(ValueError, match='positive'):
        mean_coordination(silicon, 0.0)
    with pytest.raises(ValueError, match='positive'):
        mean_coordination(silicon, {('Si', 'Si'): -1.0})
    with pytest.raises(ValueError, match='unknown element'):
        mean_coordination(silicon, {('Si', 'Xx'): 2.0})
    with pytest.raises(ValueError, match='no C atoms'):
        mean_coordination(silicon, 2.85, element='C')
    molecule = Atoms('H2', positions=[[0, 0, 0], [0, 0, 0.74]])
    with pytest.raises(ValueError, match='periodic'):
        density_g_cm3(molecule)
    with pytest.raises(TypeError, match=r'ase\.Atoms'):
        density_g_cm3(np.zeros((2, 3)))
