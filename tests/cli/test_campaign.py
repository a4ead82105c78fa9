"""``aiida-sianode run``: a campaign that fails makes the command exit 1, with and without ``--json``."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from aiida_sianode.cli import cmd_root

SPEC = """\
name: failing-labels
structures:
  - builder: si-crystal
    parameters: {{size: [1, 1, 1], rattle: 0.05}}
    seeds: [1, 2]
labeler: {{name: xtb, protocol: fast, code: '{label}'}}
training: {{protocol: fast, committee_size: 2, code: '{train}'}}
exploration: {{protocol: fast, steps: 10, code: '{explore}'}}
"""


def invoke(*args):
    return CliRunner().invoke(cmd_root, [str(arg) for arg in args], catch_exceptions=False)


@pytest.fixture
def failing_spec(tmp_path, failing_code, train_code, explore_code):
    """A campaign whose labeler code exits 1 at once: every initial label fails, the campaign stops with 401."""
    path = tmp_path / 'failing.yaml'
    label = failing_code('sianode.label')
    path.write_text(SPEC.format(label=label.full_label, train=train_code.full_label, explore=explore_code.full_label))
    return path


@pytest.mark.parametrize('as_json', [False, True])
def test_failed_campaign_exits_1(failing_spec, tmp_path, as_json):
    """Both labels fail (exit status 401, more than half failed): the command says so and exits 1."""
    from aiida import orm

    extra = ['--json'] if as_json else []
    result = invoke('run', failing_spec, '--output-dir', tmp_path / 'report', *extra)
    assert result.exit_code == 1, result.output
    if as_json:
        summary = json.loads(result.stdout)
        node = orm.load_node(summary['pk'])
    else:
        node = orm.QueryBuilder().append(orm.WorkChainNode, filters={'label': 'failing-labels'}).all(flat=True)[-1]
    assert node.exit_status == 401
    assert node.exit_message == '2 of 2 labels failed (more than the allowed fraction 0.5).'
    if as_json:
        assert summary['exit_status'] == 401
    else:
        assert '401' in result.output
    # the campaign report is written even for a failed campaign, and its path printed
    page = tmp_path / 'report' / 'report' / 'index.html'
    assert page.is_file()
    assert 'failed' in page.read_text() or '401' in page.read_text()
    if as_json:
        assert summary['html_report'] == str(page)
    else:
        assert f'campaign report (as `aiida-sianode campaign report {node.pk}`): {page}' in result.output


def test_missing_code_is_named(tmp_path, train_code, explore_code):
    """A spec naming a code that does not exist: exit 1 before anything runs, the code named."""
    path = tmp_path / 'nocode.yaml'
    path.write_text(
        SPEC.format(label='nowhere@localhost', train=train_code.full_label, explore=explore_code.full_label)
    )
    result = invoke('run', path, '--json')
    assert result.exit_code == 1
    assert json.loads(result.stdout)['error'].startswith('code `nowhere@localhost` not found')
