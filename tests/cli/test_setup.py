"""``aiida-sianode setup`` creates the embedded profile, computer and codes once, and is safe to run again."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

EXECUTABLE = str(pathlib.Path(sys.executable).parent / 'aiida-sianode')


def run_cli(*args, aiida_path):
    env = {**os.environ, 'AIIDA_PATH': str(aiida_path)}
    result = subprocess.run([EXECUTABLE, *args], capture_output=True, text=True, env=env, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.slow
def test_setup_is_idempotent_and_json_is_clean(tmp_path):
    first = json.loads(run_cli('setup', '--json', aiida_path=tmp_path).stdout)
    assert first['profile'] == 'sianode'
    assert first['profile_created'] is True
    assert first['storage'] == 'core.sqlite_dos'
    assert first['broker'] == 'core.zeromq'
    assert first['computer_created'] is True
    assert set(first['codes']) == {
        'sianode-label@localhost',
        'sianode-train@localhost',
        'sianode-explore@localhost',
        'sianode-property@localhost',
        'lammps@localhost',
    }
    assert all(code['created'] for code in first['codes'].values())
    # this environment's interpreter: the CLI runs under its script's shebang, `python` or `python3` as pip wrote it
    executable = pathlib.Path(first['codes']['sianode-label@localhost']['executable'])
    assert executable.parent == pathlib.Path(sys.executable).parent
    assert executable.samefile(sys.executable)
    assert first['caching_enabled_for'] == ['aiida.calculations:sianode.label']
    config = json.loads((tmp_path / '.aiida' / 'config.json').read_text())
    assert config['profiles']['sianode']['options']['caching.enabled_for'] == ['aiida.calculations:sianode.label']

    second = json.loads(run_cli('setup', '--json', aiida_path=tmp_path).stdout)
    assert second['profile_created'] is False
    assert second['computer_created'] is False
    assert not any(code['created'] for code in second['codes'].values())
    assert {label: code['pk'] for label, code in second['codes'].items()} == {
        label: code['pk'] for label, code in first['codes'].items()
    }
    assert (tmp_path / '.aiida' / 'config.json').exists()


def test_production_refuses_unreachable_database_before_writing_a_profile(tmp_path):
    """`setup --production` checks PostgreSQL first: a closed port is an error naming it, and no profile is made."""
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path)}
    result = subprocess.run(
        [EXECUTABLE, 'setup', '--production', '--profile-name', 'prod', '--db-port', str(port), '--json'],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    error = json.loads(result.stdout)['error']
    assert error.startswith(f'PostgreSQL database `sianode` at 127.0.0.1:{port} as `sianode` cannot be opened')
    config = tmp_path / '.aiida' / 'config.json'
    assert not config.exists() or 'prod' not in json.loads(config.read_text()).get('profiles', {})


def test_orphan_search_finds_only_this_configurations_daemon_processes(tmp_path):
    """`campaign resume` ends the daemon processes of its own profile and AIIDA_PATH, and nothing else."""
    from aiida_sianode.deploy.recover import daemon_processes, end_processes

    mine, other = tmp_path / 'mine', tmp_path / 'other'
    (mine / '.aiida').mkdir(parents=True)
    (other / '.aiida').mkdir(parents=True)
    sleeper = [sys.executable, '-c', 'import time; time.sleep(120)']
    started = [
        subprocess.Popen([*sleeper, '-p', 'prod', 'daemon', 'worker'], env={**os.environ, 'AIIDA_PATH': str(mine)}),
        subprocess.Popen([*sleeper, '-p', 'prod', 'daemon', 'broker'], env={**os.environ, 'AIIDA_PATH': str(mine)}),
        subprocess.Popen([*sleeper, '-p', 'prod', 'daemon', 'worker'], env={**os.environ, 'AIIDA_PATH': str(other)}),
        subprocess.Popen([*sleeper, '-p', 'prod2', 'daemon', 'worker'], env={**os.environ, 'AIIDA_PATH': str(mine)}),
    ]
    # circus's statistics process, as the supervisor starts it: known only by the log file it writes to
    stats = [sys.executable, '-c', 'import time; time.sleep(120)  # from circus import stats; stats.main()']
    for folder, profile in ((mine, 'prod'), (mine, 'prod2'), (other, 'prod')):
        log = folder / '.aiida' / 'daemon' / 'log' / f'circus-{profile}.log'
        started.append(
            subprocess.Popen([*stats, '--log-output', str(log)], env={**os.environ, 'AIIDA_PATH': str(folder)})
        )
    try:
        found = daemon_processes('prod', str(mine / '.aiida'))
        assert sorted((item['pid'], item['role']) for item in found) == sorted(
            [(started[0].pid, 'worker'), (started[1].pid, 'broker'), (started[4].pid, 'circus-stats')]
        )
        end_processes([item['pid'] for item in found], grace=5)
        assert all(started[index].poll() is not None for index in (0, 1, 4))  # ended (and reaped) within the grace
        assert all(started[index].poll() is None for index in (2, 3, 5, 6))
        assert daemon_processes('prod', str(mine / '.aiida')) == []
    finally:
        for process in started:
            process.kill()
            process.wait()


def test_a_code_whose_executable_is_gone_is_replaced_and_kept_hidden(aiida_localhost, tmp_path):
    """A venv removed after `setup` leaves codes that would fail every job: the next `setup` registers new ones."""
    from aiida import orm

    from aiida_sianode.cli.setup import ensure_codes

    first = ensure_codes(aiida_localhost)
    gone = tmp_path / 'removed-venv' / 'bin' / 'python'
    stale = orm.InstalledCode(
        label='sianode-stale-test',
        computer=aiida_localhost,
        filepath_executable=str(gone),
        default_calc_job_plugin='sianode.train',
    ).store()
    old_train = orm.load_code(f'sianode-train@{aiida_localhost.label}')
    old_train.label = 'sianode-train-current'  # keep the working one aside, put the stale one in its place
    stale.label = 'sianode-train'

    second = ensure_codes(aiida_localhost)
    assert second['sianode-train']['created'] is True
    assert second['sianode-train']['replaced'] == stale.pk
    assert pathlib.Path(second['sianode-train']['executable']).samefile(sys.executable)
    assert orm.load_code(f'sianode-train@{aiida_localhost.label}').pk == second['sianode-train']['pk']
    assert stale.label == f'sianode-train-missing-{stale.pk}'
    assert stale.is_hidden
    # the others were left alone
    for label in ('sianode-label', 'sianode-explore', 'sianode-property'):
        assert second[label] == {**first[label], 'created': False}
    old_train.label = 'sianode-train-kept'
