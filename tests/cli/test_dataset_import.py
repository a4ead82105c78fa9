"""``aiida-sianode dataset import``: per-file report, refusals, the group and the DatasetData it makes."""

import json

import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_sianode.cli import cmd_root
from aiida_sianode.data.dataset import DatasetData
from aiida_sianode.data.label import LabelData

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')


def invoke(*args):
    """Run the command in this process (the test profile is loaded) and return the click result."""
    return CliRunner().invoke(cmd_root, ['dataset', 'import', *map(str, args)], catch_exceptions=False)


def test_vasp_run_with_refusals_and_json(aiida_profile, fixtures_path):
    folder = fixtures_path / 'vasp' / 'aiida-vasp' / 'Si_vasp620_relax'
    result = invoke(folder, '--group', 'cli-vasp620', '--json')
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    xml, outcar = data['files']
    assert (xml['imported'], [item['frame'] for item in xml['refused']]) == (3, [0, 3])
    assert 'used all NELM = 15 electronic steps' in xml['refused'][0]['reason']
    assert outcar['imported'] == 1  # step 4: converged by the OUTCAR's word, not imported from the vasprun.xml
    assert data['group']['label'] == 'cli-vasp620' and data['group']['count'] == 4
    dataset = orm.load_node(data['dataset']['pk'])
    assert isinstance(dataset, DatasetData) and dataset.n_frames == 4
    group = orm.load_group('cli-vasp620')
    assert {node.uuid for node in group.nodes} == set(dataset.label_uuids)
    assert all(isinstance(node, LabelData) for node in group.nodes)
    # the per-file lines went to stderr, stdout holds one JSON document
    assert 'Si_vasp620_relax/vasprun.xml [vasp-xml]: 3 imported, 2 refused' in result.stderr


def test_plain_output_names_files_group_and_dataset(aiida_profile, fixtures_path):
    path = fixtures_path / 'castep' / 'aiida-castep' / 'Si-geom-stress' / 'aiida.castep'
    result = invoke(path, '--group', 'cli-castep')
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith('aiida.castep [castep-castep]: 1 imported, 90 refused')
    assert lines[1].startswith('  frames 0-89 (90): no forces: CASTEP printed none for this configuration')
    assert lines[-2].startswith('labels: 1 stored in group `cli-castep`')
    assert lines[-1].startswith('dataset: DatasetData<') and '1 frames (train 1, valid 0, test 0)' in lines[-1]


def test_nothing_stored_when_nothing_imports_or_levels_mix(aiida_profile, fixtures_path):
    before = orm.QueryBuilder().append(LabelData).count()
    unconverged = fixtures_path / 'castep' / 'matador' / 'LiC_unconverged_castep18.1.castep'
    result = invoke(unconverged)
    assert result.exit_code == 1
    assert 'CASTEP did not finish this run' in result.stdout
    assert 'no frame could be imported, nothing was stored' in result.stderr
    mixed = [fixtures_path / 'vasp' / 'aiida-vasp' / 'Si_relax' / 'vasprun.xml', fixtures_path / 'castep' / 'matador']
    result = invoke(*mixed)
    assert result.exit_code == 1
    assert 'the frames have different levels of theory, nothing was stored' in result.stderr
    assert 'cutoff_ev: 350 != 400' in result.stderr
    assert orm.QueryBuilder().append(LabelData).count() == before
    result = invoke(*mixed, '--allow-mixed', '--json')
    assert result.exit_code == 0
    assert json.loads(result.stdout)['dataset']['mixed'] is True


def test_bad_input_is_refused_before_reading(aiida_profile, fixtures_path, tmp_path):
    training = fixtures_path / 'datasets' / 'mlearn_Si_Li' / 'Si' / 'test.extxyz'
    result = invoke(training)
    assert result.exit_code == 1 and 'extxyz files carry no level of theory' in result.stderr
    (tmp_path / 'notes.txt').write_text('x')
    result = invoke(tmp_path / 'notes.txt')
    assert result.exit_code == 1 and 'cannot tell the format' in result.stderr


def test_virial_key_converts_the_libatoms_virial(aiida_profile, tmp_path):
    """Two EMT Cu frames written with a virial (eV) and no stress: the labels hold -virial / volume, EMT's stress."""
    import ase.io
    import numpy as np
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.stress import voigt_6_to_full_3x3_stress

    frames, stresses = [], []
    for a in (3.55, 3.65):
        atoms = bulk('Cu', 'fcc', a=a, cubic=True)
        atoms.calc = EMT()
        stress = voigt_6_to_full_3x3_stress(atoms.get_stress())
        frame = atoms.copy()
        frame.info.update(energy=atoms.get_potential_energy(), virial=-stress * atoms.get_volume())
        frame.arrays['forces'] = atoms.get_forces()
        frames.append(frame)
        stresses.append(stress)
    ase.io.write(tmp_path / 'cu.extxyz', frames, format='extxyz')
    common = (tmp_path / 'cu.extxyz', '--level-of-theory', 'EMT', '--virial-key', 'virial')
    both = invoke(*common, '--stress-key', 's')
    assert both.exit_code == 1 and 'not both' in both.stderr
    result = invoke(*common, '--group', 'cu-virial', '--valid-fraction', '0.5')
    assert result.exit_code == 0, result.output
    labels = sorted(orm.load_group('cu-virial').nodes, key=lambda label: label.source['frame'])
    for label, stress in zip(labels, stresses):
        assert np.allclose(label.stress, stress, rtol=0, atol=1e-12)
    assert labels[0].stress[0, 0] < 0 < labels[1].stress[0, 0]  # compressed, then stretched (EMT a0 = 3.59 Å)


def test_mlearn_test_set_with_a_level_of_theory_file(aiida_profile, fixtures_path, tmp_path):
    record = tmp_path / 'mlearn.yaml'
    record.write_text('code: vasp\nmethod: PBE\ndescription: mlearn Si, Zuo et al. J. Phys. Chem. A 124, 731 (2020)\n')
    path = fixtures_path / 'datasets' / 'mlearn_Si_Li' / 'Si' / 'test.extxyz'
    args = (path, '--energy-key', 'dft_energy', '--forces-key', 'dft_forces', '--level-of-theory', record, '--json')
    result = invoke(*args, '--group', 'mlearn-si-test', '--valid-fraction', '0.2')
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data['imported'] == 25 and data['dataset']['n_frames'] == 25
    assert data['dataset']['split_counts']['valid'] == 5
    labels = sorted(orm.load_group('mlearn-si-test').nodes, key=lambda label: label.source['frame'])
    # test.extxyz line 2: dft_energy=... of the first frame
    first_line = path.read_text().splitlines()[1]
    energy = float(first_line.split('dft_energy=')[1].split()[0])
    assert labels[0].energy == pytest.approx(energy, abs=1e-8)
    assert labels[0].level_of_theory['method'] == 'PBE' and labels[0].level_of_theory['code'] == 'vasp'


@pytest.mark.slow
def test_mlearn_si_training_set_gives_214_labels(aiida_profile, fixtures_path):
    path = fixtures_path / 'datasets' / 'mlearn_Si_Li' / 'Si' / 'training.extxyz'
    result = invoke(
        path, '--energy-key', 'dft_energy', '--forces-key', 'dft_forces', '--level-of-theory', 'VASP PBE (mlearn Si)',
        '--group', 'mlearn-si-training', '--json',
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data['imported'] == 214 and data['refused'] == 0 and data['dataset']['n_frames'] == 214
    energies = {label.source['frame']: label.energy for label in orm.load_group('mlearn-si-training').nodes}
    assert len(energies) == 214
    # training.extxyz line 2 (frame 0) and line 13597 (frame 213): dft_energy=-295.4975301600, -347.2207025400
    assert energies[0] == pytest.approx(-295.49753016, abs=1e-8)
    assert energies[213] == pytest.approx(-347.22070254, abs=1e-8)
