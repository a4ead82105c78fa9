"""Tests of the structure checks every labeler runs before it computes anything."""

import pytest
from ase import Atoms
from ase.build import bulk, molecule

from aiida_sianode.common.validation import (
    XTB_GFN1_ELEMENTS,
    StructureValidationError,
    gpaw_elements,
    labeler_elements,
    validate_structure,
    vasp_default_elements,
)


def test_a_good_crystal_passes():
    """c-Si and a CsCl-type LiSi cell (nearest neighbours 2.35 and 2.51 Å) pass every check, untouched; the same
    LiSi cell shrunk until its atoms are 0.48 Å apart is refused, so the pass is not vacuous."""
    silicon = bulk('Si', 'diamond', a=5.43, cubic=True)
    positions = silicon.get_positions()
    assert validate_structure(silicon, labeler='gpaw') is None
    assert (silicon.get_positions() == positions).all()
    lisi = Atoms('LiSi', scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[2.9, 2.9, 2.9], pbc=True)
    assert validate_structure(lisi, labeler='gpaw') is None
    assert validate_structure(lisi, labeler='xtb') is None
    squeezed = Atoms('LiSi', scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[0.554] * 3, pbc=True)
    with pytest.raises(StructureValidationError, match=r'0\.48'):
        validate_structure(squeezed, labeler='gpaw')


def test_empty_structure_is_refused():
    with pytest.raises(StructureValidationError, match='the structure is empty: gpaw needs at least one atom'):
        validate_structure(Atoms(cell=[3, 3, 3], pbc=True), labeler='gpaw')


def test_close_atoms_are_named_with_their_distance():
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.positions[3] = atoms.positions[6] + [0.2, 0.2, 0.0]
    with pytest.raises(StructureValidationError, match=r'atoms 3 and 6 \(Si-Si\) are 0\.283 Å apart, closer than 0\.5'):
        validate_structure(atoms, labeler='gpaw')


def test_close_periodic_images_count():
    """Atoms 0.3 Å apart across the cell boundary are refused; the same atoms without periodicity are 4.7 Å apart."""
    atoms = Atoms('LiSi', positions=[[0.1, 1, 1], [4.8, 1, 1]], cell=[5, 5, 5], pbc=True)
    with pytest.raises(StructureValidationError, match=r'atoms 0 and 1 \(Li-Si\) are 0\.300 Å apart'):
        validate_structure(atoms, labeler='xtb', needs_periodic=False)
    atoms.pbc = False
    validate_structure(atoms, labeler='xtb', needs_periodic=False)


def test_an_atom_close_to_its_own_image_is_refused():
    atoms = Atoms('Si', cell=[0.4, 5, 5], pbc=True)
    with pytest.raises(StructureValidationError, match=r'atom 0 and its own periodic image .* 0\.400 Å apart'):
        validate_structure(atoms, labeler='gpaw')


def test_min_distance_is_adjustable():
    atoms = Atoms('H2', positions=[[0, 0, 0], [0, 0, 0.74]])
    validate_structure(atoms, labeler='xtb', needs_periodic=False)
    with pytest.raises(StructureValidationError, match=r'0\.740 Å apart, closer than 0\.8 Å'):
        validate_structure(atoms, labeler='xtb', needs_periodic=False, min_distance=0.8)


def test_unsupported_elements_are_named_with_the_labeler():
    atoms = Atoms('UPu', positions=[[0, 0, 0], [2, 2, 2]], cell=[5, 5, 5], pbc=True)
    with pytest.raises(StructureValidationError, match=r'elements Pu, U cannot be labelled by gpaw'):
        validate_structure(atoms, labeler='gpaw')
    with pytest.raises(StructureValidationError, match=r'element U cannot be labelled by vasp'):
        validate_structure(atoms[:1], labeler='vasp', supported_elements={'Si', 'Li'})


def test_non_periodic_structure_is_refused_for_plane_waves():
    with pytest.raises(StructureValidationError, match=r'not periodic in all directions.*gpaw is a plane-wave code'):
        validate_structure(molecule('H2O'), labeler='gpaw')
    slab = bulk('Si', 'diamond', a=5.43, cubic=True)
    slab.pbc = [True, True, False]
    with pytest.raises(StructureValidationError, match=r'pbc=\[True, True, False\]'):
        validate_structure(slab, labeler='vasp')
    validate_structure(molecule('H2O'), labeler='xtb', needs_periodic=False)


def test_periodic_structure_without_a_cell_is_refused():
    with pytest.raises(StructureValidationError, match='cell has no volume'):
        validate_structure(Atoms('Si', pbc=True), labeler='gpaw')


def test_element_sets_of_the_labelers():
    gpaw = gpaw_elements()
    assert {'H', 'Li', 'C', 'O', 'F', 'Na', 'Si', 'P'} <= gpaw  # every element of the anode and SEI systems
    assert 'U' not in gpaw
    assert labeler_elements('gpaw') == gpaw
    assert labeler_elements('xtb') == XTB_GFN1_ELEMENTS
    assert len(XTB_GFN1_ELEMENTS) == 86 and 'Rn' in XTB_GFN1_ELEMENTS and 'Fr' not in XTB_GFN1_ELEMENTS
    vasp = vasp_default_elements()
    assert {'Li', 'Si', 'C', 'Na'} <= vasp and labeler_elements('vasp') == vasp
    assert labeler_elements('vasp', {'Si': 'Si', 'Li': 'Li_sv'}) == {'Si', 'Li'}
    assert labeler_elements('castep', {'Si': 'Si_00.usp'}) == {'Si'}
    assert labeler_elements('castep', 'C19') is None
    with pytest.raises(ValueError, match='unknown labeler `qe`'):
        labeler_elements('qe')
