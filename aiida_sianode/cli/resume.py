"""``aiida-sianode campaign resume PK``: get a campaign going again after its daemon was killed."""

from __future__ import annotations

import click
from aiida.cmdline.utils import decorators

from aiida_sianode.cli.campaign import cmd_campaign
from aiida_sianode.cli.root import JSON_OPTION, echo_info, echo_json, fail


@cmd_campaign.command('resume')
@click.argument('pk', type=str)
@click.option('--workers', type=int, default=None, help='Daemon workers to start (default: as before, at least 1).')
@click.option('--grace', type=float, default=10.0, show_default=True, help='Seconds between SIGTERM and SIGKILL.')
@JSON_OPTION
@decorators.with_dbenv()
def cmd_campaign_resume(pk, workers, grace, as_json):
    """Restart the daemon of campaign PK cleanly: stop it, end orphaned workers, repair lost process tasks, start it.

    For a campaign that waits for good after a daemon was killed (a child left `Created`, a worker left running
    without its supervisor). Runs `verdi daemon stop`, `verdi process repair` and `verdi daemon start` underneath.
    """
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    from aiida_sianode.deploy.recover import recover_daemon

    try:
        node = orm.load_node(pk)
    except (NotExistent, ValueError) as error:
        fail(f'no campaign with identifier `{pk}`: {error}', as_json)
    if not isinstance(node, orm.WorkflowNode):
        fail(f'node {node.pk} is a {type(node).__name__}, not a campaign (a work chain)', as_json)
    if node.is_terminated:
        result = {'pk': node.pk, 'state': node.process_state.value, 'exit_status': node.exit_status, 'resumed': False}
        if as_json:
            echo_json(result)
        else:
            echo_info(f'campaign {node.pk} has already terminated ({node.process_state.value}); nothing to resume')
        return
    pk, state = node.pk, node.process_state.value if node.process_state else None
    # `verdi process repair` ends the database connections no daemon holds, this command's own among them (on
    # PostgreSQL): nothing below reads the database again.
    try:
        report = recover_daemon(workers=workers, grace=grace)
    except RuntimeError as error:
        fail(str(error), as_json)
    result = {'pk': pk, 'state_before': state, 'resumed': report.daemon_started, **report.as_dict()}
    if as_json:
        echo_json(result)
        return
    for orphan in report.orphans:
        echo_info(f'ended orphaned daemon process {orphan["pid"]} ({orphan["role"]})')
    echo_info(f'revived processes without a task: {report.revived or "none"}')
    if report.dropped_tasks:
        echo_info(f'dropped tasks of terminated processes: {report.dropped_tasks}')
    echo_info(
        f'daemon of profile {report.profile} started with {report.workers} worker(s); '
        f'follow the campaign with `verdi process report {pk}`'
    )
