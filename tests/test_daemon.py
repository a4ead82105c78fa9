"""A campaign submitted to the AiiDA daemon of an embedded profile (SQLite + ZeroMQ), as a user would do it.

Everything goes through the command line in a fresh ``AIIDA_PATH``: ``aiida-sianode setup``, ``verdi daemon start``,
``aiida-sianode run --submit``, then the test polls the node until the daemon has finished it.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.daemon]

BIN = pathlib.Path(sys.executable).parent

SPEC = """
name: daemon-smoke
structures:
  - builder: si-crystal
    parameters: {size: [1, 1, 1], rattle: 0.05}
    seeds: [1, 2, 3]
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
selection: {strategy: trust, lower: 0.02, upper: 2.0, max_per_run: 1, max_total: 1}
convergence: {accurate_fraction: 1.0, max_iterations: 1, max_labels: 10}
"""


def _run(*command, env, timeout=300):
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    assert result.returncode == 0, f'{command} failed:\n{result.stdout}\n{result.stderr}'
    return result.stdout


def test_campaign_runs_on_the_daemon(tmp_path):
    # The daemon starts its workers with the `verdi` it finds on PATH: put this environment's first, as an activated
    # virtual environment would (CI runs the suite without activating it).
    path = f'{BIN}{os.pathsep}{os.environ.get("PATH", "")}'
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path), 'OMP_NUM_THREADS': '1', 'PATH': path}
    spec = tmp_path / 'daemon.yaml'
    spec.write_text(SPEC)
    setup = json.loads(_run(str(BIN / 'aiida-sianode'), 'setup', '--json', env=env))
    assert setup['broker'] == 'core.zeromq'
    _run(str(BIN / 'verdi'), 'daemon', 'start', '1', env=env, timeout=120)
    try:
        submitted = json.loads(_run(str(BIN / 'aiida-sianode'), 'run', str(spec), '--submit', '--json', env=env))
        assert submitted['state'] == 'submitted'
        pk = submitted['pk']
        probe = (
            'import json, sys; from aiida import load_profile, orm; load_profile(); '
            f'n = orm.load_node({pk}); '
            'print(json.dumps([n.is_terminated, n.exit_status, n.process_state.value if n.process_state else None]))'
        )
        deadline = time.time() + 900
        while True:
            terminated, exit_status, state = json.loads(_run(sys.executable, '-c', probe, env=env))
            if terminated or time.time() > deadline:
                break
            time.sleep(5)
        listing = _run(str(BIN / 'verdi'), 'process', 'list', '-a', '-p', '1', env=env)
        assert 'ActiveLearningWorkChain' in listing
        assert terminated, f'campaign {pk} still {state} after 15 minutes'
        assert exit_status == 0, _run(str(BIN / 'verdi'), 'process', 'report', str(pk), env=env)
        shown = json.loads(
            _run(
                str(BIN / 'aiida-sianode'),
                'campaign',
                'show',
                str(pk),
                '-o',
                str(tmp_path / 'report'),
                '--json',
                env=env,
            )
        )
        assert shown['stop_reason'] == 'max_iterations'
        assert shown['training_set_frames'] == 3
        assert len(shown['committee']) == 2
        assert (tmp_path / 'report' / 'learning_curve.png').stat().st_size > 1000
    finally:
        subprocess.run([str(BIN / 'verdi'), 'daemon', 'stop'], env=env, capture_output=True, timeout=120, check=False)
