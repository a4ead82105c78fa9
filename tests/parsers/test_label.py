"""``LocalLabelParser`` on the engine's real ``results.json`` of a GFN1-xTB water molecule: a label, or exit code 440
when the recorded level of theory contradicts what the code says it ran with."""

import json

import pytest
from aiida import orm
from aiida.common import LinkType
from aiida.plugins import ParserFactory
from ase.build import molecule

from aiida_sianode.engines import label as engine


@pytest.fixture(scope='module')
def water_results(tmp_path_factory):
    """The engine's results of one GFN1-xTB single point of H2O (about a second)."""
    results = engine.label(molecule('H2O'), 'xtb', {'accuracy': 0.1}, tmp_path_factory.mktemp('xtb'))
    assert results['status'] == 'ok'
    return results


def parse(aiida_localhost, tmp_path, results):
    """Run the parser on a calculation node whose retrieved folder holds ``results`` as ``results.json``."""
    node = orm.CalcJobNode(computer=aiida_localhost, process_type='aiida.calculations:sianode.label')
    node.set_option('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
    structure = orm.StructureData(ase=molecule('H2O'))
    structure.set_pbc([False] * 3)
    node.base.links.add_incoming(structure.store(), LinkType.INPUT_CALC, 'structure')
    node.store()
    (tmp_path / engine.RESULTS_FILENAME).write_text(json.dumps(results))
    retrieved = orm.FolderData()
    retrieved.base.repository.put_object_from_file(str(tmp_path / engine.RESULTS_FILENAME), engine.RESULTS_FILENAME)
    retrieved.base.links.add_incoming(node, LinkType.CREATE, 'retrieved')
    retrieved.store()
    outputs, call = ParserFactory('sianode.label').parse_from_node(node, store_provenance=True)
    return outputs, call


def test_a_consistent_record_becomes_a_label(aiida_localhost, tmp_path, water_results):
    outputs, call = parse(aiida_localhost, tmp_path, water_results)
    assert call.exit_status == 0
    label = outputs['label']
    assert label.energy == pytest.approx(water_results['energy'], abs=1e-9)
    assert label.level_of_theory['method'] == 'GFN1-xTB'


def test_a_record_that_contradicts_the_code_is_refused(aiida_localhost, tmp_path, water_results):
    results = json.loads(json.dumps(water_results))
    results['level_of_theory']['method'] = 'GFN2-xTB'
    outputs, call = parse(aiida_localhost, tmp_path, results)
    assert call.exit_status == 440
    assert "method: the label records 'GFN2-xTB', the code ran with 'GFN1-xTB'" in call.exit_message
    assert 'label' not in outputs and 'output_parameters' in outputs
