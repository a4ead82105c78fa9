"""The build_structure calcfunction: provenance on the stored structure, exit codes for bad input, a host input."""

import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_sianode.structures import StructureBuildError
from aiida_sianode.structures.calcfunctions import (
    BUILDER_KEY,
    PARAMETERS_KEY,
    SEED_KEY,
    build_structure,
    store_structure,
)


def test_stored_structure_carries_builder_parameters_and_seed(aiida_profile):
    structure = store_structure('si-crystal', {'size': [1, 1, 1], 'rattle': 0.02}, seed=5)
    assert structure.is_stored
    assert structure.get_formula() == 'Si8'
    reloaded = orm.load_node(structure.pk)
    for getter in (reloaded.base.attributes.get, reloaded.base.extras.get):
        assert getter(BUILDER_KEY) == 'si-crystal'
        assert getter(PARAMETERS_KEY)['rattle'] == 0.02
        assert getter(PARAMETERS_KEY)['lattice_constant'] == 5.431
        assert getter(SEED_KEY) == 5
    creator = structure.creator
    assert creator.process_label == 'build_structure'
    inputs = {link.link_label: link.node for link in creator.base.links.get_incoming().all()}
    assert inputs['kind'].value == 'si-crystal'
    assert inputs['parameters'].get_dict() == {'size': [1, 1, 1], 'rattle': 0.02}
    assert inputs['seed'].value == 5

    found = orm.QueryBuilder().append(orm.StructureData, filters={f'extras.{BUILDER_KEY}': 'si-crystal'}).all(flat=True)
    assert structure.uuid in {node.uuid for node in found}
    # Same inputs, same structure.
    again = store_structure('si-crystal', {'size': [1, 1, 1], 'rattle': 0.02}, seed=5)
    assert (again.get_ase().positions == structure.get_ase().positions).all()


@pytest.mark.parametrize(
    ('kind', 'parameters', 'status', 'message'),
    [
        ('diamond', {}, 201, 'unknown structure kind'),
        ('lixsi', {'xx': 1}, 202, 'unknown parameter'),
        ('lixsi', {'x': 5.0}, 203, 'x must be <= 4.4'),
    ],
)
def test_bad_requests_end_with_an_exit_code_and_a_message(aiida_profile, kind, parameters, status, message):
    _, node = run_get_node(build_structure, kind=orm.Str(kind), parameters=orm.Dict(parameters), seed=orm.Int(0))
    assert node.exit_status == status
    assert message in node.exit_message
    assert not node.base.links.get_outgoing().all()


def test_store_structure_raises_before_running_on_unknown_names(aiida_profile):
    count = orm.QueryBuilder().append(orm.CalcFunctionNode).count()
    with pytest.raises(StructureBuildError, match='unknown parameter'):
        store_structure('graphite', {'size': [1, 1, 1], 'stacking': 'AA'})
    assert orm.QueryBuilder().append(orm.CalcFunctionNode).count() == count


def test_a_stored_host_is_an_input_of_the_lithiated_structure(aiida_profile):
    host = store_structure('si-crystal', {'size': [1, 1, 1]}, seed=0)
    lithiated = store_structure('lixsi', {'x': 1.0}, seed=2, host=host)
    assert lithiated.get_formula() == 'Li8Si8'
    assert lithiated.base.extras.get('sianode_host_uuid') == host.uuid
    inputs = {link.link_label: link.node.uuid for link in lithiated.creator.base.links.get_incoming().all()}
    assert inputs['host'] == host.uuid
