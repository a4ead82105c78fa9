"""``aiida-sianode computer add CLUSTER.yaml``: a remote computer and its codes from one YAML file."""

from __future__ import annotations

import pathlib

import click
from aiida.cmdline.utils import decorators

from aiida_sianode.cli.root import JSON_OPTION, cmd_root, echo_info, echo_json, fail


@cmd_root.group('computer')
def cmd_computer():
    """Remote computers (Slurm or PBS clusters over SSH) with the engines and DFT codes."""


@cmd_computer.command('add')
@click.argument('cluster_file', type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option('--check-only', is_flag=True, help='Validate the file and print what would be created; store nothing.')
@JSON_OPTION
@decorators.with_dbenv()
def cmd_computer_add(cluster_file, check_only, as_json):
    """Create the computer and the codes described by CLUSTER_FILE (see docs/examples/cluster-slurm.yaml).

    The whole file is checked first (unknown keys, transport settings, scheduler resources); an existing computer
    of the same label and settings is reused and only the missing codes are created, so it is safe to run again.
    """
    from aiida_sianode.deploy.cluster import ClusterFileError, create_cluster, load_cluster_file

    try:
        spec = load_cluster_file(cluster_file)
    except ClusterFileError as error:
        fail(str(error), as_json)
    if check_only:
        summary = {
            'computer': spec.computer.label,
            'hostname': spec.computer.hostname,
            'transport': spec.computer.transport,
            'scheduler': spec.computer.scheduler,
            'codes': {
                f'{label}@{spec.computer.label}': {
                    'plugin': spec.plugin_of(label),
                    'default_options': code.default_options(),
                }
                for label, code in spec.codes.items()
            },
            'valid': True,
        }
        if as_json:
            echo_json(summary)
        else:
            echo_info(f'{cluster_file} is valid: computer {spec.computer.label}, codes {", ".join(spec.codes)}')
        return
    try:
        summary = create_cluster(spec)
    except ClusterFileError as error:
        fail(str(error), as_json)
    if as_json:
        echo_json(summary)
        return
    echo_info(
        f'computer  {summary["computer"]} ({summary["hostname"]}, {summary["transport"]}, {summary["scheduler"]})'
        f'{" created" if summary["computer_created"] else ""}'
    )
    for label, info in summary['codes'].items():
        options = ', '.join(f'{key}={value}' for key, value in info['default_options'].items())
        echo_info(
            f'code      {label:<28} pk={info["pk"]:<5} {info["plugin"]:<16}{" created" if info["created"] else ""}'
            f'{"  " + options if options else ""}'
        )
    echo_info(f'check the connection with: verdi computer test {summary["computer"]}')
