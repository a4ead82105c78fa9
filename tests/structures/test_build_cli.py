"""``aiida-sianode build``: parameters, output file, picture, --json, --store, --list and refusals."""

import json

import ase.io
import pytest
from click.testing import CliRunner

from aiida_sianode.cli import cmd_root
from aiida_sianode.cli.build import parse_parameters


def invoke(*args):
    return CliRunner().invoke(cmd_root, ['build', *args], catch_exceptions=False)


def test_parameters_are_read_as_yaml_values():
    parameters = parse_parameters(('x=3.75', 'size=[1, 2, 3]', 'composition={Li2CO3: 16, Li: 64}', 'expand=false'))
    assert parameters == {'x': 3.75, 'size': [1, 2, 3], 'composition': {'Li2CO3': 16, 'Li': 64}, 'expand': False}


def test_build_writes_the_structure_and_a_json_summary(tmp_path):
    output = tmp_path / 'lixsi.extxyz'
    result = invoke('lixsi', '-p', 'x=2', '-p', 'size=[1,1,1]', '--seed', '4', '-o', str(output), '--json')
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary['formula'] == 'Li16Si8'
    assert summary['parameters']['x'] == 2
    assert summary['seed'] == 4
    assert summary['min_distance'] >= 1.9
    atoms = ase.io.read(output)
    assert atoms.get_chemical_formula() == 'Li16Si8'
    assert atoms.info['builder'] == 'lixsi'
    assert json.loads(atoms.info['builder_parameters'])['x'] == 2
    assert atoms.info['seed'] == 4


def test_build_draws_a_png(tmp_path):
    picture = tmp_path / 'graphite.png'
    result = invoke('graphite', '-p', 'size=[2,2,1]', '--png', str(picture))
    assert result.exit_code == 0, result.output
    assert picture.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert picture.stat().st_size > 10_000


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (('lixsi', '-p', 'y=1'), 'unknown parameter for lixsi: y'),
        (('lixsi', '-p', 'x=9'), 'x must be <= 4.4'),
        (('quartz',), 'unknown structure kind'),
        (('lixsi', '-p', 'x'), 'expected KEY=VALUE'),
        ((), 'give a KIND'),
    ],
)
def test_bad_requests_fail_with_a_clear_message(args, message):
    result = invoke(*args, '--json')
    assert result.exit_code == 1
    assert message in json.loads(result.stdout)['error']


def test_list_shows_every_kind_with_its_defaults():
    result = invoke('--list', '--json')
    listing = json.loads(result.stdout)
    assert listing['core-shell']['parameters']['shell_thickness_nm'] == 0.5
    assert 'sei-pack' in listing


def test_store_prints_the_pk_of_a_structure_with_provenance(aiida_profile):
    from aiida import orm

    result = invoke('graphite', '-p', 'size=[2,2,1]', '--store', '--json')
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    node = orm.load_node(summary['pk'])
    assert node.get_formula() == 'C16'
    assert node.base.extras.get('sianode_builder') == 'graphite'
    assert node.creator.process_label == 'build_structure'


def test_a_stored_host_is_lithiated_and_linked(aiida_profile):
    from aiida import orm

    host = json.loads(invoke('si-crystal', '-p', 'size=[1,1,1]', '--store', '--json').stdout)['pk']
    result = invoke('lixsi', '-p', 'x=1.5', '--host', str(host), '--store', '--json')
    assert result.exit_code == 0, result.output
    node = orm.load_node(json.loads(result.stdout)['pk'])
    assert node.get_formula() == 'Li12Si8'
    incoming = {link.link_label: link.node.pk for link in node.creator.base.links.get_incoming().all()}
    assert incoming['host'] == host
    refused = invoke('graphite', '--host', str(host), '--json')
    assert 'does not take a host' in json.loads(refused.stdout)['error']
