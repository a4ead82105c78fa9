"""Faults on the loopback cluster, each injected for real while xTB labels run as Slurm jobs through the daemon.

- ``scancel`` of a running label's job;
- SIGKILL of the engine process on the node, inside its running job;
- sshd stopped for 40 s (every sshd process of the test's server, so that no open connection survives) while a
  label waits to be uploaded and submitted: AiiDA's transport back-off must hold it, and it must finish after;
- nothing secret leaves the database: an archive of the whole profile and the daemon's logs hold neither password
  nor the test's private key.

The first two end with a clear exit code (300, no results.json), the failure in the process report and the Slurm
state of the job; the label work chain then reruns the same inputs once (``RETRY_EXPECTED``) and the label finishes.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import time
import zipfile

import psutil
import pytest

#: The local label work chains rerun a calculation that ended without results.json (cancelled or killed) once.
RETRY_EXPECTED = True

SUBMIT = """
from aiida.engine import submit
from ase.build import bulk
from aiida_sianode.deploy.cluster import default_options, merge_options
from aiida_sianode.workflows.label.local import XtbLabelWorkChain

code = orm.load_code('sianode-label@loop-slurm')
# a job stays RUNNING long enough for the test to see it and act on it: at low load a 64-atom xTB label
# ran and finished between two polls (run of 2 December 2026, job 158)
options = merge_options(default_options(code), {{'prepend_text': 'sleep 20'}})
pks = []
for seed in {seeds}:
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True).repeat((2, 2, 2))  # 64 atoms: a job that runs for a while
    atoms.rattle(0.05, seed=seed)
    builder = XtbLabelWorkChain.get_builder_from_protocol(code, atoms, protocol='fast', options=options)
    builder.metadata.label = f'fault-si64-seed{{seed}}'
    pks.append(submit(builder).pk)
print(json.dumps(pks))
"""

CALCS = """
rows = {{}}
for pk in {pks}:
    chain = orm.load_node(pk)
    calcs = sorted((n for n in chain.called if isinstance(n, orm.CalcJobNode)), key=lambda n: n.ctime)
    rows[pk] = [{{'pk': c.pk, 'job_id': c.get_job_id(), 'workdir': c.get_remote_workdir(),
                 'state': c.process_state.value, 'exit_status': c.exit_status, 'exit_message': c.exit_message}}
                for c in calcs]
print(json.dumps(rows))
"""


def calcs_of(cluster, pk: int) -> list[dict]:
    return cluster.python(CALCS.format(pks=[pk]))[str(pk)]


def running_job(cluster, pk: int, timeout: float = 600) -> dict:
    """Wait until the (first) calculation of label ``pk`` runs as a Slurm job; return its row."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        calcs = calcs_of(cluster, pk)
        if calcs and calcs[0]['job_id']:
            state = subprocess.run(
                ['squeue', '-h', '-j', calcs[0]['job_id'], '-o', '%T'], capture_output=True, text=True, check=False
            ).stdout.strip()
            if state == 'RUNNING':
                return calcs[0]
        time.sleep(1)
    pytest.fail(f'label {pk} never ran as a Slurm job: {calcs_of(cluster, pk)}')


def engine_processes(workdir: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(['cmdline', 'cwd']):
        try:
            cmdline = ' '.join(process.info['cmdline'] or [])
            if process.info['cwd'] == workdir and 'aiida_sianode.engines' in cmdline:
                found.append(process)
        except psutil.Error:
            continue
    return found


def sshd_processes(state_dir: pathlib.Path) -> list[psutil.Process]:
    """The test's sshd listener (from its pid file) and every session process under it."""
    listener = psutil.Process(int((state_dir / 'sshd.pid').read_text()))
    return [listener, *listener.children(recursive=True)]


def test_faults_on_the_cluster(cluster):
    state_dir = pathlib.Path(cluster.settings['SIANODE_CLUSTER_DIR'])
    started = time.time()
    cancelled_pk, killed_pk = cluster.python(SUBMIT.format(seeds=[11, 12]))

    # 1. scancel of a running job
    cancelled = running_job(cluster, cancelled_pk)
    subprocess.run(['scancel', cancelled['job_id']], check=True)
    # 2. SIGKILL of the engine on the node, inside its job
    killed = running_job(cluster, killed_pk)
    deadline = time.time() + 120
    while not (engines := engine_processes(killed['workdir'])) and time.time() < deadline:
        time.sleep(0.5)
    assert engines, f'no engine process runs in {killed["workdir"]}'
    for process in engines:
        process.send_signal(signal.SIGKILL)
    print(f'\n[faults] scancel of job {cancelled["job_id"]}, SIGKILL of engine pid {[p.pid for p in engines]}')

    # 3. sshd down for 40 s while a new label waits to be uploaded and submitted
    (backoff_pk,) = cluster.python(SUBMIT.format(seeds=[13]))
    sshd = sshd_processes(state_dir)
    for process in sshd:
        process.kill()
    down_at = time.time()
    time.sleep(40)
    subprocess.run(['/usr/sbin/sshd', '-f', str(state_dir / 'sshd_config')], check=True)
    print(f'[faults] sshd down for {time.time() - down_at:.0f} s ({len(sshd)} processes ended), then started again')

    states = cluster.wait([cancelled_pk, killed_pk, backoff_pk], timeout=1200)
    print(f'[faults] the three labels ended in {time.time() - started:.0f} s: {states}')
    jobs = cluster.slurm_jobs()
    rows = cluster.python(CALCS.format(pks=[cancelled_pk, killed_pk, backoff_pk]))
    reports = {pk: cluster.verdi('process', 'report', pk, check=False) for pk in (cancelled_pk, killed_pk)}
    for pk, calcs in rows.items():
        summary = [(c['job_id'], jobs.get(c['job_id'], {}).get('JobState'), c['exit_status']) for c in calcs]
        print(f'[faults] label {pk}: {summary}')

    # the back-off held: the label uploaded, ran and finished once sshd was back, as one Slurm job
    assert states[backoff_pk]['exit_status'] == 0, cluster.verdi('process', 'report', backoff_pk, check=False)
    (backoff_calc,) = rows[str(backoff_pk)]
    assert jobs[backoff_calc['job_id']]['JobState'] == 'COMPLETED'

    # the cancelled job: Slurm says CANCELLED; the calculation ends with a clear exit code named in the report
    assert jobs[cancelled['job_id']]['JobState'] == 'CANCELLED'
    # the killed engine: its job failed (the engine's exit status, 137 = SIGKILL, is the job's)
    assert jobs[killed['job_id']]['JobState'] == 'FAILED'
    for pk, first in ((cancelled_pk, cancelled), (killed_pk, killed)):
        calcs = rows[str(pk)]
        assert calcs[0]['pk'] == first['pk'] and calcs[0]['exit_status'] == 300, calcs  # ERROR_NO_RESULTS
        assert 'results.json' in calcs[0]['exit_message']
        assert f'<{first["pk"]}> ended without results' in reports[pk]
        retried = len(calcs) > 1
        assert retried is RETRY_EXPECTED, calcs
        if RETRY_EXPECTED:  # one rerun of the same inputs, as its own Slurm job, and the label is made
            assert len(calcs) == 2 and calcs[1]['exit_status'] == 0, calcs
            assert jobs[calcs[1]['job_id']]['JobState'] == 'COMPLETED'
            assert states[pk]['exit_status'] == 0
        else:
            assert states[pk]['exit_status'] == 300  # the label work chain's ERROR_MISSING_OUTPUTS

    # 4. nothing secret leaves the database
    secrets = [
        pathlib.Path(cluster.settings['SIANODE_DB_PASSWORD_FILE']).read_text().strip(),
        pathlib.Path(cluster.settings['SIANODE_BROKER_PASSWORD_FILE']).read_text().strip(),
        ''.join(pathlib.Path(cluster.settings['SIANODE_SSH_KEY']).read_text().splitlines()[1:3]),
    ]
    archive = cluster.workdir.parent / 'whole-profile.aiida'
    cluster.verdi('archive', 'create', '--all', str(archive), timeout=600)
    with zipfile.ZipFile(archive) as bundle:
        blobs = [bundle.read(name) for name in bundle.namelist()]
    logs = list((cluster.aiida_path / '.aiida' / 'daemon' / 'log').glob('*'))
    assert logs, 'the daemon wrote no log'
    blobs += [path.read_bytes() for path in logs]
    print(f'[faults] {len(blobs)} files searched (archive of {archive.stat().st_size} bytes and the daemon logs)')
    for secret in secrets:
        assert len(secret) >= 20
        assert not any(secret.encode() in blob for blob in blobs)
    assert not any(b'PRIVATE KEY' in blob for blob in blobs)
    assert os.stat(state_dir).st_mode & 0o077 == 0  # the key and passwords stay in a folder only root can read
