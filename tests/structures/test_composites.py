"""Si/a-C interface slabs and Si@C core-shell particles: radii, thickness, density and distances measured."""

import time

import numpy as np
import pytest

from aiida_sianode.structures.common import (
    StructureBuildError,
    coordination_numbers,
    minimum_distance,
    minimum_distance_between,
)
from aiida_sianode.structures.composites import core_shell, si_ac_interface

CARBON_MASS = 12.011


def _radii(atoms, symbol):
    symbols = np.array(atoms.get_chemical_symbols())
    return np.linalg.norm(atoms.positions[symbols == symbol] - atoms.info['center'], axis=1)


def test_small_core_shell_has_the_requested_core_radius_and_shell_thickness():
    atoms = core_shell(core_radius_nm=1.0, shell_thickness_nm=0.5, interface_gap=2.0, vacuum=8.0, seed=0)
    si_radii, c_radii = _radii(atoms, 'Si'), _radii(atoms, 'C')
    # The core: diamond Si within 1 nm (the outermost atoms lie less than one bond inside the cut).
    assert 10.0 - 2.4 < si_radii.max() <= 10.0
    # The shell: from core radius + gap to that plus 0.5 nm, measured on the carbon atoms.
    assert c_radii.min() >= 12.0
    assert c_radii.max() <= 17.0
    assert c_radii.max() - c_radii.min() == pytest.approx(5.0, abs=0.15)
    shell_density = len(c_radii) * CARBON_MASS / (4 / 3 * np.pi * (17.0**3 - 12.0**3)) * 1.66054
    assert shell_density == pytest.approx(2.0, abs=0.01)
    symbols = np.array(atoms.get_chemical_symbols())
    assert minimum_distance_between(atoms, symbols == 'Si', symbols == 'C') >= 2.0
    assert minimum_distance(atoms[symbols == 'C']) >= 1.4
    # Every core atom keeps at least two Si neighbours.
    assert coordination_numbers(atoms[symbols == 'Si'], 2.6).min() >= 2
    # Vacuum padding: 8 Å from the shell to each face of the cubic cell.
    assert atoms.cell.lengths() == pytest.approx([2 * (17.0 + 8.0)] * 3)
    assert atoms.positions.min() >= 8.0 - 1e-9
    assert atoms.positions.max() <= atoms.cell.lengths()[0] - 8.0 + 1e-9


def test_core_shell_is_reproducible_from_the_seed():
    first = core_shell(core_radius_nm=0.6, shell_thickness_nm=0.4, seed=3)
    assert np.array_equal(first.positions, core_shell(core_radius_nm=0.6, shell_thickness_nm=0.4, seed=3).positions)
    assert not np.allclose(first.positions, core_shell(core_radius_nm=0.6, shell_thickness_nm=0.4, seed=4).positions)


@pytest.mark.slow
def test_a_four_nanometre_shell_is_built_quickly():
    start = time.perf_counter()
    atoms = core_shell(core_radius_nm=1.0, shell_thickness_nm=4.0, seed=0)
    elapsed = time.perf_counter() - start
    c_radii = _radii(atoms, 'C')
    assert c_radii.max() - c_radii.min() == pytest.approx(40.0, abs=0.2)
    assert len(c_radii) > 50_000
    assert elapsed < 60


@pytest.mark.parametrize(
    ('parameters', 'message'),
    [
        ({'shell_thickness_nm': 0.1}, 'thinner than two carbon distance floors'),
        ({'shell_thickness_nm': 12.0}, 'shell_thickness_nm must be <= 10'),
        ({'core_radius_nm': 0.1}, 'core_radius_nm'),
        ({'carbon_density': 4.0}, 'carbon_density'),
        ({'carbon_density': 3.3, 'min_distance': 2.0}, 'packing fraction'),
    ],
)
def test_impossible_core_shell_requests_are_refused(parameters, message):
    with pytest.raises(StructureBuildError, match=message):
        core_shell(**parameters)


def test_periodic_si_ac_interface_density_gap_and_floor():
    atoms = si_ac_interface(si_size=(2, 2), si_layers=2, carbon_thickness=8.0, carbon_density=2.2, seed=1)
    symbols = np.array(atoms.get_chemical_symbols())
    assert (symbols == 'Si').sum() == 64
    z_low, z_high = atoms.info['carbon_z_range']
    assert z_high - z_low == pytest.approx(8.0)
    area = atoms.cell.lengths()[0] * atoms.cell.lengths()[1]
    carbon_density = (symbols == 'C').sum() * CARBON_MASS / (area * 8.0) * 1.66054
    assert carbon_density == pytest.approx(2.2, abs=0.02)
    carbon_z = atoms.positions[symbols == 'C', 2]
    assert carbon_z.min() >= z_low and carbon_z.max() <= z_high
    # The gap holds across both interfaces, the upper one through the periodic image of the slab's bottom.
    assert minimum_distance_between(atoms, symbols == 'Si', symbols == 'C') >= 2.0
    assert minimum_distance(atoms[symbols == 'C']) >= 1.4
    assert atoms.cell.lengths()[2] == pytest.approx(z_high + 2.0)


def test_interface_with_vacuum_and_its_refusals():
    atoms = si_ac_interface(si_size=(1, 1), si_layers=1, carbon_thickness=5.0, vacuum=12.0, seed=2)
    assert atoms.cell.lengths()[2] == pytest.approx(atoms.info['carbon_z_range'][1] + 12.0)
    with pytest.raises(StructureBuildError, match='carbon_density'):
        si_ac_interface(carbon_density=1.0)
    with pytest.raises(StructureBuildError, match='si_size'):
        si_ac_interface(si_size=(2, 2, 2))


def test_a_lithiated_core_holds_its_li_inside_the_core_radius():
    atoms = core_shell(core_radius_nm=0.6, shell_thickness_nm=0.3, vacuum=4.0, core_li_per_si=0.3, seed=1)
    symbols = np.array(atoms.get_chemical_symbols())
    n_si = int((symbols == 'Si').sum())
    assert (symbols == 'Li').sum() == round(0.3 * n_si) == 10
    assert _radii(atoms, 'Li').max() <= 6.0
    assert minimum_distance_between(atoms, symbols == 'Li', symbols == 'Si') >= 1.9
    assert minimum_distance_between(atoms, symbols == 'Li', symbols == 'C') >= 2.0  # the interface gap
    bare = core_shell(core_radius_nm=0.6, shell_thickness_nm=0.3, vacuum=4.0, seed=1)
    assert (np.array(bare.get_chemical_symbols()) == 'Si').sum() == n_si
    with pytest.raises(
        StructureBuildError, match=r'after 0 of 2 Li in the core the largest empty site has a radius of 2\.68'
    ):
        core_shell(core_radius_nm=0.5, shell_thickness_nm=0.3, core_li_per_si=0.07, li_min_distance=2.9, seed=1)
