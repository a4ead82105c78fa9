"""The loopback cluster of ``setup_cluster.sh`` as a fixture: a production profile and the ``loop-slurm`` computer.

These tests run only when asked for (``make cluster-test`` sets ``SIANODE_CLUSTER=1``); then a service that is not
up is an error, not a skip. Each session gets its own PostgreSQL database (dropped at the end), its own
``AIIDA_PATH`` and a daemon with one worker; every AiiDA command goes through the command line, as a user would.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import secrets
import shlex
import subprocess
import sys
import time

import pytest

BIN = pathlib.Path(sys.executable).parent
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
STATE_DIR = pathlib.Path(os.environ.get('SIANODE_CLUSTER_DIR', '/var/lib/sianode-cluster'))
ENABLED = os.environ.get('SIANODE_CLUSTER') == '1'


def pytest_collection_modifyitems(config, items):
    here = pathlib.Path(__file__).parent
    for item in items:
        if here in pathlib.Path(item.fspath).parents:
            item.add_marker(pytest.mark.cluster)
            if not ENABLED:
                item.add_marker(
                    pytest.mark.skip(
                        reason='the loopback cluster tests run with `make cluster-test` (SIANODE_CLUSTER=1)'
                    )
                )


def read_env_file(path: pathlib.Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        match = re.match(r'export (\w+)=(.*)$', line.strip())
        if match:
            values[match.group(1)] = shlex.split(match.group(2))[0] if match.group(2) else ''
    return values


class Cluster:
    """The production profile on the loopback services, driven through the command line."""

    def __init__(self, settings: dict[str, str], aiida_path: pathlib.Path, workdir: pathlib.Path):
        self.settings = settings
        self.aiida_path = aiida_path
        self.workdir = workdir
        self.computer = 'loop-slurm'
        self.repo_root = REPO_ROOT
        self.registry: pathlib.Path | None = None
        self.env = {
            **os.environ,
            'AIIDA_PATH': str(aiida_path),
            'OMP_NUM_THREADS': '1',
            'PATH': f'{BIN}{os.pathsep}{os.environ.get("PATH", "")}',
        }

    def run(self, *command, timeout=300, check=True, env=None) -> str:
        result = subprocess.run(
            [str(part) for part in command],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=timeout,
            check=False,
        )
        if check:
            assert result.returncode == 0, f'{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}'
        return result.stdout

    def sianode(self, *args, **kwargs) -> str:
        return self.run(BIN / 'aiida-sianode', *args, **kwargs)

    def verdi(self, *args, **kwargs) -> str:
        return self.run(BIN / 'verdi', *args, **kwargs)

    def python(self, code: str, timeout=300):
        """Run ``code`` in a fresh interpreter with the profile loaded; return the JSON it prints last."""
        prelude = 'import json; from aiida import load_profile, orm; load_profile()\n'
        output = self.run(sys.executable, '-c', prelude + code, timeout=timeout)
        return json.loads(output.strip().splitlines()[-1])

    def wait(self, pks: list[int], timeout: float) -> dict[int, dict]:
        """Poll until every process in ``pks`` has terminated; return ``{pk: {state, exit_status}}``."""
        probe = (
            f'print(json.dumps({{pk: [orm.load_node(pk).is_terminated, orm.load_node(pk).exit_status, '
            f'orm.load_node(pk).process_state.value] for pk in {list(pks)}}}))'
        )
        deadline = time.time() + timeout
        while True:
            states = self.python(probe)
            if all(terminated for terminated, _, _ in states.values()) or time.time() > deadline:
                return {int(pk): {'terminated': t, 'exit_status': e, 'state': s} for pk, (t, e, s) in states.items()}
            time.sleep(3)

    def slurm_jobs(self) -> dict[str, dict[str, str]]:
        """Every finished job in Slurm's job-completion log: ``{job id: {JobState, Name, Partition, ...}}``."""
        jobs = {}
        path = pathlib.Path(self.settings['SIANODE_SLURM_JOBCOMP'])
        for line in path.read_text().splitlines() if path.exists() else []:
            fields = dict(part.split('=', 1) for part in line.split() if '=' in part)
            jobs[fields['JobId']] = fields
        return jobs


def _services_up(settings) -> list[str]:
    problems = []
    if subprocess.run(['scontrol', 'ping'], capture_output=True, text=True, check=False).stdout.count('UP') < 1:
        problems.append('slurmctld is not up')
    import socket

    for name, port in (('sshd', int(settings['SIANODE_SSH_PORT'])), ('PostgreSQL', 5432), ('RabbitMQ', 5672)):
        try:
            socket.create_connection(('127.0.0.1', port), timeout=5).close()
        except OSError:
            problems.append(f'{name} is not listening on 127.0.0.1:{port}')
    return problems


@pytest.fixture(scope='session')
def cluster(tmp_path_factory):
    """A production profile on a database of its own, the ``loop-slurm`` computer and codes, a running daemon."""
    env_file = STATE_DIR / 'cluster.env'
    if not env_file.exists():
        pytest.fail(f'{env_file} not found: run `bash tests/cluster/setup_cluster.sh` (as root) first')
    settings = read_env_file(env_file)
    problems = _services_up(settings)
    if problems:
        pytest.fail('; '.join(problems) + ': run `bash tests/cluster/setup_cluster.sh` first')

    import psycopg

    db_password = pathlib.Path(settings['SIANODE_DB_PASSWORD_FILE']).read_text().strip()
    broker_password = pathlib.Path(settings['SIANODE_BROKER_PASSWORD_FILE']).read_text().strip()
    database = f'sianode_test_{secrets.token_hex(4)}'
    login = {'host': '127.0.0.1', 'user': settings['SIANODE_DB_USER'], 'password': db_password}
    with psycopg.connect(dbname=settings['SIANODE_DB_NAME'], autocommit=True, **login) as connection:
        connection.execute(f'CREATE DATABASE {database}')

    root = tmp_path_factory.mktemp('cluster')
    workdir = root / 'scratch'
    cluster = Cluster(settings, root / 'aiida', workdir)
    # the passwords go through the environment, never on a command line that `ps` or a log would show
    secrets_env = {'SIANODE_DB_PASSWORD': db_password, 'SIANODE_BROKER_PASSWORD': broker_password}
    started = time.time()
    setup = json.loads(
        cluster.sianode(
            'setup',
            '--production',
            '--profile-name',
            'cluster',
            '--db-name',
            database,
            '--db-user',
            settings['SIANODE_DB_USER'],
            '--broker-user',
            settings['SIANODE_BROKER_USER'],
            '--json',
            env=secrets_env,
        )
    )
    assert (setup['storage'], setup['broker']) == ('core.psql_dos', 'core.rabbitmq')
    # the registries of the plugins' mock VASP and CASTEP (fixtures/mock/registry.py), which the remote codes read
    registry = root / 'mock-registry'
    cluster.run(sys.executable, REPO_ROOT / 'fixtures' / 'mock' / 'registry.py', registry, timeout=300)
    cluster.registry = registry
    cluster_file = root / 'loop-slurm.yaml'
    cluster_file.write_text(
        f"""
computer:
  label: loop-slurm
  hostname: 127.0.0.1
  description: this machine through sshd on 127.0.0.1 and Slurm (tests/cluster/setup_cluster.sh)
  transport: core.ssh
  scheduler: core.slurm
  workdir: {workdir}
  mpirun_command: srun
  mpiprocs_per_machine: 1
  job_poll_interval: 1
  connection:
    username: root
    port: {settings['SIANODE_SSH_PORT']}
    key_filename: {settings['SIANODE_SSH_KEY']}
    key_policy: AutoAddPolicy
    look_for_keys: false
    allow_agent: false
    load_system_host_keys: false
    safe_interval: 0.5
engines:
  python: {sys.executable}
  prepend_text: export OMP_NUM_THREADS=1
codes:
  sianode-label: {{queue_name: cpu, resources: {{num_machines: 1, num_mpiprocs_per_machine: 1}}}}
  sianode-train: {{queue_name: cpu, resources: {{num_machines: 1, num_mpiprocs_per_machine: 1}}}}
  sianode-explore: {{queue_name: cpu, resources: {{num_machines: 1, num_mpiprocs_per_machine: 1}}}}
  vasp:
    executable: {BIN / 'mock-vasp'}
    description: aiida-vasp's mock-vasp, replaying fixtures/mock's registry
    prepend_text: export MOCK_VASP_REG_BASE={registry / 'vasp'}
    queue_name: cpu
    withmpi: false
    resources: {{num_machines: 1, num_mpiprocs_per_machine: 1}}
    max_wallclock_seconds: 3600
  castep:
    executable: {BIN / 'castep.mock'}
    description: aiida-castep's castep.mock, replaying fixtures/mock's registry
    prepend_text: export MOCK_CODE_BASE={registry / 'castep'}
    queue_name: cpu
    withmpi: false
    resources: {{num_machines: 1, num_mpiprocs_per_machine: 1}}
    max_wallclock_seconds: 3600
"""
    )
    added = json.loads(cluster.sianode('computer', 'add', str(cluster_file), '--json'))
    assert added['computer_created'] and all(code['created'] for code in added['codes'].values())
    cluster.verdi('computer', 'test', 'loop-slurm', timeout=180)
    cluster.verdi('daemon', 'start', '1', timeout=120)
    cluster.setup_seconds = round(time.time() - started, 1)
    print(f'\n[cluster] profile, computer and daemon ready in {cluster.setup_seconds} s (database {database})')
    try:
        yield cluster
    finally:
        cluster.verdi('daemon', 'stop', timeout=120, check=False)
        # a test that killed the supervisor and failed before its repair leaves an orphaned worker: end it
        from aiida_sianode.deploy.recover import daemon_processes, end_processes

        end_processes([item['pid'] for item in daemon_processes('cluster', str(cluster.aiida_path / '.aiida'))])
        with psycopg.connect(dbname=settings['SIANODE_DB_NAME'], autocommit=True, **login) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS {database} WITH (FORCE)')
