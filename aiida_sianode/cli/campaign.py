"""``aiida-sianode run``, ``campaign show`` and ``provenance ...``: the active-learning campaign from the shell."""

from __future__ import annotations

import contextlib
import logging
import pathlib
import time
import warnings

import click
from aiida.cmdline.utils import decorators

from aiida_sianode.cli.root import (
    JSON_OPTION,
    cmd_root,
    echo_info,
    echo_json,
    echo_table,
    fail,
    load_code_or_fail,
)

SETUP_HINT = 'run `aiida-sianode setup` first, or name the code in the spec'

TABLE_COLUMNS = [
    ('iteration', 'iter'),
    ('labels_added', '+labels'),
    ('labels_failed', 'failed'),
    ('training_set_frames', 'train set'),
    ('accurate_fraction', 'accurate'),
    ('candidate_fraction', 'candidate'),
    ('failed_fraction', 'failed fr.'),
    ('selected', 'selected'),
    ('test_rmse_e_mev', 'E RMSE meV/at'),
    ('test_rmse_f_mev_a', 'F RMSE meV/Å'),
    ('wall_time_train_s', 'train s'),
    ('wall_time_explore_s', 'explore s'),
    ('wall_time_label_s', 'label s'),
]


def build_campaign(spec, spec_path: pathlib.Path, as_json: bool = False):
    """Return the builder of the campaign described by ``spec`` (structures are built and stored first)."""
    from aiida import orm

    from aiida_sianode.campaign_spec import build_structures

    labeler_code = load_code_or_fail(spec.labeler.code or 'sianode-label@localhost', as_json, SETUP_HINT)
    train_code = load_code_or_fail(spec.training.code, as_json, SETUP_HINT)
    explore_code = load_code_or_fail(spec.exploration.code, as_json, SETUP_HINT)
    structures = build_structures(spec.structures, spec_path.parent)
    explore_structures = (
        build_structures(spec.explore_structures, spec_path.parent) if spec.explore_structures else None
    )
    test_set = orm.load_node(spec.test_set) if spec.test_set is not None else None
    test_structures = build_structures(spec.test_structures, spec_path.parent) if spec.test_structures else None
    return campaign_builder(
        spec, (labeler_code, train_code, explore_code), structures, explore_structures, test_set, test_structures
    )


def campaign_builder(spec, codes, structures, explore_structures=None, test_set=None, test_structures=None):
    """Return the ActiveLearningWorkChain builder of ``spec`` with the given ``(label, train, explore)`` codes and
    ``{name: StructureData}`` structures (stored or not: a dry run builds it from unstored ones)."""
    from aiida_sianode.workflows.active_learning import ActiveLearningWorkChain

    labeler_code, train_code, explore_code = codes
    explore_overrides = dict(spec.exploration.overrides)
    explore_overrides.setdefault('temperatures', list(spec.exploration.temperatures))
    explore_overrides.setdefault('ensembles', list(spec.exploration.ensembles))
    if spec.exploration.pressures:
        explore_overrides.setdefault('pressures', list(spec.exploration.pressures))
    if spec.exploration.steps:
        explore_overrides.setdefault('steps', [spec.exploration.steps])
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        labeler_code,
        structures,
        labeler=spec.labeler.name,
        train_code=train_code,
        explore_code=explore_code,
        protocol=spec.labeler.protocol,
        train_protocol=spec.training.protocol,
        explore_protocol=spec.exploration.protocol,
        explore_structures=explore_structures,
        label_overrides=dict(spec.labeler.overrides) or None,
        train_overrides=dict(spec.training.overrides) or None,
        explore_overrides=explore_overrides,
        committee_size=spec.training.committee_size,
        selection=spec.selection.model_dump(),
        convergence=spec.convergence.model_dump(),
        dataset=spec.dataset.model_dump(),
        test_set=test_set,
        test_structures=test_structures,
    )
    builder.metadata.label = spec.name
    builder.metadata.description = spec.description
    # Codes of a remote computer (`aiida-sianode computer add`) carry the site's resources, partitions and GPU lines.
    from aiida_sianode.deploy.cluster import apply_default_options

    apply_default_options(builder)
    return builder


def _stand_in_code(label: str):
    """An unstored code named ``label`` on an unstored computer: a dry run builds inputs for a code this profile
    lacks (a cluster's VASP) without creating anything."""
    from aiida import orm

    name, _, computer = label.partition('@')
    host = orm.Computer(
        label=computer or 'dry-run',
        hostname='dry-run',
        transport_type='core.local',
        scheduler_type='core.direct',
        workdir='/tmp',
    )
    return orm.InstalledCode(computer=host, filepath_executable='/bin/true', label=name)


def _labeler_prerequisites(spec) -> list[str]:
    """What the labeler needs in the profile beyond its code (VASP's POTCAR family, CASTEP's pseudopotential
    family), as lines naming each missing one; empty when all is there."""
    from aiida_sianode.campaign_spec import labeler_inputs

    inputs = labeler_inputs(spec.labeler)
    if spec.labeler.name == 'vasp':
        from aiida_vasp.data.potcar import PotcarData

        family = inputs['potential_family']
        if PotcarData.get_potcar_group(family) is None:
            return [f'POTCAR family `{family}` (aiida-vasp potcar uploadfamily --name {family} ...)']
    if spec.labeler.name == 'castep':
        from aiida_sianode.workflows.label.castep import pseudopotential_family_elements

        family = inputs['pseudos_family']
        try:
            pseudopotential_family_elements(family)
        except ValueError:
            return [f'pseudopotential family `{family}` (aiida_castep.data.otfg.upload_otfg_family)']
    return []


def check_campaign(spec, spec_path: pathlib.Path, planned) -> dict:
    """Build every input of the campaign ``spec`` without storing or submitting anything, and return a report.

    ``aiida-sianode run`` calls it before storing anything; ``run --dry-run`` stops after it.

    ``planned`` are the structures :func:`aiida_sianode.campaign_spec.preflight` built (and checked) in memory.
    Codes this profile lacks get unstored stand-ins and are listed under ``missing``, with the labeler's
    pseudopotential family; when those are there, the label inputs of every structure are built too.

    :raises ValueError: the reason a campaign input or a label input is refused.
    """
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent
    from aiida.plugins import WorkflowFactory

    from aiida_sianode.campaign_spec import presample_codes
    from aiida_sianode.workflows.active_learning import LABELER_ENTRY_POINTS, ActiveLearningWorkChain

    missing = []
    codes = []
    for label in (spec.labeler.code or 'sianode-label@localhost', spec.training.code, spec.exploration.code):
        try:
            codes.append(orm.load_code(label))
        except (NotExistent, MultipleObjectsError, ValueError):
            codes.append(_stand_in_code(label))
            missing.append(f'code `{label}`')
    for label in presample_codes(spec):  # the melt-quenches run before the campaign, on this profile's LAMMPS
        try:
            orm.load_code(label)
        except (NotExistent, MultipleObjectsError, ValueError):
            missing.append(f'code `{label}` (presample)')
    structures = {item.name: orm.StructureData(ase=item.atoms) for item in planned if item.section == 'structures'}
    explore = {item.name: orm.StructureData(ase=item.atoms) for item in planned if item.section == 'explore_structures'}
    tests = {item.name: orm.StructureData(ase=item.atoms) for item in planned if item.section == 'test_structures'}
    test_set = None
    if spec.test_set is not None:
        try:
            test_set = orm.load_node(spec.test_set)
        except NotExistent:
            missing.append(f'test set `{spec.test_set}`')
    builder = campaign_builder(spec, codes, structures, explore or None, test_set, tests or None)
    error = ActiveLearningWorkChain.spec().inputs.validate(builder)
    if error is not None:
        raise ValueError(f'the campaign inputs are refused: {error}')

    prerequisites = _labeler_prerequisites(spec)
    missing.extend(prerequisites)
    labels_built = 0
    if not prerequisites:
        labeler_class = WorkflowFactory(LABELER_ENTRY_POINTS[spec.labeler.name])
        for name, structure in [*structures.items(), *explore.items()]:
            try:
                label = labeler_class.get_builder_from_protocol(
                    codes[0], structure, protocol=spec.labeler.protocol, overrides=dict(spec.labeler.overrides) or None
                )
            except ValueError as exception:
                raise ValueError(f'the label inputs of {name} are refused: {exception}') from None
            error = labeler_class.spec().inputs.validate(label)
            if error is not None:
                raise ValueError(f'the label inputs of {name} are refused: {error}')
            labels_built += 1

    rows = [item.summary() for item in planned]
    runs = len(explore or structures) * len(builder.explore.temperatures.get_list())
    ensembles = builder.explore.ensembles.get_list()
    pressures = builder.explore.pressures.get_list()
    runs *= sum(len(pressures) if ensemble.startswith('npt') else 1 for ensemble in ensembles)
    runs *= len(builder.explore.steps.get_list())
    convergence = builder.convergence.get_dict()
    return {
        'spec': str(spec_path),
        'name': spec.name,
        'labeler': {'name': spec.labeler.name, 'protocol': spec.labeler.protocol},
        'structures': rows,
        'initial_labels': len(structures),
        'initial_label_atoms': sum(row['natoms'] for row in rows if row['section'] == 'structures'),
        'md_runs_per_iteration': runs,
        'md_steps_per_run': max(builder.explore.steps.get_list()),
        'committee_size': spec.training.committee_size,
        'max_iterations': convergence['max_iterations'],
        'max_labels': convergence['max_labels'],
        'label_inputs_built': labels_built,
        'missing': missing,
        'submitted': False,
    }


@cmd_root.command('run')
@click.argument('spec_file', type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option('--submit', is_flag=True, help='Submit to the daemon and return at once.')
@click.option(
    '--dry-run',
    is_flag=True,
    help='Build and check every input (structures, labels, training, MD, selection), store and submit nothing.',
)
@click.option(
    '--output-dir',
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=None,
    help='Where the report and plots go (default: runs/<spec name>-<pk>/).',
)
@JSON_OPTION
@decorators.with_dbenv()
def cmd_run(spec_file, submit, dry_run, output_dir, as_json):
    """Run the active-learning campaign described by SPEC_FILE (a YAML file, see workflows/).

    Every structure is built in memory and checked against the labeler first (elements, packing density, cell),
    so a spec that cannot run is refused before anything is stored. With --dry-run the command stops after
    building every input, reports what the campaign would do and what this profile lacks for it, and exits 0.
    """
    from aiida.engine import run_get_node
    from aiida.engine import submit as submit_process

    from aiida_sianode.campaign_spec import SpecError, load_spec, preflight, presample_codes

    started = time.time()
    try:
        spec = load_spec(spec_file)
        planned = preflight(spec, spec_file.parent)
    except SpecError as error:
        fail(str(error), as_json)
    if not dry_run:  # a dry run lists missing codes; a run stops at the first
        codes = (spec.labeler.code or 'sianode-label@localhost', spec.training.code, spec.exploration.code)
        for label in (*codes, *presample_codes(spec)):
            load_code_or_fail(label, as_json, SETUP_HINT)
    try:
        report = check_campaign(spec, spec_file, planned)
    except (ValueError, TypeError) as error:
        fail(f'{spec_file}: {error}', as_json)
    if dry_run:
        report['wall_time_s'] = round(time.time() - started, 1)
        if as_json:
            echo_json(report)
        else:
            _print_dry_run(report)
        return
    try:
        builder = build_campaign(spec, spec_file, as_json)
    except (ValueError, TypeError) as error:
        fail(f'{spec_file}: {error}', as_json)
    if submit:
        node = submit_process(builder)
        result = {'pk': node.pk, 'uuid': node.uuid, 'state': 'submitted', 'spec': str(spec_file)}
        if as_json:
            echo_json(result)
        else:
            echo_info(
                f'submitted campaign `{spec.name}` as ActiveLearningWorkChain<{node.pk}>; '
                f'follow it with `verdi process list` and `verdi process report {node.pk}`'
            )
        return
    echo_info(f'running campaign `{spec.name}` from {spec_file} (progress below, one line per stage)', as_json)
    with campaign_progress_only():
        _, node = run_get_node(builder)
    wall = time.time() - started
    directory = output_dir or pathlib.Path('runs') / f'{spec.name}-{node.pk}'
    summary = write_campaign_report(node, directory)
    summary['wall_time_s'] = round(wall, 1)
    from aiida_sianode.analysis.report import write_report

    summary['html_report'] = str(write_report(node, directory / 'report'))
    if as_json:
        echo_json(summary)
    else:
        _print_summary(summary)
        echo_info(f'wall time {wall:.0f} s; table and learning curve in {directory}/')
        echo_info(f'campaign report (as `aiida-sianode campaign report {node.pk}`): {summary["html_report"]}')
    if not node.is_finished_ok:
        raise SystemExit(1)


def _print_dry_run(report: dict) -> None:
    """Print a dry run's report: the structures, the size of the campaign and what the profile lacks."""
    echo_table(
        report['structures'],
        ['section', 'name', 'formula', 'natoms', 'density_g_cm3'],
        ['section', 'structure', 'formula', 'atoms', 'g/cm3'],
    )
    echo_info(
        f'dry run of `{report["name"]}`: {report["initial_labels"]} structures to label first '
        f'({report["initial_label_atoms"]} atoms, {report["labeler"]["name"]} {report["labeler"]["protocol"]}), '
        f'{report["md_runs_per_iteration"]} MD runs of {report["md_steps_per_run"]} steps per iteration, '
        f'committee of {report["committee_size"]}, at most {report["max_iterations"]} iterations and '
        f'{report["max_labels"]} new labels; label inputs built for {report["label_inputs_built"]} structures'
    )
    for item in report['missing']:
        echo_info(f'not in this profile (needed to run it): {item}')
    echo_info('every input was built and checked; nothing was stored or submitted')


class _CampaignReportsOnly(logging.Filter):
    """Let through the campaign's own report lines and errors; the children's reports stay in the database."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or '|ActiveLearningWorkChain|' in record.getMessage()


@contextlib.contextmanager
def campaign_progress_only():
    """While a campaign runs in this interpreter, print one line per stage: its own reports, not its children's
    (those remain in `verdi process report`), and none of torch's or e3nn's import-time warnings."""
    from aiida.cmdline.utils.log import CliHandler

    # Only the terminal handlers: the database handler must keep every child's report for `verdi process report`.
    handlers = [
        handler
        for handler in logging.getLogger('aiida').handlers + logging.getLogger().handlers
        if isinstance(handler, CliHandler | logging.StreamHandler)
    ]
    report_filter = _CampaignReportsOnly()
    for handler in handlers:
        handler.addFilter(report_filter)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        try:
            yield
        finally:
            for handler in handlers:
                handler.removeFilter(report_filter)


@cmd_root.group('campaign')
def cmd_campaign():
    """Inspect active-learning campaigns."""


@cmd_campaign.command('show')
@click.argument('pk', type=str)
@click.option(
    '-o',
    '--output-dir',
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=None,
    help='Where to write the learning curve PNG and the table (default: runs/campaign-<pk>/).',
)
@JSON_OPTION
@decorators.with_dbenv()
def cmd_campaign_show(pk, output_dir, as_json):
    """Print the per-iteration table of campaign PK and write its learning curve."""
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    try:
        node = orm.load_node(pk)
    except (NotExistent, MultipleObjectsError, ValueError) as exception:
        fail(f'no campaign `{pk}`: {exception}', as_json)
    process_type = getattr(node, 'process_type', None) or ''
    if 'active_learning' not in process_type and 'ActiveLearning' not in process_type:
        fail(f'node {pk} is a {type(node).__name__}, not an ActiveLearningWorkChain', as_json)
    directory = output_dir or pathlib.Path('runs') / f'campaign-{node.pk}'
    summary = write_campaign_report(node, directory)
    if as_json:
        echo_json(summary)
    else:
        _print_summary(summary)
        echo_info(f'learning curve: {summary["plot"]}')


@cmd_campaign.command('report')
@click.argument('pk', type=str)
@click.option(
    '-o',
    '--output',
    'output_dir',
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=None,
    help='Folder of the HTML page and its PNGs (default: runs/campaign-<pk>/report/).',
)
@decorators.with_dbenv()
def cmd_campaign_report(pk, output_dir):
    """Write one HTML page with the table, learning curve, parity, deviation and calibration plots of campaign PK."""
    from aiida import orm

    from aiida_sianode.analysis.report import write_report

    node = orm.load_node(pk)
    if 'ActiveLearning' not in (node.process_type or '') and 'active_learning' not in (node.process_type or ''):
        fail(f'node {pk} is not an ActiveLearningWorkChain', False)
    path = write_report(node, output_dir or pathlib.Path('runs') / f'campaign-{node.pk}' / 'report')
    echo_info(f'campaign report: {path}')


def write_campaign_report(node, directory: pathlib.Path) -> dict:
    """Write ``iterations.json``, ``report.md`` and ``learning_curve.png`` of campaign ``node``; return the summary."""
    import json

    from aiida_sianode.analysis.campaign import campaign_summary, plot_learning_curve

    directory.mkdir(parents=True, exist_ok=True)
    summary = campaign_summary(node)
    plot = directory / 'learning_curve.png'
    if summary['iterations']:
        plot_learning_curve(summary['iterations'], plot, title=f'{node.label or "campaign"} <{node.pk}>')
        summary['plot'] = str(plot)
    else:
        summary['plot'] = None
    (directory / 'iterations.json').write_text(json.dumps(summary, indent=2, default=str))
    summary['report'] = str(directory / 'iterations.json')
    return summary


def _print_summary(summary: dict) -> None:
    echo_info(
        f'campaign <{summary["pk"]}> {summary["state"]} (exit status {summary["exit_status"]}): '
        f'stop reason {summary["stop_reason"]}'
    )
    rows = summary['iterations']
    if rows:
        echo_table(rows, [key for key, _ in TABLE_COLUMNS], [header for _, header in TABLE_COLUMNS])
    echo_info(
        f'training set <{summary.get("training_set")}>: {summary.get("training_set_frames")} frames; '
        f'committee: {summary.get("committee")}; labels computed {summary.get("labels_computed")}, '
        f'failed {summary.get("labels_failed")}'
    )


@cmd_root.group('provenance')
def cmd_provenance():
    """Provenance queries: which DFT calculations are behind a potential, which potentials used a label."""


@cmd_provenance.command('labels')
@click.argument('potential_pk', type=str)
@click.option(
    '--summary', is_flag=True, help='Only the counts per code, process and level of theory (no row per label).'
)
@JSON_OPTION
@decorators.with_dbenv()
def cmd_provenance_labels(potential_pk, summary, as_json):
    """List the labels behind POTENTIAL_PK with the calculations, codes and levels of theory that made them.

    The summary comes from a GROUP BY in the database; with ``--json`` the rows are streamed from one SQL statement
    as the database gives them (a batch at a time, never all in memory): neither loads a node.
    """
    from aiida import orm

    from aiida_sianode.data.potential import PotentialData
    from aiida_sianode.query import dataset_pk_of_potential, iter_calculations_behind_dataset, summarise_dataset_sql

    potential = orm.load_node(potential_pk)
    if not isinstance(potential, PotentialData):
        fail(f'node {potential_pk} is a {type(potential).__name__}, not a PotentialData', as_json)
    dataset = dataset_pk_of_potential(potential)
    by_code = summarise_dataset_sql(dataset)
    n_labels = sum(group['n_labels'] for group in by_code)
    if as_json:
        head = {'potential': potential.pk, 'n_labels': n_labels, 'by_code': by_code}
        if summary:
            echo_json(head)
            return
        _echo_json_with_rows(head, 'labels', iter_calculations_behind_dataset(dataset))
        return
    echo_info(f'PotentialData<{potential.pk}>: {n_labels} labels')
    echo_table(by_code, list(by_code[0]) if by_code else [])


def _echo_json_with_rows(head: dict, key: str, rows) -> None:
    """Print ``{**head, key: [rows]}`` as :func:`echo_json` would, writing the rows one at a time as they come."""
    import json
    import sys

    from aiida_sianode.cli.root import _JSON_STDOUT

    stream = _JSON_STDOUT[-1] if _JSON_STDOUT else sys.stdout
    text = json.dumps({**head, key: []}, indent=2)
    stream.write(text[: text.rindex('[]')] + '[')
    for index, row in enumerate(rows):
        stream.write((',\n    ' if index else '\n    ') + json.dumps(row))
    stream.write('\n  ]\n}\n')
    stream.flush()


@cmd_provenance.command('label-counts')
@click.option('--group', default=None, help='Only the labels in the group of this name.')
@JSON_OPTION
@decorators.with_dbenv()
def cmd_provenance_label_counts(group, as_json):
    """Count the labels per level of theory and element set (one GROUP BY in the database)."""
    from aiida_sianode.query import label_counts

    counts = label_counts(group=group)
    if as_json:
        echo_json(counts)
        return
    rows = [{**row, 'elements': '-'.join(row['elements'] or [])} for row in counts]
    echo_table(rows, ['n_labels', 'method', 'code', 'elements', 'fingerprint'])


@cmd_provenance.command('potentials')
@click.argument('label_pk', type=str)
@JSON_OPTION
@decorators.with_dbenv()
def cmd_provenance_potentials(label_pk, as_json):
    """List the potentials trained on a data set that contains LABEL_PK."""
    from aiida import orm

    from aiida_sianode.provenance import potentials_using_label

    potentials = potentials_using_label(orm.load_node(label_pk))
    result = [{'pk': node.pk, 'uuid': node.uuid, 'ctime': node.ctime.isoformat()} for node in potentials]
    if as_json:
        echo_json(result)
        return
    echo_table(result, ['pk', 'uuid', 'ctime'])


@cmd_provenance.command('export')
@click.argument('campaign_pk', type=str)
@click.option(
    '-o',
    '--output',
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    required=True,
    help='extxyz file of the final training set with per-frame provenance.',
)
@click.option(
    '--archive',
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    default=None,
    help='Also write an AiiDA archive of the campaign and everything it made.',
)
@JSON_OPTION
@decorators.with_dbenv()
def cmd_provenance_export(campaign_pk, output, archive, as_json):
    """Export the dataset of campaign CAMPAIGN_PK as extxyz (and optionally the whole campaign as an archive)."""
    from aiida import orm

    from aiida_sianode.provenance import export_campaign

    result = export_campaign(orm.load_node(campaign_pk), output, archive=archive)
    if as_json:
        echo_json(result)
        return
    echo_info(f'{result["frames"]} frames -> {output}' + (f'; archive -> {archive}' if archive else ''))
