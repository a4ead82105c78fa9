"""xTB labels through the daemon of the production profile, each calculation a Slurm job on ``loop-slurm``."""

from __future__ import annotations

import time

import pytest

SUBMIT_LABELS = """
from aiida.engine import submit
from ase.build import bulk
from aiida_sianode.deploy.cluster import default_options
from aiida_sianode.workflows.label.local import XtbLabelWorkChain

code = orm.load_code('sianode-label@loop-slurm')
pks = []
for seed in (1, 2, 3):
    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(0.05, seed=seed)
    builder = XtbLabelWorkChain.get_builder_from_protocol(code, atoms, protocol='fast', options=default_options(code))
    builder.metadata.label = f'si8-seed{seed}'
    pks.append(submit(builder).pk)
print(json.dumps(pks))
"""

DESCRIBE = """
import pathlib
import numpy
from aiida_sianode.engines import label as engine
rows = []
for pk in {pks}:
    chain = orm.load_node(pk)
    calcs = [n for n in chain.called if n.process_type.endswith('sianode.label')]
    calc = calcs[-1]
    parameters = calc.inputs.parameters.get_dict()
    labeler = parameters.pop('labeler')
    workdir = pathlib.Path('{workdir}') / str(pk)
    workdir.mkdir()
    direct = engine.label(chain.inputs.structure.get_ase(), labeler, parameters, workdir=workdir)
    rows.append({{
        'pk': pk, 'calcs': [c.pk for c in calcs], 'job_ids': [c.get_job_id() for c in calcs],
        'computer': calc.computer.label, 'scheduler': calc.computer.scheduler_type,
        'transport': calc.computer.transport_type, 'queue': calc.get_option('queue_name'),
        'energy': chain.outputs.label.energy, 'direct_energy': direct['energy'],
        'max_force_diff': float(abs(chain.outputs.label.forces - numpy.array(direct['forces'])).max()),
    }})
print(json.dumps(rows))
"""


def test_xtb_labels_run_as_slurm_jobs(cluster, tmp_path):
    started = time.time()
    pks = cluster.python(SUBMIT_LABELS)
    states = cluster.wait(pks, timeout=600)
    elapsed = time.time() - started
    print(f'\n[cluster] 3 xTB labels through Slurm in {elapsed:.1f} s')
    assert all(state['exit_status'] == 0 for state in states.values()), (
        states,
        [cluster.verdi('process', 'report', pk, check=False) for pk in pks],
    )
    rows = cluster.python(DESCRIBE.format(pks=pks, workdir=tmp_path))
    jobs = cluster.slurm_jobs()
    for row in rows:
        assert (row['computer'], row['scheduler'], row['transport']) == ('loop-slurm', 'core.slurm', 'core.ssh')
        assert row['queue'] == 'cpu'  # the code's default option, from the cluster file
        for job_id in row['job_ids']:
            assert job_id in jobs, f'job {job_id} of label {row["pk"]} is not in Slurm`s job log'
            assert jobs[job_id]['JobState'] == 'COMPLETED'
            assert jobs[job_id]['Partition'] == 'cpu'
            assert jobs[job_id]['NodeList'] == cluster.settings['SIANODE_CLUSTER_NODE']
        # the same single point run here directly: the cluster changed nothing in the numbers
        assert row['energy'] == pytest.approx(row['direct_energy'], abs=1e-6)
        assert row['max_force_diff'] < 1e-5
    assert len({row['energy'] for row in rows}) == 3  # three different rattles, three energies
