"""Tests of ``aiida-sianode label``: JSON output, refusals before anything runs, agreement with a direct GPAW call."""

import json
import os
import pathlib
import subprocess
import sys

import ase.io
import numpy as np
import pytest
from aiida import orm
from ase import Atoms
from ase.build import bulk, molecule
from click.testing import CliRunner

from aiida_sianode.cli import cmd_root

EXECUTABLE = str(pathlib.Path(sys.executable).parent / 'aiida-sianode')
ROW_KEYS = {'formula', 'natoms', 'energy_ev', 'max_force_ev_per_a', 'label_pk', 'process_pk', 'status', 'forces'}


def invoke(*args):
    return CliRunner().invoke(cmd_root, list(args), catch_exceptions=False)


def test_xtb_json_output_has_every_field(aiida_profile, label_code, tmp_path):
    """Two frames of one file and a molecule from another: three labels, one JSON document."""
    crystal = bulk('Si', 'diamond', a=5.43)
    frames = [crystal, crystal.copy()]
    frames[1].positions[1] += [0.05, 0.0, 0.0]
    ase.io.write(tmp_path / 'si.extxyz', frames)
    ase.io.write(tmp_path / 'water.xyz', molecule('H2O'))

    result = invoke('label', '--labeler', 'xtb', '--json', str(tmp_path / 'si.extxyz'), str(tmp_path / 'water.xyz'))
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document['labeler'] == 'xtb'
    assert document['protocol'] == 'balanced'
    rows = document['structures']
    expected = [('Si2', 2, 0), ('Si2', 2, 1), ('H2O', 3, 0)]
    assert [(row['formula'], row['natoms'], row['frame']) for row in rows] == expected
    for row in rows:
        assert ROW_KEYS <= set(row)
        assert row['status'] == 'finished' and row['exit_status'] == 0
        label = orm.load_node(row['label_pk'])
        assert label.energy == pytest.approx(row['energy_ev'])
        assert label.max_force == pytest.approx(row['max_force_ev_per_a'])
        assert label.creator.caller.pk == row['process_pk']
    assert rows[0]['max_force_ev_per_a'] < 1e-3  # the perfect crystal has no forces
    assert rows[1]['max_force_ev_per_a'] > 0.1
    assert rows[2]['stress'] is None


def test_bad_structures_stop_everything_before_it_runs(aiida_profile, label_code, tmp_path):
    good = bulk('Si', 'diamond', a=5.43)
    close = Atoms('Si2', positions=[[0, 0, 0], [0.2, 0, 0]], cell=[5, 5, 5], pbc=True)
    ase.io.write(tmp_path / 'mixed.extxyz', [good, close])
    ase.io.write(tmp_path / 'water.xyz', molecule('H2O'))
    before = orm.QueryBuilder().append(orm.ProcessNode).count()

    result = invoke('label', '--labeler', 'gpaw', '--json', str(tmp_path / 'mixed.extxyz'), str(tmp_path / 'water.xyz'))
    assert result.exit_code == 1
    error = json.loads(result.stdout)['error']
    assert 'nothing was run' in error
    assert 'mixed.extxyz frame 1: atoms 0 and 1 (Si-Si) are 0.200 Å apart' in error
    assert 'water.xyz frame 0: the structure is not periodic in all directions' in error
    assert 'mixed.extxyz frame 0' not in error
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_missing_code_and_unreadable_file_are_explained(aiida_profile, tmp_path):
    ase.io.write(tmp_path / 'si.extxyz', bulk('Si', 'diamond', a=5.43))
    result = invoke('label', '--labeler', 'xtb', '--code', 'nowhere@localhost', '--json', str(tmp_path / 'si.extxyz'))
    assert result.exit_code == 1
    assert 'code `nowhere@localhost` not found' in json.loads(result.stdout)['error']
    assert 'aiida-sianode setup' in json.loads(result.stdout)['error']

    (tmp_path / 'junk.xyz').write_text('this is not\nan xyz file\n')
    result = invoke('label', '--labeler', 'xtb', str(tmp_path / 'junk.xyz'))
    assert result.exit_code == 1
    assert 'cannot read' in result.stderr and 'junk.xyz' in result.stderr

    result = invoke('label', '--labeler', 'xtb', '--protocol', 'precise', str(tmp_path / 'si.extxyz'))
    assert result.exit_code == 2
    assert "'precise' is not one of 'fast', 'balanced', 'stringent'" in result.stderr


def lixsi_cell():
    """Cubic Si8 with one Li in the tetrahedral interstitial site, all atoms rattled: LiSi8, 9 atoms."""
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms += Atoms('Li', scaled_positions=[[0.5, 0.5, 0.5]], cell=atoms.cell)
    atoms.rattle(0.03, seed=7)
    return atoms


@pytest.mark.slow
def test_gpaw_json_agrees_with_direct_ase_gpaw(tmp_path):
    """The real command in a fresh profile: stdout is one JSON document, and the labels of Si8 and LiSi8 at the fast
    protocol equal ASE+GPAW called by hand with the same settings to 1 meV and 1 meV/Å."""
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path), 'OMP_NUM_THREADS': '1'}

    def run(*args):
        return subprocess.run([EXECUTABLE, *args], capture_output=True, text=True, env=env, check=False, timeout=900)

    assert run('setup', '--json').returncode == 0
    si8 = bulk('Si', 'diamond', a=5.43, cubic=True)
    si8.rattle(0.03, seed=5)
    structures = {'si8.extxyz': si8, 'lisi8.cif': lixsi_cell()}
    for name, atoms in structures.items():
        ase.io.write(tmp_path / name, atoms)

    result = run('label', '--labeler', 'gpaw', '--protocol', 'fast', '--json', *(str(tmp_path / n) for n in structures))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # nothing but the document on stdout
    assert 'launching LocalLabelCalculation' in result.stderr  # AiiDA's report lines went to stderr
    rows = document['structures']
    assert [row['formula'] for row in rows] == ['Si8', 'LiSi8']

    from gpaw import GPAW, PW

    for row, atoms in zip(rows, structures.values()):
        assert row['status'] == 'finished'
        assert row['level_of_theory']['cutoff_ev'] == 300
        atoms = ase.io.read(tmp_path / row['file'])
        atoms.calc = GPAW(
            mode=PW(300.0),
            xc='PBE',
            kpts={'size': (2, 2, 2), 'gamma': True},
            occupations={'name': 'marzari-vanderbilt', 'width': 0.1},
            maxiter=300,
            txt=None,
        )
        assert row['energy_ev'] == pytest.approx(atoms.get_potential_energy(), abs=1e-3)
        np.testing.assert_allclose(row['forces'], atoms.get_forces(), atol=1e-3)
        assert row['max_force_ev_per_a'] > 0.05


def test_table_prints_energies_to_the_mev(capsys):
    """A 64-atom Si cell at -3193.456789 eV: the table shows -3193.457 eV and -49.8978 eV/atom, not -3193."""
    from aiida_sianode.cli.label import echo_label_table

    rows = [
        {
            'file': 'si64.extxyz',
            'frame': frame,
            'formula': 'Si64',
            'natoms': 64,
            'energy_ev': energy,
            'max_force_ev_per_a': 0.0123456,
            'label_pk': 10 + frame,
            'process_pk': 20 + frame,
            'status': 'finished',
            'exit_status': 0,
        }
        for frame, energy in enumerate([-3193.456789, -3193.4551])
    ]
    rows.append({**rows[0], 'frame': 2, 'energy_ev': None, 'label_pk': None, 'status': 'failed', 'exit_status': 410})
    echo_label_table(rows)
    lines = capsys.readouterr().out.splitlines()
    assert 'E/atom (eV)' in lines[0]
    first, second, failed = (line.split() for line in lines[2:5])
    assert first[4:7] == ['-3193.457', '-49.8978', '0.012']
    assert second[4:6] == ['-3193.455', '-49.8977']  # frames 1.7 meV apart are told apart
    assert failed[-2:] == ['failed', '410'] and '-3193' not in ' '.join(failed)
