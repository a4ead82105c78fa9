"""``aiida-sianode explore``: committee MD exploration from the command line, and its uncertainty plot.

``aiida-sianode explore [run] --committee PK ... STRUCTURE... --temperature T ...`` runs an ExploreWorkChain (the
``run`` may be left out); ``aiida-sianode explore plot PK -o dev.png`` draws the max force deviation against time
with the trust levels, for one ExploreCalculation or every run of an ExploreWorkChain.
"""

from __future__ import annotations

import click

from aiida_sianode.cli.root import (
    JSON_OPTION,
    DefaultRunGroup,
    cmd_root,
    echo_info,
    echo_json,
    echo_table,
    fail,
    load_code_or_fail,
    load_profile_or_fail,
)

DEFAULT_CODE = 'sianode-explore@localhost'
ENSEMBLE_CHOICES = ('nvt', 'npt', 'nvt_langevin', 'nvt_nose_hoover', 'nvt_bussi', 'npt_isotropic', 'npt_anisotropic')


@cmd_root.group('explore', cls=DefaultRunGroup, no_args_is_help=True)
def cmd_explore():
    """Explore with a committee: MD driven by its mean, stopped when it disagrees (run), and plots (plot).

    `aiida-sianode explore --committee PK ... STRUCTURE...` is short for `aiida-sianode explore run ...`.
    """


def parse_temperature(text: str) -> float | list[float]:
    """Return a temperature in K (``600``) or a ramp ``[start, end]`` (``300:900``).

    :raises click.BadParameter: for anything else.
    """
    try:
        parts = [float(part) for part in text.split(':')]
    except ValueError as exception:
        raise click.BadParameter(f'`{text}` is not a temperature in K or a START:END ramp') from exception
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return parts
    raise click.BadParameter(f'`{text}`: a ramp is START:END, two temperatures in K')


def load_structures(items, as_json: bool) -> dict:
    """Return ``{name: StructureData}`` from files (every frame of a multi-frame file) or StructureData PKs/UUIDs.

    Names are the file stem (with ``_<frame>`` for multi-frame files) or ``pk<PK>``.
    """
    import pathlib

    import ase.io
    from aiida import orm

    structures = {}
    for item in items:
        path = pathlib.Path(item)
        if path.is_file():
            try:
                frames = ase.io.read(path, index=':')
            except Exception as exception:
                fail(f'cannot read `{item}`: {type(exception).__name__}: {exception}', as_json)
            if not frames:
                fail(f'`{item}` holds no structure', as_json)
            stem = ''.join(char if char.isalnum() else '_' for char in path.stem) or 'structure'
            for index, atoms in enumerate(frames):
                name = stem if len(frames) == 1 else f'{stem}_{index}'
                while name in structures:
                    name += '_'
                structures[name] = orm.StructureData(ase=atoms)
            continue
        try:
            node = orm.load_node(item)
        except Exception:
            fail(f'`{item}` is neither a file nor the PK/UUID of a node', as_json)
        if not isinstance(node, orm.StructureData):
            fail(f'node {item} is a {type(node).__name__}, not a StructureData', as_json)
        structures[f'pk{node.pk}'] = node
    return structures


def load_committee(identifiers, as_json: bool) -> dict:
    """Return ``{member_<i>: PotentialData}`` from PKs/UUIDs."""
    from aiida import orm

    from aiida_sianode.data.potential import PotentialData

    committee = {}
    for index, identifier in enumerate(identifiers):
        try:
            node = orm.load_node(identifier)
        except Exception:
            fail(f'no node with PK/UUID `{identifier}` for --committee', as_json)
        if not isinstance(node, PotentialData):
            fail(f'--committee {identifier} is a {type(node).__name__}, not a PotentialData', as_json)
        committee[f'member_{index}'] = node
    return committee


def describe_exploration(node) -> dict:
    """Return the JSON document of a finished (or submitted) ExploreWorkChain: status, summary, per-run PKs."""
    document = {
        'process_pk': node.pk,
        'status': node.process_state.value if node.process_state else 'created',
        'exit_status': node.exit_status,
        'exit_message': node.exit_message,
        'summary': node.outputs.summary.get_dict() if 'summary' in node.outputs else None,
    }
    if document['summary'] is not None:
        for key, run in document['summary']['runs'].items():
            run['trajectory_pk'] = node.outputs.trajectories[key].pk if key in node.outputs.trajectories else None
            run['deviations_pk'] = node.outputs.deviations[key].pk if key in node.outputs.deviations else None
            creator = node.outputs.deviations[key].creator if key in node.outputs.deviations else None
            run['calculation_pk'] = creator.pk if creator is not None else None
    return document


@cmd_explore.command('run')
@click.argument('structures', nargs=-1, required=True)
@click.option(
    '--committee',
    'committee_ids',
    multiple=True,
    required=True,
    help='PK or UUID of a PotentialData; repeat for every committee member.',
)
@click.option(
    '-T',
    '--temperature',
    'temperatures',
    multiple=True,
    callback=lambda ctx, param, values: [parse_temperature(value) for value in values],
    help="Target temperature in K, or START:END for a linear ramp; repeat for several. Default: the protocol's.",
)
@click.option('--steps', type=click.IntRange(min=0), default=None, help="MD steps per run. Default: the protocol's.")
@click.option(
    '--ensemble',
    'ensembles',
    multiple=True,
    type=click.Choice(ENSEMBLE_CHOICES),
    help="nvt (Langevin), npt (isotropic MTK) or a full name; repeat for several. Default: the protocol's.",
)
@click.option('--pressure', 'pressures', multiple=True, type=float, help='Pressure in GPa for NPT runs; repeatable.')
@click.option('--timestep', type=float, default=None, help='Timestep in fs.')
@click.option('--sample-interval', type=click.IntRange(min=1), default=None, help='Steps between sampled frames.')
@click.option('--lower', type=float, default=None, help='Lower trust level, eV/Å (accurate below).')
@click.option('--upper', type=float, default=None, help='Upper trust level, eV/Å (failed at or above; runs stop).')
@click.option('--seed', type=click.IntRange(min=0), default=None, help='Seed of the first run (then +1 per run).')
@click.option(
    '--protocol',
    type=click.Choice(['fast', 'balanced', 'stringent']),
    default=None,
    help='Preset for everything not given; balanced when not given.',
)
@click.option('--code', 'code_label', default=DEFAULT_CODE, show_default=True, help='The sianode.explore code.')
@click.option('--submit', is_flag=True, default=False, help='Submit to the daemon instead of running here and waiting.')
@JSON_OPTION
def cmd_explore_run(
    structures,
    committee_ids,
    temperatures,
    steps,
    ensembles,
    pressures,
    timestep,
    sample_interval,
    lower,
    upper,
    seed,
    protocol,
    code_label,
    submit,
    as_json,
):
    """Run committee MD from every STRUCTURE (a file ASE reads, or a StructureData PK) and sort its frames.

    Every structure runs at every temperature in every ensemble (NPT also at every pressure). Prints per run the
    stop reason, the frames and the fractions of accurate / candidate / failed frames, then the totals. Exits 1 when
    no run produced a frame.
    """
    from aiida.engine import run_get_node
    from aiida.engine import submit as submit_process

    from aiida_sianode.protocols import ProtocolError
    from aiida_sianode.workflows.explore import ExploreWorkChain

    profile = load_profile_or_fail(as_json)
    if pressures and ensembles and not any(name.startswith('npt') for name in ensembles):
        fail('--pressure is only used by NPT runs: add --ensemble npt', as_json)
    code = load_code_or_fail(code_label, as_json)
    if submit and profile.process_control_backend is None:
        fail(f'--submit needs a profile with a broker; `{profile.name}` has none: run without --submit', as_json)
    committee = load_committee(committee_ids, as_json)
    named = load_structures(structures, as_json)

    overrides: dict = {}
    for key, value in (('temperatures', temperatures), ('ensembles', ensembles), ('pressures', pressures)):
        if value:
            overrides[key] = list(value)
    if pressures and not ensembles:
        overrides['ensembles'] = ['npt_isotropic']
    if steps is not None:
        overrides['steps'] = [steps]
    if lower is not None:
        overrides['lower_trust'] = lower
    if upper is not None:
        overrides['upper_trust'] = upper
    parameters = {'timestep_fs': timestep, 'sample_interval': sample_interval, 'seed': seed}
    parameters = {key: value for key, value in parameters.items() if value is not None}
    if parameters:
        overrides['parameters'] = parameters
    try:
        builder = ExploreWorkChain.get_builder_from_protocol(code, committee, named, protocol, overrides=overrides)
    except (ProtocolError, ValueError, TypeError) as exception:
        fail(str(exception), as_json)
    error = ExploreWorkChain.spec().inputs.validate(builder._inputs(prune=True))
    if error is not None:
        fail(f'nothing was run: {error.message}', as_json)

    if submit:
        node = submit_process(builder)
        echo_info(f'submitted ExploreWorkChain<{node.pk}>', as_json)
    else:
        echo_info(f'exploring {len(named)} structure(s) with a committee of {len(committee)}', as_json)
        _, node = run_get_node(builder)
    document = describe_exploration(node)
    document['submitted'] = submit
    if as_json:
        echo_json(document)
    elif document['summary'] is not None:
        _print_summary(document)
    else:
        echo_info(f'ExploreWorkChain<{node.pk}>: {document["status"]} {document["exit_message"] or ""}'.strip())
    if node.is_terminated and not node.is_finished_ok:
        if not as_json:
            echo_info(f'ExploreWorkChain<{node.pk}> failed [{node.exit_status}]: {node.exit_message}')
        raise SystemExit(1)


def _print_summary(document: dict) -> None:
    """Print the per-run table and the totals."""
    summary = document['summary']
    rows = []
    for key, run in sorted(summary['runs'].items()):
        temperature = f'{run["temperature"]:g}'
        if run['temperature_end'] != run['temperature']:
            temperature += f'-{run["temperature_end"]:g}'
        rows.append(
            {
                **run,
                'run': key,
                'T': temperature,
                'P': '' if run['pressure_gpa'] is None else f'{run["pressure_gpa"]:g}',
            }
        )
    columns = ['run', 'structure', 'ensemble', 'T', 'P', 'stop_reason', 'frames', 'accurate_fraction']
    columns += ['candidate_fraction', 'failed_fraction', 'max_force_deviation_max', 'steps_per_second']
    columns += ['calculation_pk']
    headers = ['run', 'structure', 'ensemble', 'T (K)', 'P (GPa)', 'stop', 'frames', 'accurate', 'candidate']
    headers += ['failed', 'max dev (eV/Å)', 'steps/s', 'calc PK']
    echo_table(rows, columns, headers)
    total = summary['total']
    click.echo(
        f'\nExploreWorkChain<{document["process_pk"]}>: {total["frames"]} frames from {total["runs_with_frames"]} of '
        f'{total["runs"]} runs; accurate {total["accurate_fraction"]:.3f}, candidate {total["candidate_fraction"]:.3f}'
        f', failed {total["failed_fraction"]:.3f} (trust levels {summary["lower_trust"]:g} / '
        f'{summary["upper_trust"]:g} eV/Å); stop reasons: '
        + ', '.join(f'{reason} {count}' for reason, count in sorted(total['stop_reasons'].items()))
    )


def collect_runs(node) -> tuple[list[dict], float | None, float | None]:
    """Return the runs to plot (``time_fs``, ``max_force_deviation``, ``temperature``, ``label``, ``stop_reason``)
    and the trust levels from an ExploreCalculation or an ExploreWorkChain node.

    :raises ValueError: for another kind of node, or one without deviations.
    """
    from aiida_sianode.engines import explore as engine

    def run_of(deviations, label, stop_reason):
        return {
            'time_fs': deviations.get_array('time_fs'),
            'max_force_deviation': deviations.get_array('max_force_deviation'),
            'temperature': deviations.get_array('temperature'),
            'label': label,
            'stop_reason': stop_reason,
        }

    from aiida import orm

    if not isinstance(node, orm.ProcessNode):
        raise ValueError(
            f'node {node.pk} ({type(node).__name__}) is neither an ExploreCalculation nor an ExploreWorkChain'
        )
    process_type = node.process_type or ''
    if process_type.endswith('sianode.explore') and 'deviations' in node.outputs and 'trajectory' in node.outputs:
        given = node.inputs.parameters.get_dict() if 'parameters' in node.inputs else {}
        parameters = engine.validate_parameters(given)
        stop = node.outputs.stop_reason.value if 'stop_reason' in node.outputs else None
        label = f'{parameters["ensemble"]} {parameters["temperature"]:g} K'
        runs = [run_of(node.outputs.deviations, label, stop)]
        return runs, parameters['force_deviation_lower'], parameters['force_deviation_upper']
    if 'upper_trust' in node.inputs and 'deviations' in node.outputs:
        summary = node.outputs.summary.get_dict()['runs'] if 'summary' in node.outputs else {}
        runs = []
        for key in sorted(node.outputs.deviations):
            record = summary.get(key, {})
            label = key
            if record:
                label = f'{key} {record["structure"]} {record["ensemble"]} {record["temperature"]:g} K'
                if record.get('pressure_gpa') is not None:
                    label += f' {record["pressure_gpa"]:g} GPa'
            runs.append(run_of(node.outputs.deviations[key], label, record.get('stop_reason')))
        if not runs:
            raise ValueError(f'{type(node).__name__}<{node.pk}> has no deviations to plot')
        return runs, node.inputs.lower_trust.value, node.inputs.upper_trust.value
    raise ValueError(
        f'node {node.pk} ({type(node).__name__}) is neither an ExploreCalculation nor an ExploreWorkChain with '
        'deviations'
    )


@cmd_explore.command('plot')
@click.argument('identifier')
@click.option(
    '-o', '--output', type=click.Path(dir_okay=False), default='deviation.png', show_default=True, help='Image file.'
)
@click.option('--lower', type=float, default=None, help="Lower trust level to draw (default: the run's).")
@click.option('--upper', type=float, default=None, help="Upper trust level to draw (default: the run's).")
@click.option('--log/--linear', 'log_scale', default=None, help='Deviation axis scale (default: chosen from the data).')
@click.option('--title', default=None, help='Figure title.')
@JSON_OPTION
def cmd_explore_plot(identifier, output, lower, upper, log_scale, title, as_json):
    """Plot the max force deviation against time, with the trust levels, for the exploration IDENTIFIER.

    IDENTIFIER is the PK or UUID of an ExploreCalculation (one run) or an ExploreWorkChain (every run).
    """
    from aiida import orm

    from aiida_sianode.analysis.deviation_plot import plot_deviation

    load_profile_or_fail(as_json)
    try:
        node = orm.load_node(identifier)
    except Exception:
        fail(f'no node with PK/UUID `{identifier}`', as_json)
    try:
        runs, run_lower, run_upper = collect_runs(node)
    except ValueError as exception:
        fail(str(exception), as_json)
    lower = run_lower if lower is None else lower
    upper = run_upper if upper is None else upper
    try:
        plot_deviation(
            runs, lower, upper, title=title or f'{node.process_label}<{node.pk}>', log_scale=log_scale, path=output
        )
    except ValueError as exception:
        fail(str(exception), as_json)
    if as_json:
        echo_json({'output': str(output), 'node': node.pk, 'runs': len(runs), 'lower': lower, 'upper': upper})
    else:
        echo_info(f'wrote {output}: {len(runs)} run(s), trust levels {lower:g} / {upper:g} eV/Å')
