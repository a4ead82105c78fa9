"""The failure seen on the embedded profile, and its one-command repair (``aiida-sianode campaign resume PK``).

A campaign runs on the daemon; the daemon's supervisor (circus) is killed with SIGKILL, which leaves its worker
running as an orphan; the user runs ``verdi daemon start``, as was done when the campaign then waited for good.
``campaign resume`` must end the orphan, repair the process tasks and restart the daemon; the campaign must then
finish, with no structure labelled twice.

This runs in the cluster stage (it needs minutes, not the main suite's seconds) but uses no cluster service: the
profile is the embedded one (SQLite + ZeroMQ), as in the report.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import psutil

BIN = pathlib.Path(sys.executable).parent

SPEC = """
name: resume-after-kill
structures:
  - builder: si-crystal
    parameters: {size: [1, 1, 1], rattle: 0.05}
    seeds: [1, 2, 3, 4]
labeler: {name: xtb, protocol: fast}
training:
  protocol: fast
  committee_size: 2
  overrides: {train: {parameters: {max_num_epochs: 4, patience: 4}}}
exploration:
  protocol: fast
  temperatures: [300]
  steps: 40
  overrides: {parameters: {min_distance: 1.6}}
selection: {strategy: trust, lower: 0.001, upper: 5.0, max_per_run: 1, max_total: 1}
convergence: {accurate_fraction: 1.0, max_iterations: 1, max_labels: 10}
"""

PROBE = """
import hashlib, json, numpy
from aiida import load_profile, orm
from aiida.engine.daemon.client import get_daemon_client
load_profile()
node = orm.load_node({pk})
labels = []
for calc in [n for n in orm.load_node({pk}).called_descendants if isinstance(n, orm.CalcJobNode)]:
    fresh = not calc.base.caching.is_created_from_cache
    if calc.process_type.endswith('sianode.label') and calc.is_finished_ok and fresh:
        atoms = calc.inputs.structure.get_ase()
        labels.append(hashlib.sha1(numpy.round(atoms.get_scaled_positions() % 1.0, 4).tobytes()).hexdigest())
children = len(node.called_descendants)
print(json.dumps({{'terminated': node.is_terminated, 'exit_status': node.exit_status,
    'state': node.process_state.value, 'labels': labels, 'children': children,
    'circus_pid': get_daemon_client().get_daemon_pid()}}))
"""


def _run(*command, env, timeout=300, check=True):
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env, timeout=timeout)
    if check:
        assert result.returncode == 0, f'{command} failed:\n{result.stdout}\n{result.stderr}'
    return result.stdout


def _daemon_pids(profile_dir: pathlib.Path) -> dict[int, str]:
    pids = {}
    for process in psutil.process_iter(['pid', 'cmdline']):
        cmdline = process.info['cmdline'] or []
        if 'daemon' in cmdline and '-p' in cmdline:
            try:
                if process.environ().get('AIIDA_PATH', '').startswith(str(profile_dir)):
                    pids[process.pid] = cmdline[cmdline.index('daemon') + 1]
            except psutil.Error:
                pass
    return pids


def test_resume_repairs_a_daemon_whose_supervisor_was_killed(tmp_path):
    env = {
        **os.environ,
        'AIIDA_PATH': str(tmp_path),
        'OMP_NUM_THREADS': '1',
        'PATH': f'{BIN}{os.pathsep}{os.environ.get("PATH", "")}',
    }
    (tmp_path / 'spec.yaml').write_text(SPEC)
    _run(BIN / 'aiida-sianode', 'setup', '--json', env=env)
    _run(BIN / 'verdi', 'daemon', 'start', '1', env=env, timeout=120)
    started = time.time()
    try:
        pk = json.loads(_run(BIN / 'aiida-sianode', 'run', tmp_path / 'spec.yaml', '--submit', '--json', env=env))['pk']

        def probe():
            return json.loads(_run(sys.executable, '-c', PROBE.format(pk=pk), env=env).splitlines()[-1])

        # wait until the campaign is at work (its labels submitted), then kill the supervisor only
        deadline = time.time() + 300
        while (state := probe())['children'] < 3 and time.time() < deadline:
            time.sleep(2)
        assert state['children'] >= 3, state
        before = _daemon_pids(tmp_path)
        os.kill(state['circus_pid'], signal.SIGKILL)
        time.sleep(1)
        orphans = {pid for pid, role in _daemon_pids(tmp_path).items() if role == 'worker'}
        assert orphans, f'no worker outlived its supervisor: {before}'
        # what the user did: start the daemon again, beside the orphan
        _run(BIN / 'verdi', 'daemon', 'start', '1', env=env, timeout=120)
        assert orphans <= set(_daemon_pids(tmp_path))

        resumed = json.loads(_run(BIN / 'aiida-sianode', 'campaign', 'resume', pk, '--json', env=env, timeout=600))
        assert resumed['resumed'] is True and resumed['workers'] == 1
        assert orphans <= {orphan['pid'] for orphan in resumed['orphans_ended']}
        assert not orphans & set(_daemon_pids(tmp_path))  # every orphan is gone
        workers_now = [pid for pid, role in _daemon_pids(tmp_path).items() if role == 'worker']
        assert len(workers_now) == 1

        deadline = time.time() + 1200
        while not (state := probe())['terminated'] and time.time() < deadline:
            time.sleep(5)
        ended = [orphan['pid'] for orphan in resumed['orphans_ended']]
        print(
            f'\n[faults] campaign {pk} finished {state["state"]} in {time.time() - started:.0f} s after one kill of '
            f'the supervisor; revived {resumed["revived"]}, orphans ended {ended}'
        )
        assert state['exit_status'] == 0, _run(BIN / 'verdi', 'process', 'report', pk, env=env, check=False)
        # the 4 starting cells, each labelled once (one iteration: the selected frame is not labelled)
        assert len(state['labels']) == 4
        assert len(set(state['labels'])) == len(state['labels'])
    finally:
        _run(BIN / 'verdi', 'daemon', 'stop', env=env, timeout=120, check=False)
        for pid in _daemon_pids(tmp_path):
            psutil.Process(pid).kill()
