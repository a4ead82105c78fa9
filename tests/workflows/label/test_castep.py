"""Tests of ``CastepLabelWorkChain``: the inputs it generates, its refusals, the normalisation of real CASTEP outputs.

CASTEP cannot run here. The inputs are checked on builders made with a fake ``castep`` code and validated by
instantiating the process. The normalisation is checked on real ``.castep`` files (``fixtures/castep``) parsed by
aiida-castep's own ``CastepParser``; the expected numbers were copied by eye from the files (file and line named).
"""

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

from aiida_sianode.common.level_of_theory import castep_level_of_theory
from aiida_sianode.common.validation import StructureValidationError
from aiida_sianode.data.label import LabelData
from aiida_sianode.protocols import ProtocolError
from aiida_sianode.workflows.label import CommonLabelWorkChain, get_label_workchain
from aiida_sianode.workflows.label.castep import CastepLabelWorkChain
from aiida_sianode.workflows.label.normalise import (
    LabelRefusal,
    castep_results_from_outputs,
    check_castep_outputs,
    normalise_castep_outputs,
)

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')


def instantiate(builder):
    return instantiate_process(get_manager().get_runner(), builder)


def test_entry_point_and_interface():
    assert get_label_workchain('castep') is CastepLabelWorkChain
    assert issubclass(CastepLabelWorkChain, CommonLabelWorkChain)
    spec = CastepLabelWorkChain.spec()
    assert spec.outputs['label'].valid_type is LabelData
    codes = spec.exit_codes
    names = ('ERROR_MISSING_OUTPUTS', 'ERROR_INCOMPLETE_OUTPUT', 'ERROR_SCF_NOT_CONVERGED', 'ERROR_CODE_FAILED')
    assert [codes[name].status for name in (*names, 'ERROR_NOT_A_SINGLE_POINT')] == [300, 301, 410, 420, 430]
    assert {'pseudos_family', 'calc', 'max_iterations'} <= set(spec.inputs['castep'])
    assert 'structure' not in spec.inputs['castep']['calc'] and 'kpoints_spacing' not in spec.inputs['castep']
    assert set(CastepLabelWorkChain.get_available_protocols()) == {'fast', 'balanced', 'stringent'}


def test_balanced_builder(aiida_profile, castep_code, otfg_families):
    structure = orm.StructureData(ase=bulk('Si', 'diamond', a=5.43, cubic=True))
    builder = CastepLabelWorkChain.get_builder_from_protocol(
        castep_code, structure, options={'max_wallclock_seconds': 60}
    )
    parameters = builder.castep.calc.parameters.get_dict()
    expected = {
        'task': 'singlepoint',
        'xc_functional': 'PBE',
        'cut_off_energy': 600,
        'calculate_stress': True,
        'smearing_scheme': 'Gaussian',
        'smearing_width': 0.05,
        'spin_polarized': False,
        'write_checkpoint': 'none',
    }
    assert {key: parameters[key] for key in expected} == expected
    assert builder.castep.pseudos_family.value == 'C19'
    assert builder.castep.calc.kpoints.get_kpoints_mesh() == ([4, 4, 4], [0.0, 0.0, 0.0])
    assert builder.kpoint_spacing.value == 0.35
    assert builder.castep.calc_options.get_dict()['max_wallclock_seconds'] == 60
    process = instantiate(builder)
    assert process.inputs.structure.get_formula() == 'Si8'
    settings = {'fast': (450, 0.5, [3, 3, 3]), 'balanced': (600, 0.35, [4, 4, 4]), 'stringent': (750, 0.25, [5, 5, 5])}
    for protocol, (cutoff, spacing, mesh) in settings.items():
        builder = CastepLabelWorkChain.get_builder_from_protocol(castep_code, structure, protocol=protocol)
        assert builder.castep.calc.parameters['cut_off_energy'] == cutoff
        assert builder.kpoint_spacing.value == spacing
        assert builder.castep.calc.kpoints.get_kpoints_mesh()[0] == mesh


def test_refusals_before_anything_runs(aiida_profile, castep_code, otfg_families):
    silicon = orm.StructureData(ase=bulk('Si', 'diamond', a=5.43))
    lithium = orm.StructureData(ase=bulk('Li', 'bcc', a=3.44))
    with pytest.raises(StructureValidationError, match=r'element Li cannot be labelled by castep'):
        CastepLabelWorkChain.get_builder_from_protocol(castep_code, lithium, overrides={'pseudos_family': 'Si-only'})
    # the C19 library generates a potential for any element
    assert CastepLabelWorkChain.get_builder_from_protocol(castep_code, lithium).castep.pseudos_family.value == 'C19'
    with pytest.raises(ValueError, match=r'pseudopotential family `C17` is not in this AiiDA profile'):
        CastepLabelWorkChain.get_builder_from_protocol(castep_code, silicon, overrides={'pseudos_family': 'C17'})
    slab = Atoms('Si2', positions=[[0, 0, 0], [2.3, 0, 0]], cell=[8, 8, 8], pbc=[True, True, False])
    with pytest.raises(StructureValidationError, match=r'not periodic in all directions'):
        CastepLabelWorkChain.get_builder_from_protocol(castep_code, orm.StructureData(ase=slab))
    with pytest.raises(ProtocolError, match=r'unknown protocol `ultra`'):
        CastepLabelWorkChain.get_builder_from_protocol(castep_code, silicon, protocol='ultra')
    with pytest.raises(ProtocolError, match=r'override `parameters.cut_off` does not exist'):
        CastepLabelWorkChain.get_builder_from_protocol(castep_code, silicon, overrides={'parameters': {'cut_off': 1}})
    builder = CastepLabelWorkChain.get_builder_from_protocol(castep_code, silicon)
    builder.castep.calc.parameters = orm.Dict(
        {**builder.castep.calc.parameters.get_dict(), 'task': 'geometryoptimisation'}
    )
    with pytest.raises(ValueError, match=r'the CASTEP task is `geometryoptimisation`: a label is a single point'):
        instantiate(builder)
    builder = CastepLabelWorkChain.get_builder_from_protocol(
        castep_code, silicon, overrides={'pseudos_family': 'Si-only'}
    )
    builder.structure = lithium
    builder.kpoint_spacing = orm.Float(0.5)
    del builder.castep.calc['kpoints']
    with pytest.raises(ValueError, match=r'element Li cannot be labelled by castep'):
        instantiate(builder)


# ---- normalisation of real outputs, parsed by aiida-castep's own parser ----


def parse_with_aiida_castep(files, task, structure):
    """Run aiida-castep's ``CastepParser`` on a node whose retrieved folder holds ``files`` (seed renamed ``aiida``)."""
    node = orm.CalcJobNode(computer=orm.load_computer('localhost'), process_type='aiida.calculations:castep.castep')
    node.set_option('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
    node.set_option('seedname', 'aiida')
    node.set_option('output_filename', 'aiida.castep')
    parameters = orm.Dict({'PARAM': {'task': task}, 'CELL': {}}).store()
    node.base.links.add_incoming(parameters, LinkType.INPUT_CALC, 'parameters')
    node.base.links.add_incoming(structure.store(), LinkType.INPUT_CALC, 'structure')
    node.store()
    retrieved = orm.FolderData()
    for path in files:
        retrieved.base.repository.put_object_from_file(str(path), 'aiida' + path.suffix)
    retrieved.base.links.add_incoming(node, LinkType.CREATE, 'retrieved')
    retrieved.store()
    outputs, call = ParserFactory('castep.castep').parse_from_node(node, store_provenance=True)
    return outputs, call.exit_status


def arrays_of(outputs, name='output_array'):
    node = outputs[name]
    return {key: node.get_array(key) for key in node.get_arraynames()}


def read_structure(path):
    import ase.io

    return orm.StructureData(ase=ase.io.read(path, index=-1, format='castep-castep'))


def test_single_point_becomes_a_label(aiida_profile, fixtures_path):
    """matador Li-bcc_400eV.castep: CASTEP 18.1, LDA, 400 eV, spin polarised, Gaussian 0.2 eV, no stress."""
    path = fixtures_path / 'castep' / 'matador' / 'Li-bcc_400eV.castep'
    structure = read_structure(path)
    outputs, status = parse_with_aiida_castep([path], 'singlepoint', structure)
    assert status == 0
    parameters, arrays = outputs['output_parameters'].get_dict(), arrays_of(outputs)
    check_castep_outputs(parameters, arrays, natoms=1, require_stress=False)
    results = castep_results_from_outputs(parameters, arrays, structure)
    # line 329: "NB est. 0K energy (E-0.5TS)      =  -195.8126215487     eV"
    assert results['energy'] == pytest.approx(-195.8126215487, abs=1e-10)
    # line 342: " * Li              1      0.00000      0.00000      0.00000 *"
    assert np.allclose(results['forces'], [[0.0, 0.0, 0.0]])
    assert results['stress'] is None and results['version'] == '18.1'
    with pytest.raises(LabelRefusal, match=r'no stress \(calculate_stress is off\?\)'):
        check_castep_outputs(parameters, arrays, natoms=1, require_stress=True)

    record = castep_level_of_theory(
        cutoff_ev=400,
        xc_functional='LDA',
        spin=True,
        smearing={'type': 'Gaussian', 'width_ev': 0.2},
        pseudopotentials=parameters['pseudo_pots'],
    )
    label = normalise_castep_outputs(structure, outputs['output_parameters'], outputs['output_array'], orm.Dict(record))
    assert label.energy == pytest.approx(-195.8126215487, abs=1e-10)
    assert label.stress is None and label.natoms == 1
    # line 258 of the file: "Li 1|1.3|8|9|10|10U:20(qc=5)" under "Files used for pseudopotentials"
    assert label.level_of_theory['pseudopotentials'] == {'Li': '1|1.3|8|9|10|10U:20(qc=5)'}
    assert label.level_of_theory['code_version'] == '18.1'
    assert label.level_of_theory['smearing'] == {'type': 'gaussian', 'width_ev': 0.2}
    assert label.source['kind'] == 'calculation' and label.source['code'] == 'castep'
    assert label.creator.base.links.get_incoming(link_label_filter='output_array').one().node.uuid == (
        outputs['output_array'].uuid
    )


def test_unconverged_scf_is_refused(aiida_profile, fixtures_path):
    """matador LiC_unconverged: "max. SCF cycles performed but system has not reached the groundstate" (line 304)."""
    path = fixtures_path / 'castep' / 'matador' / 'LiC_unconverged_castep18.1.castep'
    # ASE cannot read a structure from this unfinished file; aiida-castep only needs one to link as the input
    carbon = [
        [1 / 3, 0, 0.5],
        [2 / 3, 0, 0.5],
        [0, 1 / 3, 0.5],
        [0, 2 / 3, 0.5],
        [1 / 3, 1 / 3, 0.5],
        [2 / 3, 2 / 3, 0.5],
    ]
    structure = orm.StructureData(
        ase=Atoms('LiC6', cell=[4.3, 4.3, 3.7], pbc=True, scaled_positions=[[0, 0, 0], *carbon])
    )
    outputs, status = parse_with_aiida_castep([path], 'singlepoint', structure)
    assert status == 101  # aiida-castep: ERROR_SCF_NOT_CONVERGED
    arrays = arrays_of(outputs) if 'output_array' in outputs else {}
    assert 'forces' not in arrays  # the file has no forces block
    with pytest.raises(LabelRefusal, match='not reached the groundstate') as refusal:
        check_castep_outputs(outputs['output_parameters'].get_dict(), arrays)
    assert refusal.value.exit_code == 'ERROR_SCF_NOT_CONVERGED'
    assert CastepLabelWorkChain.spec().exit_codes[refusal.value.exit_code].status == 410


def test_continuation_run_is_not_one_single_point(aiida_profile, fixtures_path):
    """aiida-castep Si2-castepbin: two runs in one file; lines 748, 779 and 1240 print 0 K energies."""
    path = fixtures_path / 'castep' / 'aiida-castep' / 'Si2-castepbin' / 'aiida.castep'
    structure = read_structure(path)
    outputs, status = parse_with_aiida_castep([path], 'singlepoint', structure)
    assert status == 0
    arrays = arrays_of(outputs)
    assert np.allclose(
        arrays['zero_K_energy'], [100.69559740231946421, -215.3935145398, -215.3935145784], rtol=0, atol=1e-10
    )
    with pytest.raises(LabelRefusal, match='holds 3 energy evaluations') as refusal:
        check_castep_outputs(outputs['output_parameters'].get_dict(), arrays, natoms=2, require_stress=False)
    assert refusal.value.exit_code == 'ERROR_NOT_A_SINGLE_POINT'


def test_geometry_optimisation_is_not_a_single_point(aiida_profile, fixtures_path):
    """aiida-castep Si-geom-stress: a BFGS run; its final numbers are not the input structure's.

    Only the ``.castep`` is given to the parser: with the ``.geom`` beside it, aiida-castep 2.0.1's parser stops on
    aiida-core 2.9 (``TypeError: TrajectoryData.symbols must be of type list``). Single points have no ``.geom``.
    """
    folder = fixtures_path / 'castep' / 'aiida-castep' / 'Si-geom-stress'
    structure = read_structure(folder / 'aiida.castep')
    outputs, _ = parse_with_aiida_castep([folder / 'aiida.castep'], 'geometryoptimisation', structure)
    parameters = outputs['output_parameters'].get_dict()
    assert 'Maximum geometry optimization cycle has been reached' in parameters['warnings']
    # the last "NB est. 0K energy (E-0.5TS)" of the file: -216.0333740979 eV
    assert parameters['zero_K_energy'] == pytest.approx(-216.0333740979, abs=1e-10)
    with pytest.raises(LabelRefusal, match=r'the CASTEP task was `geometryoptimisation`') as refusal:
        check_castep_outputs(parameters, {}, task='geometryoptimisation')
    assert refusal.value.exit_code == 'ERROR_NOT_A_SINGLE_POINT'


def test_stress_units_and_sign(aiida_profile, fixtures_path):
    """Si-geom-stress line 367-369: symmetrised stress -2.847547 GPa on the diagonal (pressure +2.8475 GPa)."""
    folder = fixtures_path / 'castep' / 'aiida-castep' / 'Si-geom-stress'
    structure = read_structure(folder / 'aiida.castep')
    outputs, _ = parse_with_aiida_castep([folder / 'aiida.castep'], 'singlepoint', structure)
    arrays = arrays_of(outputs)
    # the first two energies are the 110 and 115 eV runs of the finite-basis correction (lines 306, 325);
    # the third (line 344, 120 eV) is the first configuration, whose stress is the first one printed
    first = {'zero_K_energy': arrays['zero_K_energy'][2:3], 'symm_stress': arrays['symm_stress'][:1]}
    first['unconstrained_forces'] = arrays['unconstrained_forces']
    results = castep_results_from_outputs(outputs['output_parameters'].get_dict(), first)
    # CASTEP's sign is ASE's (negative = compressed cell, positive pressure): only the unit changes
    assert np.allclose(results['stress'], np.diag([-2.847547] * 3) * GPa, rtol=0, atol=1e-12)
    assert results['energy'] == pytest.approx(-216.0299345931, abs=1e-10)


def test_forces_go_back_to_the_input_order():
    """CASTEP lists atoms sorted by species; the label has them in the input structure's order."""
    structure = orm.StructureData(
        ase=Atoms('SiLiSi', positions=[[0, 0, 0], [1, 1, 1], [2, 2, 2]], cell=[6] * 3, pbc=True)
    )
    castep_order = np.array([[1.0, 0, 0], [2.0, 0, 0], [3.0, 0, 0]])  # Li, Si(0), Si(2)
    arrays = {'total_energy': np.array([-1.0]), 'forces': castep_order[None]}
    results = castep_results_from_outputs({}, arrays, structure)
    assert np.allclose(results['forces'][:, 0], [2.0, 1.0, 3.0])


def test_work_chain_steps_on_real_outputs(aiida_profile, castep_code, otfg_families, fixtures_path):
    """inspect/results of the work chain on a finished child that holds aiida-castep's outputs of Li-bcc."""
    path = fixtures_path / 'castep' / 'matador' / 'Li-bcc_400eV.castep'
    structure = read_structure(path)
    outputs, _ = parse_with_aiida_castep([path], 'singlepoint', structure)

    def child_with_outputs(status=0):
        child = orm.WorkflowNode(process_type='aiida.workflows:castep.base')
        child.set_process_state('finished')
        child.set_exit_status(status)
        child.store()
        if status == 0:
            for name in ('output_parameters', 'output_array'):
                outputs[name].base.links.add_incoming(child, LinkType.RETURN, name)
        return child

    # the protocol asks for the stress; this run has none
    process = instantiate(CastepLabelWorkChain.get_builder_from_protocol(castep_code, structure))
    process.setup()
    process.ctx.workchain = child_with_outputs()
    assert process.inspect_child().status == 300
    no_stress = {'parameters': {'calculate_stress': False}}

    # the .castep header says LDA, 400 eV, spin polarised, MP grid 4 5 4 (lines 148, 160, 172 and the MP grid line):
    # a label recording the protocol's PBE 600 eV is refused, the two values named
    process = instantiate(CastepLabelWorkChain.get_builder_from_protocol(castep_code, structure, overrides=no_stress))
    process.setup()
    process.ctx.workchain = child_with_outputs()
    exit_code = process.inspect_child()
    assert exit_code.status == 440
    assert "method: the label records 'PBE', the code ran with 'LDA'" in exit_code.message
    assert 'cutoff_ev: the label records 600, the code ran with 400' in exit_code.message
    assert 'spin: the label records False, the code ran with True' in exit_code.message

    overrides = {'parameters': {**no_stress['parameters'], 'xc_functional': 'LDA', 'cut_off_energy': 400}}
    overrides['parameters']['spin_polarized'] = True
    builder = CastepLabelWorkChain.get_builder_from_protocol(castep_code, structure, overrides=overrides)
    del builder['kpoint_spacing']
    builder.castep.calc.kpoints = orm.KpointsData()
    builder.castep.calc.kpoints.set_kpoints_mesh([4, 5, 4])
    process = instantiate(builder)
    process.setup()
    process.ctx.workchain = child_with_outputs()
    assert process.inspect_child() is None
    process.results()
    label = process.outputs['label']
    assert label.energy == pytest.approx(-195.8126215487, abs=1e-10)
    record = label.level_of_theory
    assert (record['method'], record['cutoff_ev'], record['spin'], record['kpoints_mesh']) == (
        'LDA',
        400,
        True,
        [4, 5, 4],
    )
    assert record['pseudopotentials'] == {'Li': '1|1.3|8|9|10|10U:20(qc=5)'}

    process.ctx.workchain = child_with_outputs(status=302)  # aiida-castep: ERROR_SCF_FAILURE
    assert process.inspect_child().status == 410
