"""Tests of ``VaspLabelWorkChain``: the inputs it generates, its refusals, and the normalisation of real VASP outputs.

VASP cannot run here. The inputs are checked on builders made with a fake ``vasp`` code on localhost and validated by
instantiating the process. The normalisation is checked on real outputs (``fixtures/vasp``), parsed by aiida-vasp's
own ``VaspParser`` on a calculation node whose ``retrieved`` folder holds the fixture files; every expected number
below was copied by eye from the fixture files (the file and line are named).
"""

import shutil

import numpy as np
import pytest
from aiida import orm
from aiida.common import LinkType
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from aiida.plugins import ParserFactory
from ase import Atoms
from ase.build import bulk
from ase.units import GPa

from aiida_sianode.common.level_of_theory import vasp_level_of_theory
from aiida_sianode.common.validation import StructureValidationError
from aiida_sianode.data.label import LabelData
from aiida_sianode.protocols import ProtocolError
from aiida_sianode.workflows.label import CommonLabelWorkChain, get_label_workchain
from aiida_sianode.workflows.label.normalise import (
    LabelRefusal,
    check_vasp_misc,
    normalise_vasp_outputs,
    vasp_results_from_misc,
    vasp_stress_to_ase,
)
from aiida_sianode.workflows.label.vasp import VaspLabelWorkChain, kpoints_from_spacing

SI_A = 5.43


def instantiate(builder):
    """Validate ``builder`` the way launching it would, without running anything."""
    return instantiate_process(get_manager().get_runner(), builder)


def test_entry_point_and_interface():
    assert get_label_workchain('vasp') is VaspLabelWorkChain
    assert issubclass(VaspLabelWorkChain, CommonLabelWorkChain)
    assert VaspLabelWorkChain.labeler == 'vasp'
    spec = VaspLabelWorkChain.spec()
    assert spec.outputs['label'].valid_type is LabelData
    codes = spec.exit_codes
    assert (codes.ERROR_MISSING_OUTPUTS.status, codes.ERROR_INCOMPLETE_OUTPUT.status) == (300, 301)
    assert (codes.ERROR_SCF_NOT_CONVERGED.status, codes.ERROR_CODE_FAILED.status) == (410, 420)
    assert codes.ERROR_NOT_A_SINGLE_POINT.status == 430
    # aiida-vasp's own work chain inputs are exposed, the structure and its 2π-less spacing are ours
    assert {'code', 'parameters', 'potential_family', 'potential_mapping', 'kpoints'} <= set(spec.inputs['vasp'])
    assert 'structure' not in spec.inputs['vasp'] and 'kpoints_spacing' not in spec.inputs['vasp']
    assert set(VaspLabelWorkChain.get_available_protocols()) == {'fast', 'balanced', 'stringent'}
    assert VaspLabelWorkChain.get_default_protocol() == 'balanced'


def test_kpoint_mesh_of_known_cells(aiida_profile):
    """N_i = ceil(|b_i| / 0.35) with |b_i| including 2π: cubic Si (a = 5.43 Å) has |b| = 2π/5.43 = 1.157 1/Å."""
    cubic = orm.StructureData(ase=bulk('Si', 'diamond', a=SI_A, cubic=True))
    assert kpoints_from_spacing(cubic, 0.35).get_kpoints_mesh() == ([4, 4, 4], [0.0, 0.0, 0.0])  # 3.31 -> 4
    assert kpoints_from_spacing(cubic, 0.5).get_kpoints_mesh()[0] == [3, 3, 3]  # 2.31 -> 3
    # primitive fcc cell: |b| = 2π√3/a = 2.004 1/Å -> 5.73 -> 6
    primitive = orm.StructureData(ase=bulk('Si', 'diamond', a=SI_A))
    assert kpoints_from_spacing(primitive, 0.35).get_kpoints_mesh()[0] == [6, 6, 6]
    # a 2x1x3 supercell of the cubic cell: 1.157/2 -> 2, 1.157 -> 4, 1.157/3 = 0.386 -> 2
    supercell = orm.StructureData(ase=bulk('Si', 'diamond', a=SI_A, cubic=True).repeat((2, 1, 3)))
    assert kpoints_from_spacing(supercell, 0.35).get_kpoints_mesh()[0] == [2, 4, 2]
    with pytest.raises(ValueError, match='must be positive'):
        kpoints_from_spacing(cubic, 0.0)


def test_balanced_builder_mirrors_the_seed_paper(aiida_profile, vasp_code, potcar_family):
    structure = orm.StructureData(ase=bulk('Si', 'diamond', a=SI_A, cubic=True))
    builder = VaspLabelWorkChain.get_builder_from_protocol(vasp_code, structure, options={'max_wallclock_seconds': 600})
    incar = builder.vasp.parameters.get_dict()['incar']
    expected = {
        'gga': 'PE',
        'encut': 520,
        'ismear': 0,
        'sigma': 0.05,
        'ediff': 1e-6,
        'nsw': 0,
        'ibrion': -1,
        'isif': 2,
        'lwave': False,
        'lcharg': False,
        'ispin': 1,
    }
    assert {key: incar[key] for key in expected} == expected
    assert builder.vasp.potential_family.value == 'PBE.54'
    assert builder.vasp.potential_mapping.get_dict() == {'Si': 'Si'}
    assert builder.vasp.kpoints.get_kpoints_mesh() == ([4, 4, 4], [0.0, 0.0, 0.0])
    assert builder.kpoint_spacing.value == 0.35
    assert builder.vasp.code.uuid == vasp_code.uuid
    options = builder.vasp.calc.metadata.options
    assert options['max_wallclock_seconds'] == 600 and options['resources'] == {'num_machines': 1}
    process = instantiate(builder)  # passes aiida-vasp's and our validators
    assert process.inputs.structure.get_formula() == 'Si8'


def test_protocols_and_mapping(aiida_profile, vasp_code, potcar_family):
    structure = orm.StructureData(
        ase=Atoms('LiSi', scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[3.0] * 3, pbc=True)
    )
    settings = {'fast': (400, 0.5, 1e-5), 'balanced': (520, 0.35, 1e-6), 'stringent': (650, 0.25, 1e-7)}
    for protocol, (encut, spacing, ediff) in settings.items():
        builder = VaspLabelWorkChain.get_builder_from_protocol(vasp_code, structure, protocol=protocol)
        incar = builder.vasp.parameters.get_dict()['incar']
        assert (incar['encut'], builder.kpoint_spacing.value, incar['ediff']) == (encut, spacing, ediff)
        assert builder.vasp.potential_mapping.get_dict() == {'Li': 'Li_sv', 'Si': 'Si'}
    # |b| = 2π/3 = 2.094 1/Å: 0.35 -> 6 points, 0.5 -> 5, 0.25 -> 9
    meshes = {
        protocol: VaspLabelWorkChain.get_builder_from_protocol(
            vasp_code, structure, protocol=protocol
        ).vasp.kpoints.get_kpoints_mesh()[0]
        for protocol in settings
    }
    assert meshes == {'fast': [5, 5, 5], 'balanced': [6, 6, 6], 'stringent': [9, 9, 9]}
    builder = VaspLabelWorkChain.get_builder_from_protocol(
        vasp_code, structure, overrides={'incar': {'encut': 600, 'ispin': 2}}, potential_mapping={'Li': 'Li'}
    )
    assert builder.vasp.parameters['incar']['encut'] == 600 and builder.vasp.parameters['incar']['ispin'] == 2
    assert builder.vasp.potential_mapping.get_dict() == {'Li': 'Li', 'Si': 'Si'}


def test_refusals_before_anything_runs(aiida_profile, vasp_code, potcar_family):
    silicon = orm.StructureData(ase=bulk('Si', 'diamond', a=SI_A))
    copper = orm.StructureData(ase=bulk('Cu', 'fcc', a=3.6))
    with pytest.raises(StructureValidationError, match=r'element Cu cannot be labelled by vasp'):
        VaspLabelWorkChain.get_builder_from_protocol(vasp_code, copper)
    molecule = Atoms('Si2', positions=[[0, 0, 0], [2.3, 0, 0]], cell=[8, 8, 8], pbc=False)
    with pytest.raises(StructureValidationError, match=r'not periodic in all directions'):
        VaspLabelWorkChain.get_builder_from_protocol(vasp_code, orm.StructureData(ase=molecule))
    with pytest.raises(ProtocolError, match=r'unknown protocol `precise`'):
        VaspLabelWorkChain.get_builder_from_protocol(vasp_code, silicon, protocol='precise')
    with pytest.raises(ProtocolError, match=r'override `incar.encutt` does not exist'):
        VaspLabelWorkChain.get_builder_from_protocol(vasp_code, silicon, overrides={'incar': {'encutt': 500}})
    with pytest.raises(ValueError, match=r'POTCAR family `PBE.64` is not in this AiiDA profile'):
        VaspLabelWorkChain.get_builder_from_protocol(vasp_code, silicon, overrides={'potential_family': 'PBE.64'})
    # an element added with the mapping argument is accepted
    builder = VaspLabelWorkChain.get_builder_from_protocol(vasp_code, copper, potential_mapping={'Cu': 'Cu_pv'})
    assert builder.vasp.potential_mapping.get_dict() == {'Cu': 'Cu_pv'}

    # a hand-edited builder is checked by the spec's validator when launched
    builder = VaspLabelWorkChain.get_builder_from_protocol(vasp_code, silicon)
    builder.structure = copper
    builder.kpoint_spacing = orm.Float(0.35)
    builder.vasp.kpoints = kpoints_from_spacing(copper, 0.35)
    with pytest.raises(ValueError, match=r'element Cu cannot be labelled by vasp'):
        instantiate(builder)
    builder = VaspLabelWorkChain.get_builder_from_protocol(vasp_code, silicon)
    builder.vasp.kpoints = kpoints_from_spacing(silicon, 0.5)
    with pytest.raises(ValueError, match=r'the mesh \[5, 5, 5\] in `vasp.kpoints` is not the mesh \[6, 6, 6\]'):
        instantiate(builder)
    builder = VaspLabelWorkChain.get_builder_from_protocol(vasp_code, silicon)
    del builder.vasp['kpoints']
    del builder['kpoint_spacing']
    with pytest.raises(ValueError, match=r'give `kpoint_spacing`'):
        instantiate(builder)


def test_level_of_theory_of_the_inputs():
    """The record of a work-chain label: the same function reads imported vasprun files."""
    record = vasp_level_of_theory(
        {'encut': 520, 'gga': 'PE', 'ismear': 0, 'sigma': 0.05, 'ispin': 1},
        potcar_titles={'Si': 'PAW_PBE Si 05Jan2001', 'Li': 'PAW_PBE Li_sv 10Sep2004'},
        kpoint_spacing=0.35,
        kpoints_mesh=[4, 4, 4],
        version='6.4.2',
    )
    assert record == {
        'code': 'vasp',
        'method': 'PBE',
        'basis': 'plane-wave',
        'cutoff_ev': 520.0,
        'kpoint_spacing': 0.35,
        'smearing': {'type': 'gaussian', 'width_ev': 0.05},
        'spin': False,
        'pseudopotentials': {'Si': 'PAW_PBE Si 05Jan2001', 'Li': 'PAW_PBE Li_sv 10Sep2004'},
        'kpoints_mesh': [4, 4, 4],
        'code_version': '6.4.2',
    }
    hybrid = vasp_level_of_theory({'lhfcalc': True, 'hfscreen': 0.2, 'ismear': -5}, potcar_titles={})
    assert hybrid['method'] == 'HSE06' and hybrid['smearing'] == {'type': 'tetrahedron-blochl', 'width_ev': None}
    assert vasp_level_of_theory({'metagga': 'R2SCAN'}, potcar_titles={})['method'] == 'r2SCAN'


# ---- normalisation of real outputs, parsed by aiida-vasp's own parser ----


def parse_with_aiida_vasp(folder, incar, *, files=None):
    """Run aiida-vasp's ``VaspParser`` on a calculation node whose retrieved folder holds ``folder``'s files.

    :return: ``(outputs, exit_status)`` of the parse calcfunction.
    """
    computer = orm.load_computer('localhost') if orm.Computer.collection.count() else None
    node = orm.CalcJobNode(computer=computer, process_type='aiida.calculations:vasp.vasp')
    node.set_option('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
    parameters = orm.Dict(incar).store()
    node.base.links.add_incoming(parameters, LinkType.INPUT_CALC, 'parameters')
    # The fixtures have no stdout of VASP (`vasp_output`); its OUTCAR is all aiida-vasp needs besides vasprun.xml.
    settings = orm.Dict({'parser_settings': {'critical_objects': ['vasprun.xml'], 'check_completeness': False}}).store()
    node.base.links.add_incoming(settings, LinkType.INPUT_CALC, 'settings')
    node.store()
    retrieved = orm.FolderData()
    for path in sorted(folder.iterdir()) if files is None else files:
        name = 'OUTCAR' if path.name.startswith('OUTCAR') else path.name
        retrieved.base.repository.put_object_from_file(str(path), name)
    retrieved.base.links.add_incoming(node, LinkType.CREATE, 'retrieved')
    retrieved.store()
    outputs, call = ParserFactory('vasp.vasp').parse_from_node(node, store_provenance=True)
    return outputs, call.exit_status


def vasp_folder(fixtures_path, name):
    return fixtures_path / 'vasp' / 'aiida-vasp' / name


def test_single_point_becomes_a_label_with_the_files_numbers(aiida_profile, fixtures_path):
    """Si2, one ionic step (cut from Si_ionic-unconverged): aiida-vasp's misc -> LabelData."""
    import ase.io

    folder = vasp_folder(fixtures_path, 'Si_ionic-unconverged_first-step')
    outputs, status = parse_with_aiida_vasp(folder, {'ibrion': 1, 'nsw': 5})
    assert status == 0
    misc = outputs['misc']
    check_vasp_misc(misc.get_dict(), natoms=2)
    results = vasp_results_from_misc(misc.get_dict())
    # OUTCAR line 3146: "energy  without entropy=  -6.50108600  energy(sigma->0) =  -6.50161629"
    assert results['energy'] == pytest.approx(-6.50161629, abs=1e-8)
    # vasprun.xml lines 827-828, <varray name="forces">
    assert np.allclose(
        results['forces'], [[-6.09635501, 11.33713775, -7.02162328], [6.09635501, -11.33713775, 7.02162328]]
    )
    # vasprun.xml lines 831-833, <varray name="stress"> in kbar, VASP sign -> eV/Å^3, ASE sign
    stress_kbar = [
        [13.37990820, -198.81086995, 161.62424081],
        [-198.81087144, 544.49045945, -417.05080625],
        [161.62424052, -417.05080098, 255.28119346],
    ]
    assert np.allclose(results['stress'], -0.1 * GPa * np.array(stress_kbar), rtol=0, atol=1e-12)
    # the diagonal as the OUTCAR line 3104 prints it ("in kB  13.37991 544.49046 255.28119 ..."), sign flipped
    assert results['stress'][1, 1] == pytest.approx(-544.49046 * 0.1 * GPa, rel=1e-6)
    assert results['version'] == '5.4.4'

    structure = orm.StructureData(ase=ase.io.read(folder / 'vasprun.xml', index=0))
    record = vasp_level_of_theory(
        {'encut': 300, 'ismear': 0, 'sigma': 0.05}, potcar_titles={'Si': 'PAW_PBE Si 05Jan2001'}, kpoints_mesh=[4, 4, 4]
    )
    label = normalise_vasp_outputs(structure, misc, orm.Dict(record))
    assert isinstance(label, LabelData) and label.is_stored
    assert label.energy == pytest.approx(-6.50161629, abs=1e-8)
    assert np.allclose(label.forces, results['forces']) and np.allclose(label.stress, results['stress'])
    assert label.level_of_theory['code_version'] == '5.4.4' and label.level_of_theory['method'] == 'PBE'
    assert label.source['kind'] == 'calculation' and label.source['code'] == 'vasp'
    # provenance: the label is made by the calcfunction that took the parser's misc output
    assert label.creator.base.links.get_incoming(link_label_filter='misc').one().node.uuid == misc.uuid


def test_unconverged_scf_is_refused(aiida_profile, fixtures_path):
    """Si_elec-unconverged: NELM = 8 reached (vasprun.xml line 14; OUTCAR "Iteration 1( 8)" is the last)."""
    outputs, status = parse_with_aiida_vasp(vasp_folder(fixtures_path, 'Si_elec-unconverged'), {'nsw': -1, 'nelm': 8})
    assert status == 701  # aiida-vasp: ERROR_ELECTRONIC_NOT_CONVERGED
    misc = outputs['misc'].get_dict()
    # the numbers are there (OUTCAR line 2942: energy(sigma->0) = -6.50149309) but must not become a label
    assert vasp_results_from_misc(misc)['energy'] == pytest.approx(-6.50149309, abs=1e-8)
    with pytest.raises(LabelRefusal, match=r'SCF stopped at NELM = 8 steps \(8 done\)') as refusal:
        check_vasp_misc(misc, natoms=2)
    assert refusal.value.exit_code == 'ERROR_SCF_NOT_CONVERGED'
    assert VaspLabelWorkChain.spec().exit_codes[refusal.value.exit_code].status == 410


def test_unconverged_relaxation_is_not_a_single_point(aiida_profile, fixtures_path):
    """Si_ionic-unconverged: 5 ionic steps, NSW = 5; the final numbers belong to the 5th structure."""
    outputs, status = parse_with_aiida_vasp(vasp_folder(fixtures_path, 'Si_ionic-unconverged'), {'ibrion': 1, 'nsw': 5})
    assert status == 702  # aiida-vasp: ERROR_IONIC_NOT_CONVERGED
    misc = outputs['misc'].get_dict()
    results = vasp_results_from_misc(misc)
    # OUTCAR line 11117: "energy  without entropy=  -10.53672155  energy(sigma->0) =  -10.53701997"
    assert results['energy'] == pytest.approx(-10.53701997, abs=1e-8)
    with pytest.raises(LabelRefusal, match=r'the run made 5 ionic steps \(NSW = 5\)') as refusal:
        check_vasp_misc(misc, natoms=2)
    assert refusal.value.exit_code == 'ERROR_NOT_A_SINGLE_POINT'
    assert VaspLabelWorkChain.spec().exit_codes[refusal.value.exit_code].status == 430


def test_killed_run_is_refused(aiida_profile, fixtures_path, tmp_path):
    """A job killed during its SCF: the first-step fixture cut at the 8th electronic iteration (a copy in tmp)."""
    folder = vasp_folder(fixtures_path, 'Si_ionic-unconverged_first-step')
    lines = (folder / 'OUTCAR').read_text().splitlines(keepends=True)
    cut = next(index for index, line in enumerate(lines) if 'Iteration      1(   8)' in line)
    (tmp_path / 'OUTCAR').write_text(''.join(lines[:cut]))
    xml = (folder / 'vasprun.xml').read_text().splitlines(keepends=True)
    cut = [index for index, line in enumerate(xml) if '<scstep>' in line][7]
    (tmp_path / 'vasprun.xml').write_text(''.join(xml[:cut]))
    outputs, status = parse_with_aiida_vasp(tmp_path, {'ibrion': 1, 'nsw': 5})
    assert status == 700  # aiida-vasp: ERROR_DID_NOT_FINISH
    with pytest.raises(LabelRefusal, match=r'VASP did not finish') as refusal:
        check_vasp_misc(outputs['misc'].get_dict(), natoms=2)
    assert refusal.value.exit_code == 'ERROR_INCOMPLETE_OUTPUT'
    assert VaspLabelWorkChain.spec().exit_codes.ERROR_INCOMPLETE_OUTPUT.format(reason='x').status == 301


def test_truncated_vasprun_without_outcar_has_no_run_status(aiida_profile, fixtures_path):
    """Si_relax-truncated: only a cut vasprun.xml; aiida-vasp cannot tell the run status, so no label."""
    folder = vasp_folder(fixtures_path, 'Si_relax-truncated')
    outputs, status = parse_with_aiida_vasp(folder, {'ibrion': 2, 'nsw': 80})
    assert status == 1002  # aiida-vasp: ERROR_NOT_ABLE_TO_PARSE_QUANTITY (run_status)
    assert 'misc' not in outputs
    with pytest.raises(LabelRefusal, match='no run status') as refusal:
        check_vasp_misc({}, natoms=8)
    assert refusal.value.exit_code == 'ERROR_MISSING_OUTPUTS'


def test_vasp6_relaxation_is_not_a_single_point(aiida_profile, fixtures_path):
    """Si_vasp620_relax: aiida-vasp reads the OUTCAR (its vasprun reader stops on the DOS block); 5 ionic steps."""
    outputs, _ = parse_with_aiida_vasp(vasp_folder(fixtures_path, 'Si_vasp620_relax'), {'ibrion': 1, 'nsw': 5})
    misc = outputs['misc'].get_dict()
    assert misc['run_status']['last_iteration_index'] == [5, 14]  # OUTCAR: the last "Iteration 5( 14)"
    with pytest.raises(LabelRefusal, match=r'5 ionic steps'):
        check_vasp_misc(misc, natoms=1)


def test_stress_conversion_sign():
    """VASP writes positive numbers for compression; ASE's stress of a compressed cell is negative."""
    assert np.allclose(vasp_stress_to_ase(np.eye(3) * 10.0), -np.eye(3) * 1.0 * GPa)


def finished_child(status=0, message=None):
    """A finished ``vasp.vasp`` work chain node (its outputs are linked by the caller)."""
    child = orm.WorkflowNode(process_type='aiida.workflows:vasp.vasp')
    child.set_process_state('finished')
    child.set_exit_status(status)
    if message:
        child.set_exit_message(message)
    return child.store()


def test_work_chain_inspects_a_real_child(aiida_profile, vasp_code, potcar_family, fixtures_path):
    """inspect/results on a finished child holding a real parsed ``misc``; the fixture run used ENCUT = 300 eV
    (vasprun.xml line 20) and a 4x4x4 mesh (its ``<kpoints>`` block), which the recorded level of theory must say."""
    import ase.io

    folder = vasp_folder(fixtures_path, 'Si_ionic-unconverged_first-step')
    outputs, _ = parse_with_aiida_vasp(folder, {'ibrion': 1, 'nsw': 5})
    structure = orm.StructureData(ase=ase.io.read(folder / 'vasprun.xml', index=0))
    child = finished_child()
    outputs['misc'].base.links.add_incoming(child, LinkType.RETURN, 'misc')

    # the protocol's 520 eV and 6x6x6 mesh contradict what VASP ran with: refused, both values named
    process = instantiate(VaspLabelWorkChain.get_builder_from_protocol(vasp_code, structure))
    process.setup()
    process.ctx.workchain = child
    exit_code = process.inspect_child()
    assert exit_code.status == 440
    assert 'cutoff_ev: the label records 520, the code ran with 300' in exit_code.message
    assert 'kpoints_mesh: the label records [6, 6, 6], the code ran with [4, 4, 4]' in exit_code.message

    # the settings of the run: accepted, and the record says what VASP ran with
    builder = VaspLabelWorkChain.get_builder_from_protocol(vasp_code, structure, overrides={'incar': {'encut': 300}})
    del builder['kpoint_spacing']
    builder.vasp.kpoints = orm.KpointsData()
    builder.vasp.kpoints.set_kpoints_mesh([4, 4, 4])
    process = instantiate(builder)
    process.setup()
    process.ctx.workchain = child
    assert process.inspect_child() is None
    process.results()
    label = process.outputs['label']
    assert label.energy == pytest.approx(-6.50161629, abs=1e-8)
    record = label.level_of_theory
    assert (record['cutoff_ev'], record['kpoint_spacing'], record['method']) == (300, None, 'PBE')
    assert record['kpoints_mesh'] == [4, 4, 4] and record['code_version'] == '5.4.4'

    process.ctx.workchain = finished_child(503, 'the last calculation did not reach electronic convergence')
    assert process.inspect_child().status == 410


def test_work_chain_refuses_a_multi_step_child(aiida_profile, vasp_code, potcar_family, fixtures_path, tmp_path):
    import ase.io

    folder = vasp_folder(fixtures_path, 'Si_ionic-unconverged')
    for path in folder.iterdir():
        shutil.copy(path, tmp_path / path.name)
    outputs, _ = parse_with_aiida_vasp(tmp_path, {'ibrion': 1, 'nsw': 5})
    structure = orm.StructureData(ase=ase.io.read(folder / 'vasprun.xml', index=0))
    process = instantiate(VaspLabelWorkChain.get_builder_from_protocol(vasp_code, structure))
    process.setup()
    child = finished_child()
    outputs['misc'].base.links.add_incoming(child, LinkType.RETURN, 'misc')
    process.ctx.workchain = child
    exit_code = process.inspect_child()
    assert exit_code.status == 430
    assert 'the run made 5 ionic steps' in exit_code.message
