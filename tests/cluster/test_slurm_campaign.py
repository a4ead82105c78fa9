"""The quick xTB campaign submitted to the daemon of the production profile: every CalcJob a Slurm job on
``loop-slurm``, and the same labels and selections as the same campaign run on the embedded profile (same seeds).

While it runs, the whole daemon (supervisor and worker) is killed with SIGKILL three times, in its labelling,
training and exploration stages (a seeded random delay after each stage's first CalcJob appears), and started again
with ``verdi daemon start``: the campaign must still finish with the same labels, no
structure labelled twice, no label lost, and no Slurm job left behind (none queued or running at the end). A CalcJob
has one Slurm job by the job name AiiDA gives (``aiida-<pk>``), or, when a kill fell in aiida-core's submit window
and the folder was submitted again, several jobs of which exactly one ran the engine (its ``engine-runs.log``).

The spec is ``workflows/si_lixsi_xtb.yaml`` shrunk to fit a CI stage (fewer cells, a committee of 2 trained for a
few epochs, one exploration temperature, one iteration); what is compared does not depend on that size.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import yaml

BIN = pathlib.Path(sys.executable).parent

REPO = pathlib.Path(__file__).resolve().parents[2]

LABELS = """
import hashlib
import numpy
rows = {{}}
for calc in [n for n in orm.load_node({pk}).called_descendants if isinstance(n, orm.CalcJobNode)]:
    row = {{'type': calc.process_type.rsplit(':', 1)[-1], 'computer': calc.computer.label,
           'job_id': calc.get_job_id(), 'exit_status': calc.exit_status, 'workdir': calc.get_remote_workdir()}}
    if row['type'] == 'sianode.label' and calc.is_finished_ok:
        atoms = calc.inputs.structure.get_ase()
        key = atoms.get_chemical_formula() + ' ' + hashlib.sha1(
            numpy.round(atoms.get_scaled_positions() % 1.0, 4).tobytes()).hexdigest()[:12]
        row['structure'] = key
        row['energy'] = calc.outputs.label.energy
    rows[calc.pk] = row
node = orm.load_node({pk})
print(json.dumps({{'calcs': rows, 'state': node.process_state.value, 'exit_status': node.exit_status}}))
"""


def shrunk_spec(codes_on: str | None) -> dict:
    spec = yaml.safe_load((REPO / 'workflows' / 'si_lixsi_xtb.yaml').read_text())
    spec['name'] = 'si-lixsi-xtb-cluster'
    spec['structures'] = [
        {'builder': 'si-crystal', 'parameters': {'size': [1, 1, 1], 'rattle': 0.05}, 'seeds': [1, 2]},
        {'builder': 'lixsi', 'parameters': {'x': 0.5, 'size': [1, 1, 1]}, 'seeds': [1]},
    ]
    spec['explore_structures'] = spec['explore_structures'][:1]
    spec['training'] = {
        'protocol': 'fast',
        'committee_size': 2,
        'overrides': {'train': {'parameters': {'max_num_epochs': 4, 'patience': 4}}},
    }
    spec['exploration'].update({'temperatures': [300], 'steps': 40})
    spec['selection'].update({'max_per_run': 2, 'max_total': 2, 'lower': 0.001, 'upper': 5.0})
    spec['convergence'] = {'accurate_fraction': 1.0, 'max_iterations': 1, 'max_labels': 10}
    if codes_on:
        spec['labeler']['code'] = f'sianode-label@{codes_on}'
        spec['training']['code'] = f'sianode-train@{codes_on}'
        spec['exploration']['code'] = f'sianode-explore@{codes_on}'
    return spec


STAGES = """
node = orm.load_node({pk})
types = sorted({{n.process_type.rsplit(':', 1)[-1] for n in node.called_descendants if isinstance(n, orm.CalcJobNode)}})
print(json.dumps({{'terminated': node.is_terminated, 'calcjobs': types}}))
"""


def kill_the_daemon_three_times(cluster, pk: int) -> list[float]:
    """SIGKILL every daemon process of the profile three times, each followed by ``verdi daemon start 1``: once the
    campaign's first label, its first training and its first exploration CalcJob exist, each after a seeded random
    delay of 0-10 s; return the moments (seconds after the first call).

    Stages, not clock times: the campaign takes 4-10 minutes on this machine depending on its load, and fixed
    windows let a fast run finish before the third kill (seen at load 4: done after kills at 56 s and 185 s).
    """
    from aiida_sianode.deploy.recover import daemon_processes

    rng = random.Random(2026)
    started = time.time()
    done = []
    for stage in ('sianode.label', 'sianode.train', 'sianode.explore'):
        deadline = time.time() + 1200
        while True:
            state = cluster.python(STAGES.format(pk=pk))
            assert not state['terminated'], f'the campaign ended before a {stage} CalcJob, after kills at {done}'
            if stage in state['calcjobs']:
                break
            assert time.time() < deadline, f'no {stage} CalcJob within 20 minutes: {state}'
            time.sleep(2)
        time.sleep(rng.uniform(0, 10))
        pids = [item['pid'] for item in daemon_processes('cluster', str(cluster.aiida_path / '.aiida'))]
        assert pids, 'no daemon process to kill'
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(2)
        cluster.verdi('daemon', 'start', '1', timeout=180)
        done.append(round(time.time() - started, 1))
    return done


def test_quick_campaign_on_the_daemon_every_calcjob_a_slurm_job(cluster, tmp_path):
    (tmp_path / 'cluster.yaml').write_text(yaml.safe_dump(shrunk_spec('loop-slurm')))
    (tmp_path / 'embedded.yaml').write_text(yaml.safe_dump(shrunk_spec(None)))

    started = time.time()
    submitted = json.loads(cluster.sianode('run', tmp_path / 'cluster.yaml', '--submit', '--json'))
    pk = submitted['pk']
    # the same campaign on an embedded profile (SQLite + ZeroMQ, localhost), run in the foreground meanwhile
    embedded_env = {**cluster.env, 'AIIDA_PATH': str(tmp_path / 'embedded')}
    subprocess.run([BIN / 'aiida-sianode', 'setup', '--json'], env=embedded_env, capture_output=True, check=True)
    embedded = subprocess.Popen(
        [
            BIN / 'aiida-sianode',
            'run',
            tmp_path / 'embedded.yaml',
            '--output-dir',
            tmp_path / 'embedded-report',
            '--json',
        ],
        env=embedded_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        kills = kill_the_daemon_three_times(cluster, pk)
        state = cluster.wait([pk], timeout=1500)[pk]
        cluster_seconds = time.time() - started
        stdout, stderr = embedded.communicate(timeout=1500)
    finally:
        if embedded.poll() is None:
            embedded.kill()
    assert embedded.returncode == 0, stderr[-3000:]
    embedded_summary = json.loads(stdout)
    print(
        f'\n[cluster] campaign on loop-slurm in {cluster_seconds:.0f} s; embedded {embedded_summary["wall_time_s"]} s'
    )
    assert state['exit_status'] == 0, cluster.verdi('process', 'report', pk, check=False)

    on_cluster = cluster.python(LABELS.format(pk=pk))
    calcs = on_cluster['calcs'].values()
    jobs = cluster.slurm_jobs()
    kinds = sorted({calc['type'] for calc in calcs})
    assert kinds == ['sianode.explore', 'sianode.label', 'sianode.train']
    for calc in calcs:
        assert calc['computer'] == 'loop-slurm'
        assert calc['job_id'] in jobs, f'{calc} is not in Slurm`s job log'
        assert jobs[calc['job_id']]['JobState'] == 'COMPLETED'
    assert len({calc['job_id'] for calc in calcs}) == len(on_cluster['calcs'])  # one job per CalcJob
    # no Slurm job left behind by the kills: nothing queued or running, and no CalcJob with a second job
    assert subprocess.run(['squeue', '-h'], capture_output=True, text=True, check=True).stdout.strip() == ''
    by_name = {}
    for job in jobs.values():  # the job log spans sessions, whose databases reuse pks: this session's jobs only
        if job.get('WorkDir', '').startswith(str(cluster.workdir)):
            by_name.setdefault(job.get('Name'), []).append(job['JobId'])
    duplicates = {}
    for calc_pk, calc in on_cluster['calcs'].items():
        job_ids = by_name.get(f'aiida-{calc_pk}', [])
        assert job_ids, calc_pk
        if len(job_ids) > 1:
            # aiida-core's submit window (issue 3183): the daemon was killed after sbatch accepted the job and before
            # the job id was stored, so the restarted daemon submitted the folder again. The engines run once per
            # folder (aiida_sianode/engines/once.py): exactly one of the jobs computed, the others did nothing.
            runs = (pathlib.Path(calc['workdir']) / 'engine-runs.log').read_text().splitlines()
            assert len(runs) == len(job_ids), (calc_pk, job_ids, runs)
            assert sum(line.endswith(': running') for line in runs) == 1, runs
            assert all(line.endswith(': running') or 'nothing to do' in line for line in runs), runs
            duplicates[calc_pk] = job_ids
    # none labelled twice: every finished label of the campaign is of a different structure
    label_keys = [calc['structure'] for calc in calcs if 'structure' in calc]
    assert len(label_keys) == len(set(label_keys)), label_keys
    print(f'[cluster] daemon SIGKILLed at {kills} s (killed pids, restarted): {len(label_keys)} labels, none twice')
    print(f'[cluster] CalcJobs submitted twice by a kill in the submit window (one job computed): {duplicates}')

    probe = (
        f'import json; from aiida import load_profile, orm; load_profile(); {LABELS.format(pk=embedded_summary["pk"])}'
    )
    local = json.loads(
        subprocess.run(
            [sys.executable, '-c', probe], env=embedded_env, capture_output=True, text=True, check=True
        ).stdout.splitlines()[-1]
    )
    cluster_labels = {c['structure']: c['energy'] for c in calcs if 'structure' in c}
    local_labels = {c['structure']: c['energy'] for c in local['calcs'].values() if 'structure' in c}
    # the starting cells (one iteration: the frames it selects are not labelled): same structures, same energies on
    # both profiles, so no label was lost to the daemon kills. Measured: the two Si8 cells; the Li4Si8 cell's SCF
    # fails on both (tblite, 250 cycles, exit 410), so 2 of the 3 cells are labelled.
    assert len(cluster_labels) >= 2
    assert sorted(cluster_labels) == sorted(local_labels)
    for key, energy in cluster_labels.items():
        assert abs(energy - local_labels[key]) < 1e-6, key

    shown = json.loads(cluster.sianode('campaign', 'show', pk, '-o', tmp_path / 'report', '--json'))
    # one iteration: stopped by the iteration limit, or converged when no MD frame needs a label
    assert shown['stop_reason'] in ('max_iterations', 'converged'), shown
    assert shown['training_set_frames'] == len(cluster_labels)
    print(
        f'[cluster] stop: {shown["stop_reason"]} on loop-slurm, {embedded_summary["stop_reason"]} embedded; '
        f'selected per iteration {[row.get("selected") for row in shown["iterations"]]} on loop-slurm, '
        f'{[row.get("selected") for row in embedded_summary["iterations"]]} embedded'
    )
