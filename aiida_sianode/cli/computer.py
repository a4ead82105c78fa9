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


@cmd_computer.command('install-engines')
@click.argument('cluster_file', type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option(
    '--remote-python',
    default='python3',
    show_default=True,
    help='The remote interpreter (Python 3.11) that creates the virtual environment when it does not exist.',
)
@click.option('--dry-run', is_flag=True, help='Print the remote commands; build, copy and run nothing.')
@click.option('--timeout', type=float, default=3600.0, show_default=True, help='Seconds allowed per remote command.')
@JSON_OPTION
@decorators.with_dbenv()
def cmd_computer_install_engines(cluster_file, remote_python, dry_run, timeout, as_json):
    """Install aiida-sianode's engines on the computer of CLUSTER_FILE, into its `engines.python` environment.

    A wheel of this checkout and the lock files (requirements/) are copied through the computer's own transport;
    requirements/install-engines.sh, the script `make install` runs, installs them there and ends with the
    self-check (GPAW and xTB single points). Run `computer add CLUSTER_FILE` first.
    """
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    from aiida_sianode.deploy.cluster import ClusterFileError, load_cluster_file
    from aiida_sianode.deploy.remote_install import RemoteInstallError, checkout_root, install_engines, plan

    try:
        spec = load_cluster_file(cluster_file)
    except ClusterFileError as error:
        fail(str(error), as_json)
    if spec.engines is None:
        fail(f'{cluster_file} has no `engines` section: name the remote environment as `engines.python`', as_json)
    try:
        computer = orm.load_computer(spec.computer.label)
    except NotExistent:
        fail(
            f'computer `{spec.computer.label}` does not exist: run `aiida-sianode computer add {cluster_file}`', as_json
        )
    try:
        if dry_run:
            checkout_root()
            steps = plan(computer.label, spec.engines.python, 'aiida_sianode-VERSION-py3-none-any.whl', remote_python)
        else:
            steps = install_engines(
                computer,
                spec.engines.python,
                remote_python=remote_python,
                timeout=timeout,
                echo=None if as_json else echo_info,
            )
    except RemoteInstallError as error:
        fail(str(error), as_json)
    if as_json:
        echo_json({**steps.as_dict(), 'installed': not dry_run})
        return
    if dry_run:
        for command in steps.commands:
            echo_info(f'would run on {computer.label}: {command}')
        return
    echo_info(f'engines installed on {computer.label} in {steps.venv}')
