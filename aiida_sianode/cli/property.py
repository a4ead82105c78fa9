"""``aiida-sianode property``: a property of structures computed by a committee, with error bars; and provenance.

``aiida-sianode property KIND STRUCTURE... --potentials PK...`` runs ``sianode.properties.<KIND>`` (the ``run`` sub-
command may be left out); ``aiida-sianode property show PK`` prints a finished run; ``aiida-sianode provenance
properties POT_PK`` lists every property computed with a potential.
"""

from __future__ import annotations

import click

from aiida_sianode.cli.campaign import cmd_provenance
from aiida_sianode.cli.root import (
    JSON_OPTION,
    DefaultRunGroup,
    cmd_root,
    echo_info,
    echo_json,
    echo_table,
    fail,
    load_profile_or_fail,
)

DEFAULT_CODE = 'sianode-property@localhost'
#: the code a reference labeler uses unless ``--reference-code`` says otherwise
REFERENCE_CODES = {'gpaw': 'sianode-label@localhost', 'xtb': 'sianode-label@localhost'}


@cmd_root.group('property', cls=DefaultRunGroup, no_args_is_help=True)
def cmd_property():
    """Properties with committee error bars: compute one (run, the default) or show a finished one (show).

    `aiida-sianode property eos si.cif --potentials 11 12 13` is short for `aiida-sianode property run eos ...`.
    """


def parse_settings(items) -> dict:
    """Turn ``KEY=VALUE`` items into nested overrides (dotted keys: ``relax.fmax_ev_a=0.01``); values are YAML."""
    import yaml

    overrides: dict = {}
    for item in items:
        key, separator, text = item.partition('=')
        key = key.strip()
        if not separator or not key:
            raise click.BadParameter(f'`{item}` is not KEY=VALUE', param_hint='-p')
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exception:
            raise click.BadParameter(f'cannot read the value of `{item}`: {exception}', param_hint='-p') from None
        target = overrides
        parts = key.split('.')
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return overrides


def describe(node) -> dict:
    """Return the JSON document of a property work chain (or calculation) node."""
    document = {
        'process_pk': node.pk,
        'process_label': node.process_label,
        'status': node.process_state.value if node.process_state else 'created',
        'exit_status': node.exit_status,
        'exit_message': node.exit_message,
        'results': node.outputs.results.get_dict() if 'results' in node.outputs else None,
        'curves': {key: value.pk for key, value in node.outputs.curves.items()} if 'curves' in node.outputs else {},
        'plots': {key: value.pk for key, value in node.outputs.plots.items()} if 'plots' in node.outputs else {},
    }
    if 'reference' in node.outputs and 'result' in node.outputs.reference:
        document['reference'] = node.outputs.reference.result.get_dict()
    return document


def _format(value) -> str:
    if value is None:  # a member without this value (e.g. a NEB band that did not converge)
        return '-'
    if isinstance(value, float):
        return f'{value:.4g}'
    return str(value)


def print_document(document: dict) -> None:
    """Print the scalars (mean ± std, each member, and the reference when there is one) and the outputs."""
    results = document.get('results')
    title = f'{document["process_label"]}<{document["process_pk"]}>'
    if results is None:
        echo_info(f'{title}: {document["status"]} {document["exit_message"] or ""}'.strip())
        return
    reference = (document.get('reference') or {}).get('scalars', {})
    rows = []
    for name, stats in results['scalars'].items():
        row = {
            'quantity': name,
            'mean': stats['mean'],
            'std': stats['std'],
            'members': ' '.join(_format(value) for value in stats['members']),
        }
        if reference:
            row['reference'] = reference.get(name)
        rows.append(row)
    columns = ['quantity', 'mean', 'std', 'members'] + (['reference'] if reference else [])
    echo_table(rows, columns)
    click.echo(
        f'\n{title}: {results["kind"]} with {results["n_members"]} member(s) on {results["device"]}, '
        f'{results["wall_time_s"]:.1f} s wall, {results["cpu_time_s"]:.1f} s CPU; '
        f'curves: {", ".join(f"{key}<{pk}>" for key, pk in document["curves"].items()) or "none"}; '
        f'plots: {", ".join(f"{key}<{pk}>" for key, pk in document["plots"].items()) or "none"}'
    )


def write_pngs(node, target: str) -> list[str]:
    """Copy the node's plots to ``target`` (one plot) or ``<stem>_<curve>.png`` (several); return the paths."""
    import pathlib

    if 'plots' not in node.outputs or not node.outputs.plots:
        return []
    plots = dict(node.outputs.plots.items())
    path = pathlib.Path(target)
    written = []
    for key, plot in sorted(plots.items()):
        destination = path if len(plots) == 1 else path.with_name(f'{path.stem}_{key}{path.suffix or ".png"}')
        destination.write_bytes(plot.get_content(mode='rb'))
        written.append(str(destination))
    return written


@cmd_property.command('run')
@click.argument('kind')
@click.argument('structures', nargs=-1, required=True)
@click.option(
    '--potentials',
    'potential_ids',
    multiple=True,
    required=True,
    help='PotentialData PK/UUID of a member; repeat, or give several separated by commas (--potentials 6,7,8).',
)
@click.option(
    '--protocol', type=click.Choice(['fast', 'balanced', 'stringent']), default=None, help='Default: the kind’s.'
)
@click.option('-p', '--setting', 'settings', multiple=True, help='KEY=VALUE over the protocol (dotted for nested).')
@click.option('--reference', type=click.Choice(['gpaw', 'xtb', 'vasp', 'castep']), default=None, help='DFT labeler.')
@click.option('--reference-code', default=None, help='The labeler’s code (default sianode-label@localhost).')
@click.option('--reference-protocol', default=None, help='The labeler’s protocol.')
@click.option('--code', 'code_label', default=DEFAULT_CODE, show_default=True, help='The sianode.property code.')
@click.option('--submit', is_flag=True, default=False, help='Submit to the daemon instead of running here.')
@click.option('--png', 'png', default=None, type=click.Path(dir_okay=False), help='Write the plot(s) here.')
@JSON_OPTION
def cmd_property_run(
    kind,
    structures,
    potential_ids,
    protocol,
    settings,
    reference,
    reference_code,
    reference_protocol,
    code_label,
    submit,
    png,
    as_json,
):
    """Compute property KIND of every STRUCTURE (a file ASE reads, or a StructureData PK) with each committee member.

    Prints every quantity as committee mean, standard deviation and per-member values (with the DFT reference beside
    them when --reference is given). Exits 1 when the run failed or was refused.
    """
    from aiida import orm
    from aiida.common.exceptions import MissingEntryPointError, MultipleObjectsError, NotExistent
    from aiida.engine import run_get_node
    from aiida.engine import submit as submit_process
    from aiida.plugins import WorkflowFactory

    from aiida_sianode.cli.explore import load_committee, load_structures
    from aiida_sianode.properties import KINDS

    profile = load_profile_or_fail(as_json)
    if kind not in KINDS:
        fail(f'unknown property `{kind}`; choose one of: {", ".join(sorted(KINDS))}', as_json)
    try:
        workchain = WorkflowFactory(f'sianode.properties.{kind}')
    except MissingEntryPointError:
        fail(f'the property {kind} is not installed (entry point sianode.properties.{kind})', as_json)

    def load(label, what):
        try:
            return orm.load_code(label)
        except (NotExistent, MultipleObjectsError, ValueError):
            fail(f'{what} code `{label}` not found in profile `{profile.name}`: run `aiida-sianode setup`', as_json)

    code = load(code_label, 'property')
    if submit and profile.process_control_backend is None:
        fail(f'--submit needs a profile with a broker; `{profile.name}` has none: run without --submit', as_json)
    try:
        overrides = parse_settings(settings)
    except click.BadParameter as exception:
        fail(exception.format_message(), as_json)
    committee = load_committee([item for value in potential_ids for item in value.split(',') if item], as_json)
    named = load_structures(structures, as_json)
    reference_inputs = None
    if reference:
        label = reference_code or REFERENCE_CODES.get(reference)
        if label is None:
            fail(f'--reference {reference} needs --reference-code', as_json)
        reference_inputs = {'labeler': reference, 'code': load(label, f'{reference} reference')}
        if reference_protocol:
            reference_inputs['protocol'] = reference_protocol
    try:
        builder = workchain.get_builder_from_protocol(
            code, named, committee, protocol=protocol, overrides=overrides or None, reference=reference_inputs
        )
    except (ValueError, TypeError) as exception:
        fail(f'nothing was run: {exception}', as_json)

    if submit:
        node = submit_process(builder)
        echo_info(f'submitted {node.process_label}<{node.pk}>', as_json)
    else:
        echo_info(f'computing {kind} of {len(named)} structure(s) with a committee of {len(committee)}', as_json)
        _, node = run_get_node(builder)
    document = describe(node)
    document['submitted'] = submit
    if png and node.is_finished:
        document['png'] = write_pngs(node, png)
    if as_json:
        echo_json(document)
    else:
        print_document(document)
        if document.get('png'):
            echo_info(f'plots written: {", ".join(document["png"])}')
    if node.is_terminated and not node.is_finished_ok:
        if not as_json:
            echo_info(f'{node.process_label}<{node.pk}> failed [{node.exit_status}]: {node.exit_message}')
        raise SystemExit(1)


@cmd_property.command('show')
@click.argument('pk')
@click.option('--png', 'png', default=None, type=click.Path(dir_okay=False), help='Write the plot(s) here.')
@JSON_OPTION
def cmd_property_show(pk, png, as_json):
    """Show a property run (work chain or calculation PK): quantities with committee mean, std and members."""
    from aiida import orm

    load_profile_or_fail(as_json)
    try:
        node = orm.load_node(pk)
    except Exception:
        fail(f'no node with PK/UUID `{pk}`', as_json)
    if not isinstance(node, orm.ProcessNode) or not (node.process_type or '').split(':')[-1].startswith(
        ('sianode.properties.', 'sianode.property')
    ):
        fail(
            f'node {pk} is a {type(node).__name__} ({node.process_type if isinstance(node, orm.ProcessNode) else ""})'
            ', not a property run',
            as_json,
        )
    document = describe(node)
    if png:
        document['png'] = write_pngs(node, png)
    if as_json:
        echo_json(document)
    else:
        print_document(document)
    if node.is_terminated and not node.is_finished_ok:
        raise SystemExit(1)


def properties_of_potential(potential) -> list[dict]:
    """Return every property calculation that used ``potential`` as a committee member: its PK, kind, exit status,
    the work chain that called it and each quantity's mean and std."""
    from aiida import orm

    from aiida_sianode.calculations.property import PropertyCalculation

    query = orm.QueryBuilder()
    query.append(orm.Node, filters={'id': potential.pk}, tag='potential')
    query.append(PropertyCalculation, with_incoming='potential', tag='calc', project=['*'])
    rows = []
    for (calculation,) in query.iterall():
        results = calculation.outputs.results.get_dict() if 'results' in calculation.outputs else {}
        caller = calculation.caller
        rows.append(
            {
                'calculation_pk': calculation.pk,
                'workchain_pk': caller.pk if caller is not None else None,
                'kind': calculation.inputs.kind.value,
                'exit_status': calculation.exit_status,
                'ctime': calculation.ctime.isoformat(timespec='seconds'),
                'n_members': results.get('n_members'),
                'scalars': {
                    name: {'mean': s['mean'], 'std': s['std']} for name, s in results.get('scalars', {}).items()
                },
            }
        )
    return sorted(rows, key=lambda row: row['calculation_pk'])


@cmd_provenance.command('properties')
@click.argument('potential_pk')
@JSON_OPTION
def cmd_provenance_properties(potential_pk, as_json):
    """Every property computed with the potential POTENTIAL_PK, with its values (committee mean ± std)."""
    from aiida import orm

    from aiida_sianode.data.potential import PotentialData

    load_profile_or_fail(as_json)
    try:
        potential = orm.load_node(potential_pk)
    except Exception:
        fail(f'no node with PK/UUID `{potential_pk}`', as_json)
    if not isinstance(potential, PotentialData):
        fail(f'node {potential_pk} is a {type(potential).__name__}, not a PotentialData', as_json)
    rows = properties_of_potential(potential)
    if as_json:
        echo_json({'potential_pk': potential.pk, 'properties': rows})
        return
    if not rows:
        echo_info(f'no property was computed with PotentialData<{potential.pk}>')
        return
    table = []
    for row in rows:
        for name, stats in row['scalars'].items():
            table.append({**row, 'quantity': name, 'mean': stats['mean'], 'std': stats['std']})
        if not row['scalars']:
            table.append({**row, 'quantity': '(no result)'})
    echo_table(
        table,
        ['workchain_pk', 'calculation_pk', 'kind', 'exit_status', 'quantity', 'mean', 'std'],
        ['work chain', 'calc', 'kind', 'exit', 'quantity', 'mean', 'std'],
    )
