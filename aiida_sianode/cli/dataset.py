"""``aiida-sianode dataset``: import, show and export training sets."""

from __future__ import annotations

import click
from aiida.cmdline.utils import decorators

from aiida_sianode.cli.root import JSON_OPTION, cmd_root, echo_info, echo_json, fail


@cmd_root.group('dataset')
def cmd_dataset():
    """Import existing DFT work as labels, show and export training sets."""


def load_typed_node(identifier: str, node_class, what: str, as_json: bool):
    """Load the node ``identifier`` (PK, UUID or label) and check it is a ``node_class``; exit with a message if not."""
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    try:
        node = orm.load_node(identifier)
    except (NotExistent, MultipleObjectsError, ValueError) as exception:
        fail(f'no {what} `{identifier}`: {exception}', as_json)
    if not isinstance(node, node_class):
        fail(f'node `{identifier}` is a {type(node).__name__}, not a {what}', as_json)
    return node


def _describe_level_of_theory(record: dict) -> str:
    parts = [record.get('code', '?'), record.get('method') or '']
    if record.get('cutoff_ev') is not None:
        parts.append(f'{record["cutoff_ev"]} eV')
    if record.get('kpoint_spacing') is not None:
        parts.append(f'k-spacing {record["kpoint_spacing"]} 1/Å')
    if record.get('description'):
        parts.append(str(record['description']))
    return ', '.join(str(part) for part in parts if part)


@cmd_dataset.command('show')
@click.argument('identifier', metavar='DATASET')
@JSON_OPTION
@decorators.with_dbenv()
def cmd_dataset_show(identifier, as_json):
    """Show a training set: frames, splits, elements, levels of theory, labels and where they come from."""
    from aiida_sianode.data.dataset import DatasetData
    from aiida_sianode.provenance import dataset_generations

    dataset = load_typed_node(identifier, DatasetData, 'dataset', as_json)
    summary = dataset.summary()
    summary['generations'] = len(dataset_generations(dataset))
    if as_json:
        echo_json(summary)
        return
    counts = summary['split_counts']
    echo_info(f'dataset      pk={dataset.pk} uuid={dataset.uuid}')
    echo_info(
        f'frames       {summary["n_frames"]} ({summary["n_new"]} new in this generation, '
        f'{summary["generations"]} generation(s))'
    )
    echo_info(f'labels       {summary["n_labels"]}')
    echo_info(
        f'splits       train {counts["train"]}, valid {counts["valid"]}, test {counts["test"]} (seed {summary["seed"]})'
    )
    echo_info(f'elements     {" ".join(summary["elements"])}')
    types = ', '.join(f'{name} {count}' for name, count in sorted((summary['config_types'] or {}).items()))
    echo_info(f'config types {types}')
    echo_info(f'mixed        {"yes" if summary["mixed"] else "no"}')
    for fingerprint, record in (summary['levels_of_theory'] or {}).items():
        echo_info(f'level        {_describe_level_of_theory(record)} [{fingerprint[:12]}]')
    for source, count in sorted((summary['sources'] or {}).items(), key=lambda item: -item[1]):
        echo_info(f'source       {source}: {count} label(s)')
    if summary['parent_uuid']:
        echo_info(f'parent       {summary["parent_uuid"]}')


@cmd_dataset.command('export')
@click.argument('identifier', metavar='DATASET')
@click.option('-o', '--output', required=True, type=click.Path(dir_okay=False), help='extxyz file to write.')
@click.option('--split', type=click.Choice(['train', 'valid', 'test']), default=None, help='Only frames of this split.')
@JSON_OPTION
@decorators.with_dbenv()
def cmd_dataset_export(identifier, output, split, as_json):
    """Write a training set as extended XYZ (energy, forces, stress, config_type, split, label and source UUIDs)."""
    from aiida_sianode.data.dataset import DatasetData

    dataset = load_typed_node(identifier, DatasetData, 'dataset', as_json)
    count = dataset.export(output, split=split)
    if as_json:
        echo_json(
            {'dataset_pk': dataset.pk, 'dataset_uuid': dataset.uuid, 'path': output, 'split': split, 'n_frames': count}
        )
        return
    echo_info(f'wrote {count} frame(s){f" of split {split}" if split else ""} to {output}')
