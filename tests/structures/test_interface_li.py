"""Li at the Si(001)/a-C interface (the shared largest-void insertion, only inside the interface slabs) and the
isolated core-shell particle."""

import numpy as np
import pytest

from aiida_sianode.structures.common import StructureBuildError, minimum_distance_between
from aiida_sianode.structures.composites import core_shell, si_ac_interface


def _li_offsets(atoms):
    """Each Li's z distance to the nearest interface mid-plane (periodic along z) and the Li mask."""
    symbols = np.array(atoms.get_chemical_symbols())
    li = symbols == 'Li'
    lz = atoms.cell.lengths()[2]
    planes = np.array([sum(bounds) / 2 for bounds in atoms.info['li_interface_z']])
    dz = atoms.positions[li, 2][:, None] - planes[None, :]
    dz -= lz * np.round(dz / lz)
    return np.abs(dz), li


def test_li_sits_in_both_interface_slabs_of_the_periodic_sandwich():
    host = si_ac_interface(si_size=(2, 2), si_layers=2, carbon_thickness=8.0, seed=1)
    atoms = si_ac_interface(si_size=(2, 2), si_layers=2, carbon_thickness=8.0, n_li=4, seed=1)
    symbols = np.array(atoms.get_chemical_symbols())
    assert len(atoms) == len(host) + 4 == 163
    assert ((symbols == 'Si').sum(), (symbols == 'C').sum(), (symbols == 'Li').sum()) == (64, 95, 4)
    # The host is the same as without Li: the Li are drawn from the seed after the carbon.
    assert np.allclose(atoms.positions[symbols != 'Li'], host.get_positions(wrap=True))
    # Two slabs, 4 Å thick, centred on the middle of each 2 Å Si/C gap.
    z_low, z_high = atoms.info['carbon_z_range']
    expected = [z_low - 3.0, z_low + 1.0, z_high - 1.0, z_high + 3.0]
    assert np.ravel(atoms.info['li_interface_z']) == pytest.approx(expected)
    offsets, li = _li_offsets(atoms)
    assert offsets.min(axis=1).max() <= 2.0 + 1e-9
    # Both interfaces get Li: the first at the upper gap, the next three in the larger voids of the lower one.
    assert offsets.argmin(axis=1).tolist() == [1, 0, 0, 0]
    # The distance floor holds against every atom and between the Li, across the periodic boundaries.
    distances = atoms.get_all_distances(mic=True)
    np.fill_diagonal(distances, np.inf)
    assert distances[li].min() == pytest.approx(2.56, abs=0.01)
    assert minimum_distance_between(atoms, li, symbols == 'Si') >= 1.9
    assert minimum_distance_between(atoms, li, symbols == 'C') >= 1.9


def test_with_vacuum_only_the_buried_interface_gets_li_and_a_full_slab_is_refused():
    atoms = si_ac_interface(si_size=(1, 1), si_layers=1, carbon_thickness=5.0, vacuum=12.0, n_li=2, seed=2)
    assert len(atoms.info['li_interface_z']) == 1
    offsets, li = _li_offsets(atoms)
    assert li.sum() == 2
    assert offsets.max() <= 2.0 + 1e-9
    with pytest.raises(StructureBuildError, match=r'si-ac-interface Li: after 16 of 30 Li atoms .* 1\.80 Å'):
        si_ac_interface(si_size=(1, 1), si_layers=2, carbon_thickness=4.0, n_li=30, seed=1)
    with pytest.raises(StructureBuildError, match='li_interface_width'):
        si_ac_interface(n_li=1, li_interface_width=0.5)


def test_an_isolated_core_shell_particle_is_the_periodic_one_without_pbc():
    periodic = core_shell(core_radius_nm=0.5, shell_thickness_nm=0.28, interface_gap=1.5, carbon_density=1.5, seed=1)
    isolated = core_shell(
        core_radius_nm=0.5, shell_thickness_nm=0.28, interface_gap=1.5, carbon_density=1.5, periodic=False, seed=1
    )
    # The small particle of workflows/core_shell_xtb.yaml: 29 Si and 167 C.
    assert isolated.get_chemical_formula() == periodic.get_chemical_formula() == 'C167Si29'
    assert np.array_equal(isolated.positions, periodic.positions)
    assert not isolated.pbc.any() and periodic.pbc.all()
    with pytest.raises(StructureBuildError, match='periodic must be true or false'):
        core_shell(periodic='no')
