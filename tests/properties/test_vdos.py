"""VDOS kernel: peaks of synthetic oscillators at known frequencies, normalisation, a small EMT run, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_sianode.properties import vdos
from aiida_sianode.properties.common import InvalidPropertyInput


def test_oscillators_of_known_frequency():
    """Four atoms at 300 cm^-1 and four at 600 cm^-1 with equal kinetic energy: two peaks there, each group holding
    half of the 3 modes per atom."""
    frame_ps = 0.002
    time = np.arange(4000) * frame_ps
    rng = np.random.default_rng(0)
    velocities = np.zeros((time.size, 8, 3))
    for atom in range(8):
        wavenumber = 300.0 if atom < 4 else 600.0
        for axis in range(3):
            phase = rng.uniform(0, 2 * np.pi)
            velocities[:, atom, axis] = np.cos(2 * np.pi * wavenumber * vdos.C_CM_PER_PS * time + phase)
    groups = {'slow': range(4), 'fast': range(4, 8)}
    result = vdos.vdos_from_velocities(velocities, np.ones(8), frame_ps, smearing_cm1=5.0, groups=groups)
    frequency = np.array(result['frequency_cm1'])
    slow, fast = np.array(result['partial']['slow']), np.array(result['partial']['fast'])
    assert frequency[np.argmax(slow)] == pytest.approx(300.0, abs=result['resolution_cm1'])
    assert frequency[np.argmax(fast)] == pytest.approx(600.0, abs=result['resolution_cm1'])
    assert vdos.integrate(result['total'], frequency) == pytest.approx(3.0, rel=1e-6)
    assert vdos.integrate(slow, frequency) == pytest.approx(1.5, rel=0.02)
    assert vdos.integrate(fast, frequency) == pytest.approx(1.5, rel=0.02)
    assert result['resolution_cm1'] == pytest.approx(1 / (4000 * frame_ps) / vdos.C_CM_PER_PS)


def test_run_member_on_copper(tmp_path):
    settings = {
        'max_frequency_cm1': 800.0,
        'md': {'length_ps': 0.4, 'equilibration_ps': 0.05, 'timestep_fs': 4.0, 'trajectory_interval': 1},
    }
    atoms = bulk('Cu', 'fcc', a=3.59, cubic=True).repeat((2, 1, 1))
    result = vdos.run_member([atoms], EMT(), settings, tmp_path)
    curve = result['curves']['vdos']
    assert vdos.integrate(curve['y'], curve['x']) == pytest.approx(3.0, rel=0.03)  # Cu stays below 800 cm^-1
    assert 60 < result['scalars']['peak_frequency_cm1'] < 300  # Cu: modes up to about 240 cm^-1
    assert result['extra']['frames'] == 88  # steps 12.5 .. 100 of 4 fs frames after 0.05 ps


def test_refusals():
    atoms = bulk('Cu', 'fcc', a=3.59, cubic=True)
    with pytest.raises(InvalidPropertyInput, match=r'lower md\.trajectory_interval'):
        vdos.validate_settings({'md': {'trajectory_interval': 20}}, [atoms])
    with pytest.raises(InvalidPropertyInput, match='exactly one structure'):
        vdos.validate_settings({}, [atoms, atoms])
    with pytest.raises(InvalidPropertyInput, match='too few'):
        vdos.vdos_from_velocities(np.zeros((4, 2, 3)), [1, 1], 0.001)
