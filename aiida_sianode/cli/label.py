"""``aiida-sianode label``: label structures from files with GPAW or GFN1-xTB, as provenance-tracked work chains."""

from __future__ import annotations

import click

from aiida_sianode.cli.root import JSON_OPTION, cmd_root, echo_info, echo_json, echo_table, fail, load_profile_or_fail

DEFAULT_CODE = 'sianode-label@localhost'


def read_structures(paths, file_format: str | None = None) -> list[tuple[str, int, object]]:
    """Return ``(path, frame, atoms)`` for every frame of every file (any format ASE reads).

    :raises click.ClickException: naming the file that cannot be read or holds no structure.
    """
    import ase.io

    structures = []
    for path in paths:
        try:
            frames = ase.io.read(path, index=':', format=file_format)
        except Exception as exception:
            raise click.ClickException(f'cannot read `{path}`: {type(exception).__name__}: {exception}') from exception
        if not frames:
            raise click.ClickException(f'`{path}` holds no structure')
        structures.extend((str(path), index, atoms) for index, atoms in enumerate(frames))
    return structures


def describe(node, path: str, frame: int, atoms) -> dict:
    """Return the row printed for one structure: formula, size, energy, max force, PKs and the process status."""
    row = {
        'file': path,
        'frame': frame,
        'formula': atoms.get_chemical_formula(mode='hill'),
        'natoms': len(atoms),
        'energy_ev': None,
        'max_force_ev_per_a': None,
        'label_pk': None,
        'process_pk': node.pk,
        'status': node.process_state.value if node.process_state else 'created',
        'exit_status': node.exit_status,
        'exit_message': node.exit_message,
    }
    if node.is_finished:
        row['status'] = 'finished' if node.is_finished_ok else 'failed'
    if 'label' in node.outputs:
        label = node.outputs.label
        row.update(
            energy_ev=label.energy,
            max_force_ev_per_a=label.max_force,
            label_pk=label.pk,
            forces=label.forces.tolist(),
            stress=None if label.stress is None else label.stress.tolist(),
            level_of_theory=label.level_of_theory,
        )
    return row


def echo_label_table(rows: list[dict]) -> None:
    """Print the rows of :func:`describe` as a table, energies to the meV (total) and 0.1 meV (per atom).

    Four significant digits would print a 64-atom Si cell as -3193 eV and hide every difference between frames.
    """
    for row in rows:
        if row['energy_ev'] is not None:
            row['energy_per_atom_ev'] = row['energy_ev'] / row['natoms']
    columns = ['file', 'frame', 'formula', 'natoms', 'energy_ev', 'energy_per_atom_ev', 'max_force_ev_per_a']
    columns += ['label_pk', 'process_pk', 'status', 'exit_status']
    headers = ['file', 'frame', 'formula', 'natoms', 'energy (eV)', 'E/atom (eV)', 'max |F| (eV/Å)']
    headers += ['label PK', 'process PK', 'status', 'exit']
    floatfmt = ['g', 'g', 'g', 'g', '.3f', '.4f', '.3f', 'g', 'g', 'g', 'g']
    echo_table(rows, columns, headers, floatfmt=floatfmt)


@cmd_root.command('label')
@click.argument('files', nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option('--labeler', type=click.Choice(['gpaw', 'xtb']), required=True, help='The local code to label with.')
@click.option(
    '--protocol',
    type=click.Choice(['fast', 'balanced', 'stringent']),
    default=None,
    help="Settings preset; the labeler's default (balanced) when not given.",
)
@click.option('--code', 'code_label', default=DEFAULT_CODE, show_default=True, help='The sianode.label code to use.')
@click.option('--format', 'file_format', default=None, help='ASE format of the files, when not clear from their names.')
@click.option('--submit', is_flag=True, default=False, help='Submit to the daemon instead of running here and waiting.')
@JSON_OPTION
def cmd_label(files, labeler, protocol, code_label, file_format, submit, as_json):
    """Label every structure in FILES (every frame of multi-frame files) with GPAW or GFN1-xTB.

    All structures are checked before any runs; one refused structure stops the command. Prints per structure the
    formula, number of atoms, energy (eV), largest force (eV/Å), the label's PK, the work chain's PK and status.
    Exits 1 when a labelling failed.
    """
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent
    from aiida.engine import run_get_node
    from aiida.engine import submit as submit_process

    from aiida_sianode.common.validation import StructureValidationError
    from aiida_sianode.workflows.label import get_label_workchain

    try:
        structures = read_structures(files, file_format)
    except click.ClickException as exception:
        fail(exception.message, as_json)

    profile = load_profile_or_fail(as_json)
    try:
        code = orm.load_code(code_label)
    except (NotExistent, MultipleObjectsError, ValueError):
        fail(
            f'code `{code_label}` not found in profile `{profile.name}`: run `aiida-sianode setup` to create '
            f'{DEFAULT_CODE}, or pass --code',
            as_json,
        )
    if submit and profile.process_control_backend is None:
        fail(f'--submit needs a profile with a broker; `{profile.name}` has none: run without --submit', as_json)

    workchain = get_label_workchain(labeler)
    builders, problems = [], []
    for path, frame, atoms in structures:
        try:
            builders.append(workchain.get_builder_from_protocol(code, orm.StructureData(ase=atoms), protocol=protocol))
        except (StructureValidationError, ValueError, TypeError) as exception:
            problems.append(f'{path} frame {frame}: {exception}')
    if problems:
        fail('nothing was run; refused structures:\n' + '\n'.join(problems), as_json)

    rows = []
    for (path, frame, atoms), builder in zip(structures, builders):
        if submit:
            node = submit_process(builder)
            echo_info(f'submitted {workchain.__name__}<{node.pk}> for {path} frame {frame}', as_json)
        else:
            echo_info(f'labelling {path} frame {frame} ({atoms.get_chemical_formula()}) with {labeler}', as_json)
            _, node = run_get_node(builder)
        row = describe(node, path, frame, atoms)
        if submit and not node.is_terminated:
            row['status'] = 'submitted'
        rows.append(row)

    failed = [row for row in rows if row['status'] in ('failed', 'excepted', 'killed')]
    if as_json:
        echo_json(
            {
                'labeler': labeler,
                'protocol': protocol or workchain.get_default_protocol(),
                'code': code.full_label,
                'submitted': submit,
                'structures': rows,
            }
        )
    else:
        echo_label_table(rows)
        for row in failed:
            echo_info(f'{row["file"]} frame {row["frame"]}: [{row["exit_status"]}] {row["exit_message"]}')
    if failed:
        raise SystemExit(1)
