"""Tests of the label engine (no AiiDA): forces and stress against finite differences, statuses, parameters.

Finite differences: ``F = -dE/dx`` and ``σ_xx = (1/V) dE/dε_xx`` of the *free* energy (the variational
quantity with smearing). For GPAW the plain central difference with h = 0.01 Å is not accurate enough by itself:
its truncation error, -h²/6 ∂³F/∂x³, was measured at about 4e-3 eV/Å for displaced Si2 (1.1e-3 at h = 0.005,
1.6e-2 at h = 0.02, i.e. it scales as h²). The Richardson combination of h and 2h, ``(4 D(h) - D(2h)) / 3``,
cancels the h² term; what remains (h⁴ terms, SCF noise at the tight criteria used) was measured below 5e-4 eV/Å,
so the test asks for 1e-3 eV/Å. For GFN1-xTB on rattled Si8 the plain central difference at h = 0.01 Å is off by
up to 5e-4 eV/Å (truncation again, 2.5e-3 at h = 0.02); Richardson brings it to 1.2e-4 and 4e-6 eV/Å for the two
components tested, independent of the SCF accuracy (0.01 and 0.001 agree to 1e-8), so the test asks for 3e-4 eV/Å.
"""

import json

import numpy as np
import pytest
from ase.build import bulk, molecule

from aiida_sianode.common import level_of_theory as lot
from aiida_sianode.engines import label as engine

GPAW_TIGHT = {
    'cutoff_ev': 300.0,
    'kpoint_density': 0.8,  # 2x2x2 for Si2
    'convergence': {'energy': 1e-7, 'density': 1e-7, 'eigenstates': 1e-11},
}


def si2_rattled():
    """Two-atom silicon with atom 1 moved off its site."""
    atoms = bulk('Si', 'diamond', a=5.43)
    atoms.positions[1] += [0.07, -0.04, 0.05]
    return atoms


def free_energy(atoms, labeler, parameters, workdir):
    results = engine.label(atoms, labeler, parameters, workdir)
    assert results['status'] == 'ok', results['error']
    return results['free_energy']


def central_force(atoms, labeler, parameters, workdir, atom, axis, h):
    energies = []
    for sign in (1, -1):
        displaced = atoms.copy()
        displaced.positions[atom, axis] += sign * h
        energies.append(free_energy(displaced, labeler, parameters, workdir))
    return -(energies[0] - energies[1]) / (2 * h)


def richardson_force(atoms, labeler, parameters, workdir, atom, axis, h=0.01):
    """Central differences at h and 2h combined to cancel the h² truncation error."""
    d_h = central_force(atoms, labeler, parameters, workdir, atom, axis, h)
    d_2h = central_force(atoms, labeler, parameters, workdir, atom, axis, 2 * h)
    return (4 * d_h - d_2h) / 3, d_h


def central_stress_xx(atoms, labeler, parameters, workdir, eps=1e-3):
    energies = []
    for sign in (1, -1):
        strained = atoms.copy()
        strain = np.eye(3)
        strain[0, 0] += sign * eps
        strained.set_cell(atoms.cell[:] @ strain, scale_atoms=True)
        energies.append(free_energy(strained, labeler, parameters, workdir))
    return (energies[0] - energies[1]) / (2 * eps) / atoms.get_volume()


@pytest.mark.slow
def test_gpaw_forces_and_stress_are_derivatives_of_the_energy(tmp_path):
    atoms = si2_rattled()
    results = engine.label(atoms, 'gpaw', GPAW_TIGHT, tmp_path)
    assert results['status'] == 'ok'
    assert results['scf']['kpoint_mesh'] == [2, 2, 2]
    forces, stress = np.array(results['forces']), np.array(results['stress'])
    assert abs(forces[1, 0]) > 0.5

    richardson, d_h = richardson_force(atoms, 'gpaw', GPAW_TIGHT, tmp_path, 1, 0)
    assert forces[1, 0] == pytest.approx(richardson, abs=1e-3)
    # the plain central difference is off by its truncation error, in the direction and size measured
    assert abs(forces[1, 0] - d_h) < 1e-2
    # momentum conservation: plane waves have no egg-box effect on the total force
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-3)

    # stress: the strain derivative at fixed cutoff; agreement 2e-4 eV/Å^3 (30 MPa), measured 3e-5
    assert stress[0, 0] == pytest.approx(central_stress_xx(atoms, 'gpaw', GPAW_TIGHT, tmp_path), abs=2e-4)
    assert lot.contradictions(results['level_of_theory'], results['reported_level_of_theory']) == []


def test_xtb_forces_and_stress_are_derivatives_of_the_energy(tmp_path):
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(0.05, seed=4)
    parameters = {'accuracy': 0.01}
    results = engine.label(atoms, 'xtb', parameters, tmp_path)
    forces, stress = np.array(results['forces']), np.array(results['stress'])
    for atom, axis in ((0, 0), (5, 2)):
        richardson, _ = richardson_force(atoms, 'xtb', parameters, tmp_path, atom, axis)
        assert forces[atom, axis] == pytest.approx(richardson, abs=3e-4)
    assert stress[0, 0] == pytest.approx(central_stress_xx(atoms, 'xtb', parameters, tmp_path), abs=1e-5)


def test_xtb_molecule_has_no_stress(tmp_path):
    results = engine.label(molecule('CH4'), 'xtb', {}, tmp_path)
    assert results['status'] == 'ok'
    assert results['stress'] is None
    assert len(results['forces']) == 5
    assert results['level_of_theory']['method'] == 'GFN1-xTB'
    assert results['code_version'].startswith('tblite ')
    # what the calculator ran with: GFN1-xTB at 300 K = 25.85 meV of Fermi smearing, as recorded
    reported = results['reported_level_of_theory']
    assert reported['method'] == 'GFN1-xTB'
    assert reported['smearing'] == {'type': 'fermi-dirac', 'width_ev': pytest.approx(0.025852, abs=1e-6)}
    assert lot.contradictions(results['level_of_theory'], reported) == []


def test_gpaw_scf_not_converged_is_a_status_not_a_crash(tmp_path):
    results = engine.label(si2_rattled(), 'gpaw', {'cutoff_ev': 200.0, 'kpoint_density': None, 'maxiter': 2}, tmp_path)
    assert results['status'] == 'scf_not_converged'
    assert 'did not converge in 2 iterations' in results['error']
    assert results['energy'] is None and results['forces'] is None
    assert results['scf']['converged'] is False
    # GPAW's log states what it set up: 200 eV, Γ only, Marzari-Vanderbilt 0.1 eV, no spin, as the record says
    reported = engine.gpaw_reported_level_of_theory(tmp_path / engine.GPAW_LOG_FILENAME, 'PBE')
    expected = {'type': 'marzari-vanderbilt', 'width_ev': 0.1}
    assert (reported['cutoff_ev'], reported['kpoints_mesh'], reported['spin']) == (200.0, [1, 1, 1], False)
    assert reported['smearing'] == expected
    assert lot.contradictions(results['level_of_theory'], reported) == []
    assert lot.contradictions({**results['level_of_theory'], 'cutoff_ev': 400.0}, reported) == [
        'cutoff_ev: the label records 400, the code ran with 200'
    ]


def test_xtb_scf_not_converged_is_a_status(tmp_path):
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(0.05, seed=1)
    results = engine.label(atoms, 'xtb', {'max_iterations': 1}, tmp_path)
    assert results['status'] == 'scf_not_converged'
    assert 'SCF not converged in 1 cycles' in results['error']


def test_a_failure_of_the_code_is_a_status(tmp_path):
    """tblite has no parameters beyond radon: the engine reports its error instead of crashing."""
    from ase import Atoms

    results = engine.label(Atoms('U2', positions=[[0, 0, 0], [0, 0, 2.5]]), 'xtb', {}, tmp_path)
    assert results['status'] == 'calculation_failed'
    assert 'No support for elements with Z >86' in results['error']
    assert results['energy'] is None


def test_invalid_parameters_give_invalid_input(tmp_path):
    results = engine.label(si2_rattled(), 'gpaw', {'cutoff': 300}, tmp_path)
    assert results['status'] == 'invalid_input'
    assert 'unknown parameter `cutoff` for gpaw' in results['error']


@pytest.mark.parametrize(
    ('labeler', 'parameters', 'message'),
    [
        ('vasp', {}, 'unknown labeler `vasp`'),
        ('gpaw', {'cutoff_ev': -1}, '`cutoff_ev` must be positive'),
        ('gpaw', {'cutoff_ev': True}, '`cutoff_ev` must be a number, got a boolean'),
        ('gpaw', {'kpoint_density': 'dense'}, '`kpoint_density` must be of type int, float, null'),
        ('gpaw', {'smearing': {'type': 'fermi-dirac'}}, 'needs exactly the keys type and width_ev'),
        ('gpaw', {'smearing': {'type': 'fermi-dirac', 'width_ev': 0}}, 'smearing `width_ev` must be positive'),
        ('gpaw', {'convergence': {'forces': -1}}, 'criterion `forces` must be a positive number'),
        ('gpaw', {'convergence': {'bands': 1}}, 'unknown convergence criterion `bands`'),
        ('gpaw', {'maxiter': 2.5}, '`maxiter` must be of type int'),
        ('xtb', {'cutoff_ev': 300}, 'unknown parameter `cutoff_ev` for xtb'),
        ('xtb', {'mixer_damping': 0}, '`mixer_damping` must be positive'),
    ],
)
def test_parameter_validation(labeler, parameters, message):
    problems = engine.validate_parameters(labeler, parameters)
    assert any(message in problem for problem in problems), problems


def test_defaults_are_complete_and_valid():
    for labeler in engine.LABELERS:
        completed = engine.complete_parameters(labeler, {})
        assert set(completed) == set(engine.PARAMETERS[labeler])
        assert engine.validate_parameters(labeler, completed) == []


def test_kpoint_mesh_follows_the_density():
    """N_i = ceil(2π |b_i| density): cubic Si8 (a = 5.43 Å) at 2.5/Å gives 3, at 1.5/Å 2, Γ only for None."""
    cubic = bulk('Si', 'diamond', a=5.43, cubic=True)
    assert engine.gpaw_kpoint_mesh(cubic, 2.5) == [3, 3, 3]
    assert engine.gpaw_kpoint_mesh(cubic, 1.5) == [2, 2, 2]
    assert engine.gpaw_kpoint_mesh(cubic, None) == [1, 1, 1]
    assert engine.gpaw_kpoint_mesh(cubic.repeat((2, 2, 2)), 1.5) == [1, 1, 1]
    slab = cubic.copy()
    slab.pbc = [True, True, False]
    assert engine.gpaw_kpoint_mesh(slab, 2.5) == [3, 3, 1]


def test_main_reads_input_and_writes_results(tmp_path):
    import ase.io

    atoms = molecule('H2O')
    ase.io.write(tmp_path / 'structure.extxyz', atoms, format='extxyz')
    (tmp_path / 'input.json').write_text(json.dumps({'labeler': 'xtb', 'parameters': {'accuracy': 0.1}}))
    assert engine.main([str(tmp_path / 'input.json')]) == 0
    results = json.loads((tmp_path / 'results.json').read_text())
    assert results['status'] == 'ok'
    assert results['natoms'] == 3
    assert results['formula'] == 'H2O'
    assert results['parameters']['accuracy'] == 0.1
    assert results['wall_time_s'] > 0


def test_main_reports_an_unreadable_input(tmp_path):
    (tmp_path / 'input.json').write_text(json.dumps({'labeler': 'xtb'}))  # no structure file
    assert engine.main([str(tmp_path / 'input.json')]) == 0
    results = json.loads((tmp_path / 'results.json').read_text())
    assert results['status'] == 'invalid_input'
    assert 'cannot read the input' in results['error']
