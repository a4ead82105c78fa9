"""``aiida-sianode select``: pick the frames of exploration runs to label next."""

from __future__ import annotations

import click

from aiida_sianode.cli.root import JSON_OPTION, cmd_root, echo_info, echo_json, echo_table, fail
from aiida_sianode.selection.strategies import STRATEGIES

STRATEGY_CHOICES = tuple(STRATEGIES)


def _load_node(identifier: str, what: str, as_json: bool):
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    try:
        return orm.load_node(int(identifier) if identifier.isdigit() else identifier)
    except (NotExistent, MultipleObjectsError, ValueError) as exception:
        fail(f'cannot load the {what} `{identifier}`: {exception}', as_json)


@cmd_root.command('select')
@click.argument('explorations', nargs=-1, required=True, metavar='EXPLORATION_PK...')
@click.option(
    '-s', '--strategy', type=click.Choice(STRATEGY_CHOICES), default='trust', show_default=True, help='How to pick.'
)
@click.option('--lower', type=float, default=None, help="Lower trust level, eV/Å (default: the campaign protocol's).")
@click.option(
    '--upper',
    type=float,
    default=None,
    help="Upper trust level, eV/Å: frames at or above it failed (default: the campaign protocol's).",
)
@click.option('--max-per-run', type=click.IntRange(min=0), default=None, help='At most this many frames per run.')
@click.option('--max-total', type=click.IntRange(min=0), default=None, help='At most this many frames in all.')
@click.option('--potential', default=None, metavar='PK', help='PotentialData whose MACE features describe frames.')
@click.option('--training-set', default=None, metavar='PK', help='DatasetData for maxvol (default: the potential’s).')
@click.option('--dedup-threshold', type=click.FloatRange(min=0), default=None, help='Drop near-copies this close.')
@click.option('--seed', type=click.IntRange(min=0), default=None, help='Seed of the random choices (default 0).')
@click.option('-p', '--param', 'params', multiple=True, metavar='KEY=VALUE', help='Any other selection parameter.')
@JSON_OPTION
def cmd_select(
    explorations,
    strategy,
    lower,
    upper,
    max_per_run,
    max_total,
    potential,
    training_set,
    dedup_threshold,
    seed,
    params,
    as_json,
):
    """Select frames to label from the exploration calculations EXPLORATION_PK... (their `trajectory` and
    `deviations` outputs) and store them as StructureData through the `select_frames` calcfunction.

    Strategies: `trust` (candidates between the trust levels, most uncertain first), `maxvol` (D-optimal: frames
    that extend the training set's active set, MTP style), `direct` (DIRECT: stratified picks from BIRCH clusters),
    `random` (a seeded baseline). Other parameters go as `-p KEY=VALUE`, e.g. `-p grade_threshold=2`,
    `-p n_clusters=20`, `-p descriptor=radial` (see the selection documentation).
    """
    from aiida.cmdline.utils.decorators import load_backend_if_not_loaded

    from aiida_sianode.cli.build import parse_parameters

    try:
        parameters = parse_parameters(params)
    except click.BadParameter as exception:
        fail(exception.format_message(), as_json)
    named = {
        'lower': lower,
        'upper': upper,
        'max_per_run': max_per_run,
        'max_total': max_total,
        'dedup_threshold': dedup_threshold,
        'seed': seed,
    }
    for name, value in named.items():
        if value is not None:
            if name in parameters:
                fail(f'`{name}` is given both as an option and as -p {name}=...', as_json)
            parameters[name] = value
    if 'strategy' in parameters:
        fail('give the strategy with --strategy, not -p strategy=...', as_json)

    load_backend_if_not_loaded()
    from aiida_sianode.workflows.select import run_select, validate_parameters

    try:
        validate_parameters({**parameters, 'strategy': strategy})
    except ValueError as exception:
        fail(str(exception), as_json)
    nodes = [_load_node(identifier, 'exploration', as_json) for identifier in explorations]
    potential_node = _load_node(potential, 'potential', as_json) if potential else None
    training_node = _load_node(training_set, 'training set', as_json) if training_set else None
    runs = {f'run_{node.pk}': node for node in nodes} if len(nodes) > 1 else nodes[0]

    echo_info(f'selecting with `{strategy}` from {len(nodes)} exploration(s)...', as_json)
    try:
        result = run_select(runs, strategy=strategy, potential=potential_node, training_set=training_node, **parameters)
    except ValueError as exception:
        fail(str(exception), as_json)

    report = result.report
    summary = {
        'select_pk': result.node.pk,
        'strategy': strategy,
        'counts': report['counts'],
        'fractions': report['fractions'],
        'n_pool': report['n_pool'],
        'n_selected': report['n_selected'],
        'n_duplicates_removed': report['n_duplicates_removed'],
        'structures': {
            key: {
                'pk': node.pk,
                'uuid': node.uuid,
                'run': node.base.attributes.get('source_run'),
                'frame': node.base.attributes.get('source_frame_index'),
                'max_force_deviation': node.base.attributes.get('max_force_deviation'),
                'extrapolation_grade': node.base.attributes.get('extrapolation_grade', None),
                'cluster': node.base.attributes.get('cluster', None),
            }
            for key, node in result.structures.items()
        },
        'runs': {
            label: {key: entry[key] for key in ('trajectory_uuid', 'n_frames', 'counts', 'n_pool', 'selected')}
            for label, entry in report['runs'].items()
        },
    }
    if as_json:
        echo_json(summary)
        return
    rows = [
        {
            'run': label,
            'frames': entry['n_frames'],
            'accurate': entry['counts']['accurate'],
            'candidate': entry['counts']['candidate'],
            'failed': entry['counts']['failed'],
            'selected': len(entry['selected']),
        }
        for label, entry in report['runs'].items()
    ]
    echo_table(rows, ['run', 'frames', 'accurate', 'candidate', 'failed', 'selected'])
    click.echo('')
    frame_rows = [{'structure': key, **value} for key, value in summary['structures'].items()]
    if frame_rows:
        columns = ['structure', 'pk', 'frame', 'max_force_deviation']
        if strategy == 'maxvol':
            columns.append('extrapolation_grade')
        if strategy == 'direct':
            columns.append('cluster')
        echo_table(frame_rows, columns)
    click.echo(
        f'\nselected {report["n_selected"]} of {report["n_pool"]} pool frames with `{strategy}` '
        f'(select_frames<{result.node.pk}>; {report["n_duplicates_removed"]} near-copies dropped)'
    )
