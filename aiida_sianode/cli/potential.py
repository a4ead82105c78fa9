"""``aiida-sianode potential``: show a trained MACE potential with its provenance, and draw its parity plots."""

from __future__ import annotations

import click
from aiida.cmdline.utils import decorators

from aiida_sianode.analysis.metrics import ERROR_METRIC_KEYS
from aiida_sianode.cli.dataset import _describe_level_of_theory, load_typed_node
from aiida_sianode.cli.root import JSON_OPTION, cmd_root, echo_info, echo_json, echo_table, fail

#: the table of a potential's errors: its split and the training engine's error metrics, without the stress MAE
METRIC_COLUMNS = ['split', *ERROR_METRIC_KEYS[:5]]


@cmd_root.group('potential')
def cmd_potential():
    """Show trained potentials and how well they reproduce a dataset."""


def potential_report(potential) -> dict:
    """Return everything ``potential show`` prints: the model, its errors and what it was trained on."""
    from aiida_sianode.provenance import dataset_of_potential
    from aiida_sianode.query import summarise_dataset_sql

    attributes = potential.base.attributes
    report = {
        'pk': potential.pk,
        'uuid': potential.uuid,
        'filename': potential.filename,
        'architecture': potential.architecture,
        'elements': potential.elements,
        'r_max': potential.r_max,
        'num_parameters': potential.num_parameters,
        'dtype': potential.dtype,
        'mace_version': attributes.get('mace_version', None),
        'sha256': potential.sha256,
        'seed': potential.seed,
        'metrics': potential.metrics,
        'created_by': None,
        'training_set': None,
        'n_labels': 0,
        'made_by': [],
    }
    creator = potential.creator
    if creator is not None:
        report['created_by'] = {'pk': creator.pk, 'uuid': creator.uuid, 'process_label': creator.process_label}
    try:
        dataset = dataset_of_potential(potential)
    except ValueError:
        return report
    report['training_set'] = {
        'pk': dataset.pk,
        'uuid': dataset.uuid,
        'n_frames': dataset.n_frames,
        'split_counts': dataset.split_counts,
        'mixed': dataset.mixed,
        'levels_of_theory': dataset.levels_of_theory,
    }
    # counted in the database (one GROUP BY), no row per label: under a second at 10^5 labels
    report['made_by'] = summarise_dataset_sql(dataset.pk)
    report['n_labels'] = sum(group['n_labels'] for group in report['made_by'])
    return report


@cmd_potential.command('show')
@click.argument('identifier', metavar='POTENTIAL')
@JSON_OPTION
@decorators.with_dbenv()
def cmd_potential_show(identifier, as_json):
    """Show a potential: elements, size, cutoff, errors, level of theory, labels and the codes that made them."""
    from aiida_sianode.data.potential import PotentialData

    potential = load_typed_node(identifier, PotentialData, 'potential', as_json)
    report = potential_report(potential)
    if as_json:
        echo_json(report)
        return
    architecture = report['architecture'] or {}
    echo_info(f'potential    pk={report["pk"]} uuid={report["uuid"]} ({report["filename"]})')
    echo_info(
        f'model        {architecture.get("class")}, {architecture.get("num_interactions")} interactions, '
        f'{architecture.get("hidden_irreps", "?")} (max_L {architecture.get("max_L", "?")}), '
        f'correlation {architecture.get("correlation", "?")}'
    )
    echo_info(f'parameters   {report["num_parameters"]} ({report["dtype"]}, mace {report["mace_version"]})')
    echo_info(f'elements     {" ".join(report["elements"] or [])}')
    echo_info(f'r_max        {report["r_max"]} Å')
    echo_info(f'seed         {report["seed"]}')
    echo_info(f'sha256       {report["sha256"]}')
    if report['created_by']:
        created = report['created_by']
        echo_info(f'trained by   {created["process_label"]} pk={created["pk"]}')
    training = report['training_set']
    if training is None:
        echo_info('training set unknown (no `dataset` input and no training_set_uuid)')
    else:
        counts = training['split_counts']
        echo_info(
            f'training set pk={training["pk"]}: {training["n_frames"]} frames (train {counts["train"]}, '
            f'valid {counts["valid"]}, test {counts["test"]}){", MIXED levels of theory" if training["mixed"] else ""}'
        )
        for fingerprint, record in (training['levels_of_theory'] or {}).items():
            echo_info(f'level        {_describe_level_of_theory(record)} [{fingerprint[:12]}]')
        echo_info(f'labels       {report["n_labels"]}')
        if report['made_by']:
            echo_info('made by:')
            echo_table(
                report['made_by'],
                ['made_by', 'process_label', 'method', 'n_labels', 'n_calculations'],
                ['made by', 'process', 'method', 'labels', 'calculations'],
            )
    if report['metrics']:
        echo_info('errors (meV/atom, meV/Å, meV/Å^3):')
        rows = [{'split': split, **values} for split, values in report['metrics'].items()]
        echo_table(rows, METRIC_COLUMNS, ['split', 'RMSE E', 'MAE E', 'RMSE F', 'MAE F', 'RMSE stress'])


def choose_frames(dataset, split: str | None):
    """Return ``(split used, frames)``: ``split`` when given, else ``test`` if present, else ``valid``, else all.

    Isolated-atom frames (MACE's E0 references) are left out.
    """
    if split is None:
        counts = dataset.split_counts or {}
        split = 'test' if counts.get('test') else 'valid' if counts.get('valid') else 'all'
    frames = dataset.get_frames(None if split == 'all' else split)
    frames = [atoms for atoms in frames if atoms.info.get('config_type') != 'IsolatedAtom']
    return split, frames


@cmd_potential.command('plot')
@click.argument('identifier', metavar='POTENTIAL')
@click.option('--dataset', 'dataset_identifier', required=True, help='DatasetData (PK or UUID) to compare with.')
@click.option('-o', '--output', required=True, type=click.Path(dir_okay=False), help='PNG file to write.')
@click.option(
    '--split',
    type=click.Choice(['train', 'valid', 'test', 'all']),
    default=None,
    help='Frames to plot [default: test if the dataset has any, else valid, else all].',
)
@click.option('--device', default='cpu', show_default=True, help='torch device for the predictions.')
@JSON_OPTION
@decorators.with_dbenv()
def cmd_potential_plot(identifier, dataset_identifier, output, split, device, as_json):
    """Parity plots of a potential against a dataset: energy per atom, force and stress components, with RMSE."""
    from aiida_sianode.analysis.parity import parity_plot
    from aiida_sianode.data.dataset import DatasetData
    from aiida_sianode.data.potential import Committee, PotentialData, error_metrics

    potential = load_typed_node(identifier, PotentialData, 'potential', as_json)
    dataset = load_typed_node(dataset_identifier, DatasetData, 'dataset', as_json)
    missing = sorted(set(dataset.elements) - set(potential.elements))
    if missing:
        fail(f'the dataset has {", ".join(missing)}, which potential {potential.pk} does not know', as_json)
    split, frames = choose_frames(dataset, split)
    if not frames:
        fail(f'dataset {dataset.pk} has no frames in split `{split}`', as_json)
    echo_info(f'predicting {len(frames)} frame(s) of split `{split}` with potential {potential.pk}', as_json)
    data = Committee([potential], device=device).predict_frames(frames)
    title = f'potential {potential.pk} on dataset {dataset.pk} ({split}, {len(frames)} frames)'
    result = parity_plot(data['reference'], data['members'][0], output, title=title, name=f'potential {potential.pk}')
    summary = {
        'potential_pk': potential.pk,
        'dataset_pk': dataset.pk,
        'split': split,
        'n_frames': len(frames),
        'path': result['path'],
        **error_metrics(data['reference'], data['members'][0]),
    }
    if as_json:
        echo_json(summary)
        return
    echo_info(
        f'wrote {output}: RMSE {summary["rmse_e_per_atom_mev"]:.3g} meV/atom, {summary["rmse_f_mev_a"]:.3g} meV/Å'
        + (f', {summary["rmse_stress_mev_a3"]:.3g} meV/Å^3' if summary['rmse_stress_mev_a3'] is not None else '')
    )
