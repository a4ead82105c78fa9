"""``aiida-sianode build``: make a starting structure with one of the builders, write it, picture it, store it."""

from __future__ import annotations

import click

from aiida_sianode.cli.root import JSON_OPTION, cmd_root, echo_info, echo_json, fail


def parse_parameters(pairs: tuple[str, ...]) -> dict:
    """Turn ``('x=2.5', 'size=[2,2,2]', 'composition={Li2CO3: 16, Li: 64}')`` into a dict.

    Each value is read as YAML, so numbers, booleans, lists and mappings come out typed and anything else is a
    string. A pair without ``=`` or a name given twice raises ``click.BadParameter``.
    """
    import yaml

    parameters: dict = {}
    for pair in pairs:
        name, separator, text = pair.partition('=')
        name = name.strip()
        if not separator or not name:
            raise click.BadParameter(f'expected KEY=VALUE, got {pair!r}', param_hint='--param')
        if name in parameters:
            raise click.BadParameter(f'{name} is given twice', param_hint='--param')
        try:
            parameters[name] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exception:
            raise click.BadParameter(f'cannot read the value of {name}: {exception}', param_hint='--param') from None
    return parameters


def describe(atoms) -> dict:
    """Composition, cell, density and smallest interatomic distance of ``atoms`` as plain values."""
    from aiida_sianode.structures.common import mass_density, minimum_distance

    periodic = bool(atoms.pbc.all())
    return {
        'formula': atoms.get_chemical_formula(),
        'natoms': len(atoms),
        'cell': atoms.cell.array.round(6).tolist(),
        'pbc': atoms.pbc.tolist(),
        'volume': round(float(atoms.get_volume()), 4) if periodic else None,
        'density': round(mass_density(atoms), 5) if periodic else None,
        'min_distance': round(minimum_distance(atoms), 5),
    }


def _list_kinds(as_json: bool) -> None:
    from aiida_sianode.structures import BUILDERS

    if as_json:
        echo_json({kind: {'summary': b.summary, 'parameters': b.defaults} for kind, b in BUILDERS.items()})
        return
    for kind, builder in BUILDERS.items():
        click.echo(f'{kind:18s} {builder.summary}')
        for name, value in builder.defaults.items():
            click.echo(f'{"":20s}{name} = {value!r}')


@cmd_root.command('build')
@click.argument('kind', required=False)
@click.option('-p', '--param', 'params', multiple=True, metavar='KEY=VALUE', help='A builder parameter (repeat).')
@click.option('--seed', type=click.IntRange(min=0), default=0, show_default=True, help='Seed of every random choice.')
@click.option('-o', '--output', type=click.Path(dir_okay=False), help='Write the structure here (extxyz, cif, ...).')
@click.option('--format', 'file_format', default=None, help='ASE format of --output (default: from the extension).')
@click.option('--png', type=click.Path(dir_okay=False), help='Draw the structure into this PNG file.')
@click.option('--rotation', default='10x,-10y,0z', show_default=True, help='View rotation of the picture (ASE).')
@click.option('--section', type=float, default=None, help='Picture only atoms within SECTION/2 Å of mid-cell in z.')
@click.option('--store', is_flag=True, help='Build through the build_structure calcfunction and store the result.')
@click.option('--host', 'host_identifier', help='PK or UUID of a stored StructureData host (lixsi, hard-carbon).')
@click.option('--list', 'list_kinds', is_flag=True, help='List the kinds and their parameters with defaults.')
@JSON_OPTION
def cmd_build(
    kind, params, seed, output, file_format, png, rotation, section, store, host_identifier, list_kinds, as_json
):
    """Build a structure of KIND from parameters and a seed.

    KIND is one of si-crystal, si-random, lixsi, lixsi-crystal, amorphous-carbon, graphite, lic6, lic12,
    hard-carbon, si-ac-interface, core-shell, sei-pack, sei-crystal, li-metal (`--list` shows each with its
    parameters). Parameters are given as `-p KEY=VALUE`, values read as YAML: `-p x=3.75`, `-p size=[3,3,3]`,
    `-p composition={Li2EDC: 8, Li2CO3: 16, Li: 64}`. Unknown names are refused. Lengths are in Å (names ending
    in _nm in nm), densities in g/cm^3.

    With --store the structure is made by the build_structure calcfunction in the current profile and its
    StructureData PK is printed; the builder name, parameters and seed are on the node as attributes and extras.
    --host takes the host of lixsi or hard-carbon (a melt-quenched a-Si, say) from a stored StructureData; with
    --store it becomes an input of the calcfunction.
    """
    from aiida_sianode.structures import StructureBuildError, build, get_builder

    if list_kinds:
        _list_kinds(as_json)
        return
    if kind is None:
        fail('give a KIND (see `aiida-sianode build --list`)', as_json)
    try:
        parameters = parse_parameters(params)
        resolved = get_builder(kind).resolve(parameters)
    except (StructureBuildError, click.BadParameter) as exception:
        fail(str(getattr(exception, 'message', exception)), as_json)

    node = host = None
    if store or host_identifier:
        from aiida.cmdline.utils.decorators import load_backend_if_not_loaded

        load_backend_if_not_loaded()
    if host_identifier:
        host = _load_host(host_identifier, as_json)
    try:
        if store:
            from aiida_sianode.structures.calcfunctions import store_structure

            node = store_structure(kind, parameters, seed, host=host)
            atoms = node.get_ase()
            atoms.info.update({'builder': kind, 'seed': seed})
        else:
            atoms = build(kind, parameters, seed=seed, host=None if host is None else host.get_ase())
    except StructureBuildError as exception:
        fail(str(exception), as_json)

    summary = {'kind': kind, 'seed': seed, 'parameters': resolved, **describe(atoms)}
    if output:
        import ase.io

        ase.io.write(output, atoms, format=file_format or _format_of(output))
        summary['output'] = output
    if png:
        from aiida_sianode.structures.pictures import save_picture

        save_picture(atoms, png, rotation=rotation, section=section, title=f'{kind}: {atoms.get_chemical_formula()}')
        summary['png'] = png
    if node is not None:
        summary['pk'] = node.pk
        summary['uuid'] = node.uuid

    if as_json:
        echo_json(summary)
        return
    echo_info(f'{kind}: {summary["formula"]} ({summary["natoms"]} atoms), seed {seed}')
    if summary['density'] is not None:
        echo_info(f'  volume {summary["volume"]:.3f} Å^3, density {summary["density"]:.4f} g/cm^3')
    echo_info(f'  smallest interatomic distance {summary["min_distance"]:.3f} Å')
    for key in ('output', 'png'):
        if key in summary:
            echo_info(f'  wrote {summary[key]}')
    if node is not None:
        echo_info(f'  stored StructureData<{node.pk}> {node.uuid}')


def _load_host(identifier: str, as_json: bool):
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    try:
        node = orm.load_node(identifier)
    except (NotExistent, MultipleObjectsError, ValueError) as exception:
        fail(f'cannot load the host {identifier}: {exception}', as_json)
    if not isinstance(node, orm.StructureData):
        fail(f'the host {identifier} is a {type(node).__name__}, not a StructureData', as_json)
    return node


def _format_of(path: str) -> str | None:
    return 'extxyz' if path.endswith(('.extxyz', '.xyz')) else None
