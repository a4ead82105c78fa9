"""Phonons kernel: EMT copper (stable, three acoustic modes at zero), the reference path, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_sianode.properties import phonons
from aiida_sianode.properties.common import InvalidPropertyInput

SETTINGS = {'supercell': [2, 2, 2], 'band_points': 11, 'mesh_density': 20.0, 'temperatures_k': [0.0, 600.0, 50.0]}


@pytest.fixture(scope='module')
def copper_result(tmp_path_factory):
    """EMT Cu, conventional cell (4 atoms) at EMT's own lattice constant, 2x2x2 supercell (32 atoms)."""
    atoms = bulk('Cu', 'fcc', a=3.59, cubic=True)
    workdir = tmp_path_factory.mktemp('phonons')
    return phonons.run_member([atoms], EMT(), SETTINGS, workdir), workdir


def test_copper_is_stable_with_three_acoustic_modes_at_gamma(copper_result):
    result, workdir = copper_result
    extra, scalars = result['extra'], result['scalars']
    assert extra['n_primitive_atoms'] == 1 and extra['primitive_formula'] == 'Cu'
    assert extra['n_displacements'] == 1  # fcc: one symmetry-distinct displacement
    gamma = np.array(extra['gamma_frequencies_cm1'])
    assert gamma.shape == (3,)
    np.testing.assert_allclose(gamma, 0.0, atol=0.5)  # acoustic sum rule
    assert scalars['min_frequency_cm1'] > -1.0  # no imaginary mode anywhere
    assert 150 < scalars['max_frequency_cm1'] < 330  # Cu: about 240 cm^-1 (7.2 THz) measured
    bands = np.array(extra['band_structure']['frequencies_cm1'])
    assert bands.shape[0] == 3 and bands.shape[1] == len(extra['band_structure']['distances'])
    assert extra['band_structure']['labels'][0] in ('$\\Gamma$', 'GAMMA', 'Γ')
    assert (workdir / 'band_structure.png').is_file()
    # Dulong-Petit: C_v of one mole of Cu atoms tends to 3R = 24.94 J/K/mol at high temperature
    assert result['curves']['heat_capacity']['y'][-1] == pytest.approx(24.94, rel=0.03)
    assert result['curves']['heat_capacity']['y'][0] == pytest.approx(0.0, abs=1e-6)
    dos = result['curves']['dos']
    integral = np.trapezoid(dos['y'], dos['x']) if hasattr(np, 'trapezoid') else np.trapz(dos['y'], dos['x'])
    assert integral == pytest.approx(3.0, rel=0.05)  # three branches per primitive cell


def test_reference_from_labelled_configurations_matches_the_member(copper_result):
    """Labelling the reference configurations with the same calculator gives the member's result back."""
    member, _ = copper_result
    atoms = bulk('Cu', 'fcc', a=3.59, cubic=True)
    labelled = []
    for configuration in phonons.reference_configurations([atoms], SETTINGS):
        forces = EMT().get_forces(configuration)
        configuration.calc = SinglePointCalculator(configuration, forces=forces)
        labelled.append(configuration)
    assert len(labelled) == 2 and len(labelled[0]) == 32
    reference = phonons.reference_result(labelled, SETTINGS)
    for key in ('max_frequency_cm1', 'gamma_acoustic_max_abs_cm1', 'heat_capacity_300k_j_k_mol'):
        assert reference['scalars'][key] == pytest.approx(member['scalars'][key], rel=1e-6, abs=1e-6)
    aggregate = phonons.aggregate([member, member])
    assert aggregate['scalars']['max_frequency_cm1']['std'] == pytest.approx(0.0)
    np.testing.assert_allclose(aggregate['band_structure']['std'], 0.0, atol=1e-12)


def test_refusals():
    atoms = bulk('Cu', 'fcc', a=3.59, cubic=True)
    with pytest.raises(InvalidPropertyInput, match='periodic'):
        phonons.validate_settings({}, [Atoms('Cu2', positions=[[0, 0, 0], [0, 0, 2.5]])])
    with pytest.raises(InvalidPropertyInput, match='`displacement_a`'):
        phonons.validate_settings({'displacement_a': 0.5}, [atoms])
    with pytest.raises(InvalidPropertyInput, match='`supercell`'):
        phonons.validate_settings({'supercell': [2, 0, 2]}, [atoms])
    with pytest.raises(InvalidPropertyInput, match='2000'):
        phonons.validate_settings({'supercell': [10, 10, 10]}, [atoms])
    with pytest.raises(InvalidPropertyInput, match='`relax`'):
        phonons.validate_settings({'relax': 'full'}, [atoms])
    assert phonons.supercell_matrix(atoms, phonons.normalise_settings({})).tolist() == np.diag([3, 3, 3]).tolist()
