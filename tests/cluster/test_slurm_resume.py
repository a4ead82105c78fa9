"""``campaign resume`` on the production profile (RabbitMQ): the daemon's supervisor killed while labels run as Slurm
jobs, ``verdi daemon start`` beside the orphaned worker, then the one-command repair; every label finishes, each
structure is computed by exactly one Slurm job."""

from __future__ import annotations

import json
import os
import signal
import time

import psutil

SUBMIT_LABELS = """
from aiida.engine import submit
from ase.build import bulk
from aiida_sianode.deploy.cluster import default_options, merge_options
from aiida_sianode.workflows.label.local import XtbLabelWorkChain

code = orm.load_code('sianode-label@loop-slurm')
# the labels are still running when the daemon has been restarted: at low load all eight 8-atom labels
# finished first (run of 2 December 2026)
options = merge_options(default_options(code), {'prepend_text': 'sleep 30'})
pks = []
for seed in range(7, 15):
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(0.05, seed=seed)
    builder = XtbLabelWorkChain.get_builder_from_protocol(code, atoms, protocol='fast', options=options)
    pks.append(submit(builder).pk)
print(json.dumps(pks))
"""


def _workers(cluster) -> dict[int, str]:
    found = {}
    for process in psutil.process_iter(['pid', 'cmdline']):
        cmdline = process.info['cmdline'] or []
        if 'daemon' in cmdline and '-p' in cmdline and cmdline[cmdline.index('-p') + 1] == 'cluster':
            try:
                if process.environ().get('AIIDA_PATH', '').startswith(str(cluster.aiida_path)):
                    found[process.pid] = cmdline[cmdline.index('daemon') + 1]
            except psutil.Error:
                pass
    return found


def test_resume_after_supervisor_kill_on_rabbitmq(cluster):
    pks = cluster.python(SUBMIT_LABELS)
    circus = cluster.python(
        'from aiida.engine.daemon.client import get_daemon_client\n'
        'print(json.dumps(get_daemon_client().get_daemon_pid()))'
    )
    os.kill(circus, signal.SIGKILL)
    time.sleep(1)
    orphans = {pid for pid, role in _workers(cluster).items() if role == 'worker'}
    assert orphans
    cluster.verdi('daemon', 'start', '1', timeout=120)
    pending = [pk for pk, state in cluster.wait(pks, timeout=0).items() if not state['terminated']]
    assert pending, 'every label finished before the repair: nothing left to test'
    resumed = json.loads(cluster.sianode('campaign', 'resume', pending[0], '--json', timeout=600))
    assert resumed['resumed'] is True, resumed
    assert orphans <= {orphan['pid'] for orphan in resumed['orphans_ended']}
    assert [role for role in _workers(cluster).values()].count('worker') == 1

    states = cluster.wait(pks, timeout=900)
    assert all(state['exit_status'] == 0 for state in states.values()), states
    jobs = cluster.slurm_jobs()
    rows = cluster.python(
        f'print(json.dumps([[c.get_job_id() for c in orm.load_node(pk).called] for pk in {pks}]))', timeout=120
    )
    for job_ids in rows:
        assert len(job_ids) == 1, job_ids  # one calculation, one Slurm job per structure: nothing run twice
        assert jobs[job_ids[0]]['JobState'] == 'COMPLETED'
