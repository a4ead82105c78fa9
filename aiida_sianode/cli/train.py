"""``aiida-sianode train``: train a committee of MACE potentials on a stored training set."""

from __future__ import annotations

import click

from aiida_sianode.cli.root import (
    JSON_OPTION,
    cmd_root,
    echo_info,
    echo_json,
    echo_table,
    fail,
    load_code_or_fail,
    load_profile_or_fail,
)

DEFAULT_CODE = 'sianode-train@localhost'


def parse_overrides(items) -> dict:
    """Turn ``KEY=VALUE`` strings into a nested overrides dict for ``get_builder_from_protocol``.

    A bare training parameter (``lr=0.005``) goes to ``train.parameters``; other keys are dotted paths into the
    protocol inputs (``max_iterations=2``, ``train.metadata.options.max_wallclock_seconds=600``). Values are read as
    YAML, so ``true``, ``0.5``, ``null`` and ``{Si: -5.4}`` have their natural types.

    :raises click.BadParameter: for an item without ``=`` or with an empty key.
    """
    import yaml

    from aiida_sianode.engines.train import PARAMETER_SPECS

    overrides: dict = {}
    for item in items:
        key, separator, text = item.partition('=')
        key = key.strip()
        if not separator or not key:
            raise click.BadParameter(f'`{item}` is not KEY=VALUE', param_hint='--override')
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exception:
            raise click.BadParameter(
                f'cannot read the value of `{item}`: {exception}', param_hint='--override'
            ) from None
        path = ['train', 'parameters', key] if key in PARAMETER_SPECS else key.split('.')
        target = overrides
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return overrides


def _significant(value, digits: int = 4) -> str | None:
    return None if value is None else f'{value:.{digits}g}'


def _member_row(label: str, record: dict) -> dict:
    wall = record.get('training_wall_time_s')
    row = {
        'member': label,
        'seed': record.get('seed'),
        'epochs': record.get('epochs_run'),
        'wall_s': None if wall is None else f'{wall:.0f}',
    }
    for split in ('train', 'valid', 'test'):
        values = record.get(split) or {}
        row[f'{split}_e'] = _significant(values.get('rmse_e_per_atom_mev'))
        row[f'{split}_f'] = _significant(values.get('rmse_f_mev_a'))
    return row


def _print_summary(summary: dict) -> None:
    rows = [_member_row(label, record) for label, record in summary['members'].items()]
    splits = [split for split in ('train', 'valid', 'test') if any(row[f'{split}_e'] is not None for row in rows)]
    statistics_row = {'member': 'mean ± std'}
    for split in splits:
        statistics = summary['mean_std'].get(split, {})
        for short, key in (('e', 'rmse_e_per_atom_mev'), ('f', 'rmse_f_mev_a')):
            if key in statistics:
                statistics_row[f'{split}_{short}'] = f'{statistics[key]["mean"]:.4g} ± {statistics[key]["std"]:.2g}'
    if len(rows) > 1 and len(statistics_row) > 1:
        rows.append(statistics_row)
    columns = ['member', 'seed', 'epochs', 'wall_s']
    headers = ['member', 'seed', 'epochs', 'train time (s)']
    for split in splits:
        columns += [f'{split}_e', f'{split}_f']
        headers += [f'{split} E (meV/atom)', f'{split} F (meV/Å)']
    echo_table(rows, columns, headers)
    committee = summary.get('committee_prediction', {}).get('test')
    if committee:
        echo_info(
            f'committee mean on test: RMSE E {committee["rmse_e_per_atom_mev"]:.3g} meV/atom, '
            f'RMSE F {committee["rmse_f_mev_a"]:.4g} meV/Å ({committee["n_frames"]} frames)'
        )
    disagreement = summary.get('test_disagreement')
    if disagreement:
        echo_info(
            f'member disagreement on test: mean max force deviation '
            f'{disagreement["mean_max_force_deviation_ev_a"]:.3g} eV/Å, energy std '
            f'{disagreement["mean_energy_std_mev_per_atom"]:.3g} meV/atom'
        )
    for label, reason in summary.get('failed_members', {}).items():
        echo_info(f'{label} failed: {reason}')


@cmd_root.command('train')
@click.argument('dataset_id', metavar='DATASET_PK')
@click.option(
    '--committee',
    'committee_size',
    type=click.IntRange(1, 100),
    default=3,
    show_default=True,
    help='Number of committee members (seeds parameters.seed + 0, 1, ...).',
)
@click.option(
    '--protocol',
    type=click.Choice(['fast', 'balanced', 'stringent']),
    default=None,
    help='Settings preset (default: balanced).',
)
@click.option('--test', 'test_id', default=None, metavar='DATASET_PK', help='A dataset to score the committee on.')
@click.option(
    '--override',
    'overrides',
    multiple=True,
    metavar='KEY=VALUE',
    help='Change one protocol input; repeatable. A training parameter by name (lr=0.005, bootstrap=true, '
    'max_num_epochs=50) or a dotted path (max_iterations=2, train.metadata.options.max_wallclock_seconds=600).',
)
@click.option('--code', 'code_label', default=DEFAULT_CODE, show_default=True, help='The sianode.train code to use.')
@click.option('--submit', is_flag=True, default=False, help='Submit to the daemon instead of running here and waiting.')
@JSON_OPTION
def cmd_train(dataset_id, committee_size, protocol, test_id, overrides, code_label, submit, as_json):
    """Train a committee of MACE potentials on the dataset DATASET_PK and print their errors.

    Every member trains on the same train/valid splits with its own seed (and its own bootstrap sample with
    `--override bootstrap=true`). Prints per member the RMSE of the energy per atom (meV/atom) and of the force
    components (meV/Å) on each split, their mean ± std over members, and the error of the committee-mean prediction
    on the test frames. Exits 1 when no member trained.
    """
    from aiida.engine import run_get_node
    from aiida.engine import submit as submit_process

    from aiida_sianode.cli.dataset import load_typed_node
    from aiida_sianode.data.dataset import DatasetData
    from aiida_sianode.protocols import ProtocolError
    from aiida_sianode.workflows.train import TrainCommitteeWorkChain

    try:
        override_dict = parse_overrides(overrides)
    except click.BadParameter as exception:
        fail(exception.format_message(), as_json)

    profile = load_profile_or_fail(as_json)
    code = load_code_or_fail(code_label, as_json, f'run `aiida-sianode setup` to create {DEFAULT_CODE}, or pass --code')
    if submit and profile.process_control_backend is None:
        fail(f'--submit needs a profile with a broker; `{profile.name}` has none: run without --submit', as_json)
    dataset = load_typed_node(dataset_id, DatasetData, 'dataset', as_json)
    test_dataset = load_typed_node(test_id, DatasetData, 'dataset', as_json) if test_id is not None else None

    try:
        builder = TrainCommitteeWorkChain.get_builder_from_protocol(
            code,
            dataset,
            protocol=protocol,
            overrides=override_dict or None,
            committee_size=committee_size,
            test_dataset=test_dataset,
        )
    except (ProtocolError, ValueError, TypeError) as exception:
        fail(f'nothing was run: {exception}', as_json)
    protocol = protocol or TrainCommitteeWorkChain.get_default_protocol()

    if submit:
        node = submit_process(builder)
        if as_json:
            echo_json({'workchain_pk': node.pk, 'submitted': True, 'protocol': protocol})
        else:
            echo_info(f'submitted TrainCommitteeWorkChain<{node.pk}>: follow it with `verdi process status {node.pk}`')
        return

    echo_info(
        f'training a committee of {committee_size} on dataset<{dataset.pk}> ({dataset.n_frames} frames) with the '
        f'{protocol} protocol',
        as_json,
    )
    try:
        results, node = run_get_node(builder)
    except ValueError as exception:  # inputs refused by a validator of the work chain
        fail(f'nothing was run: {exception}', as_json)
    summary = results['metrics'].get_dict() if 'metrics' in results else None
    document = {
        'workchain_pk': node.pk,
        'protocol': protocol,
        'dataset_pk': dataset.pk,
        'test_dataset_pk': test_dataset.pk if test_dataset is not None else None,
        'exit_status': node.exit_status,
        'exit_message': node.exit_message,
        'potentials': {label: potential.pk for label, potential in results.get('potentials', {}).items()},
        'metrics_pk': results['metrics'].pk if 'metrics' in results else None,
        'metrics': summary,
    }
    if as_json:
        echo_json(document)
    else:
        echo_info(f'TrainCommitteeWorkChain<{node.pk}> finished with exit status {node.exit_status}')
        if summary:
            _print_summary(summary)
        for label, pk in document['potentials'].items():
            echo_info(f'{label}: PotentialData<{pk}>')
        if node.exit_status:
            echo_info(f'Error: {node.exit_message}')
    if not node.is_finished_ok:
        raise SystemExit(1)
