"""A label that runs into its Slurm walltime on the loopback cluster.

The first attempt of the label sleeps past its one-minute walltime (a line of the job script's prepend text, which
sleeps only while a marker file is absent), so Slurm ends the job with TIMEOUT and the engine leaves no
``results.json``. The label work chain must name the failure (exit 300) and rerun the same inputs once with twice
the walltime, as a new Slurm job that completes, and the label is made.
"""

from __future__ import annotations

import time

SUBMIT = """
from aiida.engine import submit
from ase.build import bulk
from aiida_sianode.deploy.cluster import default_options, merge_options
from aiida_sianode.workflows.label.local import XtbLabelWorkChain

code = orm.load_code('sianode-label@loop-slurm')
atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
atoms.rattle(0.05, seed=21)
marker = {marker!r}
options = merge_options(default_options(code), {{
    'max_wallclock_seconds': 60,
    # the first attempt outlives its walltime; the rerun finds the marker and goes straight to the engine
    'prepend_text': f'if [ ! -e {{marker}} ]; then touch {{marker}}; sleep 400; fi',
}})
builder = XtbLabelWorkChain.get_builder_from_protocol(code, atoms, protocol='fast', options=options)
builder.metadata.label = 'walltime-si8'
print(json.dumps(submit(builder).pk))
"""

CALCS = """
chain = orm.load_node({pk})
calcs = sorted((n for n in chain.called if isinstance(n, orm.CalcJobNode)), key=lambda n: n.ctime)
print(json.dumps([{{'job_id': c.get_job_id(), 'exit_status': c.exit_status, 'exit_message': c.exit_message,
                    'walltime': c.get_option('max_wallclock_seconds')}} for c in calcs]))
"""


def test_label_over_its_walltime_is_rerun_with_twice_the_time(cluster):
    marker = cluster.workdir.parent / 'walltime-marker'
    marker.unlink(missing_ok=True)
    started = time.time()
    pk = cluster.python(SUBMIT.format(marker=str(marker)))
    states = cluster.wait([pk], timeout=900)
    calcs = cluster.python(CALCS.format(pk=pk))
    jobs = cluster.slurm_jobs()
    report = cluster.verdi('process', 'report', pk, check=False)
    print(f'\n[walltime] label {pk} ended in {time.time() - started:.0f} s: {states[pk]}')
    print(f'[walltime] calculations: {[(c["job_id"], jobs.get(c["job_id"], {}).get("JobState"), c) for c in calcs]}')

    assert marker.exists()  # the first job ran its prepend text on the node
    assert len(calcs) == 2, calcs
    first, rerun = calcs
    assert jobs[first['job_id']]['JobState'] == 'TIMEOUT'
    assert first['walltime'] == 60 and first['exit_status'] == 300 and 'results.json' in first['exit_message']
    assert 'walltime 120 s' in report, report
    assert rerun['walltime'] == 120 and rerun['exit_status'] == 0
    assert jobs[rerun['job_id']]['JobState'] == 'COMPLETED'
    assert states[pk]['exit_status'] == 0
