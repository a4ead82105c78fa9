"""Property work chains: refusals before anything runs, and one eos run end to end (CLI -> work chain -> CalcJob ->
engine -> parser) on two trained members, checked the way `verdi process show` shows it."""

from __future__ import annotations

import json
import pathlib

import ase.io
import pytest
from aiida import orm
from ase import Atoms
from ase.build import bulk
from click.testing import CliRunner

from aiida_sianode.cli import cmd_root
from aiida_sianode.properties.common import InvalidPropertyInput
from aiida_sianode.workflows.properties import EosPropertyWorkChain, PropertyWorkChain, StructurePropertyWorkChain

MODELS = pathlib.Path(__file__).resolve().parents[2] / 'fixtures' / 'models' / 'si_fast'
TRAINING_SET = '464c382a-1d52-4ff6-a231-b6e60d3bbe60'


def invoke(*args):
    return CliRunner().invoke(cmd_root, [str(arg) for arg in args], catch_exceptions=False)


@pytest.fixture
def committee(aiida_profile):
    """The two trained members as stored PotentialData (same training set)."""
    from aiida_sianode.data.potential import PotentialData

    return [
        PotentialData.from_model_file(path, training_set_uuid=TRAINING_SET, seed=index).store()
        for index, path in enumerate(sorted(MODELS.glob('member_*.model')))
    ]


def silicon() -> orm.StructureData:
    return orm.StructureData(ase=bulk('Si', 'diamond', a=5.43, cubic=True))


# ------------------------------------------------------------------------------------------------------- refusals


def test_refusals_before_anything_runs(property_code, committee):
    """Each refusal names the problem, from get_builder_from_protocol and from the spec validator alike."""
    from aiida_sianode.data.potential import PotentialData

    def refused(match, structures=None, potentials=None, workchain=EosPropertyWorkChain, **kwargs):
        with pytest.raises(InvalidPropertyInput, match=match):
            workchain.get_builder_from_protocol(
                property_code, structures or silicon(), potentials or committee, protocol='fast', **kwargs
            )

    carbon = bulk('Si', 'diamond', a=5.43, cubic=True)
    carbon[0].symbol = 'C'
    refused('contains C, an element the committee was not trained on', structures=orm.StructureData(ase=carbon))

    other = PotentialData.from_model_file(MODELS / 'member_1.model', training_set_uuid='another-set').store()
    refused('trained on different training sets', potentials=[committee[0], other])

    cutoff = PotentialData.from_model_file(MODELS / 'member_1.model', training_set_uuid=TRAINING_SET)
    cutoff.base.attributes.set('r_max', 5.0)
    refused('different cutoffs r_max', potentials=[committee[0], cutoff.store()])

    close = Atoms('Si2', positions=[[0, 0, 0], [0.4, 0, 0]], cell=[6, 6, 6], pbc=True)
    refused(r'are 0.400 Å apart, closer than 0.5 Å', structures=orm.StructureData(ase=close))

    refused('override `volume_rang` does not exist', overrides={'volume_rang': 0.05})
    refused('more than the 20 %', overrides={'volume_range': 0.25})
    with pytest.raises(InvalidPropertyInput, match='unknown protocol `precise`'):
        EosPropertyWorkChain.get_builder_from_protocol(property_code, silicon(), committee, protocol='precise')
    refused('unknown reference labeler `siesta`', reference={'labeler': 'siesta', 'code': property_code})
    refused('use the work chain of a property kind', workchain=PropertyWorkChain)

    # a builder edited by hand after get_builder_from_protocol is checked again by the spec before it runs
    builder = EosPropertyWorkChain.get_builder_from_protocol(property_code, silicon(), committee, protocol='fast')
    builder.structures = {'si': orm.StructureData(ase=close)}
    error = EosPropertyWorkChain.spec().inputs.validate(builder._inputs(prune=True))
    assert error is not None and 'closer than 0.5 Å' in error.message
    builder = StructurePropertyWorkChain.get_builder_from_protocol(property_code, silicon(), committee, protocol='fast')
    settings = builder.property.settings.get_dict()
    builder.property.settings = orm.Dict({**settings, 'cutoffs': {'C-C': 1.85}})
    error = StructurePropertyWorkChain.spec().inputs.validate(builder._inputs(prune=True))
    assert error is not None and 'cutoffs` bonds none of their pairs' in error.message
    builder.property.settings = orm.Dict({'cutoffs': {'Si-Si': 2.85}})
    error = StructurePropertyWorkChain.spec().inputs.validate(builder._inputs(prune=True))
    assert error is not None and "lack 'rdf'" in error.message


def test_cli_refusal_exits_non_zero(property_code, committee, tmp_path):
    path = tmp_path / 'si.extxyz'
    ase.io.write(path, bulk('Si', 'diamond', a=5.43, cubic=True))
    potentials = [argument for node in committee for argument in ('--potentials', node.pk)]
    for extra in ([], ['--json']):
        result = invoke('property', 'eos', path, *potentials, '--protocol', 'fast', '-p', 'volume_range=0.3', *extra)
        assert result.exit_code == 1
        assert 'more than the 20 %' in result.output
    result = invoke('property', 'bandgap', path, *potentials)
    assert result.exit_code == 1 and 'unknown property `bandgap`' in result.output


# ------------------------------------------------------------------------------------------------------- a real run


def test_eos_end_to_end_through_the_calcjob(property_code, committee, tmp_path):
    """`aiida-sianode property eos si8.extxyz --potentials A --potentials B --protocol fast --json --png`: the work
    chain, its PropertyCalculation and outputs as `verdi process show` lists them; then `property show` and
    `provenance properties`."""
    path = tmp_path / 'si8.extxyz'
    ase.io.write(path, bulk('Si', 'diamond', a=5.43, cubic=True))
    potentials = ['--potentials', ','.join(str(node.pk) for node in committee)]
    png = tmp_path / 'eos.png'
    result = invoke(
        'property', 'eos', path, *potentials, '--protocol', 'fast', '-p', 'device=cpu', '--json', '--png', png
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document['exit_status'] == 0
    node = orm.load_node(document['process_pk'])
    assert node.process_label == 'EosPropertyWorkChain' and node.is_finished_ok

    (calculation,) = node.called
    assert calculation.process_label == 'PropertyCalculation' and calculation.is_finished_ok
    assert calculation.inputs.kind.value == 'eos'
    assert {potential.pk for potential in calculation.inputs.potentials.values()} == {p.pk for p in committee}
    assert calculation.inputs.settings['n_points'] == 7

    results = node.outputs.results.get_dict()
    assert results == calculation.outputs.results.get_dict()
    assert results['kind'] == 'eos' and results['n_members'] == 2 and results['device'] == 'cpu'
    assert results['model_sha256'] == [potential.sha256 for potential in committee]
    bulk_modulus = results['scalars']['bulk_modulus_gpa']
    first, second = bulk_modulus['members']
    assert first != pytest.approx(second, abs=1.0)
    assert bulk_modulus['mean'] == pytest.approx((first + second) / 2)
    assert bulk_modulus['std'] == pytest.approx(abs(first - second) / 2)
    assert document['results']['scalars']['bulk_modulus_gpa'] == bulk_modulus

    curve = node.outputs.curves.energy_volume
    assert isinstance(curve, orm.XyData)
    names = [name for name, _, _ in curve.get_y()]
    assert names == ['mean', 'std', 'member_0', 'member_1']
    assert len(curve.get_x()[1]) == 7
    plot = node.outputs.plots.energy_volume
    assert plot.get_content(mode='rb')[:4] == b'\x89PNG'
    assert png.read_bytes() == plot.get_content(mode='rb')

    from aiida.cmdline.commands.cmd_process import process_show

    shown = CliRunner().invoke(process_show, [str(node.pk)])
    assert shown.exit_code == 0
    for text in ('EosPropertyWorkChain', 'PropertyCalculation', 'results', 'energy_volume', 'potentials', 'member_1'):
        assert text in shown.output

    show = invoke('property', 'show', node.pk)
    assert show.exit_code == 0
    assert 'bulk_modulus_gpa' in show.output and f'{bulk_modulus["mean"]:.4g}' in show.output

    listed = json.loads(invoke('provenance', 'properties', committee[1].pk, '--json').stdout)
    (row,) = [row for row in listed['properties'] if row['calculation_pk'] == calculation.pk]
    assert row['kind'] == 'eos' and row['workchain_pk'] == node.pk
    assert row['scalars']['bulk_modulus_gpa']['mean'] == pytest.approx(bulk_modulus['mean'])


# ------------------------------------------------------------------------------------------------------- restarts


def _failed_child(exit_code, computer, remote=True):
    """A stored PropertyCalculation node that finished with ``exit_code`` (with a remote folder)."""
    from aiida.common.links import LinkType
    from plumpy import ProcessState

    node = orm.CalcJobNode(computer=computer, process_type='aiida.calculations:sianode.property')
    node.set_process_label('PropertyCalculation')
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(exit_code.status)
    node.set_exit_message(exit_code.message)
    node.store()
    if remote:
        folder = orm.RemoteData(computer=computer, remote_path='/tmp/interrupted-property-run')
        folder.base.links.add_incoming(node, LinkType.CREATE, 'remote_folder')
        folder.store()
    return node


def test_interrupted_run_restarts_from_its_remote_folder_and_refusals_stop(property_code, committee, aiida_localhost):
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    from aiida_sianode.calculations.property import PropertyCalculation

    def workchain():
        builder = EosPropertyWorkChain.get_builder_from_protocol(property_code, silicon(), committee, protocol='fast')
        process = instantiate_process(get_manager().get_runner(), builder)
        process.setup()
        return process

    for exit_code in (
        PropertyCalculation.exit_codes.ERROR_INTERRUPTED,
        PropertyCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME,
    ):
        process = workchain()
        child = _failed_child(exit_code.format(n_finished=1), aiida_localhost)
        process.ctx.children, process.ctx.iteration = [child], 1
        result = process.inspect_process()
        assert result is None or result.status == 0  # handled: the work chain restarts
        assert not process.ctx.is_finished
        assert process.ctx.inputs.parent_folder.uuid == child.outputs.remote_folder.uuid
        assert process.ctx.inputs.kind.value == 'eos'

    process = workchain()
    child = _failed_child(PropertyCalculation.exit_codes.ERROR_INVALID_INPUT.format(message='no'), aiida_localhost)
    process.ctx.children, process.ctx.iteration = [child], 1
    assert process.inspect_process().status == EosPropertyWorkChain.exit_codes.ERROR_PROPERTY_REFUSED.status
