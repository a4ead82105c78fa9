"""Failing paths of `aiida-sianode select`, `potential show|plot` and `campaign show`: a PK that does not exist and a
node of the wrong type each stop with a message naming the problem and a non-zero exit status, as text and as
``--json``, before anything is computed."""

from __future__ import annotations

import json

import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_sianode.cli import cmd_root

MISSING = '987654321'


@pytest.fixture
def wrong_node(aiida_profile):
    """A stored Dict: a real node of a type none of these commands takes."""
    return orm.Dict({'not': 'a potential'}).store()


def invoke(*args):
    return CliRunner().invoke(cmd_root, [str(arg) for arg in args])


@pytest.mark.parametrize(
    ('command', 'missing_message', 'wrong_message'),
    [
        (('select',), f'cannot load the exploration `{MISSING}`', 'is a Dict, not an exploration process'),
        (('potential', 'show'), f'no potential `{MISSING}`', 'is a Dict, not a potential'),
        (('campaign', 'show'), f'no campaign `{MISSING}`', 'is a Dict, not an ActiveLearningWorkChain'),
    ],
)
def test_missing_pk_and_wrong_type_exit_non_zero(command, missing_message, wrong_message, wrong_node, tmp_path):
    missing = invoke(*command, MISSING)
    assert missing.exit_code == 1, missing.output
    assert missing_message in missing.output
    assert 'Traceback' not in missing.output

    wrong = invoke(*command, wrong_node.pk)
    assert wrong.exit_code == 1, wrong.output
    assert wrong_message in wrong.output

    as_json = invoke(*command, wrong_node.pk, '--json')
    assert as_json.exit_code == 1
    assert wrong_message in json.loads(as_json.stdout)['error']


def test_potential_plot_refuses_a_wrong_dataset(wrong_node, tmp_path, fixtures_path):
    """`potential plot` checks both nodes: a missing potential, then a real potential with a Dict as dataset."""
    from aiida_sianode.data.potential import PotentialData

    output = tmp_path / 'parity.png'
    missing = invoke('potential', 'plot', MISSING, '--dataset', wrong_node.pk, '-o', output)
    assert missing.exit_code == 1 and f'no potential `{MISSING}`' in missing.output
    model = fixtures_path / 'models' / 'si_fast' / 'member_0.model'
    potential = PotentialData.from_model_file(model, training_set_uuid='test').store()
    wrong = invoke('potential', 'plot', potential.pk, '--dataset', wrong_node.pk, '-o', output)
    assert wrong.exit_code == 1 and 'is a Dict, not a dataset' in wrong.output
    assert not output.exists()
