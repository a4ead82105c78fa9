"""Tests of ``aiida_sianode.data.importers``: every fixture file read into labels, the refusals and their reasons.

Every expected number was copied by eye from the fixture file (the line is named). For ``vasprun.xml`` the energy is
VASP's energy(sigma->0), which VASP 5 writes as the ``e_0_energy`` of the last ``<scstep>`` (its ``<calculation>``
level ``e_0_energy`` holds another number, a VASP bug ASE works around); for OUTCAR it is the ``energy(sigma->0)`` of
the ``energy  without entropy=`` line closing each ionic step. CASTEP's ``.geom``/``.md`` files are in Hartree,
converted with CASTEP's own constant (CODATA 2002, as ASE's reader does).
"""

import json

import numpy as np
import pytest
from ase.io.castep import units_CODATA2002
from ase.units import GPa

from aiida_sianode.common import level_of_theory as lot
from aiida_sianode.common.level_of_theory import castep_level_of_theory, read_level_of_theory
from aiida_sianode.data.importers import CASTEP_TRAJECTORY_ENERGY, detect_format, import_files

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')

#: eV per Hartree as CASTEP converts (CODATA 2002)
HARTREE = units_CODATA2002['Eh']


@pytest.fixture(scope='module')
def vasp(fixtures_path):
    return fixtures_path / 'vasp' / 'aiida-vasp'


@pytest.fixture(scope='module')
def castep(fixtures_path):
    return fixtures_path / 'castep'


def refusals(report_file):
    return {refusal.frame: refusal.reason for refusal in report_file.refused}


def test_formats_from_names():
    names = {
        'training.extxyz': 'extxyz',
        'a.xyz': 'extxyz',
        'vasprun.xml': 'vasp-xml',
        'vasprun_relax.xml': 'vasp-xml',
        'OUTCAR': 'vasp-out',
        'OUTCAR.converged': 'vasp-out',
        'si8-md.castep': 'castep-castep',
        'aiida.geom': 'castep-geom',
        'si8-md.md': 'castep-md',
        'POSCAR': None,
    }
    assert {name: detect_format(name) for name in names} == names


def test_mlearn_si_training_set(aiida_profile, fixtures_path):
    path = fixtures_path / 'datasets' / 'mlearn_Si_Li' / 'Si' / 'training.extxyz'
    report = import_files(path, energy_key='dft_energy', forces_key='dft_forces', level_of_theory='VASP PBE (mlearn)')
    (found,) = report.files
    assert (found.frames_found, found.n_imported, found.refused) == (214, 214, [])
    labels = report.labels
    # line 2: dft_energy=-295.4975301600 config_type=Vacancy, 63 atoms; line 3: first atom's dft_forces
    assert labels[0].energy == pytest.approx(-295.49753016, abs=1e-8)
    assert labels[0].natoms == 63 and labels[0].config_type == 'Vacancy'
    assert np.allclose(labels[0].forces[0], [-2.98187262, 0.60691870, 3.48143607])
    # line 13597 (the last frame): dft_energy=-347.2207025400 config_type=Elastic, "Ground state crystal"
    assert labels[-1].energy == pytest.approx(-347.22070254, abs=1e-8) and labels[-1].config_type == 'Elastic'
    counts = {kind: sum(label.config_type == kind for label in labels) for kind in ('AIMD-NVT', 'Elastic')}
    assert counts == {'AIMD-NVT': 90, 'Elastic': 55}  # grep -c of config_type=... in the file
    assert all(label.stress is None for label in labels)  # the raw mlearn virial is not read as a stress
    assert labels[5].source == {
        'kind': 'file',
        'filename': str(path),
        'sha256': '37f3f7777774f4438db0d1365449626c741a7ce132fdbbf5e93b0d4764684ad1',
        'frame': 5,
        'format': 'extxyz',
    }
    assert labels[0].level_of_theory == {'code': 'unspecified', 'description': 'VASP PBE (mlearn)'}
    assert report.mixed_levels_of_theory() == []


def test_extxyz_without_keys_or_level_of_theory(fixtures_path, tmp_path):
    path = fixtures_path / 'datasets' / 'mlearn_Si_Li' / 'Si' / 'test.extxyz'
    with pytest.raises(ValueError, match='extxyz files carry no level of theory'):
        import_files(path)
    report = import_files(path, level_of_theory='x')
    (found,) = report.files
    assert found.n_imported == 0 and len(found.refused) == 25
    assert 'no energy under `energy` (keys present: config_type, description, dft_energy' in found.refused[0].reason
    report = import_files(path, energy_key='dft_energy', level_of_theory='x')
    assert 'no forces under `forces` (per-atom arrays present: dft_forces)' in report.files[0].refused[0].reason
    # a file cut in the middle of a frame keeps the whole frames before it
    lines = path.read_text().splitlines(keepends=True)
    natoms = int(lines[0])
    cut = tmp_path / 'cut.extxyz'
    cut.write_text(''.join(lines[: 2 * (natoms + 2) + 10]))
    report = import_files(cut, energy_key='dft_energy', forces_key='dft_forces', level_of_theory='x')
    (found,) = report.files
    assert found.n_imported == 2
    assert found.refused[0].frame == 2 and 'unreadable from here to the end of the file' in found.refused[0].reason


def test_level_of_theory_from_a_file(tmp_path):
    record = {'code': 'vasp', 'method': 'PBE', 'cutoff_ev': 520, 'kpoint_spacing': 0.35}
    (tmp_path / 'lot.json').write_text(json.dumps(record))
    (tmp_path / 'lot.yaml').write_text('code: vasp\nmethod: PBE\ncutoff_ev: 520\nkpoint_spacing: 0.35\n')
    assert read_level_of_theory(tmp_path / 'lot.json') == record == read_level_of_theory(str(tmp_path / 'lot.yaml'))
    (tmp_path / 'bad.yaml').write_text('method: PBE\n')
    with pytest.raises(ValueError, match='needs at least the key `code`'):
        read_level_of_theory(tmp_path / 'bad.yaml')
    with pytest.raises(ValueError, match='does not exist'):
        read_level_of_theory(tmp_path / 'missing.yaml')


def test_vasprun_relaxation(vasp):
    report = import_files(vasp / 'Si_relax' / 'vasprun.xml')
    (found,) = report.files
    assert (found.n_imported, found.refused, found.notes) == (19, [], [])
    labels = report.labels
    assert labels[0].energy == pytest.approx(-42.91113348, abs=1e-8)  # line 727, last scstep of step 1
    assert labels[-1].energy == pytest.approx(-43.39087657, abs=1e-8)  # line 2553, last scstep of step 19
    assert np.allclose(labels[0].forces[0], [-0.24263208, 0.0, 0.0], rtol=0, atol=1e-8)  # line 755
    assert labels[0].natoms == 8 and labels[0].stress.shape == (3, 3)
    record = labels[0].level_of_theory
    # lines 18 (ENCUT 350), 187-188 (ISMEAR 0, SIGMA 0.2), 335 (GGA --, so the PAW_PBE POTCAR decides)
    assert record['cutoff_ev'] == 350 and record['method'] == 'PBE' and record['spin'] is False
    assert record['smearing'] == {'type': 'gaussian', 'width_ev': 0.2}
    assert record['pseudopotentials'] == {'Si': 'PAW_PBE Si 05Jan2001'} and record['code_version'] == '5.4.1'
    assert record['kpoint_spacing'] is None and record['kpoints_mesh'] == [7, 7, 7]
    given = import_files(vasp / 'Si_relax' / 'vasprun.xml', level_of_theory={'code': 'vasp', 'cutoff_ev': 520})
    assert given.files[0].notes == ['the level of theory given is not used: the file carries its own']
    assert given.labels[0].level_of_theory == record


def test_truncated_vasprun_keeps_the_whole_steps(vasp):
    report = import_files(vasp / 'Si_relax-truncated' / 'vasprun.xml')
    (found,) = report.files
    assert found.n_imported == 18
    (refusal,) = found.refused
    assert refusal.frame == 18
    assert refusal.reason.startswith(
        'incomplete: the file ends inside this ionic step (XML not closed: no element found'
    )
    full = import_files(vasp / 'Si_relax' / 'vasprun.xml').labels
    assert [label.energy for label in report.labels] == [label.energy for label in full[:18]]


def test_unconverged_scf_is_refused(vasp):
    report = import_files([vasp / 'Si_elec-unconverged' / 'vasprun.xml', vasp / 'Si_elec-unconverged' / 'OUTCAR'])
    for found in report.files:
        assert found.n_imported == 0
        assert 'electronic SCF not converged: the step used all NELM = 8 electronic steps' in refusals(found)[0]
    assert report.n_imported == 0 and report.n_refused == 2


def test_vasp6_scf_verdicts(vasp):
    """VASP 6.2: the OUTCAR says which steps missed EDIFF; vasprun.xml only shows that NELM = 15 was used up."""
    report = import_files(vasp / 'Si_vasp620_relax' / 'vasprun.xml')
    (found,) = report.files
    assert found.n_imported == 3 and sorted(refusals(found)) == [0, 3]
    assert 'used all NELM = 15 electronic steps' in refusals(found)[3]
    outcar = import_files(vasp / 'Si_vasp620_relax' / 'OUTCAR')
    (found,) = outcar.files
    assert found.n_imported == 4
    # OUTCAR line 1980: "aborting loop EDIFF was not reached (unconverged)" for step 1 only
    assert refusals(found) == {
        0: 'electronic SCF not converged: the OUTCAR says "EDIFF was not reached" after 15 steps'
    }
    energies = [label.energy for label in outcar.labels]
    # OUTCAR lines 3371, 4815, 6310, 7755: energy(sigma->0) of steps 2-5
    assert np.allclose(energies, [-1.55967122, -1.86755330, -1.96233012, -1.97252333], rtol=0, atol=1e-8)
    record = outcar.labels[0].level_of_theory
    assert record['spin'] is True and record['cutoff_ev'] == 240 and record['code_version'] == '6.2.0'
    assert record['smearing'] == {'type': 'gaussian', 'width_ev': 0.1}
    # the vasprun.xml and the OUTCAR of one run give the same fingerprint
    assert report.labels[0].fingerprint == outcar.labels[0].fingerprint


def test_outcar_and_vasprun_of_one_run_are_not_imported_twice(vasp):
    folder = vasp / 'Si_ionic-unconverged'
    report = import_files(folder)  # a folder: vasprun.xml first, then OUTCAR
    xml, outcar = report.files
    assert (xml.format, outcar.format) == ('vasp-xml', 'vasp-out')
    assert xml.n_imported == 5 and outcar.n_imported == 0
    assert refusals(outcar)[4] == f'duplicate: same structure (within 1e-04 Å) as imported above from {xml.path}'
    assert outcar.refused[4].detail == {'repeats': 4, 'repeats_file': xml.path, 'energy_difference_ev': 0.0}
    assert outcar.summary_lines()[1] == (
        f'  frames 0-4 (5): duplicate: same structure (within 1e-04 Å) as imported above from {xml.path}: '
        'frames 0-4 (5) there (energies differ by +0.00e+00 eV)'
    )
    alone = import_files(folder / 'OUTCAR')
    # OUTCAR lines 3146 and 11117
    assert alone.labels[0].energy == pytest.approx(-6.50161629, abs=1e-8)
    assert alone.labels[-1].energy == pytest.approx(-10.53701997, abs=1e-8)
    assert np.allclose(
        [label.energy for label in alone.labels], [label.energy for label in xml.labels], rtol=0, atol=1e-8
    )
    kept = import_files(folder, deduplicate=False)
    assert kept.n_imported == 10


def test_outcar_and_stress_sign(vasp):
    report = import_files(vasp / 'Si_outcar_converged' / 'OUTCAR.converged')
    labels = report.labels
    assert len(labels) == 8
    assert labels[0].energy == pytest.approx(-6.50161629, abs=1e-8)  # line 3146
    assert labels[-1].energy == pytest.approx(-10.84171139, abs=1e-8)  # line 16691
    first = import_files(vasp / 'Si_ionic-unconverged_first-step' / 'OUTCAR').labels[0]
    # OUTCAR line 3104: "in kB  13.37991 544.49046 255.28119 -198.81087 -417.05080 161.62424" (xx yy zz xy yz zx)
    assert np.allclose(np.diag(first.stress), -0.1 * GPa * np.array([13.37991, 544.49046, 255.28119]), rtol=1e-5)
    assert first.stress[0, 1] == pytest.approx(0.1 * GPa * 198.81087, rel=1e-5)


def test_ibrion6_displacements(vasp):
    report = import_files(vasp / 'Si_ibrion6_disp' / 'vasprun.xml')
    labels = report.labels
    assert len(labels) == 15 and report.n_refused == 0
    assert labels[-1].energy == pytest.approx(-10.82329600, abs=1e-8)  # line 2819
    assert np.allclose(labels[-1].forces[0], [0.21326679, 0.0, 0.0], rtol=0, atol=1e-8)  # line 2842
    assert labels[0].level_of_theory['smearing'] == {'type': 'gaussian', 'width_ev': 0.01}


def test_castep_single_point(castep):
    report = import_files(castep / 'matador' / 'Li-bcc_400eV.castep')
    (label,) = report.labels
    assert label.energy == pytest.approx(-195.8126215487, abs=1e-10)  # line 329, NB est. 0K energy
    assert np.allclose(label.forces, [[0.0, 0.0, 0.0]])  # line 342
    assert label.stress is None
    assert label.level_of_theory == castep_level_of_theory(
        cutoff_ev=400.0,  # line 160
        xc_functional='LDA',  # line 148: Local Density Approximation
        spin=True,  # "treating system as spin-polarized"
        smearing={'type': 'gaussian', 'width_ev': 0.2},  # lines 187-188
        pseudopotentials={'Li': '1|1.3|8|9|10|10U:20(qc=5)'},  # line 253
        kpoints_mesh=[4, 5, 4],  # line 258
        version='18.1',
    )


def test_unfinished_castep_is_refused_whole(castep):
    report = import_files(castep / 'matador' / 'LiC_unconverged_castep18.1.castep')
    (found,) = report.files
    assert found.n_imported == 0 and found.refused == []
    assert found.error.startswith('CASTEP did not finish this run (no "Finalisation time" line): the SCF did not')
    assert 'no forces were written' in found.error
    assert report.n_refused == 1


def test_castep_md_and_its_md_file(castep):
    folder = castep / 'castep_outputs' / 'si8-md'
    report = import_files(folder / 'si8-md.castep')
    labels = report.labels
    # lines 335, 427, 501: NB est. 0K energy of the three MD steps
    assert np.allclose(
        [label.energy for label in labels], [-855.4608365051, -855.4598047728, -855.4642379895], rtol=0, atol=1e-10
    )
    assert np.allclose(
        labels[0].forces[:2], [[-0.24389, -0.33040, 0.32266], [0.37938, 0.32234, -0.98537]], rtol=0, atol=1e-8
    )  # 352-353
    md = import_files(folder / 'si8-md.md')
    (found,) = md.files
    assert found.n_imported == 3 and 'level of theory read from si8-md.castep' in found.notes
    # si8-md.md lines 6, 37, 68: E (Hartree) of each step, the free energy E-TS
    energies = np.array([-3.1437669498903556e1, -3.1437631330687523e1, -3.1437791375759573e1]) * HARTREE
    assert np.allclose([label.energy for label in md.labels], energies, rtol=0, atol=1e-8)
    assert md.labels[0].level_of_theory['description'] == CASTEP_TRAJECTORY_ENERGY
    assert lot.differences(labels[0].level_of_theory, md.labels[0].level_of_theory) == [
        f'description: None != {CASTEP_TRAJECTORY_ENERGY!r}'
    ]
    both = import_files(folder)
    assert [found.n_imported for found in both.files] == [3, 0]
    assert both.files[1].refused[0].detail['energy_difference_ev'] == pytest.approx(-1.68e-3, abs=5e-6)
    assert 'frames 0-2 (3) there (energies differ by -1.68e-03 to -1.59e-03 eV)' in both.files[1].summary_lines()[1]


def test_castep_geometry_optimisation(castep):
    folder = castep / 'aiida-castep' / 'Si-geom-stress'
    report = import_files(folder / 'aiida.castep')
    (found,) = report.files
    assert found.frames_found == 91 and found.n_imported == 1
    assert set(refusals(found)) == set(range(90))
    assert refusals(found)[0].startswith('no forces: CASTEP printed none for this configuration')
    assert report.labels[0].energy == pytest.approx(-216.0333740979, abs=1e-10)  # line 6513
    assert report.labels[0].level_of_theory['pseudopotentials'] == {'Si': 'Si_00.usp'}
    geom = import_files(folder / 'aiida.geom', deduplicate=False)
    assert geom.n_imported == 31
    # aiida.geom lines 6 and 396: the E of the first and last configuration, in Hartree
    assert geom.labels[0].energy == pytest.approx(-7.9388963382329134 * HARTREE, abs=1e-8)
    assert geom.labels[-1].energy == pytest.approx(-7.9389705333347722 * HARTREE, abs=1e-8)


def test_report_lines_and_missing_paths(castep, vasp, tmp_path):
    report = import_files(castep / 'aiida-castep' / 'Si-geom-stress' / 'aiida.castep')
    lines = report.summary_lines()
    assert lines[0].endswith('aiida.castep [castep-castep]: 1 imported, 90 refused')
    assert lines[1].startswith('  frames 0-89 (90): no forces')
    assert lines[-1] == 'total: 1 frames imported, 90 refused, 1 file(s)'
    data = report.as_dict()
    assert data['imported'] == 1 and len(data['files'][0]['refused']) == 90
    with pytest.raises(ValueError, match='does not exist'):
        import_files(tmp_path / 'nothing.xml')
    (tmp_path / 'POSCAR').write_text('x')
    with pytest.raises(ValueError, match='cannot tell the format of'):
        import_files(tmp_path / 'POSCAR')
    with pytest.raises(ValueError, match='unknown format `cif`'):
        import_files(vasp / 'Si_relax' / 'vasprun.xml', fmt='cif')


def test_mixed_levels_are_found_and_labels_store_in_a_group(aiida_profile, vasp, castep):
    report = import_files([vasp / 'Si_relax' / 'vasprun.xml', castep / 'matador' / 'Li-bcc_400eV.castep'])
    differences = report.mixed_levels_of_theory()
    assert len(differences) == 1 and 'code: ' in differences[0] and 'cutoff_ev: 350 != 400' in differences[0]
    group = report.store('test-import-group')
    assert group.count() == 20 and all(label.is_stored for label in report.labels)
    assert group.label == 'test-import-group'


def test_virial_is_converted_to_the_stress(tmp_path):
    """libAtoms extxyz: ``virial`` (eV) becomes ``stress = -virial / volume``, ASE's sign (compressed: negative).

    The virial written is ``-dE/dε`` by central finite differences of EMT energies under symmetric strains, made
    without ASE's stress; the imported stress must equal EMT's own ``get_stress()``.
    """
    import ase.io
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.stress import voigt_6_to_full_3x3_stress

    atoms = bulk('Cu', 'fcc', a=3.55, cubic=True)  # a0(EMT) = 3.59 Å: compressed by 1 %
    atoms.set_cell(atoms.cell[:] @ np.array([[1.0, 0.01, 0.0], [0.01, 1.0, 0.0], [0.0, 0.0, 1.0]]), scale_atoms=True)
    atoms.rattle(0.02, seed=1)
    atoms.calc = EMT()
    reference = voigt_6_to_full_3x3_stress(atoms.get_stress())

    def energy(strain):
        strained = atoms.copy()
        strained.set_cell(atoms.cell[:] @ (np.eye(3) + strain), scale_atoms=True)
        strained.calc = EMT()
        return strained.get_potential_energy()

    step = 1e-5
    derivative = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            strain = np.zeros((3, 3))
            strain[i, j] = strain[j, i] = step / 2 if i != j else step
            derivative[i, j] = (energy(strain) - energy(-strain)) / (2 * step)
    virial = -derivative
    assert np.trace(virial) > 0  # a compressed cell pushes outwards

    frame = atoms.copy()
    frame.calc = None
    frame.info.update(energy=atoms.get_potential_energy(), virial=virial)
    frame.arrays['forces'] = atoms.get_forces()
    ase.io.write(tmp_path / 'libatoms.extxyz', frame, format='extxyz')

    report = import_files(tmp_path / 'libatoms.extxyz', virial_key='virial', level_of_theory='EMT')
    (label,) = report.labels
    assert np.allclose(label.stress, reference, atol=1e-6)
    assert np.allclose(label.stress, -virial / atoms.get_volume(), atol=1e-12)
    assert np.trace(label.stress) < 0

    with pytest.raises(ValueError, match='not both'):
        import_files(tmp_path / 'libatoms.extxyz', virial_key='virial', stress_key='stress', level_of_theory='EMT')
    report = import_files(tmp_path / 'libatoms.extxyz', virial_key='W', level_of_theory='EMT')
    assert report.files[0].refused[0].reason == 'no virial under `W`'


FIXTURE_FILES = [
    'vasp/aiida-vasp/Si_relax/vasprun.xml',
    'vasp/aiida-vasp/Si_relax-truncated/vasprun.xml',
    'vasp/aiida-vasp/Si_ibrion6_disp/vasprun.xml',
    'vasp/aiida-vasp/Si_ionic-unconverged/vasprun.xml',
    'vasp/aiida-vasp/Si_ionic-unconverged/OUTCAR',
    'vasp/aiida-vasp/Si_elec-unconverged/vasprun.xml',
    'vasp/aiida-vasp/Si_elec-unconverged/OUTCAR',
    'vasp/aiida-vasp/Si_outcar_converged/OUTCAR.converged',
    'vasp/aiida-vasp/Si_vasp620_relax/vasprun.xml',
    'vasp/aiida-vasp/Si_vasp620_relax/OUTCAR',
    'vasp/edited/Si_first-step_LDAU/vasprun.xml',
    'vasp/edited/Si_first-step_IVDW12/vasprun.xml',
    'castep/aiida-castep/Si-geom-stress/aiida.castep',
    'castep/aiida-castep/Si-geom-stress/aiida.geom',
    'castep/aiida-castep/Si2-castepbin/aiida.castep',
    'castep/castep_outputs/si8-md/si8-md.castep',
    'castep/castep_outputs/si8-md/si8-md.md',
    'castep/matador/Li-bcc_400eV.castep',
    'castep/matador/LiC_unconverged_castep18.1.castep',
    'castep/edited/Li-bcc_400eV_SEDC-G06.castep',
]


@pytest.mark.parametrize(
    'relative', FIXTURE_FILES, ids=[path.split('/', 1)[1].replace('/', '-') for path in FIXTURE_FILES]
)
def test_import_report_of_every_fixture(fixtures_path, relative, data_regression):
    """The whole report of each fixture file (counts, refusals and their reasons, notes), every label's energy, largest
    force and stress, and each distinct level of theory, against the stored regression file. The numbers checked by
    hand against the files' lines are in the tests above; this one catches any other change."""
    report = import_files(fixtures_path / relative)
    (summary,) = report.as_dict()['files']
    summary['path'] = relative
    del summary['label_pks']
    summary['labels'] = [
        {
            'formula': label.formula,
            'energy_ev': round(label.energy, 8),
            'max_force_ev_per_a': round(label.max_force, 8),
            'stress_trace_ev_per_a3': None if label.stress is None else round(float(np.trace(label.stress)), 10),
            'fingerprint': label.fingerprint[:16],
        }
        for label in report.labels
    ]
    summary['levels_of_theory'] = {label.fingerprint[:16]: label.level_of_theory for label in report.labels}
    # paths in the report are absolute: store them relative to fixtures/, so the file holds on every checkout
    prefix = f'{fixtures_path}/'
    data_regression.check(json.loads(json.dumps(summary).replace(prefix, '')))
