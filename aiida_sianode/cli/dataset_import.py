"""``aiida-sianode dataset import``: existing DFT work (extxyz, vasprun.xml, OUTCAR, .castep, .geom, .md) as labels."""

from __future__ import annotations

import datetime

import click

from aiida_sianode.cli.dataset import cmd_dataset
from aiida_sianode.cli.root import JSON_OPTION, echo_info, echo_json, fail, load_profile_or_fail
from aiida_sianode.data.importers import FORMATS


@cmd_dataset.command('import')
@click.argument('paths', nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    '--format',
    'fmt',
    type=click.Choice(sorted(FORMATS)),
    default=None,
    help='Format of every file given; by default told from each name (.extxyz/.xyz, vasprun...xml, OUTCAR..., '
    '.castep, .geom, .md).',
)
@click.option('--energy-key', default=None, help='extxyz info key of the total energy in eV (default: energy).')
@click.option('--forces-key', default=None, help='extxyz per-atom array of the forces in eV/Å (default: forces).')
@click.option(
    '--stress-key', default=None, help='extxyz info key of the stress in eV/Å^3, ASE sign (default: stress if there).'
)
@click.option(
    '--virial-key',
    default=None,
    help='extxyz info key of the virial in eV (libAtoms convention, e.g. virial), converted to the stress '
    '-virial/volume; instead of --stress-key.',
)
@click.option(
    '--level-of-theory',
    'level_of_theory',
    default=None,
    help='Level of theory of files that carry none (extxyz; .geom/.md without their .castep): free text, or a '
    'YAML/JSON file with at least `code` (method, cutoff_ev, kpoint_spacing, smearing, pseudopotentials...).',
)
@click.option('--config-type', default=None, help="config_type of every label (default: each frame's own, if any).")
@click.option(
    '--group',
    'group_label',
    default=None,
    help='Group to put the labels in, created when missing (default: import-<date>-<time>).',
)
@click.option('--allow-mixed', is_flag=True, default=False, help='Accept labels of different levels of theory.')
@click.option(
    '--keep-duplicates', is_flag=True, default=False, help='Import frames whose structure was already imported here.'
)
@click.option('--valid-fraction', type=float, default=0.1, show_default=True, help='Fraction of frames for validation.')
@click.option('--test-fraction', type=float, default=0.0, show_default=True, help='Fraction of frames for testing.')
@click.option('--seed', type=int, default=0, show_default=True, help='Seed of the train/valid/test split.')
@JSON_OPTION
def cmd_dataset_import(
    paths,
    fmt,
    energy_key,
    forces_key,
    stress_key,
    virial_key,
    level_of_theory,
    config_type,
    group_label,
    allow_mixed,
    keep_duplicates,
    valid_fraction,
    test_fraction,
    seed,
    as_json,
):
    """Import every whole frame of PATHS (files or folders) as labels, then build a training set of them.

    Prints per file the frames imported and the frames refused with the reason (SCF not converged, incomplete
    step, no forces, duplicate...), then the group holding the labels and the PK of the DatasetData. Nothing is
    stored when no frame could be imported, or when the labels mix levels of theory without --allow-mixed.
    """
    from aiida_sianode.data.importers import import_files

    load_profile_or_fail(as_json)
    try:
        report = import_files(
            paths,
            fmt=fmt,
            energy_key=energy_key,
            forces_key=forces_key,
            stress_key=stress_key,
            virial_key=virial_key,
            level_of_theory=level_of_theory,
            config_type=config_type,
            deduplicate=not keep_duplicates,
        )
    except ValueError as exception:
        fail(f'nothing was imported: {exception}', as_json)

    for line in report.summary_lines():
        echo_info(line, as_json)

    result = report.as_dict()
    if report.n_imported == 0:
        fail('no frame could be imported, nothing was stored (reasons above)', as_json)
    differences = report.mixed_levels_of_theory()
    if differences and not allow_mixed:
        fail(
            'the frames have different levels of theory, nothing was stored (import them separately, or pass '
            '--allow-mixed):\n  ' + '\n  '.join(differences),
            as_json,
        )

    from aiida_sianode.data.dataset import build_dataset

    group_label = group_label or datetime.datetime.now().strftime('import-%Y%m%d-%H%M%S')
    group = report.store(group_label)
    dataset = build_dataset(
        report.labels, allow_mixed=allow_mixed, valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed
    )
    result = report.as_dict()
    result['group'] = {'label': group.label, 'pk': group.pk, 'count': group.count()}
    result['dataset'] = {
        'pk': dataset.pk,
        'uuid': dataset.uuid,
        'n_frames': dataset.n_frames,
        'split_counts': dataset.split_counts,
        'mixed': dataset.mixed,
    }
    if as_json:
        echo_json(result)
        return
    click.echo(f'labels: {report.n_imported} stored in group `{group.label}` (pk {group.pk})')
    splits = ', '.join(f'{name} {count}' for name, count in dataset.split_counts.items())
    click.echo(f'dataset: DatasetData<{dataset.pk}> {dataset.n_frames} frames ({splits}), uuid {dataset.uuid}')
