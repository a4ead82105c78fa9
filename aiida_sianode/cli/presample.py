"""``aiida-sianode presample``: melt-quench amorphous Si or C with LAMMPS and print its density and coordination."""

from __future__ import annotations

import click

from aiida_sianode.cli.root import JSON_OPTION, cmd_root, echo_info, echo_json, fail, load_code_or_fail
from aiida_sianode.structures.melt_quench import PRESAMPLE_MATERIALS as MATERIALS
from aiida_sianode.structures.melt_quench import presample_random_cell

HYBRIDISATION = {2: 'sp', 3: 'sp2', 4: 'sp3'}


def _summary(node, material: str) -> dict:
    """Return the JSON summary of a finished ``PresampleWorkChain``."""
    properties = node.outputs.properties.get_dict()
    summary = {
        'material': material,
        'workchain': {'pk': node.pk, 'uuid': node.uuid},
        'structure': {'pk': node.outputs.structure.pk, 'uuid': node.outputs.structure.uuid},
        'natoms': properties['natoms'],
        'formula': properties['formula'],
        'density_g_cm3': properties['density_g_cm3'],
        'mean_coordination': properties['mean_coordination'],
        'coordination_cutoffs': properties['coordination_cutoffs'],
        'coordination_fractions': properties['coordination_fractions'],
        'potential_energy_ev_per_atom': properties.get('potential_energy_ev_per_atom'),
        'potential': node.inputs.potential.filename,
        'quench_rate_k_per_ps': node.inputs.quench.rate.value,
    }
    if material == 'a-c':
        fractions = properties['elements']['C']['coordination_fractions']
        summary['hybridisation'] = {name: fractions.get(str(number), 0.0) for number, name in HYBRIDISATION.items()}
    if 'snapshots' in node.outputs:
        summary['snapshots'] = {
            name: {'pk': structure.pk, 'label': structure.label} for name, structure in node.outputs.snapshots.items()
        }
    return summary


@cmd_root.command('presample')
@click.option(
    '--material',
    type=click.Choice(sorted(MATERIALS)),
    required=True,
    help='a-si: Si with Stillinger-Weber (VBWM); a-c: C with Tersoff.',
)
@click.option('--natoms', type=click.IntRange(min=2), default=64, show_default=True, help='Number of atoms.')
@click.option(
    '--density',
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help='Starting density in g/cm^3 [a-si: 2.28, kept through the melt, then the NPT quench finds its own; '
    'a-c: 2.5, kept to the end].',
)
@click.option(
    '--quench-rate',
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help='Quench rate in K/ps (1 K/ps = 10^12 K/s) [from the protocol].',
)
@click.option(
    '--protocol',
    type=click.Choice(['fast', 'balanced', 'stringent']),
    default='balanced',
    show_default=True,
    help='fast: 100 K/ps; balanced: 10 K/ps; stringent: 1 K/ps.',
)
@click.option(
    '--potential', type=click.Choice(['sw', 'sw-vbwm', 'tersoff']), default=None, help='Override the potential.'
)
@click.option(
    '--seed',
    type=click.IntRange(min=1, max=900_000_000),
    default=12345,
    show_default=True,
    help='Seed of the random cell and of the velocities.',
)
@click.option(
    '--snapshots',
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help='Also keep this many structures along the quench.',
)
@click.option('--code', 'code_label', default='lammps@localhost', show_default=True, help='The LAMMPS code.')
@click.option(
    '-o',
    '--output',
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help='Write the final structure to this file (extended XYZ).',
)
@JSON_OPTION
def cmd_presample(
    material, natoms, density, quench_rate, protocol, potential, seed, snapshots, code_label, output, as_json
):
    """Melt-quench an amorphous structure with LAMMPS (PresampleWorkChain) and print its density and coordination.

    The work chain runs here, in this process, on the current profile; `aiida-sianode setup` creates the
    `lammps@localhost` code.
    """
    from aiida.cmdline.utils.decorators import load_backend_if_not_loaded
    from aiida.engine import run_get_node

    from aiida_sianode.protocols import ProtocolError
    from aiida_sianode.workflows.presample import PresampleWorkChain, check_random_cell

    cell = presample_random_cell(material, natoms, density)
    try:
        check_random_cell(cell, seed)
    except ValueError as exception:
        fail(f'cannot build the starting cell: {exception}', as_json)

    load_backend_if_not_loaded()
    code = load_code_or_fail(code_label, as_json)

    try:
        builder = PresampleWorkChain.get_builder_for_material(
            code,
            material,
            seed=seed,
            natoms=natoms,
            density=density,
            protocol=protocol,
            quench_rate=quench_rate,
            potential=potential,
            snapshots=snapshots,
        )
    except (ValueError, ProtocolError) as exception:
        fail(str(exception), as_json)

    echo_info(
        f'melt-quench of {natoms} atoms of {material} at {cell["density"]} g/cm^3 with '
        f'{builder.potential.filename}, protocol {protocol} ...',
        as_json,
    )
    _, node = run_get_node(builder)
    if not node.is_finished_ok:
        fail(f'PresampleWorkChain<{node.pk}> failed with exit status {node.exit_status}: {node.exit_message}', as_json)

    summary = _summary(node, material)
    if output:
        atoms = node.outputs.structure.get_ase()
        atoms.info.update(
            {
                'density_g_cm3': summary['density_g_cm3'],
                'mean_coordination': summary['mean_coordination'],
                'workchain_uuid': node.uuid,
                'structure_uuid': node.outputs.structure.uuid,
            }
        )
        atoms.write(output, format='extxyz')
        summary['output'] = str(output)

    if as_json:
        echo_json(summary)
        return
    echo_info(f'PresampleWorkChain<{node.pk}>: {summary["formula"]}, structure <{summary["structure"]["pk"]}>')
    echo_info(f'density            {summary["density_g_cm3"]:.4f} g/cm^3')
    cutoffs = ', '.join(f'{pair} {value} Å' for pair, value in summary['coordination_cutoffs'].items())
    echo_info(f'mean coordination  {summary["mean_coordination"]:.3f} (cutoff {cutoffs})')
    fractions = ', '.join(f'{number}: {value:.3f}' for number, value in summary['coordination_fractions'].items())
    echo_info(f'coordination       {fractions}')
    if 'hybridisation' in summary:
        echo_info('hybridisation      ' + ', '.join(f'{k} {v:.3f}' for k, v in summary['hybridisation'].items()))
    if summary['potential_energy_ev_per_atom'] is not None:
        echo_info(f'energy             {summary["potential_energy_ev_per_atom"]:.4f} eV/atom')
    if output:
        echo_info(f'wrote {output}')
