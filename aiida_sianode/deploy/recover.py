"""Recovering a campaign after its daemon was killed: ``aiida-sianode campaign resume PK``.

Seen on the embedded profile (ZeroMQ broker, SQLite): a SIGKILL of the daemon's supervisor (circus) leaves its
worker running as an orphan; ``verdi daemon start`` then starts a second daemon beside it, and a process whose task
was held by the dead daemon stays ``Created`` for good, its campaign waiting on it. The repair is

1. stop the daemon (``verdi daemon stop``), then end every daemon process of this profile that is still alive (the
   orphans: workers, the ZeroMQ broker service and circus's statistics process of the killed supervisor), SIGTERM
   first, SIGKILL after a grace time;
2. ``verdi process repair --force``: every active process without a task in the broker gets one again ("revived"),
   tasks of terminated processes are dropped;
3. ``verdi daemon start`` with as many workers as before (at least one).

Processes of this profile are recognised by their command line (``verdi -p PROFILE daemon ...``, or for circus's
statistics process the supervisor's log file ``DAEMON/log/circus-PROFILE.log``) *and* their ``AIIDA_PATH``, so
the daemons of another configuration folder with a profile of the same name are left alone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field


@dataclass
class RecoveryReport:
    """What :func:`recover_daemon` found and did."""

    profile: str
    daemon_was_running: bool
    workers_before: int | None
    orphans: list[dict] = field(default_factory=list)
    revived: list[int] = field(default_factory=list)
    dropped_tasks: list[int] = field(default_factory=list)
    repair_output: str = ''
    daemon_started: bool = False
    workers: int = 0

    def as_dict(self) -> dict:
        return {
            'profile': self.profile,
            'daemon_was_running': self.daemon_was_running,
            'workers_before': self.workers_before,
            'orphans_ended': self.orphans,
            'revived': self.revived,
            'dropped_tasks': self.dropped_tasks,
            'daemon_started': self.daemon_started,
            'workers': self.workers,
        }


def _verdi() -> str:
    sibling = os.path.join(os.path.dirname(sys.executable), 'verdi')
    return sibling if os.path.exists(sibling) else (shutil.which('verdi') or 'verdi')


def daemon_processes(profile_name: str, config_dir: str) -> list[dict]:
    """Every live ``verdi -p PROFILE daemon ...`` process whose ``AIIDA_PATH`` points at ``config_dir``."""
    import psutil

    found = []
    config_dir = os.path.realpath(config_dir)
    # circus's statistics process names no profile: it is known by the supervisor's log file it writes to
    stats_log = os.path.join(config_dir, 'daemon', 'log', f'circus-{profile_name}.log')
    for process in psutil.process_iter(['pid', 'cmdline']):
        cmdline = process.info['cmdline'] or []
        joined = ' '.join(cmdline)
        if _is_circus_stats(cmdline, stats_log):
            role = 'circus-stats'
        elif re.search(rf'(^|\s)-p\s+{re.escape(profile_name)}\s+daemon\s', joined + ' '):
            role = cmdline[cmdline.index('daemon') + 1] if 'daemon' in cmdline[:-1] else 'daemon'
        else:
            continue
        try:
            aiida_path = process.environ().get('AIIDA_PATH')
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if aiida_path is None or not _same_config(aiida_path, config_dir):
            continue
        found.append({'pid': process.pid, 'role': role, 'ppid': process.ppid()})
    return found


def _is_circus_stats(cmdline: list[str], stats_log: str) -> bool:
    """``python -c 'from circus import stats; stats.main()' ... --log-output LOG`` with this profile's log file."""
    if not any('circus import stats' in part for part in cmdline) or '--log-output' not in cmdline[:-1]:
        return False
    log = cmdline[cmdline.index('--log-output') + 1]
    return os.path.realpath(log) == os.path.realpath(stats_log)


def _same_config(aiida_path: str, config_dir: str) -> bool:
    """``AIIDA_PATH`` may name the folder that holds ``.aiida`` or ``.aiida`` itself."""
    for candidate in aiida_path.split(os.pathsep):
        candidate = os.path.realpath(candidate)
        if config_dir in (candidate, os.path.join(candidate, '.aiida')):
            return True
    return False


def end_processes(pids: list[int], grace: float = 10.0) -> None:
    """SIGTERM ``pids``, then SIGKILL those still alive after ``grace`` seconds."""
    import psutil

    processes = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            process.terminate()
            processes.append(process)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=grace)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace)


def recover_daemon(workers: int | None = None, grace: float = 10.0) -> RecoveryReport:
    """Stop the daemon of the loaded profile, end its orphans, repair the process tasks and start it again."""
    from aiida.engine.daemon.client import get_daemon_client
    from aiida.manage import get_manager
    from aiida.manage.configuration import get_config

    profile = get_manager().get_profile()
    config_dir = get_config().dirpath
    client = get_daemon_client(profile.name)
    running = client.is_daemon_running
    workers_before = None
    if running:
        try:
            workers_before = client.get_number_of_workers()
        except Exception:  # a daemon whose supervisor does not answer counts as not running
            workers_before = None
    report = RecoveryReport(profile=profile.name, daemon_was_running=running, workers_before=workers_before)
    env = {**os.environ, 'AIIDA_PATH': os.environ.get('AIIDA_PATH', os.path.dirname(config_dir))}
    verdi = [_verdi(), '-p', profile.name]
    subprocess.run([*verdi, 'daemon', 'stop'], env=env, capture_output=True, text=True, timeout=120, check=False)
    # A killed supervisor leaves a stale pid file behind; `daemon stop` cannot reach it, the file is removed with it.
    left = daemon_processes(profile.name, config_dir)
    if left:
        end_processes([item['pid'] for item in left], grace=grace)
        report.orphans = left
    for path in (client.circus_pid_file, client.circus_port_file):
        if os.path.exists(path) and not client.is_daemon_running:
            os.remove(path)

    repair = subprocess.run(
        [*verdi, 'process', 'repair', '--force'], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    report.repair_output = repair.stdout + repair.stderr
    if repair.returncode != 0:
        raise RuntimeError(f'`verdi process repair` failed ({repair.returncode}):\n{report.repair_output.strip()}')
    report.revived = [int(pk) for pk in re.findall(r'Revived process `?(\d+)`?', report.repair_output)]
    report.dropped_tasks = [int(pk) for pk in re.findall(r'Acknowledged task `(\d+)`', report.repair_output)]

    report.workers = max(1, workers or workers_before or 1)
    started = subprocess.run(
        [*verdi, 'daemon', 'start', str(report.workers)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if started.returncode != 0:
        raise RuntimeError(f'`verdi daemon start` failed:\n{started.stdout}{started.stderr}')
    deadline = time.time() + 60
    while not client.is_daemon_running and time.time() < deadline:
        time.sleep(1)
    report.daemon_started = client.is_daemon_running
    return report
