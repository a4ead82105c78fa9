"""Tests of the GPAW and GFN1-xTB label work chains: real calculations, SCF restarts, refusals, protocols."""

import numpy as np
import pytest
from aiida import orm
from aiida.common import LinkType
from aiida.engine import run_get_node
from aiida.manage.caching import enable_caching
from ase import Atoms
from ase.build import bulk, molecule

from aiida_sianode.calculations.label import LocalLabelCalculation
from aiida_sianode.common.validation import StructureValidationError
from aiida_sianode.data.label import LabelData
from aiida_sianode.protocols import ProtocolError
from aiida_sianode.workflows.label import CommonLabelWorkChain, get_label_workchain
from aiida_sianode.workflows.label.local import GpawLabelWorkChain, XtbLabelWorkChain

#: Cheap GPAW settings for Si2: 250 eV, 2x2x2 Γ-centred k-points.
GPAW_CHEAP = {'calc': {'parameters': {'cutoff_ev': 250.0, 'kpoint_density': 0.8}}}


def si2_rattled():
    """Two-atom silicon with one atom moved off its site, so the forces are not zero by symmetry."""
    atoms = bulk('Si', 'diamond', a=5.43)
    atoms.positions[1] += [0.07, -0.04, 0.05]
    return atoms


def test_entry_points_and_interface():
    """Both local work chains load from their entry points and follow the common interface."""
    assert get_label_workchain('gpaw') is GpawLabelWorkChain
    assert get_label_workchain('xtb') is XtbLabelWorkChain
    for cls, labeler in ((GpawLabelWorkChain, 'gpaw'), (XtbLabelWorkChain, 'xtb')):
        assert issubclass(cls, CommonLabelWorkChain)
        assert cls.labeler == labeler
        spec = cls.spec()
        assert spec.outputs['label'].valid_type is LabelData
        assert spec.exit_codes.ERROR_SCF_NOT_CONVERGED.status == 410
        assert spec.exit_codes.ERROR_CODE_FAILED.status == 420
        assert spec.exit_codes.ERROR_MISSING_OUTPUTS.status == 300
        assert set(cls.get_available_protocols()) == {'fast', 'balanced', 'stringent'}
    with pytest.raises(ValueError, match='no label work chain for labeler `nwchem`'):
        get_label_workchain('nwchem')


def test_protocols_set_the_documented_settings(aiida_profile, label_code):
    """fast/balanced/stringent give 300/400/520 eV and k-point densities 1.5/2.5/4 per Å^-1."""
    expected = {'fast': (300.0, 1.5), 'balanced': (400.0, 2.5), 'stringent': (520.0, 4.0)}
    structure = orm.StructureData(ase=bulk('Si', 'diamond', a=5.43))
    for protocol, (cutoff, density) in expected.items():
        builder = GpawLabelWorkChain.get_builder_from_protocol(label_code, structure, protocol=protocol)
        parameters = builder.calc.parameters.get_dict()
        assert (parameters['cutoff_ev'], parameters['kpoint_density']) == (cutoff, density)
        assert parameters['labeler'] == 'gpaw'
    assert GpawLabelWorkChain.get_default_protocol() == 'balanced'
    builder = XtbLabelWorkChain.get_builder_from_protocol(label_code, structure, protocol='stringent')
    assert builder.calc.parameters['accuracy'] == 0.01


def test_unknown_protocol_and_override_key_are_refused(aiida_profile, label_code):
    structure = orm.StructureData(ase=bulk('Si', 'diamond', a=5.43))
    with pytest.raises(ProtocolError, match=r'unknown protocol `precise`.*balanced, fast, stringent'):
        GpawLabelWorkChain.get_builder_from_protocol(label_code, structure, protocol='precise')
    with pytest.raises(ProtocolError, match=r'override `calc.parameters.cutoff` does not exist'):
        GpawLabelWorkChain.get_builder_from_protocol(
            label_code, structure, overrides={'calc': {'parameters': {'cutoff': 300}}}
        )
    with pytest.raises(ProtocolError, match=r'override `calc.parameters.cutoff_ev` does not exist'):
        XtbLabelWorkChain.get_builder_from_protocol(
            label_code, structure, overrides={'calc': {'parameters': {'cutoff_ev': 300}}}
        )


REFUSALS = [
    ('empty', Atoms(cell=[3, 3, 3], pbc=True), GpawLabelWorkChain, r'the structure is empty'),
    (
        'too close',
        Atoms('Si2', positions=[[0, 0, 0], [0.3, 0, 0]], cell=[5, 5, 5], pbc=True),
        GpawLabelWorkChain,
        r'atoms 0 and 1 \(Si-Si\) are 0\.300 Å apart, closer than 0\.5 Å',
    ),
    (
        'too close to an image',
        Atoms('Si2', positions=[[0.1, 0, 0], [4.8, 0, 0]], cell=[5, 5, 5], pbc=True),
        XtbLabelWorkChain,
        r'atoms 0 and 1 \(Si-Si\) are 0\.300 Å apart',
    ),
    (
        'unsupported element gpaw',
        Atoms('SiU', positions=[[0, 0, 0], [2, 2, 2]], cell=[5, 5, 5], pbc=True),
        GpawLabelWorkChain,
        r'element U cannot be labelled by gpaw',
    ),
    (
        'unsupported element xtb',
        Atoms('SiU', positions=[[0, 0, 0], [2, 2, 2]], cell=[5, 5, 5], pbc=True),
        XtbLabelWorkChain,
        r'element U cannot be labelled by xtb',
    ),
    ('non-periodic gpaw', molecule('H2O'), GpawLabelWorkChain, r'not periodic in all directions.*plane-wave code'),
]


@pytest.mark.parametrize(
    ('atoms', 'cls', 'message'), [item[1:] for item in REFUSALS], ids=[item[0] for item in REFUSALS]
)
def test_bad_structures_are_refused_before_anything_runs(aiida_profile, label_code, atoms, cls, message):
    """The protocol builder raises, and a hand-made builder is refused by the spec validator, with the reason."""
    structure = orm.StructureData(ase=atoms) if len(atoms) else orm.StructureData(cell=atoms.cell[:])
    with pytest.raises(StructureValidationError, match=message):
        cls.get_builder_from_protocol(label_code, structure, protocol='fast')

    good = orm.StructureData(ase=bulk('Si', 'diamond', a=5.43))
    builder = cls.get_builder_from_protocol(label_code, good, protocol='fast')
    builder.structure = structure
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=message):
        run_get_node(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_xtb_accepts_a_molecule(aiida_profile, label_code):
    """GFN1-xTB labels molecules: no periodicity needed, and no stress comes back."""
    water = molecule('H2O')
    builder = XtbLabelWorkChain.get_builder_from_protocol(label_code, orm.StructureData(ase=water))
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    label = results['label']
    assert label.stress is None
    assert label.level_of_theory['method'] == 'GFN1-xTB'

    from tblite.ase import TBLite

    water.calc = TBLite(method='GFN1-xTB', verbosity=0)
    assert label.energy == pytest.approx(water.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(label.forces, water.get_forces(), atol=1e-6)


def test_calculation_parameters_are_validated(aiida_profile, label_code):
    """Unknown keys, unknown labelers and wrong types are refused by the calculation's port validator."""
    structure = orm.StructureData(ase=bulk('Si', 'diamond', a=5.43))
    cases = [
        ({'cutoff_ev': 300}, r'need the key `labeler`'),
        ({'labeler': 'qe'}, r'unknown labeler `qe`'),
        ({'labeler': 'gpaw', 'ecut': 300}, r'unknown parameter `ecut` for gpaw'),
        ({'labeler': 'gpaw', 'cutoff_ev': 'high'}, r'parameter `cutoff_ev` must be of type'),
        ({'labeler': 'gpaw', 'smearing': {'type': 'gaussian', 'width_ev': 0.1}}, r'smearing type `gaussian` unknown'),
        ({'labeler': 'xtb', 'max_iterations': 0}, r'`max_iterations` must be positive'),
    ]
    for parameters, message in cases:
        builder = LocalLabelCalculation.get_builder()
        builder.code = label_code
        builder.structure = structure
        with pytest.raises(ValueError, match=message):  # the builder checks the port on assignment
            builder.parameters = orm.Dict(parameters)
        with pytest.raises(ValueError, match=message):  # and the process again when it is launched
            run_get_node(LocalLabelCalculation, code=label_code, structure=structure, parameters=orm.Dict(parameters))


def test_parameters_for_another_labeler_are_refused(aiida_profile, label_code):
    structure = orm.StructureData(ase=bulk('Si', 'diamond', a=5.43))
    builder = GpawLabelWorkChain.get_builder_from_protocol(label_code, structure, protocol='fast')
    builder.calc.parameters = orm.Dict({'labeler': 'xtb', 'accuracy': 1.0})
    with pytest.raises(ValueError, match=r'labels with gpaw, but calc.parameters asks for labeler `xtb`'):
        run_get_node(builder)
    builder = GpawLabelWorkChain.get_builder_from_protocol(label_code, structure, protocol='fast')
    builder.scf_restarts = orm.Int(5)
    with pytest.raises(ValueError, match=r'scf_restarts \(5\) must be smaller than max_iterations \(5\)'):
        run_get_node(builder)


@pytest.mark.slow
def test_gpaw_label_matches_a_direct_gpaw_call(aiida_profile, label_code):
    """The work chain's label equals ASE+GPAW run by hand with the same settings, and it is linked to its calc."""
    atoms = si2_rattled()
    builder = GpawLabelWorkChain.get_builder_from_protocol(
        label_code, orm.StructureData(ase=atoms), protocol='fast', overrides=GPAW_CHEAP
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    label = results['label']

    from gpaw import GPAW, PW

    atoms.calc = GPAW(
        mode=PW(250.0),
        xc='PBE',
        kpts={'size': (2, 2, 2), 'gamma': True},
        occupations={'name': 'marzari-vanderbilt', 'width': 0.1},
        txt=None,
    )
    assert label.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-3)
    np.testing.assert_allclose(label.forces, atoms.get_forces(), atol=1e-3)
    np.testing.assert_allclose(label.stress, atoms.get_stress(voigt=False), atol=1e-4)
    assert label.max_force > 0.5  # the displaced atom feels a real force

    lot = label.level_of_theory
    assert lot['code'] == 'gpaw'
    assert lot['method'] == 'PBE'
    assert lot['basis'] == 'plane-wave'
    assert lot['cutoff_ev'] == 250
    assert lot['kpoint_spacing'] == 1.25
    assert lot['smearing'] == {'type': 'marzari-vanderbilt', 'width_ev': 0.1}
    assert lot['spin'] is False
    assert lot['pseudopotentials']['Si'].startswith('Si.PBE')
    assert lot['code_version']
    assert label.source == {'kind': 'calculation'}

    calc = label.creator
    assert isinstance(calc, orm.CalcJobNode) and calc.process_type.endswith('sianode.label')
    assert calc.inputs.structure.uuid == node.inputs.structure.uuid
    returned = node.base.links.get_outgoing(link_type=LinkType.RETURN).get_node_by_label('label')
    assert returned.uuid == label.uuid
    assert results['output_parameters']['scf']['kpoint_mesh'] == [2, 2, 2]


@pytest.mark.slow
def test_gpaw_scf_failure_is_restarted_and_then_converges(aiida_profile, label_code):
    """maxiter=6 is too few for Si2 (it needs 9): the first calculation fails with 410, the restart (12 iterations,
    half the mixing step) converges."""
    overrides = {'calc': {'parameters': {'cutoff_ev': 250.0, 'kpoint_density': 0.8, 'maxiter': 6}}}
    builder = GpawLabelWorkChain.get_builder_from_protocol(
        label_code, orm.StructureData(ase=si2_rattled()), protocol='fast', overrides=overrides
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    calcs = sorted(node.called, key=lambda n: n.ctime)
    assert [calc.exit_status for calc in calcs] == [410, 0]
    assert 'did not converge in 6 iterations' in calcs[0].exit_message
    retried = calcs[1].inputs.parameters.get_dict()
    assert retried['maxiter'] == 12
    assert retried['mixer_beta'] == pytest.approx(0.025)
    assert results['label'].creator.uuid == calcs[1].uuid
    assert 'maxiter 12; mixer_beta 0.025' in ' '.join(log.message for log in orm.Log.collection.get_logs_for(node))


def test_xtb_scf_failure_after_all_restarts_gives_410(aiida_profile, label_code):
    """One SCF cycle, then two, cannot converge: after the allowed restart the work chain stops with 410.

    The failed calculations stay in the graph with their retrieved files and SCF record.
    """
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(0.05, seed=1)
    builder = XtbLabelWorkChain.get_builder_from_protocol(
        label_code,
        orm.StructureData(ase=atoms),
        overrides={'scf_restarts': 1, 'calc': {'parameters': {'max_iterations': 1}}},
    )
    results, node = run_get_node(builder)
    assert node.exit_status == 410
    assert 'label' not in results
    calcs = sorted(node.called, key=lambda n: n.ctime)
    assert [calc.exit_status for calc in calcs] == [410, 410]
    assert [calc.inputs.parameters['max_iterations'] for calc in calcs] == [1, 2]
    for calc in calcs:
        assert calc.is_stored
        assert 'results.json' in calc.outputs.retrieved.base.repository.list_object_names()
        assert calc.outputs.output_parameters['scf']['converged'] is False
        assert 'SCF not converged' in calc.exit_message


def test_xtb_periodic_label_with_stress(aiida_profile, label_code):
    """A periodic cell gets the stress; energy, forces and stress equal tblite's own."""
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(0.05, seed=3)
    builder = XtbLabelWorkChain.get_builder_from_protocol(label_code, orm.StructureData(ase=atoms))
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    label = results['label']

    from tblite.ase import TBLite

    atoms.calc = TBLite(method='GFN1-xTB', verbosity=0)
    assert label.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(label.forces, atoms.get_forces(), atol=1e-6)
    np.testing.assert_allclose(label.stress, atoms.get_stress(voigt=False), atol=1e-7)
    assert label.level_of_theory['code'] == 'xtb'
    assert label.level_of_theory['smearing']['type'] == 'fermi-dirac'


def test_engine_killed_once_is_rerun_with_more_walltime(aiida_profile, aiida_localhost, tmp_path):
    """An engine that dies without results.json (SIGKILL, scancel, walltime) is rerun once with the same inputs and
    twice the walltime; the lost run stays in the provenance with exit 300. A second loss stops the chain with 300."""
    import stat
    import sys

    marker = tmp_path / 'killed-once'
    wrapper = tmp_path / 'dies-first.sh'
    wrapper.write_text(
        f'#!/bin/bash\nif [ ! -e {marker} ]; then touch {marker}; kill -9 $$; fi\nexec {sys.executable} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    code = orm.InstalledCode(
        label='label-dies-first',
        computer=aiida_localhost,
        filepath_executable=str(wrapper),
        default_calc_job_plugin='sianode.label',
    ).store()
    structure = orm.StructureData(ase=si2_rattled())
    builder = XtbLabelWorkChain.get_builder_from_protocol(code, structure, options={'max_wallclock_seconds': 600})
    # with label caching on, as `aiida-sianode setup` leaves every profile: the lost run must not be the rerun's cache
    with enable_caching(identifier='aiida.calculations:sianode.label'):
        results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    calcs = sorted(node.called, key=lambda calc: calc.ctime)
    assert [calc.exit_status for calc in calcs] == [300, 0]
    assert [calc.get_option('max_wallclock_seconds') for calc in calcs] == [600, 1200]
    assert calcs[0].inputs.parameters.get_dict() == calcs[1].inputs.parameters.get_dict()
    assert results['label'].energy == pytest.approx(calcs[1].outputs.label.energy)
    assert any('rerunning the same inputs (1 of 1' in line.message for line in orm.Log.collection.get_logs_for(node))

    # killed every time: one rerun, then 300
    wrapper.write_text('#!/bin/bash\nkill -9 $$\n')
    _, node = run_get_node(XtbLabelWorkChain.get_builder_from_protocol(code, structure))  # no cache: same inputs
    assert node.exit_status == 300
    assert [calc.exit_status for calc in node.called] == [300, 300]
