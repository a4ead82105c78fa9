"""``aiida-sianode presample``: a real a-C melt-quench through the command line, and early refusal of bad input."""

from __future__ import annotations

import json

import pytest
from ase.io import read
from click.testing import CliRunner

from aiida_sianode.cli.presample import cmd_presample


def invoke(*args):
    return CliRunner().invoke(cmd_presample, [str(arg) for arg in args], catch_exceptions=False)


def test_impossible_density_is_refused_before_running(aiida_profile):
    """a-Si asked at 3.5 g/cm^3 (the random-cell builder takes 1.0-3.0): exit 1 with the reason, no process."""
    from aiida import orm

    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    result = invoke('--material', 'a-si', '--density', 3.5, '--json')
    assert result.exit_code == 1
    assert json.loads(result.stdout)['error'] == 'cannot build the starting cell: density must be <= 3.0, got 3.5'
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_missing_code_is_reported(aiida_profile):
    """An unknown code label names the fix."""
    result = invoke('--material', 'a-c', '--code', 'no-such-lammps@localhost')
    assert result.exit_code == 1
    assert 'aiida-sianode setup' in result.stderr


@pytest.mark.slow
def test_amorphous_carbon_at_fixed_density(aiida_profile, lammps_code, tmp_path):
    """64 C at 2.5 g/cm^3, Tersoff, quench at 100 K/ps: an sp2-rich network with some sp3, density kept.

    Measured on the development machine (seed 12345): sp2 0.875, sp3 0.125, mean coordination 3.125; another
    random start gave sp2 0.844 and sp3 0.156 at both 100 and 10 K/ps.
    """
    output = tmp_path / 'a-c.extxyz'
    result = invoke(
        '--material', 'a-c', '--natoms', 64, '--density', 2.5, '--protocol', 'fast', '--code', lammps_code.full_label,
        '-o', output, '--json',
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary['density_g_cm3'] == pytest.approx(2.5, abs=1e-3)
    assert summary['coordination_cutoffs'] == {'C-C': 1.85}
    assert summary['quench_rate_k_per_ps'] == 100.0
    hybridisation = summary['hybridisation']
    assert hybridisation['sp2'] >= 0.6
    assert 0.03 <= hybridisation['sp3'] <= 0.35
    assert hybridisation['sp'] <= 0.1
    assert 3.0 <= summary['mean_coordination'] <= 3.35
    atoms = read(output)
    assert len(atoms) == 64
    assert atoms.info['structure_uuid'] == summary['structure']['uuid']
    assert atoms.info['mean_coordination'] == pytest.approx(summary['mean_coordination'])


@pytest.mark.parametrize('as_json', [False, True])
def test_failed_melt_quench_exits_1(aiida_profile, failing_code, as_json):
    """LAMMPS exits 1 at once: the work chain fails and the command exits 1 naming its exit status."""
    code = failing_code('lammps.base')
    extra = ['--json'] if as_json else []
    result = invoke('--material', 'a-si', '--natoms', 8, '--protocol', 'fast', '--code', code.full_label, *extra)
    assert result.exit_code == 1, result.output
    message = json.loads(result.stdout)['error'] if as_json else result.stderr
    assert 'failed with exit status' in message
